/* RFC 9162 Merkle tree hashing in batches (see merkle.h); the reference is kernels/pure_merkle.py. */
#include "merkle.h"

#include <stdint.h>
#include <string.h>

#include "chain.h"
#include "sha256.h"

static void node_hash(const uint8_t *left_right, uint8_t out[32]) {
    uint8_t pre[65];
    pre[0] = 0x01;
    memcpy(pre + 1, left_right, 64);
    pj_sha256(pre, sizeof pre, out);
}

int pj_merkle_node_hashes(const uint8_t *pairs, size_t pairs_len, uint8_t *out, size_t out_len) {
    if (pairs_len % 64 || out_len < pairs_len / 2) return PJ_MERKLE_BAD_LENGTH;
    size_t n = pairs_len / 64;
    for (size_t i = 0; i < n; i++) node_hash(pairs + 64 * i, out + 32 * i);
    return PJ_CHAIN_OK;
}

int pj_merkle_subtree(const uint8_t *entries, size_t entries_len, uint8_t *out, size_t out_len) {
    if (entries_len % 32) return PJ_MERKLE_BAD_LENGTH;
    size_t w = entries_len / 32;
    if (w == 0 || (w & (w - 1)) || out_len / 32 < w - 1) return PJ_MERKLE_BAD_LENGTH;
    const uint8_t *level = entries;
    uint8_t *dst = out;
    for (size_t width = w; width > 1; width /= 2) {
        for (size_t i = 0; i < width / 2; i++) node_hash(level + 64 * i, dst + 32 * i);
        level = dst;
        dst += 32 * (width / 2);
    }
    return PJ_CHAIN_OK;
}
