/* The int8 scan tier of the exact top-k (see vector_int8.h; the proof is in docs/recall.md).
 *
 * Bounds. For a row m with code c and scale s, and the query q with code p and scale t:
 *     m.q = s t (c.p) + s (c.f) + e.q,   e = m - s c,  f = q - t p,
 * so |m.q - s t (c.p)| <= s ||c|| ||f|| + ||e|| ||q|| <= norm_r F + err_r Q. The scan computes
 * est = (float)(c.p) * (s * t) in float32 (three roundings: relative error < 2^-22 of
 * s t |c.p| <= norm_r P, with P >= t ||p||) and
 *     B = (norm_r G + err_r Q) (1 + 2^-20) + 2^-118,   G = F + 2^-18 (P + Q),
 * whose 2^-18 P covers the rounding of est and of est +- B, whose 2^-18 Q (and the 2^-20 on err_r Q)
 * leaves room for the error of the double rescoring, and whose 2^-118 covers underflow. The row's
 * exact score lies strictly inside (L, U) = (est - B, est + B) by more than the rescoring's error.
 *
 * Pruning. The scan keeps the k largest lower bounds seen (a heap; thr is its minimum once full,
 * else -inf) and every row with U >= thr at the time it is scanned. A row left out has U < thr_then
 * <= thr_final; the k rows of the final heap have L >= thr_final and were kept. So every row left
 * out scores (in double, as in exact arithmetic) strictly below k kept rows: it can neither enter
 * the top k nor tie with its last member, and ranking the kept rows by their double score gives
 * the float32 exact scan's answer. */
#define _DEFAULT_SOURCE /* getloadavg, CLOCK_MONOTONIC_COARSE */
#include "vector_int8.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu.h"
#include "pool.h"
#include "vector.h"

#if defined(__x86_64__) || defined(__i386__)
#define PJ_INT8_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define PJ_INT8_X86 0
#endif

#define BOUND_GROW (1.0f + 0x1p-20f)
#define BOUND_ABS 0x1p-118f
/* Relative slack on the double-precision norms (sums of at most PJ_INT8_MAX_D squares). */
#define NORM_GROW (1.0 + 0x1p-30)

/* ------------------------------------------------------------------------------------------- */
/* Levels                                                                                        */

static int detect_int8(void) {
    int simd = pj_cpu_simd_detected();
#if PJ_INT8_X86
    if (simd == PJ_SIMD_AVX512) {
        unsigned int a, b, c, d;
        __cpuid_count(7, 0, a, b, c, d);
        int bw = (b >> 30) & 1, vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
        if (bw && vl) return vnni ? PJ_INT8_AVX512VNNI : PJ_INT8_AVX512BW;
        return PJ_INT8_AVX2;
    }
    if (simd == PJ_SIMD_AVX2) return PJ_INT8_AVX2;
#else
    (void)simd;
#endif
    return PJ_INT8_SCALAR;
}

static atomic_int int8_detected = -1, int8_limit = -1;

int pj_int8_level_detected(void) {
    int d = atomic_load(&int8_detected);
    if (d < 0) {
        d = detect_int8(); /* idempotent: a race only repeats it */
        atomic_store(&int8_detected, d);
    }
    return d;
}

int pj_int8_level(void) {
    int level = pj_int8_level_detected();
    int simd = pj_cpu_simd_level(); /* the float32 cap applies here too */
    int cap = simd == PJ_SIMD_AVX512 ? PJ_INT8_AVX512VNNI
              : simd == PJ_SIMD_AVX2 ? PJ_INT8_AVX2
                                     : PJ_INT8_SCALAR;
    if (level > cap) level = cap;
    int limit = atomic_load(&int8_limit);
    if (limit >= 0 && level > limit) level = limit;
    return level;
}

int pj_int8_set_limit(int level) {
    atomic_store(&int8_limit, level < 0 ? -1 : level);
    return pj_int8_level();
}

/* ------------------------------------------------------------------------------------------- */
/* Quantization                                                                                  */

/* The smallest float >= x, for x >= 0 (+inf when x is NaN or beyond the float range). */
static float float_up(double x) {
    if (!(x <= (double)FLT_MAX)) return INFINITY;
    float f = (float)x;
    if ((double)f < x) f = nextafterf(f, INFINITY);
    return f;
}

/* Symmetric code of v with scale s (round half to even, as numpy's rint), clamped to +-127. */
static inline int code_of(float v, float s) {
    if (!(s > 0.0f)) return 0;
    double x = nearbyint((double)v / (double)s);
    return x > 127.0 ? 127 : x < -127.0 ? -127 : (int)x;
}

/* Quantizes one vector of d floats: codes, scale, and the norms sqrt(sum c^2) and ||v - s c||
 * (exact products, double sums, not yet rounded up). Returns 0 when v holds a non-finite value. */
static int quantize_one(const float *v, size_t d, int8_t *c, float *scale, double *cnorm,
                        double *enorm) {
    double amax = 0.0;
    for (size_t j = 0; j < d; j++) {
        double a = fabs((double)v[j]);
        if (!(a <= DBL_MAX)) return 0;
        if (a > amax) amax = a;
    }
    float s = (float)(amax / 127.0);
    double c2 = 0.0, e2 = 0.0;
    for (size_t j = 0; j < d; j++) {
        int x = code_of(v[j], s);
        double e = (double)v[j] - (double)s * (double)x; /* s * x is exact in double */
        c[j] = (int8_t)x;
        c2 += (double)(x * x);
        e2 += e * e;
    }
    *scale = s;
    *cnorm = sqrt(c2);
    *enorm = sqrt(e2);
    return 1;
}

