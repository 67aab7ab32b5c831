/* SHA-256: portable C and x86 SHA-NI, dispatched at run time (see sha256.h). */
#include "sha256.h"

#include <string.h>

#include "cpu.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void blocks_portable(uint32_t st[8], const uint8_t *p, size_t nblocks) {
    uint32_t w[64];
    while (nblocks--) {
        for (int i = 0; i < 16; i++) w[i] = load_be32(p + 4 * i);
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
        uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        st[0] += a;
        st[1] += b;
        st[2] += c;
        st[3] += d;
        st[4] += e;
        st[5] += f;
        st[6] += g;
        st[7] += h;
        p += 64;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define PJ_HAVE_SHANI 1

/* The Intel SHA extensions: two rounds per sha256rnds2, the message schedule by msg1/msg2. The
 * state lives as ABEF / CDGH lane pairs, as the instructions want it. */
__attribute__((target("sha,sse4.1"))) static void blocks_shani(uint32_t st[8], const uint8_t *p,
                                                                  size_t nblocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)(const void *)&st[0]);    /* DCBA */
    __m128i state1 = _mm_loadu_si128((const __m128i *)(const void *)&st[4]); /* HGFE */
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                                        /* CDAB */
    state1 = _mm_shuffle_epi32(state1, 0x1B);                                  /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);                          /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);                               /* CDGH */

    while (nblocks--) {
        const __m128i abef = state0, cdgh = state1;
        __m128i w[4];
        for (int i = 0; i < 4; i++)
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i)), bswap);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            __m128i msg = _mm_add_epi32(w[i & 3], _mm_loadu_si128((const __m128i *)(const void *)&K[4 * i]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
            msg = _mm_shuffle_epi32(msg, 0x0E);
            state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
            if (i < 12) { /* words 4i+16 .. 4i+19 from the four groups before them */
                __m128i t = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
                t = _mm_add_epi32(t, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
                w[i & 3] = _mm_sha256msg2_epu32(t, w[(i + 3) & 3]);
            }
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
        p += 64;
    }

    tmp = _mm_shuffle_epi32(state0, 0x1B);       /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);    /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0); /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);    /* HGFE */
    _mm_storeu_si128((__m128i *)(void *)&st[0], state0);
    _mm_storeu_si128((__m128i *)(void *)&st[4], state1);
}
#endif

static void blocks(uint32_t st[8], const uint8_t *p, size_t nblocks) {
    if (nblocks == 0) return;
#ifdef PJ_HAVE_SHANI
    if (pj_cpu_sha_path() == PJ_SHA_SHANI) {
        blocks_shani(st, p, nblocks);
        return;
    }
#endif
    blocks_portable(st, p, nblocks);
}

void pj_sha256_init(pj_sha256_ctx *ctx) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(ctx->h, iv, sizeof iv);
    ctx->nbytes = 0;
    ctx->buflen = 0;
}

void pj_sha256_update(pj_sha256_ctx *ctx, const void *data, size_t n) {
    const uint8_t *p = (const uint8_t *)data;
    if (n == 0) return;
    ctx->nbytes += (uint64_t)n; /* wraps only past 2**64 bytes, beyond SHA-256's own limit */
    if (ctx->buflen) {
        size_t take = 64 - ctx->buflen;
        if (take > n) take = n;
        memcpy(ctx->buf + ctx->buflen, p, take);
        ctx->buflen += take;
        p += take;
        n -= take;
        if (ctx->buflen < 64) return;
        blocks(ctx->h, ctx->buf, 1);
        ctx->buflen = 0;
    }
    size_t full = n / 64;
    blocks(ctx->h, p, full);
    p += full * 64;
    n -= full * 64;
    if (n) {
        memcpy(ctx->buf, p, n);
        ctx->buflen = n;
    }
}

void pj_sha256_final(pj_sha256_ctx *ctx, uint8_t out[32]) {
    uint64_t bits = ctx->nbytes << 3;
    uint8_t pad[128];
    size_t len = ctx->buflen;
    memcpy(pad, ctx->buf, len);
    pad[len++] = 0x80;
    size_t total = len + 8 <= 64 ? 64 : 128;
    memset(pad + len, 0, total - 8 - len);
    for (int i = 0; i < 8; i++) pad[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    blocks(ctx->h, pad, total / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(ctx->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(ctx->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(ctx->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)ctx->h[i];
    }
}

void pj_sha256(const void *data, size_t n, uint8_t out[32]) {
    pj_sha256_ctx ctx;
    pj_sha256_init(&ctx);
    pj_sha256_update(&ctx, data, n);
    pj_sha256_final(&ctx, out);
}

/* Two characters per byte from one table: this runs once per chain row. */
static const char HEX_PAIRS[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

void pj_sha256_hex(const uint8_t digest[32], char out[64]) {
    for (int i = 0; i < 32; i++) memcpy(out + 2 * i, HEX_PAIRS + 2 * digest[i], 2);
}
