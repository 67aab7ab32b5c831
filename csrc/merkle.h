/* The RFC 9162 (RFC 6962) Merkle tree of the journal: batch node hashing (the leaf hashes come
 * from the chain's columns: pj_chain_leaf_hashes in chain.h).
 *
 *   leaf_hash = SHA-256(0x00 || leaf data)        leaf data = the chain v1 envelope of the event
 *   node_hash = SHA-256(0x01 || left || right)
 *
 * The reference is kernels/pure_merkle.py; hashing runs on the SHA path sha256.c picks (SHA-NI on
 * x86-64 when present). Outputs are raw 32-byte digests written back to back. Every buffer comes
 * with its length and is checked: a call never writes past out_len. */
#ifndef PJ_MERKLE_H
#define PJ_MERKLE_H

#include <stddef.h>
#include <stdint.h>

/* Status code beyond chain.h's PJ_CHAIN_*. */
#define PJ_MERKLE_BAD_LENGTH 16 /* an input length is not a whole number of hashes / pairs, or the
                                   output is too small, or a count is not a power of two */

/* out[i] = node_hash(pairs[64i .. 64i+32), pairs[64i+32 .. 64i+64)) for every pair. */
int pj_merkle_node_hashes(const uint8_t *pairs, size_t pairs_len, uint8_t *out, size_t out_len);

/* The levels above `entries` (a power-of-two count w >= 1 of hashes): w/2 hashes of the level
 * above, then w/4, ..., then the single root: w-1 hashes, 32*(w-1) bytes. */
int pj_merkle_subtree(const uint8_t *entries, size_t entries_len, uint8_t *out, size_t out_len);

#endif