int pj_int8_quantize(const float *matrix, size_t n, size_t d, int8_t *codes, float *scale,
                     float *norm, float *err) {
    if (d > PJ_INT8_MAX_D || (d != 0 && n > SIZE_MAX / d)) return PJ_VECTOR_ERR_ARGS;
    if (n == 0) return 0;
    if (!scale || !norm || !err || (d != 0 && (!matrix || !codes))) return PJ_VECTOR_ERR_ARGS;
    for (size_t r = 0; r < n; r++) {
        double cn, en;
        if (!quantize_one(matrix + r * d, d, codes + r * d, &scale[r], &cn, &en)) {
            memset(codes + r * d, 0, d);
            scale[r] = 0.0f;
            norm[r] = 0.0f;
            err[r] = INFINITY; /* never pruned: always rescored */
            continue;
        }
        norm[r] = float_up((double)scale[r] * cn * NORM_GROW);
        err[r] = float_up(en * NORM_GROW);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The scan state                                                                                */

typedef struct {
    float upper;
    int64_t idx;
} ucand;

typedef struct {
    double key;
    int64_t idx;
} scored;

typedef struct {
    /* inputs */
    const int8_t *codes;
    const float *scale, *norm, *err;
    const unsigned char *mask;
    size_t n, d;
    const int8_t *qp;   /* query code, zero-padded to a multiple of 64 */
    const int16_t *q16; /* the same, widened */
    int32_t bias;       /* 128 * sum(qp): the VNNI kernel reads codes + 128 */
    float t, G, Q;
    /* lower bounds: a min-heap of the k largest */
    float *heap;
    size_t hk, hn;
    float thr;
    /* rows kept for rescoring */
    ucand *cands;
    size_t cn, ccap, budget;
    int defeated;
    size_t scanned;
    /* the rows scanned are rows off .. off + n of the tier's total (a chunk of a parallel scan:
     * codes, scale, norm, err and mask point at row off; kept rows are recorded as off + r) */
    size_t off, total;
} int8_scan;

static void heap_push(int8_scan *s, float x) {
    float *h = s->heap;
    if (s->hn < s->hk) {
        size_t i = s->hn++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!(x < h[p])) break;
            h[i] = h[p];
            i = p;
        }
        h[i] = x;
        if (s->hn == s->hk) s->thr = h[0];
        return;
    }
    if (!(x > h[0])) return;
    size_t i = 0, n = s->hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (!(h[c] < x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
    s->thr = h[0];
}

/* Drops the kept rows that the current threshold excludes. */
static void compact(int8_scan *s) {
    size_t m = 0;
    for (size_t i = 0; i < s->cn; i++)
        if (!(s->cands[i].upper < s->thr)) s->cands[m++] = s->cands[i];
    s->cn = m;
}

/* The kept rows filled their buffer: drop those the threshold now excludes. Returns 1 when the
 * bound is defeated: more than `budget` rows survive once an eighth of the matrix has been
 * scanned (earlier, the threshold may still be low only because of the order of the rows: the
 * buffer grows instead). */
static int make_room(int8_scan *s, size_t r) {
    compact(s);
    if (s->cn <= s->budget) return 0;
    if (s->off + r >= s->total / 8) return 1;
    ucand *grown = (ucand *)realloc(s->cands, 2 * s->ccap * sizeof(ucand));
    if (!grown) return 1; /* the float32 scan needs no buffer */
    s->cands = grown;
    s->ccap *= 2;
    return 0;
}

/* One row's bounds, in scan order. Returns 1 when the bound is defeated (too many rows kept). */
static inline int consume(int8_scan *s, size_t r, float U, float L) {
    if (U < s->thr) return 0;
    if (s->cn == s->ccap && make_room(s, r)) {
        s->defeated = 1;
        return 1;
    }
    s->cands[s->cn].upper = U;
    s->cands[s->cn].idx = (int64_t)(s->off + r);
    s->cn++;
    if (L == L && (s->hn < s->hk || L > s->thr)) heap_push(s, L);
    return 0;
}

static inline void bounds_of(const int8_scan *s, size_t r, int32_t dot, float *U, float *L) {
    float est = (float)dot * (s->scale[r] * s->t);
    float B = (s->norm[r] * s->G + s->err[r] * s->Q) * BOUND_GROW + BOUND_ABS;
    *U = est + B;
    *L = est - B;
}

static inline int32_t dot_codes(const int8_t *row, const int8_t *q, size_t d) {
    int32_t acc = 0;
    for (size_t j = 0; j < d; j++) acc += (int32_t)row[j] * (int32_t)q[j];
    return acc;
}

/* Rows [r0, n) one at a time: the portable kernel, and the remainder of the blocked ones. */
static int scan_rows_scalar(int8_scan *s, size_t r0) {
    const size_t d = s->d;
    for (size_t r = r0; r < s->n; r++) {
        if (s->mask && !s->mask[r]) continue;
        float U, L;
        bounds_of(s, r, dot_codes(s->codes + r * d, s->qp, d), &U, &L);
        s->scanned++;
        if (consume(s, r, U, L)) return 1;
    }
    return 0;
}

/* The rows of a block whose upper bound reached the threshold (bit t of keep: row r + t), with
 * their bounds u[t] and l[t], in row order. Returns 1 when the bound is defeated. */
static inline int consume_lanes(int8_scan *s, size_t r, unsigned keep, const float *u,
                                const float *l) {
    for (; keep; keep &= keep - 1) {
        int t = __builtin_ctz(keep);
        if (consume(s, r + (size_t)t, u[t], l[t])) return 1;
    }
    return 0;
}

#if PJ_INT8_X86
/* The bounds of 8 rows from their dot products, as bounds_of() computes them one by one. */
__attribute__((target("avx2,fma"))) static int finish8(int8_scan *s, size_t r, __m256i dots,
                                                      unsigned live) {
    __m256 st = _mm256_mul_ps(_mm256_loadu_ps(s->scale + r), _mm256_set1_ps(s->t));
    __m256 est = _mm256_mul_ps(_mm256_cvtepi32_ps(dots), st);
    __m256 a = _mm256_mul_ps(_mm256_loadu_ps(s->norm + r), _mm256_set1_ps(s->G));
    __m256 b = _mm256_mul_ps(_mm256_loadu_ps(s->err + r), _mm256_set1_ps(s->Q));
    __m256 B = _mm256_add_ps(_mm256_mul_ps(_mm256_add_ps(a, b), _mm256_set1_ps(BOUND_GROW)),
                             _mm256_set1_ps(BOUND_ABS));
    __m256 U = _mm256_add_ps(est, B);
    unsigned keep = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(U, _mm256_set1_ps(s->thr),
                                                               _CMP_NLT_UQ)) & live;
    if (!keep) return 0;
    float u[8], l[8];
    _mm256_storeu_ps(u, U);
    _mm256_storeu_ps(l, _mm256_sub_ps(est, B));
    return consume_lanes(s, r, keep, u, l);
}

/* Lane t of the result: the sum of the 8 lanes of v[t]. */
__attribute__((target("avx2,fma"))) static __m256i reduce8(const __m256i v[8]) {
    __m256i x[4], y[2];
    for (int i = 0; i < 4; i++)
        x[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        y[i] = _mm256_add_epi32(_mm256_unpacklo_epi64(x[2 * i], x[2 * i + 1]),
                                _mm256_unpackhi_epi64(x[2 * i], x[2 * i + 1]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(y[0], y[1], 0x20),
                            _mm256_permute2x128_si256(y[0], y[1], 0x31));
}

static inline unsigned live_bits(const unsigned char *mask, size_t r, int width) {
    if (!mask) return (1u << width) - 1u;
    unsigned live = 0;
    for (int t = 0; t < width; t++) live |= (unsigned)(mask[r + (size_t)t] != 0) << t;
    return live;
}

/* 8 rows at a time: codes widened to int16, multiplied and pairwise summed (vpmaddwd). */
__attribute__((target("avx2,fma"))) static int scan_avx2(int8_scan *s) {
    const size_t d = s->d, d16 = d & ~(size_t)15, n8 = s->n & ~(size_t)7;
    size_t r = 0;
    for (; r < n8; r += 8) {
        unsigned live = live_bits(s->mask, r, 8);
        if (!live) continue;
        const int8_t *base = s->codes + r * d;
        __m256i acc[8];
        for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_si256();
        for (size_t j = 0; j < d16; j += 16) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(s->q16 + j));
            for (int t = 0; t < 8; t++) {
                __m128i raw = _mm_loadu_si128((const __m128i *)(base + (size_t)t * d + j));
                acc[t] = _mm256_add_epi32(acc[t],
                                          _mm256_madd_epi16(_mm256_cvtepi8_epi16(raw), qv));
            }
        }
        __m256i dots = reduce8(acc);
        if (d16 < d) {
            int32_t tail[8];
            for (int t = 0; t < 8; t++)
                tail[t] = dot_codes(base + (size_t)t * d + d16, s->qp + d16, d - d16);
            dots = _mm256_add_epi32(dots, _mm256_loadu_si256((const __m256i *)tail));
        }
        s->scanned += (size_t)__builtin_popcount(live);
        if (finish8(s, r, dots, live)) return 1;
    }
    return scan_rows_scalar(s, r);
}

/* The bounds of 16 rows from their dot products, as bounds_of() computes them one by one. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static int finish16(int8_scan *s, size_t r,
                                                                          __m512i dots,
                                                                          __mmask16 live) {
    __m512 st = _mm512_mul_ps(_mm512_loadu_ps(s->scale + r), _mm512_set1_ps(s->t));
    __m512 est = _mm512_mul_ps(_mm512_cvtepi32_ps(dots), st);
    __m512 a = _mm512_mul_ps(_mm512_loadu_ps(s->norm + r), _mm512_set1_ps(s->G));
    __m512 b = _mm512_mul_ps(_mm512_loadu_ps(s->err + r), _mm512_set1_ps(s->Q));
    __m512 B = _mm512_add_ps(_mm512_mul_ps(_mm512_add_ps(a, b), _mm512_set1_ps(BOUND_GROW)),
                             _mm512_set1_ps(BOUND_ABS));
    __m512 U = _mm512_add_ps(est, B);
    unsigned keep = (unsigned)(_mm512_cmp_ps_mask(U, _mm512_set1_ps(s->thr), _CMP_NLT_UQ) & live);
    if (!keep) return 0;
    float u[16], l[16];
    _mm512_storeu_ps(u, U);
    _mm512_storeu_ps(l, _mm512_sub_ps(est, B));
    return consume_lanes(s, r, keep, u, l);
}

/* Lane t of the result: the sum of the 16 lanes of v[t]. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static __m512i reduce16(const __m512i v[16]) {
    __m512i x[8], y[4], z[2];
    for (int i = 0; i < 8; i++)
        x[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        y[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(x[2 * i], x[2 * i + 1]),
                                _mm512_unpackhi_epi64(x[2 * i], x[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        z[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(y[2 * i], y[2 * i + 1], 0x88),
                                _mm512_shuffle_i32x4(y[2 * i], y[2 * i + 1], 0xDD));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(z[0], z[1], 0x88),
                            _mm512_shuffle_i32x4(z[0], z[1], 0xDD));
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __mmask16
live16(const unsigned char *mask, size_t r) {
    if (!mask) return (__mmask16)0xFFFF;
    return _mm_cmpneq_epi8_mask(_mm_loadu_si128((const __m128i *)(mask + r)),
                                _mm_setzero_si128());
}

/* 16 rows at a time, each row read front to back (two accumulators), then their 16 sums reduced
 * together; 64 bytes per step. The VNNI variant multiplies unsigned by signed
 * bytes (vpdpbusd): it reads each code as c + 128 (an xor of the sign bit) and subtracts
 * 128 * sum(q) once. The BW variant widens to int16 and uses vpmaddwd. A row's last d % 64
 * bytes come from a masked load (zeros, against zeros of the padded query). */
#define PJ_INT8_SCAN16(NAME, TARGET, STEP, BIAS)                                                  \
    __attribute__((target(TARGET))) static int NAME(int8_scan *s) {                              \
        const size_t d = s->d, d64 = d & ~(size_t)63, n16 = s->n & ~(size_t)15;                 \
        const __mmask64 tmask = d64 < d ? (((__mmask64)1 << (d - d64)) - 1) : 0;                  \
        const __m512i bias = _mm512_set1_epi32(BIAS);                                            \
        size_t r = 0;                                                                             \
        for (; r < n16; r += 16) {                                                                \
            __mmask16 live = live16(s->mask, r);                                                  \
            if (!live) continue;                                                                  \
            const int8_t *base = s->codes + r * d;                                                \
            __m512i acc[16];                                                                      \
            for (int t = 0; t < 16; t++) {                                                        \
                const int8_t *row = base + (size_t)t * d;                                         \
                __m512i a0 = _mm512_setzero_si512(), a1 = a0;                                     \
                size_t j = 0;                                                                     \
                for (; j + 128 <= d64; j += 128) {                                                \
                    a0 = STEP(a0, _mm512_loadu_si512(row + j), j);                                \
                    a1 = STEP(a1, _mm512_loadu_si512(row + j + 64), j + 64);                      \
                }                                                                                 \
                if (j < d64) {                                                                    \
                    a0 = STEP(a0, _mm512_loadu_si512(row + j), j);                                \
                    j += 64;                                                                      \
                }                                                                                 \
                if (tmask) a1 = STEP(a1, _mm512_maskz_loadu_epi8(tmask, row + j), j);             \
                acc[t] = _mm512_add_epi32(a0, a1);                                                \
            }                                                                                     \
            __m512i dots = _mm512_sub_epi32(reduce16(acc), bias);                                 \
            s->scanned += (size_t)__builtin_popcount((unsigned)live);                             \
            if (finish16(s, r, dots, live)) return 1;                                             \
        }                                                                                         \
        return scan_rows_scalar(s, r);                                                            \
    }

#define STEP_VNNI(acc, raw, j)                                                                    \
    _mm512_dpbusd_epi32((acc), _mm512_xor_si512((raw), _mm512_set1_epi8((char)0x80)),             \
                        _mm512_loadu_si512(s->qp + (j)))
#define STEP_BW(acc, raw, j)                                                                      \
    _mm512_add_epi32(                                                                             \
        (acc),                                                                                    \
        _mm512_add_epi32(                                                                         \
            _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm512_castsi512_si256(raw)),                  \
                              _mm512_loadu_si512(s->q16 + (j))),                                  \
            _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64((raw), 1)),          \
                              _mm512_loadu_si512(s->q16 + (j) + 32))))

