/* Runtime CPU feature detection: which wide instructions this process may use.
 *
 * Kernels compile their wide variants per function (__attribute__((target(...)))) and ask here,
 * once, which one to run. pj_cpu_set_limit() lets tests force a lower level so that every variant
 * is exercised on a machine that has the widest one. */
#ifndef PJ_CPU_H
#define PJ_CPU_H

#define PJ_SIMD_SCALAR 0
#define PJ_SIMD_AVX2 1
#define PJ_SIMD_AVX512 2
#define PJ_SIMD_NEON 3

#define PJ_SHA_PORTABLE 0
#define PJ_SHA_SHANI 1
#define PJ_SHA_ARMV8 2

/* The widest vector level the CPU and OS support (PJ_SIMD_*). */
int pj_cpu_simd_detected(void);
/* The level kernels use: detected, capped by pj_cpu_set_limit. */
int pj_cpu_simd_level(void);
/* Whether the CPU has the SHA-256 instructions this build can use (PJ_SHA_*). */
int pj_cpu_sha_detected(void);
/* The SHA path in use: detected, capped by pj_cpu_set_sha_limit. */
int pj_cpu_sha_path(void);
/* Cap the SIMD level (tests); returns the level now in use. A negative value removes the cap. */
int pj_cpu_set_limit(int level);
/* Cap the SHA path (tests): 0 forces the portable code; negative removes the cap. */
int pj_cpu_set_sha_limit(int path);
/* Number of online processors (at least 1). */
int pj_cpu_count(void);

#endif
