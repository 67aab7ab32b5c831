/* Exact top-k by dot product (see vector.h).
 *
 * Why the result is exact although the scan runs in float32
 * ---------------------------------------------------------
 * Let s(r) be the exact dot product of row r with the query and f(r) the float32 value the scan
 * computes (any summation order, with or without FMA). The classic bound for a dot product of d
 * terms is |f(r) - s(r)| <= g * a(r) + d * 2^-149, with g = d*u / (1 - d*u), u = 2^-24 and
 * a(r) = sum_j |m_rj * q_j| (the last term covers underflow to subnormals). a(r) <= max_j |q_j| *
 * b(r) with b(r) = sum_j |m_rj|: the scan accumulates b(r) alongside f(r) with vector adds (which
 * run beside the FMAs; all terms are positive, so the computed value is at least b(r) * (1 - g))
 * and keeps the largest, giving A >= every a(r), hence one bound E = g * A + d * 2^-149 for all
 * rows.
 *
 * Pass 1 keeps, per thread, the C = k + PJ_VECTOR_MARGIN rows with the best f (ties: lower index).
 * A row that was evicted or rejected has f(r) <= T, where T is the largest final heap minimum of
 * the threads that excluded rows. The candidates are rescored in double (the products of two
 * floats are exact in double, their double sum errs by at most eps = ~d * 2^-53 * a(r)),
 * sorted, and S_k is the k-th best rescored value. If S_k - eps_k > T + E, every excluded row has
 * s(r) <= f(r) + E <= T + E < S_k - eps_k <= s(k-th candidate): strictly below k candidates, so it
 * can neither enter the top k nor tie with its last member. Otherwise (near-ties at the boundary,
 * duplicate rows, huge values), pass 2 rescans in float32 and rescores in double every row with
 * f(r) >= S_k - eps_k - E, which contains every row that can reach the top k.
 *
 * Rows whose float32 score is NaN or -inf (NaN inputs, or float32 overflow of a finite double
 * score) are always rescored in double; a NaN double score never enters the result.
 */
#define _POSIX_C_SOURCE 200809L
#include "vector.h"

#include <unistd.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#define PJ_VECTOR_X86 1
#include <immintrin.h>
#else
#define PJ_VECTOR_X86 0
#endif

/* Below this many matrix elements the scan stays on the calling thread (waking a helper costs more
 * than it saves). */
#define PJ_VECTOR_PARALLEL_MIN ((size_t)1 << 20)
/* From this row length on, the AVX kernels scan one row at a time instead of groups of 4 rows. */
#define PJ_VECTOR_ROWS_MIN_D 96
/* Fewest rows worth giving a thread of their own. */
#define PJ_VECTOR_MIN_ROWS_PER_THREAD ((size_t)1024)
#define PJ_VECTOR_MAX_THREADS 64

static atomic_int forced_threads = 0;
static atomic_ullong exact_passes = 0;

int pj_vector_set_threads(int threads) {
    return atomic_exchange(&forced_threads, threads < 0 ? 0 : threads);
}

unsigned long long pj_vector_exact_passes(void) { return atomic_load(&exact_passes); }

/* ------------------------------------------------------------------------------------------- */
/* Candidates and heaps                                                                          */

typedef struct {
    float key;
    int64_t idx;
} fcand; /* pass 1: float32 score */

typedef struct {
    double key;
    int64_t idx;
} dcand; /* rescored in double */

/* a ranks below b: lower score, or equal score and higher index. */
static inline int fworse(const fcand *a, const fcand *b) {
    return a->key < b->key || (a->key == b->key && a->idx > b->idx);
}

static inline int dworse(const dcand *a, const dcand *b) {
    return a->key < b->key || (a->key == b->key && a->idx > b->idx);
}

/* Min-heaps with the worst candidate at the root: one definition for the float32 candidates of
 * the scan and the double candidates of the exact pass. */
