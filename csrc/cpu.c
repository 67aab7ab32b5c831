/* Runtime CPU feature detection and the thread budget (see cpu.h). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "cpu.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long pj_xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int detect_simd(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return PJ_SIMD_SCALAR;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx || !fma) return PJ_SIMD_SCALAR;
    unsigned long long xcr0 = pj_xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return PJ_SIMD_SCALAR; /* XMM and YMM state */
    if (__get_cpuid_max(0, 0) < 7) return PJ_SIMD_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (!avx2) return PJ_SIMD_SCALAR;
    if (avx512f && (xcr0 & 0xe6) == 0xe6) return PJ_SIMD_AVX512; /* opmask, ZMM hi */
    return PJ_SIMD_AVX2;
}

static int detect_sha(void) {
    unsigned int a, b, c, d;
    if (__get_cpuid_max(0, 0) < 7) return PJ_SHA_PORTABLE;
    __cpuid_count(7, 0, a, b, c, d);
    int sha = (b >> 29) & 1;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return PJ_SHA_PORTABLE;
    int sse41 = (c >> 19) & 1, ssse3 = (c >> 9) & 1;
    return (sha && sse41 && ssse3) ? PJ_SHA_SHANI : PJ_SHA_PORTABLE;
}
#else
/* Wide kernels exist for x86 only: every other architecture (arm64 included) runs the portable
 * code, and says so. A NEON or ARMv8-SHA path would add its level here together with its kernels. */
static int detect_simd(void) { return PJ_SIMD_SCALAR; }
static int detect_sha(void) { return PJ_SHA_PORTABLE; }
#endif

/* ---- detected once, read by any thread ------------------------------------------------------ */

/* Written once under pthread_once, which orders those writes before every later read. The caps
 * are atomics: a test may set one while another thread's kernel reads it. */
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static int simd_detected, sha_detected;
static atomic_int simd_limit = -1, sha_limit = -1;

static void detect_all(void) {
    simd_detected = detect_simd();
    sha_detected = detect_sha();
}

int pj_cpu_simd_detected(void) {
    pthread_once(&detect_once, detect_all);
    return simd_detected;
}

int pj_cpu_sha_detected(void) {
    pthread_once(&detect_once, detect_all);
    return sha_detected;
}

int pj_cpu_simd_level(void) {
    int d = pj_cpu_simd_detected(), cap = atomic_load_explicit(&simd_limit, memory_order_relaxed);
    return cap >= 0 && cap < d ? cap : d;
}

int pj_cpu_sha_path(void) {
    int d = pj_cpu_sha_detected(), cap = atomic_load_explicit(&sha_limit, memory_order_relaxed);
    return cap >= 0 && cap < d ? cap : d;
}

int pj_cpu_set_limit(int level) {
    atomic_store(&simd_limit, level < 0 ? -1 : level);
    return pj_cpu_simd_level();
}

int pj_cpu_set_sha_limit(int path) {
    atomic_store(&sha_limit, path < 0 ? -1 : path);
    return pj_cpu_sha_path();
}

/* ---- thread budget ------------------------------------------------------------------------- */

