/* RFC 8785 string writer and strict UTF-8 validation (see jstr.h). */
#include "jstr.h"

#include <string.h>

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Nonzero when some byte of w is < 0x20, '"', '\\' or (when `high`) >= 0x80: the bytes that
 * need a look (non-ASCII bytes only when they must be validated). */
static inline uint64_t attention(uint64_t w, int high) {
    uint64_t lt20 = (w - ONES * 0x20) & ~w;
    uint64_t q = w ^ (ONES * 0x22);
    uint64_t bs = w ^ (ONES * 0x5C);
    uint64_t eq = ((q - ONES) & ~q) | ((bs - ONES) & ~bs);
    return (lt20 | eq | (high ? w : 0)) & HIGHS;
}

/* Length of the valid UTF-8 sequence starting at s[i] (i < n), or 0 when it is invalid. */
static inline size_t utf8_seq(const unsigned char *s, size_t i, size_t n) {
    unsigned c = s[i];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (n - i < 2 || (s[i + 1] & 0xC0) != 0x80) return 0;
        return 2;
    }
    if (c < 0xF0) {
        if (n - i < 3) return 0;
        unsigned c1 = s[i + 1];
        if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && c1 < 0xA0) return 0;  /* overlong */
        if (c == 0xED && c1 >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n - i < 4) return 0;
        unsigned c1 = s[i + 1];
        if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && c1 < 0x90) return 0; /* overlong */
        if (c == 0xF4 && c1 >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

size_t pj_utf8_valid_prefix(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & HIGHS)) {
                i += 8;
                continue;
            }
        }
        size_t len = utf8_seq(s, i, n);
        if (!len) return i;
        i += len;
    }
    return n;
}

uint32_t pj_utf8_decode(const unsigned char *s, size_t n, size_t *len) {
    unsigned c = s[0];
    if (c < 0x80 || n < 2) {
        *len = 1;
        return c;
    }
    if (c < 0xE0) {
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (c < 0xF0 || n < 4) {
        *len = 3;
        if (n < 3) return c;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

static const char HEX[] = "0123456789abcdef";

/* Write s[0..n) escaped (no quotes); when `validate`, returns -1 at the first invalid sequence. */
static int write_body(pj_buf *out, const unsigned char *s, size_t n, int validate) {
    size_t i = 0, run = 0;
    while (i < n) {
        uint64_t w = ONES * 'a'; /* a short tail is padded with a byte that needs no look */
        memcpy(&w, s + i, n - i >= 8 ? 8 : n - i);
        if (!attention(w, validate)) {
            i = n - i >= 8 ? i + 8 : n;
            continue;
        }
        unsigned c = s[i];
        if (c >= 0x80) {
            if (validate) {
                size_t len = utf8_seq(s, i, n);
                if (!len) return -1;
                i += len;
            } else {
                i++;
            }
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        pj_buf_put(out, s + run, i - run);
        char esc[6];
        size_t elen = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = HEX[c >> 4];
            esc[5] = HEX[c & 15];
            elen = 6;
        }
        pj_buf_put(out, esc, elen);
        i++;
        run = i;
    }
    pj_buf_put(out, s + run, n - run);
    return 0;
}

int pj_jstr_write(pj_buf *out, const char *s, size_t n) {
    size_t mark = out->len;
    pj_buf_reserve(out, n + 2);
    pj_buf_putc(out, '"');
    if (write_body(out, (const unsigned char *)s, n, 1) < 0) {
        if (!out->failed) out->len = mark;
        return -1;
    }
    pj_buf_putc(out, '"');
    if (out->failed) return -1;
    return 0;
}

void pj_jstr_write_valid(pj_buf *out, const char *s, size_t n) {
    pj_buf_reserve(out, n + 2);
    pj_buf_putc(out, '"');
    write_body(out, (const unsigned char *)s, n, 0);
    pj_buf_putc(out, '"');
}