#define PJ_DEFINE_HEAP(prefix, cand, worse)                                                      \
    static void prefix##_sift_down(cand *h, size_t n, size_t i) {                               \
        cand x = h[i];                                                                           \
        for (;;) {                                                                               \
            size_t c = 2 * i + 1;                                                                \
            if (c >= n) break;                                                                   \
            if (c + 1 < n && worse(&h[c + 1], &h[c])) c++;                                       \
            if (!worse(&h[c], &x)) break;                                                        \
            h[i] = h[c];                                                                         \
            i = c;                                                                               \
        }                                                                                        \
        h[i] = x;                                                                                \
    }                                                                                            \
    static void prefix##_sift_up(cand *h, size_t i) {                                           \
        cand x = h[i];                                                                           \
        while (i > 0) {                                                                          \
            size_t p = (i - 1) / 2;                                                              \
            if (!worse(&x, &h[p])) break;                                                        \
            h[i] = h[p];                                                                         \
            i = p;                                                                               \
        }                                                                                        \
        h[i] = x;                                                                                \
    }

PJ_DEFINE_HEAP(fheap, fcand, fworse)
PJ_DEFINE_HEAP(dheap, dcand, dworse)

/* qsort order: best first (score desc, index asc). NaN never reaches the sort. */
static int dcand_cmp(const void *pa, const void *pb) {
    const dcand *a = (const dcand *)pa, *b = (const dcand *)pb;
    if (a->key > b->key) return -1;
    if (a->key < b->key) return 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* ------------------------------------------------------------------------------------------- */
/* Double-precision dot product                                                                  */

/* The dot product of two float vectors in double, for the candidates: every product of two floats
 * is exact in double, and the d products are summed in double, so the result is within
 * DOT_DOUBLE_GAMMA(d) * sum |p| of the exact value (*abs_out receives sum |p| when not NULL). The
 * summation order depends only on d and the SIMD level, so identical rows get identical scores in
 * a call. */
#define DOT_DOUBLE_GAMMA(d) (1.01 * (double)(d) * 0x1p-53 / (1.0 - (double)(d) * 0x1p-53))

static double dot_double_scalar(const float *row, const float *q, size_t d, double *abs_out) {
    double s[4] = {0, 0, 0, 0}, a[4] = {0, 0, 0, 0};
    size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        for (int l = 0; l < 4; l++) {
            double p = (double)row[j + (size_t)l] * (double)q[j + (size_t)l];
            s[l] += p;
            a[l] += fabs(p);
        }
    }
    for (; j < d; j++) {
        double p = (double)row[j] * (double)q[j];
        s[0] += p;
        a[0] += fabs(p);
    }
    if (abs_out) *abs_out = (a[0] + a[1]) + (a[2] + a[3]);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

#if PJ_VECTOR_X86
__attribute__((target("avx2,fma"))) static double dot_double_avx2(const float *row, const float *q,
                                                                  size_t d, double *abs_out) {
    const __m256d sign = _mm256_set1_pd(-0.0);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, a0 = s0, a1 = s0;
    size_t j = 0;
    for (; j + 8 <= d; j += 8) {
        __m256 m = _mm256_loadu_ps(row + j), v = _mm256_loadu_ps(q + j);
        __m256d p0 = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(m)),
                                   _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        __m256d p1 = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(m, 1)),
                                   _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        s0 = _mm256_add_pd(s0, p0);
        s1 = _mm256_add_pd(s1, p1);
        a0 = _mm256_add_pd(a0, _mm256_andnot_pd(sign, p0));
        a1 = _mm256_add_pd(a1, _mm256_andnot_pd(sign, p1));
    }
    double s[4], a[4];
    _mm256_storeu_pd(s, _mm256_add_pd(s0, s1));
    _mm256_storeu_pd(a, _mm256_add_pd(a0, a1));
    for (; j < d; j++) {
        double p = (double)row[j] * (double)q[j];
        s[0] += p;
        a[0] += fabs(p);
    }
    if (abs_out) *abs_out = (a[0] + a[1]) + (a[2] + a[3]);
    return (s[0] + s[1]) + (s[2] + s[3]);
}
#endif

static double dot_double(int level, const float *row, const float *q, size_t d, double *abs_out) {
#if PJ_VECTOR_X86
    if (level == PJ_SIMD_AVX2 || level == PJ_SIMD_AVX512) return dot_double_avx2(row, q, d, abs_out);
#else
    (void)level;
#endif
    return dot_double_scalar(row, q, d, abs_out);
}

double pj_vector_dot_double(const float *row, const float *query, size_t d) {
    return dot_double(pj_cpu_simd_level(), row, query, d, NULL);
}