/* Reads up to cap - 1 bytes of a small file (NUL-terminated); its length, or -1. */
static long read_small(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

/* A non-negative decimal at *p (leading blanks skipped), advancing p; -1 when there is none. */
static long long parse_count(const char **p) {
    const char *s = *p;
    while (*s == ' ' || *s == '\t') s++;
    if (*s < '0' || *s > '9') return -1;
    long long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (LLONG_MAX - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    *p = s;
    return v;
}

int pj_cpu_quota_cpus(long long quota, long long period) {
    if (quota <= 0 || period <= 0) return 0;                  /* -1 (v1) or "max" (v2): no limit */
    long long cpus = quota / period + (quota % period != 0); /* 1.5 CPUs of time: 2 threads */
    return cpus > INT_MAX ? INT_MAX : (int)cpus;
}

int pj_cpu_parse_cpu_max(const char *text) {
    if (!text) return 0;
    const char *p = text;
    while (*p == ' ') p++;
    if (strncmp(p, "max", 3) == 0) return 0;
    long long quota = parse_count(&p);
    long long period = quota < 0 ? -1 : parse_count(&p);
    return pj_cpu_quota_cpus(quota, period);
}

/* The CPU quota of cgroup v1 under dir (cpu.cfs_quota_us / cpu.cfs_period_us), 0 for none. */
static int v1_quota(const char *dir) {
    char path[4096], q[64], t[64];
    long long quota = -1, period = -1;
    const char *p;
    if (snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir) >= (int)sizeof path) return 0;
    if (read_small(path, q, sizeof q) < 0) return 0;
    if (snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir) >= (int)sizeof path) return 0;
    if (read_small(path, t, sizeof t) < 0) return 0;
    p = q;
    while (*p == ' ') p++;
    if (*p == '-') return 0; /* -1: no quota */
    quota = parse_count(&p);
    p = t;
    period = parse_count(&p);
    return pj_cpu_quota_cpus(quota, period);
}

/* This process's cgroup v2 path ("0::/a/b" in /proc/self/cgroup) into out; 0 or -1. */
static int v2_self_path(char *out, size_t cap) {
    char text[4096];
    if (read_small("/proc/self/cgroup", text, sizeof text) < 0) return -1;
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "0::", 3) != 0) continue;
        size_t n = strcspn(line + 3, "\n");
        if (n == 0 || n >= cap || (n == 1 && line[3] == '/')) return -1; /* the root: read above */
        memcpy(out, line + 3, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

int pj_cpu_cgroup_cpus(const char *root) {
    char path[4096], text[128], self[2048];
    int system = !root || !*root;
    if (system) root = "/sys/fs/cgroup";
    /* cgroup v2 of this process (outside a container, a service's own group). */
    if (system && v2_self_path(self, sizeof self) == 0 &&
        snprintf(path, sizeof path, "%s%s/cpu.max", root, self) < (int)sizeof path &&
        read_small(path, text, sizeof text) >= 0) {
        int cpus = pj_cpu_parse_cpu_max(text);
        if (cpus > 0) return cpus;
    }
    /* cgroup v2: the unified hierarchy's cpu.max, at the root of the namespace (a container's
     * view) or under the unified mount of a hybrid layout. */
    static const char *const v2[] = {"%s/cpu.max", "%s/unified/cpu.max"};
    for (size_t i = 0; i < sizeof v2 / sizeof v2[0]; i++) {
        if (snprintf(path, sizeof path, v2[i], root) >= (int)sizeof path) return 0;
        if (read_small(path, text, sizeof text) >= 0) {
            int cpus = pj_cpu_parse_cpu_max(text);
            if (cpus > 0) return cpus;
        }
    }
    /* cgroup v1: the cpu controller's directory under its usual mount names. */
    static const char *const v1[] = {"%s/cpu", "%s/cpu,cpuacct", "%s/cpuacct,cpu"};
    for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++) {
        if (snprintf(path, sizeof path, v1[i], root) >= (int)sizeof path) return 0;
        int cpus = v1_quota(path);
        if (cpus > 0) return cpus;
    }
    return 0;
}

static int affinity_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > INT_MAX ? INT_MAX : (int)n);
}

int pj_cpu_parse_threads(const char *text) {
    if (!text) return 0;
    const char *p = text;
    long long v = parse_count(&p);
    while (*p == ' ') p++;
    if (v <= 0 || *p != '\0') return 0;
    return v > INT_MAX ? INT_MAX : (int)v;
}

static pthread_once_t count_once = PTHREAD_ONCE_INIT;
static int cpu_count;

static void count_all(void) {
    int forced = pj_cpu_parse_threads(getenv("PALYRA_JOURNAL_THREADS"));
    if (forced > 0) {
        cpu_count = forced;
        return;
    }
    int n = affinity_cpus(), quota = pj_cpu_cgroup_cpus(NULL);
    cpu_count = quota > 0 && quota < n ? quota : n;
}

int pj_cpu_count(void) {
    pthread_once(&count_once, count_all);
    return cpu_count;
}
