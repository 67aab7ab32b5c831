/* Runtime CPU feature detection (see cpu.h). */
#define _POSIX_C_SOURCE 200809L
#include "cpu.h"

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
#elif defined(__aarch64__)
static int detect_simd(void) { return PJ_SIMD_NEON; }
static int detect_sha(void) { return PJ_SHA_PORTABLE; }
#else
static int detect_simd(void) { return PJ_SIMD_SCALAR; }
static int detect_sha(void) { return PJ_SHA_PORTABLE; }
#endif

/* Detection is idempotent and cheap, so a benign race on first use only repeats it. */
static int simd_detected = -1, sha_detected = -1;
static int simd_limit = -1, sha_limit = -1;

int pj_cpu_simd_detected(void) {
    if (simd_detected < 0) simd_detected = detect_simd();
    return simd_detected;
}

int pj_cpu_sha_detected(void) {
    if (sha_detected < 0) sha_detected = detect_sha();
    return sha_detected;
}

int pj_cpu_simd_level(void) {
    int d = pj_cpu_simd_detected();
    if (simd_limit < 0) return d;
    /* NEON is not "wider" than AVX: a cap on NEON machines only means scalar or NEON. */
    if (d == PJ_SIMD_NEON) return simd_limit == PJ_SIMD_SCALAR ? PJ_SIMD_SCALAR : d;
    return simd_limit < d ? simd_limit : d;
}

int pj_cpu_sha_path(void) {
    int d = pj_cpu_sha_detected();
    if (sha_limit < 0) return d;
    return sha_limit < d ? sha_limit : d;
}

int pj_cpu_set_limit(int level) {
    simd_limit = level < 0 ? -1 : level;
    return pj_cpu_simd_level();
}

int pj_cpu_set_sha_limit(int path) {
    sha_limit = path < 0 ? -1 : path;
    return pj_cpu_sha_path();
}

int pj_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
