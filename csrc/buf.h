/* A growable byte buffer shared by the kernels that write text (canonical JSON, envelopes).
 *
 * Header-only: small static inline functions. Every append checks for size_t overflow and
 * allocation failure; after a failure the buffer reports it through pj_buf.failed and further
 * appends are no-ops, so callers check once at the end. */
#ifndef PJ_BUF_H
#define PJ_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int failed; /* 1 after an allocation failure or overflow */
} pj_buf;

static inline void pj_buf_init(pj_buf *b) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}

static inline void pj_buf_free(pj_buf *b) {
    free(b->data);
    pj_buf_init(b);
}

/* Make room for `extra` more bytes; returns 0 on success, -1 on failure. */
static inline int pj_buf_reserve(pj_buf *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > SIZE_MAX - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = (char *)realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static inline void pj_buf_put(pj_buf *b, const void *src, size_t n) {
    if (n == 0 || pj_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static inline void pj_buf_putc(pj_buf *b, char c) {
    if (b->len < b->cap && !b->failed) {
        b->data[b->len++] = c;
        return;
    }
    pj_buf_put(b, &c, 1);
}

static inline void pj_buf_puts(pj_buf *b, const char *s) { pj_buf_put(b, s, strlen(s)); }

#endif
