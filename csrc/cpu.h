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

#define PJ_SHA_PORTABLE 0
#define PJ_SHA_SHANI 1

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
/* Threads a parallel kernel may use (at least 1), decided once per process:
 * PALYRA_JOURNAL_THREADS when it holds a positive integer, else the CPUs of this process's
 * affinity mask (sched_getaffinity), capped by the cgroup CPU quota rounded up. */
int pj_cpu_count(void);

/* The parts of pj_cpu_count, exposed for tests. */
/* CPUs a cgroup quota allows, rounded up; 0 when unlimited (quota or period <= 0). */
int pj_cpu_quota_cpus(long long quota, long long period);
/* CPUs allowed by cgroup v2 "cpu.max" text ("max 100000", "150000 100000"); 0 when unlimited. */
int pj_cpu_parse_cpu_max(const char *text);
/* CPUs allowed by the cgroup CPU quota found under `root` (NULL: /sys/fs/cgroup): v2 cpu.max,
 * else v1 cpu/cpu.cfs_quota_us and cpu.cfs_period_us; 0 when there is none. */
int pj_cpu_cgroup_cpus(const char *root);
/* PALYRA_JOURNAL_THREADS text as a thread count: a positive decimal, else 0 (ignored). */
int pj_cpu_parse_threads(const char *text);

#endif