PJ_INT8_SCAN16(scan_vnni, "avx512f,avx512bw,avx512vl,avx512vnni", STEP_VNNI, s->bias)
PJ_INT8_SCAN16(scan_bw, "avx512f,avx512bw,avx512vl", STEP_BW, 0)

/* Many queries in one pass: blocks of 4 rows x 4 queries, 16 accumulators (lane 4 i + j: row i,
 * query j), so each 64 bytes of a row are loaded once for 4 queries. The bounds of a block are
 * one vector: row constants repeated 4 times, query constants (and thresholds) tiled. A query
 * whose bound is defeated stops taking rows (its lanes are switched off) and is answered by the
 * float32 scan afterwards. Rows past the last block of 4 go through the one-row path. */
#define PJ_INT8_SCAN_MANY(NAME, TARGET, ROWDECL, MAC, BIASED)                                       \
    __attribute__((target(TARGET))) static void NAME(int8_scan *qs, size_t nq) {                 \
        const size_t d = qs[0].d, d64 = d & ~(size_t)63, n = qs[0].n, n4 = n & ~(size_t)3;       \
        const unsigned char *mask = qs[0].mask;                                                   \
        const __mmask64 tmask = d64 < d ? (((__mmask64)1 << (d - d64)) - 1) : 0;                  \
        const __m512i rowsel = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);  \
        const __m512i sign80 = _mm512_set1_epi8((char)0x80);                                      \
        (void)sign80;                                                                             \
        for (size_t b = 0; b < nq; b += 4) {                                                      \
            const size_t real = nq - b < 4 ? nq - b : 4;                                          \
            int8_scan *blk[4];                                                                    \
            float tv[16], gv[16], qv[16], thv[16];                                                \
            int32_t bv[16];                                                                       \
            unsigned active = 0;                                                                  \
            for (int j = 0; j < 4; j++) blk[j] = &qs[b + ((size_t)j < real ? (size_t)j : 0)];     \
            for (int t = 0; t < 16; t++) {                                                        \
                const int8_scan *q = blk[t & 3];                                                  \
                tv[t] = q->t;                                                                     \
                gv[t] = q->G;                                                                     \
                qv[t] = q->Q;                                                                     \
                bv[t] = BIASED ? q->bias : 0; /* VNNI read the codes + 128 */                    \
                thv[t] = q->thr;                                                                  \
                if ((size_t)(t & 3) < real && !q->defeated) active |= 1u << t;                    \
            }                                                                                     \
            const __m512 T = _mm512_loadu_ps(tv), G = _mm512_loadu_ps(gv);                        \
            const __m512 Q = _mm512_loadu_ps(qv);                                                 \
            const __m512i bias = _mm512_loadu_si512(bv);                                          \
            __m512 thr = _mm512_loadu_ps(thv);                                                    \
            size_t scanned = 0;                                                                   \
            for (size_t r = 0; r < n4 && active; r += 4) {                                        \
                unsigned rows = live_bits(mask, r, 4);                                            \
                if (!rows) continue;                                                              \
                scanned += (size_t)__builtin_popcount(rows);                                      \
                unsigned lanes = 0;                                                               \
                for (int i = 0; i < 4; i++)                                                       \
                    if (rows >> i & 1) lanes |= 0xFu << (4 * i);                                  \
                const int8_t *base = qs[0].codes + r * d;                                         \
                __m512i acc[16];                                                                  \
                for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_si512();                     \
                size_t j = 0;                                                                     \
                for (; j < d64; j += 64)                                                          \
                    for (int i = 0; i < 4; i++) {                                                 \
                        __m512i raw = _mm512_loadu_si512(base + (size_t)i * d + j);               \
                        ROWDECL                                                                   \
                        for (int k = 0; k < 4; k++) acc[4 * i + k] = MAC(acc[4 * i + k], blk[k]); \
                    }                                                                             \
                if (tmask)                                                                        \
                    for (int i = 0; i < 4; i++) {                                                 \
                        __m512i raw = _mm512_maskz_loadu_epi8(tmask, base + (size_t)i * d + j);   \
                        ROWDECL                                                                   \
                        for (int k = 0; k < 4; k++) acc[4 * i + k] = MAC(acc[4 * i + k], blk[k]); \
                    }                                                                             \
                __m512i dots = _mm512_sub_epi32(reduce16(acc), bias);                             \
                __m512 sc = _mm512_permutexvar_ps(                                                \
                    rowsel, _mm512_castps128_ps512(_mm_loadu_ps(qs[0].scale + r)));               \
                __m512 nm = _mm512_permutexvar_ps(                                                \
                    rowsel, _mm512_castps128_ps512(_mm_loadu_ps(qs[0].norm + r)));                \
                __m512 er = _mm512_permutexvar_ps(                                                \
                    rowsel, _mm512_castps128_ps512(_mm_loadu_ps(qs[0].err + r)));                 \
                __m512 est = _mm512_mul_ps(_mm512_cvtepi32_ps(dots), _mm512_mul_ps(sc, T));       \
                __m512 B = _mm512_add_ps(                                                         \
                    _mm512_mul_ps(_mm512_add_ps(_mm512_mul_ps(nm, G), _mm512_mul_ps(er, Q)),      \
                                  _mm512_set1_ps(BOUND_GROW)),                                    \
                    _mm512_set1_ps(BOUND_ABS));                                                   \
                __m512 U = _mm512_add_ps(est, B);                                                 \
                unsigned keep =                                                                   \
                    (unsigned)_mm512_cmp_ps_mask(U, thr, _CMP_NLT_UQ) & lanes & active;           \
                if (!keep) continue;                                                              \
                float u[16], l[16];                                                               \
                _mm512_storeu_ps(u, U);                                                           \
                _mm512_storeu_ps(l, _mm512_sub_ps(est, B));                                       \
                for (; keep; keep &= keep - 1) {                                                  \
                    int t = __builtin_ctz(keep);                                                  \
                    if (!(active >> t & 1)) continue;                                             \
                    int8_scan *q = blk[t & 3];                                                    \
                    if (consume(q, r + (size_t)(t >> 2), u[t], l[t]))                             \
                        active &= ~(0x1111u << (t & 3));                                          \
                    for (int i = 0; i < 4; i++) thv[4 * i + (t & 3)] = q->thr;                    \
                }                                                                                 \
                thr = _mm512_loadu_ps(thv);                                                       \
            }                                                                                     \
            for (size_t j = 0; j < real; j++) {                                                   \
                if (!(active >> j & 1)) continue;                                                 \
                blk[j]->scanned += scanned;                                                       \
                scan_rows_scalar(blk[j], n4);                                                     \
            }                                                                                     \
        }                                                                                         \
    }

