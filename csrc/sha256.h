/* SHA-256 (FIPS 180-4): the digest of hash chain v1.
 *
 * One portable implementation and, on x86-64, one using the SHA-NI instructions; every call asks
 * pj_cpu_sha_path() which to run, so pj_cpu_set_sha_limit(0) forces the portable code (tests). Both
 * paths keep the same state, so a context may be fed by either. Streaming (init/update/final) and
 * one-shot forms. */
#ifndef PJ_SHA256_H
#define PJ_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t nbytes;   /* message length so far */
    uint8_t buf[64];   /* a partial block */
    size_t buflen;     /* bytes used in buf, < 64 */
} pj_sha256_ctx;

void pj_sha256_init(pj_sha256_ctx *ctx);
void pj_sha256_update(pj_sha256_ctx *ctx, const void *data, size_t n);
void pj_sha256_final(pj_sha256_ctx *ctx, uint8_t out[32]);
/* The digest of data[0..n) in one call. */
void pj_sha256(const void *data, size_t n, uint8_t out[32]);
/* Lowercase hex of a digest: 64 characters, no terminator. */
void pj_sha256_hex(const uint8_t digest[32], char out[64]);

#endif