/* ------------------------------------------------------------------------------------------- */
/* Per-thread work                                                                               */

/* The rows of one pass, handed out in chunks to whichever thread asks next. */
typedef struct {
    atomic_size_t next_chunk;
    size_t nchunks, chunk_rows, n;
} scan_job;

typedef struct {
    scan_job *job;
    /* inputs */
    const float *matrix;
    const float *query;
    const unsigned char *mask;
    size_t d;
    size_t r0, r1; /* the chunk being scanned: rows [r0, r1) */
    int level;
    int pass; /* 1: float32 heap of cap entries; 2: exact heap of cap entries above lo */
    size_t cap;
    double lo;
    /* pass 1 */
    fcand *fheap;
    float thr; /* -inf until the heap is full, then the root's key */
    int excluded; /* some row with a finite or +inf score was evicted or rejected */
    /* pass 2, and pass 1 rows with a NaN / -inf float32 score */
    dcand *dheap;
    dcand *side;
    size_t side_n, side_cap;
    size_t size; /* entries in fheap (pass 1) or dheap (pass 2) */
    double absmax; /* pass 1: bound of sum_j |m_rj| over the rows with a non-NaN sum */
    int nomem;
} worker;

static void side_push(worker *w, int64_t idx, double score) {
    if (w->side_n == w->side_cap) {
        size_t cap = w->side_cap ? w->side_cap * 2 : 16;
        dcand *p = (dcand *)realloc(w->side, cap * sizeof(dcand));
        if (!p) {
            w->nomem = 1;
            return;
        }
        w->side = p;
        w->side_cap = cap;
    }
    w->side[w->side_n].key = score;
    w->side[w->side_n].idx = idx;
    w->side_n++;
}

static void dheap_offer(worker *w, int64_t idx, double score) {
    dcand c = {score, idx};
    if (w->size < w->cap) {
        w->dheap[w->size] = c;
        dheap_sift_up(w->dheap, w->size);
        w->size++;
    } else if (w->cap > 0 && dworse(&w->dheap[0], &c)) {
        w->dheap[0] = c;
        dheap_sift_down(w->dheap, w->size, 0);
    }
}

/* One scored row, in increasing row order within the thread. */
static void consume(worker *w, int64_t idx, float s, const float *row) {
    if (w->pass == 1) {
        if (s > w->thr) { /* rows arrive in index order: an equal score ranks below */
            fcand c = {s, idx};
            if (w->size < w->cap) {
                w->fheap[w->size] = c;
                fheap_sift_up(w->fheap, w->size);
                w->size++;
                if (w->size == w->cap) w->thr = w->fheap[0].key;
            } else {
                w->fheap[0] = c;
                fheap_sift_down(w->fheap, w->size, 0);
                w->thr = w->fheap[0].key;
                w->excluded = 1;
            }
        } else if (s > -INFINITY) {
            w->excluded = 1; /* s <= thr, the heap is full */
        } else { /* NaN or -inf: decide in double */
            double e = dot_double(w->level, row, w->query, w->d, NULL);
            if (!isnan(e)) side_push(w, idx, e);
        }
    } else {
        if (!((double)s < w->lo) || !(s > -INFINITY)) {
            double e = dot_double(w->level, row, w->query, w->d, NULL);
            if (!isnan(e)) dheap_offer(w, idx, e);
        }
    }
}

/* The fast-path gate: a group whose scores are all > -inf and < gate needs no per-row work (pass
 * 1: they are <= thr of a full heap, so only `excluded` changes; pass 2: they are below lo). A
 * conservative subset of what consume() decides; everything else goes through consume(). */
static float gate_of(const worker *w) {
    if (w->pass == 1) {
        if (w->size < w->cap) return -INFINITY;
        return nextafterf(w->thr, INFINITY);
    }
    float g = (float)w->lo;
    if ((double)g > w->lo) g = nextafterf(g, -INFINITY);
    return g;
}

static inline void fast_reject(worker *w) {
    if (w->pass == 1) w->excluded = 1;
}

static void consume_group(worker *w, int cnt, const float s[4], const int64_t ri[4],
                          const float *const rp[4]) {
    for (int t = 0; t < cnt; t++) consume(w, ri[t], s[t], rp[t]);
}