#define ROW_VNNI __m512i x = _mm512_xor_si512(raw, sign80);
#define MAC_VNNI(acc, q) _mm512_dpbusd_epi32((acc), x, _mm512_loadu_si512((q)->qp + j))
#define ROW_BW                                                                                    \
    __m512i lo = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(raw));                               \
    __m512i hi = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(raw, 1));
#define MAC_BW(acc, q)                                                                            \
    _mm512_add_epi32((acc),                                                                       \
                     _mm512_add_epi32(_mm512_madd_epi16(lo, _mm512_loadu_si512((q)->q16 + j)),    \
                                      _mm512_madd_epi16(hi, _mm512_loadu_si512((q)->q16 + j + 32))))

PJ_INT8_SCAN_MANY(scan_many_vnni, "avx512f,avx512bw,avx512vl,avx512vnni", ROW_VNNI, MAC_VNNI, 1)
PJ_INT8_SCAN_MANY(scan_many_bw, "avx512f,avx512bw,avx512vl", ROW_BW, MAC_BW, 0)
#endif

static int run_scan(int8_scan *s, int level) {
#if PJ_INT8_X86
    switch (level) {
    case PJ_INT8_AVX512VNNI:
        return scan_vnni(s);
    case PJ_INT8_AVX512BW:
        return scan_bw(s);
    case PJ_INT8_AVX2:
        return scan_avx2(s);
    default:
        break;
    }
#else
    (void)level;
#endif
    return scan_rows_scalar(s, 0);
}

