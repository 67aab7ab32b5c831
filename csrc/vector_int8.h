/* The int8 scan tier of the exact top-k (docs/recall.md has the error bound and the proof).
 *
 * Next to the float32 rows, each row r keeps an int8 code c (symmetric: c_j = round(m_j / s_r),
 * s_r = max_j |m_j| / 127), its scale s_r, an upper bound norm_r >= s_r * ||c||_2 and an upper
 * bound err_r >= ||m - s_r c||_2 of its quantization error. A query is quantized the same way; the
 * scan computes the exact integer dot product of the codes (AVX-512 VNNI, AVX-512BW, AVX2 or
 * scalar: 1 byte per dimension of memory traffic instead of 4) and from it a lower and an upper
 * bound of every row's exact score. It keeps every row whose upper bound reaches the running k-th
 * best lower bound and rescores only those from the float32 rows, in double. The ids are those of
 * the float32 exact scan (pj_vector_topk); when the bound is too loose to prune (many identical
 * rows, a query of zeros, non-finite values), the call runs pj_vector_topk itself. */
#ifndef PJ_VECTOR_INT8_H
#define PJ_VECTOR_INT8_H

#include <stddef.h>
#include <stdint.h>

#define PJ_INT8_SCALAR 0
#define PJ_INT8_AVX2 1
#define PJ_INT8_AVX512BW 2
#define PJ_INT8_AVX512VNNI 3

/* Rows longer than this are never quantized: the integer dot product must fit in int32. */
#define PJ_INT8_MAX_D 65536

/* Indices of the stats array filled by pj_int8_topk. */
#define PJ_INT8_STAT_RESCORED 0 /* rows rescored in double */
#define PJ_INT8_STAT_FALLBACK 1 /* 1 when the call ran the float32 scan instead */
#define PJ_INT8_STAT_SCANNED 2  /* rows whose codes were scanned */
#define PJ_INT8_STATS 3

/* Quantizes n rows of d floats (row-major) into codes (n * d bytes), scale, norm and err (n
 * floats each). A row with a non-finite value gets code 0, scale 0, norm 0 and err +inf: it is
 * always rescored. Returns 0, or PJ_VECTOR_ERR_ARGS for a NULL pointer, n * d overflowing or
 * d > PJ_INT8_MAX_D. */
int pj_int8_quantize(const float *matrix, size_t n, size_t d, int8_t *codes, float *scale,
                     float *norm, float *err);

/* Top k rows by dot product with `query`, exactly as pj_vector_topk (same arguments and
 * results), reading the codes of pj_int8_quantize and the float32 rows only to rescore. `stats`
 * (PJ_INT8_STATS entries, may be NULL) receives what the call did. */
int64_t pj_int8_topk(const float *matrix, const int8_t *codes, const float *scale,
                     const float *norm, const float *err, size_t n, size_t d, const float *query,
                     const unsigned char *mask, size_t k, int64_t *out_ids, double *out_scores,
                     size_t out_cap, uint64_t *stats);

/* The scan of pj_int8_topk alone, for a caller that rescores the rows itself (the float32 rows
 * sit in a file it reads only where needed): writes the rows the bound cannot exclude, ascending,
 * to out_rows (up to out_cap) and returns how many there are (more than out_cap: call again with
 * room for all); PJ_INT8_DEFEATED when the bound cannot prune (the caller runs the float32 scan);
 * or a negative PJ_VECTOR_ERR_*. The exact top k is the top k of those rows by their double
 * score (ties: lower row). */
#define PJ_INT8_DEFEATED (-4)
int64_t pj_int8_candidates(const int8_t *codes, const float *scale, const float *norm,
                           const float *err, size_t n, size_t d, const float *query,
                           const unsigned char *mask, size_t k, int64_t *out_rows, size_t out_cap,
                           uint64_t *stats);

/* pj_int8_topk for nq queries (nq * d floats, row-major) in one pass over the codes (the AVX-512
 * levels scan 4 rows x 4 queries per block; the narrower ones once per query). Query j's results
 * go to out_ids / out_scores + j * min(k, n), their count to out_counts[j], its stats to
 * stats + j * PJ_INT8_STATS. Returns 0 or a negative PJ_VECTOR_ERR_*. */
int pj_int8_topk_many(const float *matrix, const int8_t *codes, const float *scale,
                      const float *norm, const float *err, size_t n, size_t d,
                      const float *queries, size_t nq, const unsigned char *mask, size_t k,
                      int64_t *out_ids, double *out_scores, int64_t *out_counts,
                      uint64_t *stats);

/* The widest int8 level the CPU has, the level in use (also capped by pj_cpu_set_limit), and a cap
 * for tests (negative removes it; returns the level now in use). */
int pj_int8_level_detected(void);
int pj_int8_level(void);
int pj_int8_set_limit(int level);

/* Forces the number of threads an int8 scan is split across (0 restores the automatic choice:
 * one thread below 4 MB of codes per call, pj_cpu_count() from there on); returns the previous
 * setting. The rows of one query are split in chunks, the queries of a batch in blocks of 4. */
int pj_int8_set_threads(int threads);

#endif
