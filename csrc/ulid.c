/* Monotonic ULIDs in bulk (see ulid.h): a 128-bit counter as two 64-bit halves, written as 26
 * Crockford base32 characters of 5 bits (the top character holds 3). */
#define _DEFAULT_SOURCE
#include "ulid.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char CROCKFORD[32] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Fill buf with n random bytes from the kernel's CSPRNG; 0 or -1. */
static int random_bytes(unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        break;
    }
    if (got == n) return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        break;
    }
    close(fd);
    return got == n ? 0 : -1;
}

static uint64_t load_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static void store_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xFF);
        v >>= 8;
    }
}

/* 128 bits (hi: time << 16 | top 16 random bits; lo: the other 64) as 26 characters. */
static void encode(uint64_t hi, uint64_t lo, char *u) {
    for (int k = 25; k >= 0; k--) {
        u[k] = CROCKFORD[lo & 31];
        lo = (lo >> 5) | (hi << 59);
        hi >>= 5;
    }
}

int pj_ulid_next(char *out, size_t count, uint64_t now_ms, uint8_t last[16]) {
    if (count == 0) return PJ_ULID_OK;
    if (!out || !last || count > SIZE_MAX / 26) return PJ_ULID_ERR_ARGS;
    const uint64_t t = now_ms & 0xFFFFFFFFFFFFULL;
    uint64_t hi = load_be64(last), lo = load_be64(last + 8);
    const uint64_t last_t = hi >> 16;
    if ((hi == 0 && lo == 0) || (last_t != t && last_t != t + 1)) { /* fresh random bits */
        unsigned char r[10];
        if (random_bytes(r, sizeof r)) return PJ_ULID_ERR_RANDOM;
        hi = (t << 16) | ((uint64_t)r[0] << 8) | r[1];
        lo = load_be64(r + 2);
    } else { /* this millisecond's last ULID (carried into the next one, maybe) + 1 */
        if (++lo == 0 && ++hi == 0) return PJ_ULID_ERR_EXHAUSTED;
    }
    /* first + (count - 1) must not pass 2^128 - 1 */
    uint64_t more = (uint64_t)(count - 1);
    if (hi == UINT64_MAX && UINT64_MAX - lo < more) return PJ_ULID_ERR_EXHAUSTED;
    for (size_t i = 0;; i++) {
        encode(hi, lo, out + 26 * i);
        if (i + 1 == count) break;
        if (++lo == 0) hi++;
    }
    store_be64(last, hi);
    store_be64(last + 8, lo);
    return PJ_ULID_OK;
}

int pj_ulid_fill(char *out, size_t count, uint64_t now_ms, uint64_t last_hi, uint64_t last_lo) {
    if (!out || count > (SIZE_MAX - 16) / 26) return PJ_ULID_ERR_ARGS;
    uint8_t last[16];
    store_be64(last, last_hi);
    store_be64(last + 8, last_lo);
    int rc = pj_ulid_next(out, count, now_ms, last);
    if (rc == PJ_ULID_OK) memcpy(out + 26 * count, last, 16);
    return rc;
}