/* Every query of qs over the same rows; the narrower levels scan once per query. */
static void run_scan_many(int8_scan *qs, size_t nq, int level) {
#if PJ_INT8_X86
    if (level == PJ_INT8_AVX512VNNI) {
        scan_many_vnni(qs, nq);
        return;
    }
    if (level == PJ_INT8_AVX512BW) {
        scan_many_bw(qs, nq);
        return;
    }
#endif
    for (size_t j = 0; j < nq; j++)
        if (!qs[j].defeated) run_scan(&qs[j], level);
}

/* ------------------------------------------------------------------------------------------- */
/* Several threads (pool.h)                                                                      */

/* From this many bytes of codes on (per query), a scan is split across threads: below it the
 * pool's wake-up costs more than it saves. */
#define PJ_INT8_PARALLEL_MIN ((size_t)1 << 22)
#define PJ_INT8_MIN_ROWS_PER_THREAD ((size_t)4096)
#define PJ_INT8_MAX_THREADS 64
/* Chunks per thread, taken in increasing order from a shared counter: a thread that gets more CPU
 * time (a shared machine) takes more of them. A multiple of 64 rows each. */
#define PJ_INT8_CHUNKS_PER_THREAD 16

static atomic_int int8_forced_threads = 0;

int pj_int8_set_threads(int threads) {
    return atomic_exchange(&int8_forced_threads, threads < 0 ? 0 : threads);
}