/* Gathers up to 4 unmasked rows from *r on; pads the group by repeating its first row. Returns
 * how many are real. */
static inline int next_group(const worker *w, size_t *r, const float *rp[4], int64_t ri[4]) {
    size_t i = *r;
    const size_t d = w->d;
    if (!w->mask && w->r1 - i >= 4) {
        for (int t = 0; t < 4; t++) {
            rp[t] = w->matrix + (i + (size_t)t) * d;
            ri[t] = (int64_t)(i + (size_t)t);
        }
        *r = i + 4;
        return 4;
    }
    int cnt = 0;
    const unsigned char *mask = w->mask;
    while (cnt < 4 && i < w->r1) {
        if (!mask || mask[i]) {
            rp[cnt] = w->matrix + i * d;
            ri[cnt] = (int64_t)i;
            cnt++;
        }
        i++;
    }
    *r = i;
    for (int t = cnt; t < 4 && cnt > 0; t++) {
        rp[t] = rp[0];
        ri[t] = ri[0];
    }
    return cnt;
}

/* Portable scan: four rows at a time, one float accumulator each. */
static void scan_scalar(worker *w) {
    const size_t d = w->d;
    const float *q = w->query;
    float amax = 0.0f, gate = gate_of(w);
    size_t r = w->r0;
    const float *rp[4];
    int64_t ri[4];
    int cnt;
    while ((cnt = next_group(w, &r, rp, ri)) > 0) {
        float s[4] = {0, 0, 0, 0}, a[4] = {0, 0, 0, 0};
        for (size_t j = 0; j < d; j++) {
            float qj = q[j];
            for (int t = 0; t < 4; t++) {
                float m = rp[t][j];
                s[t] += m * qj;
                a[t] += fabsf(m);
            }
        }
        int fast = 1;
        for (int t = 0; t < cnt; t++) {
            if (a[t] > amax) amax = a[t]; /* a NaN sum is skipped: its row scores NaN */
            fast &= (s[t] < gate) & (s[t] > -INFINITY);
        }
        if (fast) {
            fast_reject(w);
        } else {
            consume_group(w, cnt, s, ri, rp);
            gate = gate_of(w);
        }
    }
    w->absmax = (double)amax;
}

#if PJ_VECTOR_X86
__attribute__((target("avx2,fma"))) static inline __m128 hsum4_avx(__m256 a, __m256 b, __m256 c,
                                                                    __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b);
    __m256 cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* Sums of the d % width trailing elements of the 4 rows (scores and |m|). */
static inline void tails4(const float *const rp[4], const float *q, size_t from, size_t d,
                          float ts[4], float ta[4]) {
    for (int t = 0; t < 4; t++) ts[t] = ta[t] = 0.0f;
    for (size_t j = from; j < d; j++) {
        float qj = q[j];
        for (int t = 0; t < 4; t++) {
            float m = rp[t][j];
            ts[t] += m * qj;
            ta[t] += fabsf(m);
        }
    }
}

/* Scores of a group as a vector: the fast path when every lane is > -inf and < gate. */
__attribute__((target("avx2,fma"))) static inline int group_fast(__m128 s, float gate) {
    __m128 lo = _mm_cmp_ps(s, _mm_set1_ps(gate), _CMP_LT_OQ);
    __m128 fin = _mm_cmp_ps(s, _mm_set1_ps(-INFINITY), _CMP_GT_OQ);
    return _mm_movemask_ps(_mm_and_ps(lo, fin)) == 0xF;
}

