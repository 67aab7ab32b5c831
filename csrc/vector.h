/* Exact top-k by dot product over a float32 row matrix (the vector index of the memory store).
 *
 * The scan runs in float32 with the widest SIMD level available (scalar, AVX2+FMA, AVX-512,
 * chosen at run time), keeps the best k + PJ_VECTOR_MARGIN rows per thread, then rescores those
 * candidates in double precision and sorts them (score desc, index asc). A float32 error bound
 * proves that no row outside the candidates can reach the top k; when the proof fails (near-ties
 * at the boundary, non-finite values) a second pass evaluates in double every row that could.
 * The result is therefore the same as ranking every row by its double-precision score. */
#ifndef PJ_VECTOR_H
#define PJ_VECTOR_H

#include <stddef.h>
#include <stdint.h>

/* Extra float32 candidates kept beyond k before the double-precision rescoring. */
#define PJ_VECTOR_MARGIN 32

#define PJ_VECTOR_ERR_ARGS (-1)   /* a NULL pointer with a non-empty length, or n * d overflows */
#define PJ_VECTOR_ERR_NOMEM (-2)  /* allocation failed */
#define PJ_VECTOR_ERR_OUTCAP (-3) /* out_cap < min(k, n) */

/* Top k rows of `matrix` (n rows of d floats, row-major) by dot product with `query` (d floats).
 * `mask` (n bytes, may be NULL): rows whose byte is 0 are skipped. Rows whose score is NaN never
 * enter the result. Writes up to min(k, n) results to out_ids / out_scores (capacity out_cap),
 * best first, and returns how many; a negative PJ_VECTOR_ERR_* on error. */
int64_t pj_vector_topk(const float *matrix, size_t n, size_t d, const float *query,
                       const unsigned char *mask, size_t k, int64_t *out_ids, double *out_scores,
                       size_t out_cap);

/* Thread count for the scan: 0 (default) picks one per core when n * d >= 2^20, else 1; a
 * positive value forces that many (tests of the merge, benchmarks). Returns the previous value. */
int pj_vector_set_threads(int threads);

/* The dot product of two float vectors in double (exact products, double sum), as the top-k
 * rescores its candidates: the int8 tier (vector_int8.h) rescores with this same function, so
 * both tiers rank near-ties identically. */
double pj_vector_dot_double(const float *row, const float *query, size_t d);

/* The threads a scan of n rows is split across: `forced` when > 0 (tests), else pj_cpu_count()
 * when the scan is `large` enough to pay for a wake-up; never fewer than `min_rows` rows a
 * thread (unless forced), more than `max_threads` or more than n; at least 1. */
size_t pj_scan_threads(size_t n, int large, int forced, size_t min_rows, size_t max_threads);

/* How many calls so far needed the second, exact pass (tests check both paths run). */
unsigned long long pj_vector_exact_passes(void);

#endif