/* Whether the machine's CPUs are already busy (1-minute load average >= the CPUs this process
 * may use), read at most every 250 ms. Then a helper woken for a scan may wait milliseconds for a
 * time slice while the caller, done with every chunk, waits for it to return: measured on the
 * 2-vCPU machine under a load of 5, a 100k x 384 scan took 12.9 ms on two threads and 2.6 ms on
 * one. Relaxed atomics: a stale verdict only picks the other thread count. */
static atomic_llong busy_checked_ns = 0;
static atomic_int busy_verdict = 0;

static int cpus_busy(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) return 0;
    long long now = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    long long last = atomic_load_explicit(&busy_checked_ns, memory_order_relaxed);
    if (last != 0 && now - last < 250000000LL)
        return atomic_load_explicit(&busy_verdict, memory_order_relaxed);
    double load[1];
    int busy = getloadavg(load, 1) == 1 && load[0] >= (double)pj_cpu_count();
    atomic_store_explicit(&busy_verdict, busy, memory_order_relaxed);
    atomic_store_explicit(&busy_checked_ns, now, memory_order_relaxed);
    return busy;
}

/* Threads for `work` bytes of codes over n rows (a forced count applies to any size: tests). */
static size_t int8_threads(size_t n, size_t work) {
    int forced = atomic_load(&int8_forced_threads);
    int large = work >= PJ_INT8_PARALLEL_MIN && (forced > 0 || !cpus_busy());
    return pj_scan_threads(n, large, forced, PJ_INT8_MIN_ROWS_PER_THREAD, PJ_INT8_MAX_THREADS);
}

/* One query's rows in chunks across threads: each thread has its own heap, threshold and kept
 * rows (its threshold is proven by k rows it kept, so the proof of the file's header holds per
 * thread); the kept rows are merged afterwards and filtered with the highest threshold. */
typedef struct {
    const int8_scan *proto; /* the query's state: inputs and constants */
    int8_scan *parts;       /* one per thread */
    int level;
    size_t chunk_rows, nchunks;
    atomic_size_t next_chunk;
    atomic_int stop; /* a thread found the bound defeated: the others stop too */
} int8_job;

static void int8_task(void *ctx, size_t t) {
    int8_job *job = (int8_job *)ctx;
    const int8_scan *p = job->proto;
    int8_scan *s = &job->parts[t];
    for (;;) {
        if (atomic_load(&job->stop)) return;
        size_t c = atomic_fetch_add(&job->next_chunk, 1);
        if (c >= job->nchunks) return;
        size_t r0 = c * job->chunk_rows, rows = p->n - r0;
        if (rows > job->chunk_rows) rows = job->chunk_rows;
        s->off = r0;
        s->n = rows;
        s->codes = p->codes + r0 * p->d;
        s->scale = p->scale + r0;
        s->norm = p->norm + r0;
        s->err = p->err + r0;
        s->mask = p->mask ? p->mask + r0 : NULL;
        if (run_scan(s, job->level)) {
            atomic_store(&job->stop, 1);
            return;
        }
    }
}

static int ucand_by_row(const void *pa, const void *pb) {
    int64_t a = ((const ucand *)pa)->idx, b = ((const ucand *)pb)->idx;
    return (a > b) - (a < b);
}

/* Scans s on nt threads and leaves in s what a one-thread scan leaves: kept rows (ascending), a
 * threshold they are filtered with, scanned, defeated. Returns 0 when out of memory (s is then
 * untouched: the caller scans on one thread). */
static int scan_threads(int8_scan *s, int level, size_t nt) {
    int8_job job;
    job.proto = s;
    job.level = level;
    job.chunk_rows = (s->n / (nt * PJ_INT8_CHUNKS_PER_THREAD) + 63) & ~(size_t)63;
    if (job.chunk_rows == 0) job.chunk_rows = 64;
    job.nchunks = (s->n + job.chunk_rows - 1) / job.chunk_rows;
    atomic_init(&job.next_chunk, 0);
    atomic_init(&job.stop, 0);
    job.parts = (int8_scan *)calloc(nt, sizeof(int8_scan));
    int ok = job.parts != NULL;
    for (size_t t = 0; ok && t < nt; t++) {
        int8_scan *q = &job.parts[t];
        *q = *s;
        q->heap = (float *)malloc(s->hk * sizeof(float));
        q->cands = (ucand *)malloc(s->ccap * sizeof(ucand));
        ok = q->heap && q->cands;
    }
    size_t total = 0;
    if (ok) {
        pj_pool_run(int8_task, &job, nt);
        for (size_t t = 0; t < nt; t++) {
            compact(&job.parts[t]);
            total += job.parts[t].cn;
        }
        if (total > s->ccap) {
            ucand *grown = (ucand *)realloc(s->cands, total * sizeof(ucand));
            if (grown) {
                s->cands = grown;
                s->ccap = total;
            } else {
                ok = 0;
            }
        }
    }
    if (ok) {
        s->cn = 0;
        for (size_t t = 0; t < nt; t++) {
            const int8_scan *q = &job.parts[t];
            memcpy(s->cands + s->cn, q->cands, q->cn * sizeof(ucand));
            s->cn += q->cn;
            s->scanned += q->scanned;
            if (q->defeated) s->defeated = 1;
            if (q->thr > s->thr) s->thr = q->thr;
        }
        qsort(s->cands, s->cn, sizeof(ucand), ucand_by_row);
    }
    if (job.parts)
        for (size_t t = 0; t < nt; t++) {
            free(job.parts[t].heap);
            free(job.parts[t].cands);
        }
    free(job.parts);
    return ok;
}