__attribute__((target("avx2,fma"))) static void scan_avx2(worker *w) {
    const size_t d = w->d, dv = d & ~(size_t)7;
    const float *q = w->query;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 vmax = _mm256_setzero_ps();
    float tmax = 0.0f, gate = gate_of(w);
    size_t r = w->r0;
    const float *rp[4];
    int64_t ri[4];
    int cnt;
    while ((cnt = next_group(w, &r, rp, ri)) > 0) {
        const float *p0 = rp[0], *p1 = rp[1], *p2 = rp[2], *p3 = rp[3];
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        __m256 a0 = s0, a1 = s0, a2 = s0, a3 = s0;
        for (size_t j = 0; j < dv; j += 8) {
            __m256 qv = _mm256_loadu_ps(q + j);
            __m256 m0 = _mm256_loadu_ps(p0 + j), m1 = _mm256_loadu_ps(p1 + j);
            __m256 m2 = _mm256_loadu_ps(p2 + j), m3 = _mm256_loadu_ps(p3 + j);
            s0 = _mm256_fmadd_ps(m0, qv, s0);
            s1 = _mm256_fmadd_ps(m1, qv, s1);
            s2 = _mm256_fmadd_ps(m2, qv, s2);
            s3 = _mm256_fmadd_ps(m3, qv, s3);
            a0 = _mm256_add_ps(_mm256_andnot_ps(sign, m0), a0);
            a1 = _mm256_add_ps(_mm256_andnot_ps(sign, m1), a1);
            a2 = _mm256_add_ps(_mm256_andnot_ps(sign, m2), a2);
            a3 = _mm256_add_ps(_mm256_andnot_ps(sign, m3), a3);
        }
        __m128 sv = hsum4_avx(s0, s1, s2, s3);
        /* max(x, vmax) returns vmax where x is NaN: a NaN sum belongs to a NaN-scored row */
        vmax = _mm256_max_ps(a0, vmax);
        vmax = _mm256_max_ps(a1, vmax);
        vmax = _mm256_max_ps(a2, vmax);
        vmax = _mm256_max_ps(a3, vmax); /* padding lanes repeat row 0: harmless */
        if (dv < d) {
            float ts[4], ta[4];
            tails4(rp, q, dv, d, ts, ta);
            sv = _mm_add_ps(sv, _mm_loadu_ps(ts));
            for (int t = 0; t < 4; t++)
                if (ta[t] > tmax) tmax = ta[t];
        }
        if (group_fast(sv, gate)) {
            fast_reject(w);
        } else {
            float s[4];
            _mm_storeu_ps(s, sv);
            consume_group(w, cnt, s, ri, rp);
            gate = gate_of(w);
        }
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    double sum = tmax;
    for (int l = 0; l < 8; l++) sum += lanes[l];
    w->absmax = sum;
}

/* One row at a time, four accumulators along the row: a single sequential stream per thread, which
 * the hardware prefetchers follow best when long rows come from DRAM (measured ~1.4x the 4-row
 * groups at d = 384). Used for d >= PJ_VECTOR_ROWS_MIN_D, at the AVX-512 level too (its group
 * kernel keeps the short rows, where one row is too little work to hide the per-row overhead). */
__attribute__((target("avx2,fma"))) static void scan_avx2_rows(worker *w) {
    const size_t d = w->d, d32 = d & ~(size_t)31, dv = d & ~(size_t)7;
    const float *q = w->query;
    const unsigned char *mask = w->mask;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 vmax = _mm256_setzero_ps();
    float tmax = 0.0f, gate = gate_of(w);
    for (size_t r = w->r0; r < w->r1; r++) {
        if (mask && !mask[r]) continue;
        const float *p = w->matrix + r * d;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        __m256 a0 = s0, a1 = s0, a2 = s0, a3 = s0;
        size_t j = 0;
        for (; j < d32; j += 32) {
            __m256 m0 = _mm256_loadu_ps(p + j), m1 = _mm256_loadu_ps(p + j + 8);
            __m256 m2 = _mm256_loadu_ps(p + j + 16), m3 = _mm256_loadu_ps(p + j + 24);
            s0 = _mm256_fmadd_ps(m0, _mm256_loadu_ps(q + j), s0);
            s1 = _mm256_fmadd_ps(m1, _mm256_loadu_ps(q + j + 8), s1);
            s2 = _mm256_fmadd_ps(m2, _mm256_loadu_ps(q + j + 16), s2);
            s3 = _mm256_fmadd_ps(m3, _mm256_loadu_ps(q + j + 24), s3);
            a0 = _mm256_add_ps(_mm256_andnot_ps(sign, m0), a0);
            a1 = _mm256_add_ps(_mm256_andnot_ps(sign, m1), a1);
            a2 = _mm256_add_ps(_mm256_andnot_ps(sign, m2), a2);
            a3 = _mm256_add_ps(_mm256_andnot_ps(sign, m3), a3);
        }
        for (; j < dv; j += 8) {
            __m256 m0 = _mm256_loadu_ps(p + j);
            s0 = _mm256_fmadd_ps(m0, _mm256_loadu_ps(q + j), s0);
            a0 = _mm256_add_ps(_mm256_andnot_ps(sign, m0), a0);
        }
        __m256 sv = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
        __m256 av = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        vmax = _mm256_max_ps(av, vmax);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(sv), _mm256_extractf128_ps(sv, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        float s = _mm_cvtss_f32(h);
        if (dv < d) {
            float ta = 0.0f;
            for (size_t t = dv; t < d; t++) {
                s += p[t] * q[t];
                ta += fabsf(p[t]);
            }
            if (ta > tmax) tmax = ta;
        }
        if (s < gate && s > -INFINITY) {
            fast_reject(w);
        } else {
            consume(w, (int64_t)r, s, p);
            gate = gate_of(w);
        }
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    double sum = tmax;
    for (int l = 0; l < 8; l++) sum += lanes[l];
    w->absmax = sum;
}

__attribute__((target("avx512f"))) static void scan_avx512(worker *w) {
    const size_t d = w->d, dv = d & ~(size_t)15;
    const float *q = w->query;
    __m512 vmax = _mm512_setzero_ps();
    float tmax = 0.0f, gate = gate_of(w);
    size_t r = w->r0;
    const float *rp[4];
    int64_t ri[4];
    int cnt;
    while ((cnt = next_group(w, &r, rp, ri)) > 0) {
        const float *p0 = rp[0], *p1 = rp[1], *p2 = rp[2], *p3 = rp[3];
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        __m512 a0 = s0, a1 = s0, a2 = s0, a3 = s0;
        for (size_t j = 0; j < dv; j += 16) {
            __m512 qv = _mm512_loadu_ps(q + j);
            __m512 m0 = _mm512_loadu_ps(p0 + j), m1 = _mm512_loadu_ps(p1 + j);
            __m512 m2 = _mm512_loadu_ps(p2 + j), m3 = _mm512_loadu_ps(p3 + j);
            s0 = _mm512_fmadd_ps(m0, qv, s0);
            s1 = _mm512_fmadd_ps(m1, qv, s1);
            s2 = _mm512_fmadd_ps(m2, qv, s2);
            s3 = _mm512_fmadd_ps(m3, qv, s3);
            a0 = _mm512_add_ps(_mm512_abs_ps(m0), a0);
            a1 = _mm512_add_ps(_mm512_abs_ps(m1), a1);
            a2 = _mm512_add_ps(_mm512_abs_ps(m2), a2);
            a3 = _mm512_add_ps(_mm512_abs_ps(m3), a3);
        }
        float s[4] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1),
                      _mm512_reduce_add_ps(s2), _mm512_reduce_add_ps(s3)};
        vmax = _mm512_max_ps(a0, vmax);
        vmax = _mm512_max_ps(a1, vmax);
        vmax = _mm512_max_ps(a2, vmax);
        vmax = _mm512_max_ps(a3, vmax);
        if (dv < d) {
            float ts[4], ta[4];
            tails4(rp, q, dv, d, ts, ta);
            for (int t = 0; t < 4; t++) {
                s[t] += ts[t];
                if (ta[t] > tmax) tmax = ta[t];
            }
        }
        int fast = 1;
        for (int t = 0; t < 4; t++) fast &= (s[t] < gate) & (s[t] > -INFINITY);
        if (fast) {
            fast_reject(w);
        } else {
            consume_group(w, cnt, s, ri, rp);
            gate = gate_of(w);
        }
    }
    float lanes[16];
    _mm512_storeu_ps(lanes, vmax);
    double sum = tmax;
    for (int l = 0; l < 16; l++) sum += lanes[l];
    w->absmax = sum;
}
#endif

static void scan(worker *w) {
#if PJ_VECTOR_X86
    if (w->level == PJ_SIMD_AVX512 || w->level == PJ_SIMD_AVX2) {
        if (w->d >= PJ_VECTOR_ROWS_MIN_D)
            scan_avx2_rows(w);
        else if (w->level == PJ_SIMD_AVX512)
            scan_avx512(w);
        else
            scan_avx2(w);
        return;
    }
#endif
    scan_scalar(w);
}

/* Scans chunks of rows taken in increasing order from the call's shared counter until none is
 * left: threads that get more CPU time take more chunks, which matters on a shared machine. Each
 * worker still sees its rows in increasing index order, as consume() requires. */
static void scan_chunks(worker *w) {
    scan_job *job = w->job;
    double absmax = 0.0;
    for (;;) {
        size_t c = atomic_fetch_add(&job->next_chunk, 1);
        if (c >= job->nchunks) break;
        w->r0 = c * job->chunk_rows;
        w->r1 = w->r0 + job->chunk_rows < job->n ? w->r0 + job->chunk_rows : job->n;
        scan(w);
        if (!(w->absmax <= absmax)) absmax = w->absmax; /* NaN propagates */
    }
    w->absmax = absmax;
}

/* Runs scan_chunks() once for every worker ws[0 .. nt): ws[0] on this thread, the others on the
 * pool's helpers (pool.h). */
static void scan_task(void *ws, size_t t) { scan_chunks(&((worker *)ws)[t]); }

static void run_workers(worker *ws, size_t nt) { pj_pool_run(scan_task, ws, nt); }

/* ------------------------------------------------------------------------------------------- */

size_t pj_scan_threads(size_t n, int large, int forced, size_t min_rows, size_t max_threads) {
    size_t nt;
    if (forced > 0) {
        nt = (size_t)forced;
    } else {
        nt = large ? (size_t)pj_cpu_count() : 1;
        size_t by_rows = n / min_rows;
        if (nt > by_rows) nt = by_rows;
    }
    if (nt > max_threads) nt = max_threads;
    if (nt > n) nt = n;
    return nt ? nt : 1;
}

static size_t thread_count(size_t n, size_t d) {
    int large = d != 0 && n > PJ_VECTOR_PARALLEL_MIN / d; /* n * d > 2^20, no overflow */
    return pj_scan_threads(n, large, atomic_load(&forced_threads), PJ_VECTOR_MIN_ROWS_PER_THREAD,
                           PJ_VECTOR_MAX_THREADS);
}

static void free_workers(worker *ws, size_t nt) {
    for (size_t t = 0; t < nt; t++) {
        free(ws[t].fheap);
        free(ws[t].dheap);
        free(ws[t].side);
    }
}

int64_t pj_vector_topk(const float *matrix, size_t n, size_t d, const float *query,
                       const unsigned char *mask, size_t k, int64_t *out_ids, double *out_scores,
                       size_t out_cap) {
    if (k > n) k = n;
    if (d != 0 && n > SIZE_MAX / d) return PJ_VECTOR_ERR_ARGS;
    if ((uint64_t)n > (uint64_t)INT64_MAX) return PJ_VECTOR_ERR_ARGS;
    if (out_cap < k) return PJ_VECTOR_ERR_OUTCAP;
    if (k == 0) return 0;
    if (!out_ids || !out_scores || (d != 0 && (!matrix || !query))) return PJ_VECTOR_ERR_ARGS;
    if (d == 0) { /* every score is an exact 0: the first k rows in scope */
        size_t m = 0;
        for (size_t i = 0; i < n && m < k; i++) {
            if (mask && !mask[i]) continue;
            out_ids[m] = (int64_t)i;
            out_scores[m] = 0.0;
            m++;
        }
        return (int64_t)m;
    }

    const int level = pj_cpu_simd_level();
    const size_t nt = thread_count(n, d);
    size_t cap = k + PJ_VECTOR_MARGIN;
    if (cap > n || cap < k) cap = n;

    worker ws[PJ_VECTOR_MAX_THREADS];
    memset(ws, 0, nt * sizeof(worker));
    int64_t result = PJ_VECTOR_ERR_NOMEM;
    dcand *all = NULL;
    scan_job job;
    job.n = n;
    job.chunk_rows = n;
    if (nt > 1) { /* ~1 MB chunks, at least 8 per thread, at least 256 rows */
        size_t rows = ((size_t)1 << 18) / d, per = n / (nt * 8);
        job.chunk_rows = rows < per ? rows : per;
        if (job.chunk_rows < 256) job.chunk_rows = 256;
    }
    job.nchunks = n / job.chunk_rows + (n % job.chunk_rows != 0);
    atomic_init(&job.next_chunk, 0);
    for (size_t t = 0; t < nt; t++) {
        worker *w = &ws[t];
        w->job = &job;
        w->matrix = matrix;
        w->query = query;
        w->mask = mask;
        w->d = d;
        w->level = level;
        w->pass = 1;
        w->cap = cap;
        w->thr = -INFINITY;
        w->fheap = (fcand *)malloc(cap * sizeof(fcand));
        if (!w->fheap) goto done;
    }
    run_workers(ws, nt);

    /* Gather and rescore the pass 1 candidates. */
    size_t total = 0;
    int excluded = 0;
    double T = -INFINITY, A = 0.0;
    for (size_t t = 0; t < nt; t++) {
        if (ws[t].nomem) goto done;
        total += ws[t].size + ws[t].side_n;
        if (ws[t].excluded) {
            excluded = 1;
            if ((double)ws[t].thr > T) T = (double)ws[t].thr;
        }
        if (!(ws[t].absmax <= A)) A = ws[t].absmax; /* NaN propagates: then nothing is proven */
    }
    all = (dcand *)malloc((total ? total : 1) * sizeof(dcand));
    if (!all) goto done;
    size_t m = 0;
    for (size_t t = 0; t < nt; t++) {
        for (size_t i = 0; i < ws[t].size; i++) {
            int64_t idx = ws[t].fheap[i].idx;
            double e = dot_double(level, matrix + (size_t)idx * d, query, d, NULL);
            if (!isnan(e)) {
                all[m].key = e;
                all[m].idx = idx;
                m++;
            }
        }
        for (size_t i = 0; i < ws[t].side_n; i++) all[m++] = ws[t].side[i];
    }
    qsort(all, m, sizeof(dcand), dcand_cmp);

    if (excluded) {
        /* The float32 error bound E over every row (see the top of this file). */
        const double u = 0x1p-24, du = (double)d * u;
        double qmax = 0.0;
        for (size_t j = 0; j < d; j++) {
            double a = fabs((double)query[j]);
            if (!(a <= qmax)) qmax = a; /* NaN propagates: then nothing is proven */
        }
        double E = INFINITY;
        if (du < 0.5) {
            double g = du / (1.0 - du);
            E = (g * qmax * A / (1.0 - g) + (double)d * 0x1p-149) * 1.01;
        }
        int safe = 0;
        double lo = -INFINITY;
        if (m >= k) {
            double absk;
            double sk = dot_double(level, matrix + (size_t)all[k - 1].idx * d, query, d, &absk);
            double eps = absk * DOT_DOUBLE_GAMMA(d);
            safe = (sk - eps) > T + E; /* false when anything is NaN */
            lo = (sk - eps) - E;
            if (isnan(lo)) lo = -INFINITY;
            lo -= fabs(lo) * 0x1p-40; /* rounding of the two subtractions */
        }
        if (!safe) {
            /* Pass 2: evaluate exactly every row whose float32 score reaches lo. */
            atomic_fetch_add(&exact_passes, 1ULL);
            atomic_store(&job.next_chunk, 0);
            for (size_t t = 0; t < nt; t++) {
                worker *w = &ws[t];
                w->pass = 2;
                w->cap = k;
                w->lo = lo;
                w->size = 0;
                w->dheap = (dcand *)malloc(k * sizeof(dcand));
                if (!w->dheap) goto done;
            }
            run_workers(ws, nt);
            size_t need = 0;
            for (size_t t = 0; t < nt; t++) {
                if (ws[t].nomem) goto done;
                need += ws[t].size;
            }
            if (need > total) {
                dcand *grown = (dcand *)realloc(all, need * sizeof(dcand));
                if (!grown) goto done;
                all = grown;
            }
            m = 0;
            for (size_t t = 0; t < nt; t++)
                for (size_t i = 0; i < ws[t].size; i++) all[m++] = ws[t].dheap[i];
            qsort(all, m, sizeof(dcand), dcand_cmp);
        }
    }

    if (m > k) m = k;
    for (size_t i = 0; i < m; i++) {
        out_ids[i] = all[i].idx;
        out_scores[i] = all[i].key;
    }
    result = (int64_t)m;
done:
    free(all);
    free_workers(ws, nt);
    return result;
}
