/* Shortest round-trip double formatting (Schubfach) in the ECMAScript layout: see dtoa.h. */
#define _GNU_SOURCE 1 /* strtod_l, newlocale */
#include "dtoa.h"

#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtoa_table.h"

__extension__ typedef unsigned __int128 u128;

#define MASK63 0x7FFFFFFFFFFFFFFFULL
#define C_MIN (1ULL << 52)
#define Q_MIN (-1074)

static inline int flog10pow2(int q) { return (int)(((int64_t)q * 661971961083LL) >> 41); }
static inline int flog10three_quarters_pow2(int q) {
    return (int)(((int64_t)q * 661971961083LL - 274743187321LL) >> 41);
}
static inline int flog2pow10(int e) { return (int)(((int64_t)e * 913124641741LL) >> 38); }

/* Round-to-odd of g * cp / 2^127 (g = g1 * 2^63 + g0): the scaled bound, with a sticky bit. */
static inline uint64_t rop(uint64_t g1, uint64_t g0, uint64_t cp) {
    uint64_t x1 = (uint64_t)(((u128)g0 * cp) >> 64);
    u128 y = (u128)g1 * cp;
    uint64_t y0 = (uint64_t)y, y1 = (uint64_t)(y >> 64);
    uint64_t z = (y0 >> 1) + x1;
    uint64_t vbp = y1 + (z >> 63);
    return vbp | (((z & MASK63) + MASK63) >> 63);
}

/* The shortest decimal f * 10^e in the rounding interval of c * 2^q: f into *f, returns e. */
static int to_decimal(int q, uint64_t c, uint64_t *f) {
    uint64_t out = c & 1;
    uint64_t cb = c << 2, cbr = cb + 2, cbl;
    int k;
    if (c != C_MIN || q == Q_MIN) {
        cbl = cb - 2;
        k = flog10pow2(q);
    } else {
        cbl = cb - 1;
        k = flog10three_quarters_pow2(q);
    }
    int h = q + flog2pow10(-k) + 2;
    const uint64_t *g = DTOA_G[k - DTOA_K_MIN];
    uint64_t vb = rop(g[0], g[1], cb << h);
    uint64_t vbl = rop(g[0], g[1], cbl << h);
    uint64_t vbr = rop(g[0], g[1], cbr << h);
    uint64_t s = vb >> 2;
    if (s >= 100) {
        uint64_t sp10 = 10 * (uint64_t)(((u128)s * 1844674407370955168ULL) >> 64);
        uint64_t tp10 = sp10 + 10;
        int upin = vbl + out <= sp10 << 2;
        int wpin = (tp10 << 2) + out <= vbr;
        if (upin != wpin) {
            *f = upin ? sp10 : tp10;
            return k;
        }
    }
    uint64_t t = s + 1;
    int uin = vbl + out <= s << 2;
    int win = (t << 2) + out <= vbr;
    if (uin != win) {
        *f = uin ? s : t;
        return k;
    }
    uint64_t cmp2 = (s + t) << 1;
    *f = (vb < cmp2 || (vb == cmp2 && (s & 1) == 0)) ? s : t;
    return k;
}

/* The "C" locale, created once (pthread_once: no race between threads, no locale switching). */
static locale_t c_locale_v;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale_v = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

double pj_strtod_c(const char *s) {
    pthread_once(&c_locale_once, c_locale_init);
    return c_locale_v ? strtod_l(s, NULL, c_locale_v) : strtod(s, NULL);
}

/* Subnormals: their rounding interval is wide next to the value, and the shortest decimal can be
 * two or more digits shorter than the one Schubfach's single shortening step reaches (5e-323, not
 * 4.9e-323). They are rare: search the precision instead, each candidate the correctly rounded
 * decimal of that length (snprintf), read back with strtod in the C locale. */
static int subnormal_decimal(double x, uint64_t *f) {
    char t[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(t, sizeof t, "%.*e", p - 1, x);
        if (pj_strtod_c(t) == x) break;
    }
    snprintf(t, sizeof t, "%.*e", p - 1, x);
    uint64_t v = 0;
    const char *c = t;
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9') v = v * 10 + (uint64_t)(*c - '0');
    *f = v;
    return atoi(c + 1) - (p - 1);
}

static const char DIGITS2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Decimal digits of v (> 0) into d; returns their count (at most 20). */
static size_t u64_digits(uint64_t v, char *d) {
    char tmp[24];
    size_t n = sizeof tmp;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        n -= 2;
        memcpy(tmp + n, DIGITS2 + 2 * r, 2);
    }
    if (v >= 10) {
        n -= 2;
        memcpy(tmp + n, DIGITS2 + 2 * v, 2);
    } else {
        tmp[--n] = (char)('0' + v);
    }
    memcpy(d, tmp + n, sizeof tmp - n);
    return sizeof tmp - n;
}

static size_t put_exponent(char *buf, int e) {
    size_t len = 0;
    buf[len++] = 'e';
    buf[len++] = e < 0 ? '-' : '+';
    unsigned a = (unsigned)(e < 0 ? -e : e);
    if (a >= 100) {
        buf[len++] = (char)('0' + a / 100);
        a %= 100;
        memcpy(buf + len, DIGITS2 + 2 * a, 2);
        len += 2;
    } else if (a >= 10) {
        memcpy(buf + len, DIGITS2 + 2 * a, 2);
        len += 2;
    } else {
        buf[len++] = (char)('0' + a);
    }
    return len;
}

size_t pj_format_double(double x, char *buf) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    size_t len = 0;
    if (bits >> 63) buf[len++] = '-';
    bits &= MASK63;
    int bq = (int)(bits >> 52);
    uint64_t t = bits & (C_MIN - 1);
    uint64_t f;
    int e;
    if (bq != 0) {
        int mq = -Q_MIN + 1 - bq;
        uint64_t c = C_MIN | t;
        if (0 < mq && mq < 53 && ((c >> mq) << mq) == c) {
            f = c >> mq; /* an integer below 2^53: its digits are exact */
            e = 0;
        } else {
            e = to_decimal(-mq, c, &f);
        }
    } else if (t != 0) {
        e = subnormal_decimal(x < 0 ? -x : x, &f);
    } else {
        buf[0] = '0'; /* +0 and -0 */
        return 1;
    }
    while (f % 10 == 0) {
        f /= 10;
        e++;
    }
    char d[24];
    size_t k = u64_digits(f, d);
    int n = (int)k + e; /* x = 0.d1d2... * 10^n */
    int ik = (int)k;
    if (ik <= n && n <= 21) {
        memcpy(buf + len, d, k);
        len += k;
        memset(buf + len, '0', (size_t)(n - ik));
        len += (size_t)(n - ik);
    } else if (0 < n && n <= 21) {
        memcpy(buf + len, d, (size_t)n);
        len += (size_t)n;
        buf[len++] = '.';
        memcpy(buf + len, d + n, k - (size_t)n);
        len += k - (size_t)n;
    } else if (-6 < n && n <= 0) {
        buf[len++] = '0';
        buf[len++] = '.';
        memset(buf + len, '0', (size_t)-n);
        len += (size_t)-n;
        memcpy(buf + len, d, k);
        len += k;
    } else {
        buf[len++] = d[0];
        if (k > 1) {
            buf[len++] = '.';
            memcpy(buf + len, d + 1, k - 1);
            len += k - 1;
        }
        len += put_exponent(buf + len, n - 1);
    }
    return len;
}