/* The scan of one query: on several threads when the codes are large enough. */
static void scan_query(int8_scan *s, int level) {
    size_t nt = int8_threads(s->n, s->n * s->d);
    if (nt > 1 && scan_threads(s, level, nt)) return;
    run_scan(s, level);
}

/* Many queries: blocks of 4 queries (the batch kernel's unit) split across threads, each block
 * scanning every row; no merge, each query's state belongs to one thread. */
typedef struct {
    int8_scan *qs;
    size_t nq, per;
    int level;
} many_job;

static void many_task(void *ctx, size_t t) {
    many_job *job = (many_job *)ctx;
    size_t from = t * job->per;
    if (from >= job->nq) return;
    size_t cnt = job->nq - from < job->per ? job->nq - from : job->per;
    run_scan_many(job->qs + from, cnt, job->level);
}

static void scan_queries(int8_scan *qs, size_t nq, int level) {
    size_t blocks = (nq + 3) / 4;
    size_t work = qs[0].n * qs[0].d; /* no overflow: checked by the caller */
    work = work > SIZE_MAX / nq ? SIZE_MAX : work * nq;
    size_t nt = int8_threads(qs[0].n, work);
    if (nt > blocks) nt = blocks;
    if (nt <= 1) {
        run_scan_many(qs, nq, level);
        return;
    }
    many_job job = {qs, nq, 4 * ((blocks + nt - 1) / nt), level};
    pj_pool_run(many_task, &job, nt);
}

/* ------------------------------------------------------------------------------------------- */

static int scored_cmp(const void *pa, const void *pb) {
    const scored *a = (const scored *)pa, *b = (const scored *)pb;
    if (a->key > b->key) return -1;
    if (a->key < b->key) return 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* The query's code and the constants of the bound; 0 when the query cannot be bounded (zero or
 * non-finite): the caller then runs the float32 scan. */
static int prepare_query(int8_scan *s, const float *query, size_t d, int8_t *qp, int16_t *q16) {
    float t;
    double cn, fn;
    if (!quantize_one(query, d, qp, &t, &cn, &fn) || !(t > 0.0f)) return 0;
    double qq = 0.0;
    int32_t sum = 0;
    for (size_t j = 0; j < d; j++) {
        qq += (double)query[j] * (double)query[j];
        q16[j] = qp[j];
        sum += qp[j];
    }
    double Q = sqrt(qq) * NORM_GROW, F = fn * NORM_GROW, P = (double)t * cn * NORM_GROW;
    s->t = t;
    s->G = float_up(F + 0x1p-18 * (P + Q));
    s->Q = float_up(Q);
    s->bias = 128 * sum;
    return s->G < INFINITY && s->Q < INFINITY;
}

/* Sets up the scan of one query over the tier; 0 when out of memory. */
static int scan_init(int8_scan *s, const int8_t *codes, const float *scale, const float *norm,
                     const float *err, size_t n, size_t d, const unsigned char *mask, size_t k) {
    memset(s, 0, sizeof *s);
    s->codes = codes;
    s->scale = scale;
    s->norm = norm;
    s->err = err;
    s->mask = mask;
    s->n = n;
    s->total = n;
    s->d = d;
    s->hk = k;
    s->thr = -INFINITY;
    /* More rows kept than this and rescoring would cost a good part of a float32 scan. */
    s->budget = n / 32 > 4 * k + 1024 ? n / 32 : 4 * k + 1024;
    s->ccap = 2 * s->budget;
    const size_t dpad = (d + 63) & ~(size_t)63;
    int8_t *qp = (int8_t *)calloc(dpad ? dpad : 1, 1);
    int16_t *q16 = (int16_t *)calloc(dpad ? dpad : 1, sizeof(int16_t));
    s->qp = qp;
    s->q16 = q16;
    s->heap = (float *)malloc(k * sizeof(float));
    s->cands = (ucand *)malloc(s->ccap * sizeof(ucand));
    return qp && q16 && s->heap && s->cands;
}

static void scan_free(int8_scan *s) {
    free(s->cands);
    free(s->heap);
    free((void *)s->q16);
    free((void *)s->qp);
}

/* After the scan: rescores the kept rows in double and writes the best k (or runs the float32
 * scan when the bound was defeated or the query could not be bounded). */
static int64_t scan_answer(int8_scan *s, int bounded, const float *matrix, const float *query,
                           size_t k, int64_t *out_ids, double *out_scores, size_t out_cap,
                           uint64_t *stats) {
    const size_t d = s->d;
    if (!bounded || s->defeated) {
        if (stats) {
            stats[PJ_INT8_STAT_FALLBACK] = 1;
            stats[PJ_INT8_STAT_SCANNED] = s->scanned;
        }
        return pj_vector_topk(matrix, s->n, d, query, s->mask, k, out_ids, out_scores, out_cap);
    }
    compact(s);
    scored *all = (scored *)malloc((s->cn ? s->cn : 1) * sizeof(scored));
    if (!all) return PJ_VECTOR_ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < s->cn; i++) {
        int64_t idx = s->cands[i].idx;
        double e = pj_vector_dot_double(matrix + (size_t)idx * d, query, d);
        if (!isnan(e)) {
            all[m].key = e;
            all[m].idx = idx;
            m++;
        }
    }
    qsort(all, m, sizeof(scored), scored_cmp);
    if (m > k) m = k;
    for (size_t i = 0; i < m; i++) {
        out_ids[i] = all[i].idx;
        out_scores[i] = all[i].key;
    }
    free(all);
    if (stats) {
        stats[PJ_INT8_STAT_RESCORED] = s->cn;
        stats[PJ_INT8_STAT_SCANNED] = s->scanned;
    }
    return (int64_t)m;
}

static int check_tier(const float *matrix, const int8_t *codes, const float *scale,
                      const float *norm, const float *err, size_t n, size_t d) {
    if (d > PJ_INT8_MAX_D || (d != 0 && n > SIZE_MAX / d)) return 0;
    return d == 0 || (matrix && codes && scale && norm && err);
}

int64_t pj_int8_topk(const float *matrix, const int8_t *codes, const float *scale,
                     const float *norm, const float *err, size_t n, size_t d, const float *query,
                     const unsigned char *mask, size_t k, int64_t *out_ids, double *out_scores,
                     size_t out_cap, uint64_t *stats) {
    if (stats) memset(stats, 0, PJ_INT8_STATS * sizeof(uint64_t));
    if (k > n) k = n;
    if (d > PJ_INT8_MAX_D || (d != 0 && n > SIZE_MAX / d)) return PJ_VECTOR_ERR_ARGS;
    if (out_cap < k) return PJ_VECTOR_ERR_OUTCAP;
    if (k == 0) return 0;
    if (!out_ids || !out_scores || (d != 0 && !query) ||
        !check_tier(matrix, codes, scale, norm, err, n, d))
        return PJ_VECTOR_ERR_ARGS;
    int8_scan s;
    int64_t result = PJ_VECTOR_ERR_NOMEM;
    if (scan_init(&s, codes, scale, norm, err, n, d, mask, k)) {
        int bounded = d != 0 && prepare_query(&s, query, d, (int8_t *)s.qp, (int16_t *)s.q16);
        if (bounded) scan_query(&s, pj_int8_level());
        result = scan_answer(&s, bounded, matrix, query, k, out_ids, out_scores, out_cap, stats);
    }
    scan_free(&s);
    return result;
}

int64_t pj_int8_candidates(const int8_t *codes, const float *scale, const float *norm,
                           const float *err, size_t n, size_t d, const float *query,
                           const unsigned char *mask, size_t k, int64_t *out_rows, size_t out_cap,
                           uint64_t *stats) {
    if (stats) memset(stats, 0, PJ_INT8_STATS * sizeof(uint64_t));
    if (k > n) k = n;
    if (d > PJ_INT8_MAX_D || (d != 0 && n > SIZE_MAX / d)) return PJ_VECTOR_ERR_ARGS;
    if (k == 0) return 0;
    if ((out_cap && !out_rows) || (d != 0 && (!query || !codes || !scale || !norm || !err)))
        return PJ_VECTOR_ERR_ARGS;
    int8_scan s;
    int64_t result = PJ_VECTOR_ERR_NOMEM;
    if (scan_init(&s, codes, scale, norm, err, n, d, mask, k)) {
        int bounded = d != 0 && prepare_query(&s, query, d, (int8_t *)s.qp, (int16_t *)s.q16);
        if (bounded) scan_query(&s, pj_int8_level());
        if (stats) stats[PJ_INT8_STAT_SCANNED] = s.scanned;
        if (!bounded || s.defeated) {
            if (stats) stats[PJ_INT8_STAT_FALLBACK] = 1;
            result = PJ_INT8_DEFEATED;
        } else {
            compact(&s);
            /* kept in scan order, which is ascending row order */
            for (size_t i = 0; i < s.cn && i < out_cap; i++) out_rows[i] = s.cands[i].idx;
            if (stats) stats[PJ_INT8_STAT_RESCORED] = s.cn;
            result = (int64_t)s.cn;
        }
    }
    scan_free(&s);
    return result;
}

int pj_int8_topk_many(const float *matrix, const int8_t *codes, const float *scale,
                      const float *norm, const float *err, size_t n, size_t d,
                      const float *queries, size_t nq, const unsigned char *mask, size_t k,
                      int64_t *out_ids, double *out_scores, int64_t *out_counts,
                      uint64_t *stats) {
    if (stats) memset(stats, 0, nq * PJ_INT8_STATS * sizeof(uint64_t));
    if (k > n) k = n;
    if (nq == 0) return 0;
    if (!out_counts || (k && (!out_ids || !out_scores)) || (d != 0 && !queries) ||
        nq > SIZE_MAX / (d ? d : 1) || (k && nq > SIZE_MAX / k / sizeof(double)) ||
        !check_tier(matrix, codes, scale, norm, err, n, d))
        return (int)PJ_VECTOR_ERR_ARGS;
    if (k == 0) {
        memset(out_counts, 0, nq * sizeof(int64_t));
        return 0;
    }
    int8_scan *qs = (int8_scan *)calloc(nq, sizeof(int8_scan));
    char *bounded = (char *)calloc(nq, 1);
    int rc = (int)PJ_VECTOR_ERR_NOMEM;
    size_t ready = 0;
    if (!qs || !bounded) goto done;
    for (; ready < nq; ready++) {
        int8_scan *s = &qs[ready];
        if (!scan_init(s, codes, scale, norm, err, n, d, mask, k)) {
            ready++;
            goto done;
        }
        bounded[ready] = (char)(d != 0 && prepare_query(s, queries + ready * d, d,
                                                        (int8_t *)s->qp, (int16_t *)s->q16));
        if (!bounded[ready]) s->defeated = 1; /* not scanned: answered by the float32 scan */
    }
    scan_queries(qs, nq, pj_int8_level());
    for (size_t j = 0; j < nq; j++) {
        int64_t got = scan_answer(&qs[j], bounded[j], matrix, queries + j * d, k,
                                  out_ids + j * k, out_scores + j * k, k,
                                  stats ? stats + j * PJ_INT8_STATS : NULL);
        if (got < 0) {
            rc = (int)got;
            goto done;
        }
        out_counts[j] = got;
    }
    rc = 0;
done:
    if (qs)
        for (size_t j = 0; j < ready; j++) scan_free(&qs[j]);
    free(qs);
    free(bounded);
    return rc;
}
