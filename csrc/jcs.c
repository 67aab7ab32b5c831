/* Canonical JSON (RFC 8785) with redaction, in one walk (see jcs.h and docs/canonical-json.md).
 *
 * Both front ends write into one output buffer. An object's members are written in input order,
 * each remembered as a span [start, end) of the output with its key; when the object closes and
 * the keys were not already in UTF-16 order, the spans are rewritten in order. Decoded keys and
 * strings live on an arena used as a stack, so nested objects (and JSON text found inside a
 * string, parsed afresh) just push above their parents and pop when done. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "jcs.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dtoa.h"
#include "jstr.h"
#include "redact.h"

#define MAX_DEPTH 128
#define MAX_SAFE_INT 9007199254740991LL
static const char REDACTED_Q[] = "\"<redacted>\"";
#define REDACTED_Q_LEN 12

static inline int is_digit(unsigned c) { return c - '0' < 10u; }

/* ---------------------------------------------------------------------------- numbers */

static size_t put_i64(char *buf, long long v) {
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0) buf[len++] = '-';
    while (n) buf[len++] = tmp[--n];
    return len;
}

/* The double nearest to the JSON number literal s[0..n) (correctly rounded, C locale). */
static double parse_double(const unsigned char *s, size_t n, int *nomem_flag) {
    char small[64];
    char *lit = n < sizeof small ? small : (char *)malloc(n + 1);
    if (!lit) {
        *nomem_flag = 1;
        return 0.0;
    }
    memcpy(lit, s, n);
    lit[n] = '\0';
    double x = pj_strtod_c(lit);
    if (lit != small) free(lit);
    return x;
}

/* ------------------------------------------------------------------------ context */

typedef struct {
    const char *kp; /* key bytes, or NULL when they live on the arena at koff */
    size_t koff, klen;
    size_t start, end; /* the member's span in the output */
    size_t kpos, kend; /* text front end: the key token in the input */
} member;

/* A direct-mapped cache of key classes: keys up to KCACHE_KEY bytes, tagged with their rules. */
#define KCACHE 256
#define KCACHE_KEY 38
typedef struct {
    unsigned long rules; /* pj_rules_serial of the rules the class was computed with; 0: empty */
    unsigned char len;
    unsigned char cls;
    char key[KCACHE_KEY];
} key_slot;

/* JSON text found inside string values nests; each level up to NEST_LEVELS reuses its own pair of
 * buffers (the copy it parses and the canonical text it writes), deeper levels allocate. */
#define NEST_LEVELS 8

struct pj_jcs_ctx {
    pj_buf out;
    pj_buf arena;
    pj_buf tmp;
    pj_buf mask; /* the masked form of one string value */
    pj_buf line; /* event lines: the decoded text of a string payload */
    pj_buf packed; /* batches with `pack`: every text NUL-ended, as a chain column (chain.h) */
    int pack;
    pj_buf nest_copy[NEST_LEVELS], nest_out[NEST_LEVELS];
    int nest_depth;
    long long loc[MAX_DEPTH + 2]; /* value errors: the locator handed back in the result */
    key_slot kcache[KCACHE];      /* the classes of recently seen keys (journals repeat keys) */
    member *mem;
    size_t mem_len, mem_cap;
    size_t *order, *order2;
    size_t order_cap;
};

pj_jcs_ctx *pj_jcs_ctx_new(void) {
    pj_jcs_ctx *c = (pj_jcs_ctx *)calloc(1, sizeof *c);
    if (!c) return NULL;
    pj_buf_init(&c->out);
    pj_buf_init(&c->arena);
    pj_buf_init(&c->tmp);
    pj_buf_init(&c->mask);
    pj_buf_init(&c->line);
    pj_buf_init(&c->packed);
    for (int i = 0; i < NEST_LEVELS; i++) {
        pj_buf_init(&c->nest_copy[i]);
        pj_buf_init(&c->nest_out[i]);
    }
    return c;
}

void pj_jcs_ctx_free(pj_jcs_ctx *c) {
    if (!c) return;
    pj_buf_free(&c->out);
    pj_buf_free(&c->arena);
    pj_buf_free(&c->tmp);
    pj_buf_free(&c->mask);
    pj_buf_free(&c->line);
    pj_buf_free(&c->packed);
    for (int i = 0; i < NEST_LEVELS; i++) {
        pj_buf_free(&c->nest_copy[i]);
        pj_buf_free(&c->nest_out[i]);
    }
    free(c->mem);
    free(c->order);
    free(c->order2);
    free(c);
}

typedef struct {
    pj_jcs_ctx *ctx;
    const pj_jcs_rules *rules;
    int redact;
    int changed;
    int lenient_ints; /* JSON inside a string: big integer literals read as doubles, not refused */
    int err;
    size_t err_off, err_end;
    int err_on_key; /* value errors: the last locator entry is a key's position in its dict */
    int nloc;       /* value errors: loc[0..nloc) locates the bad value from the root */
    Py_ssize_t loc[MAX_DEPTH + 2];
} wstate;

static void wstate_init(wstate *w, pj_jcs_ctx *ctx, const pj_jcs_rules *rules, int redact) {
    w->ctx = ctx;
    w->rules = rules;
    w->redact = redact ? 1 : 0;
    w->changed = 0;
    w->lenient_ints = 0;
    w->err = 0;
    w->err_off = w->err_end = 0;
    w->err_on_key = 0;
    w->nloc = 0;
}

static inline uint32_t fnv1a(const unsigned char *k, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 16777619u;
    return h;
}

/* pj_key_class through the context's cache; h is any hash of the key bytes (the str's own cached
 * hash for Python keys, FNV-1a for keys parsed from text: a slot is checked against the bytes). */
static int key_class(pj_jcs_ctx *c, const pj_jcs_rules *r, const unsigned char *k, size_t n,
                     uint32_t h) {
    if (n > KCACHE_KEY) return pj_key_class(r, k, n);
    key_slot *slot = &c->kcache[(h ^ (h >> 16)) & (KCACHE - 1)];
    unsigned long serial = pj_rules_serial(r);
    if (slot->rules == serial && slot->len == n && memcmp(slot->key, k, n) == 0) return slot->cls;
    int cls = pj_key_class(r, k, n);
    slot->rules = serial;
    slot->len = (unsigned char)n;
    slot->cls = (unsigned char)cls;
    memcpy(slot->key, k, n);
    return cls;
}

static int nomem(wstate *w) {
    w->err = PJ_JCS_NO_MEMORY;
    return -1;
}

static int push_member(wstate *w, const member *m) {
    pj_jcs_ctx *c = w->ctx;
    if (c->mem_len == c->mem_cap) {
        size_t cap = c->mem_cap ? c->mem_cap * 2 : 64;
        member *p = (member *)realloc(c->mem, cap * sizeof(member));
        if (!p) return nomem(w);
        c->mem = p;
        c->mem_cap = cap;
    }
    c->mem[c->mem_len++] = *m;
    return 0;
}

static inline const unsigned char *mkey(const pj_jcs_ctx *c, const member *m) {
    return (const unsigned char *)(m->kp ? m->kp : c->arena.data + m->koff);
}

/* Order of two UTF-8 strings by their UTF-16 code units (RFC 8785 member order). */
static int utf16_cmp(const unsigned char *a, size_t an, const unsigned char *b, size_t bn) {
    size_t m = an < bn ? an : bn;
    size_t i = 0;
    while (i < m && a[i] == b[i]) i++;
    if (i == m) return an < bn ? -1 : (an > bn ? 1 : 0);
    size_t j = i;
    while (j > 0 && (a[j] & 0xC0) == 0x80) j--;
    size_t la, lb;
    uint32_t ca = pj_utf8_decode(a + j, an - j, &la);
    uint32_t cb = pj_utf8_decode(b + j, bn - j, &lb);
    uint32_t ua = ca >= 0x10000 ? 0xD800 + ((ca - 0x10000) >> 10) : ca;
    uint32_t ub = cb >= 0x10000 ? 0xD800 + ((cb - 0x10000) >> 10) : cb;
    if (ua != ub) return ua < ub ? -1 : 1;
    return ca < cb ? -1 : (ca > cb ? 1 : 0);
}

static inline int member_cmp(const pj_jcs_ctx *c, const member *x, const member *y) {
    return utf16_cmp(mkey(c, x), x->klen, mkey(c, y), y->klen);
}

/* Stable merge sort of ord[0..n) (indexes into m) by key. */
static void sort_members(const pj_jcs_ctx *c, const member *m, size_t *ord, size_t *tmp, size_t n) {
    if (n <= 12) {
        for (size_t i = 1; i < n; i++) {
            size_t v = ord[i], j = i;
            while (j > 0 && member_cmp(c, &m[ord[j - 1]], &m[v]) > 0) {
                ord[j] = ord[j - 1];
                j--;
            }
            ord[j] = v;
        }
        return;
    }
    size_t h = n / 2;
    sort_members(c, m, ord, tmp, h);
    sort_members(c, m, ord + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = (member_cmp(c, &m[ord[j]], &m[ord[i]]) < 0) ? ord[j++] : ord[i++];
    while (i < h) tmp[k++] = ord[i++];
    while (j < n) tmp[k++] = ord[j++];
    memcpy(ord, tmp, n * sizeof(size_t));
}

/* Close an object whose members are mem[mbase..]: check duplicates (text), put spans in order. */
static int finish_object(wstate *w, size_t mbase, size_t body, pj_buf *out, int check_dups) {
    pj_jcs_ctx *c = w->ctx;
    size_t cnt = c->mem_len - mbase;
    member *m = c->mem + mbase;
    if (cnt < 2) return 0;
    size_t k = 1;
    while (k < cnt && member_cmp(c, &m[k - 1], &m[k]) < 0) k++;
    if (k == cnt) return 0;
    if (c->order_cap < cnt) {
        size_t *a = (size_t *)realloc(c->order, cnt * sizeof(size_t));
        if (!a) return nomem(w);
        c->order = a;
        size_t *b = (size_t *)realloc(c->order2, cnt * sizeof(size_t));
        if (!b) return nomem(w);
        c->order2 = b;
        c->order_cap = cnt;
    }
    size_t *ord = c->order;
    for (size_t i = 0; i < cnt; i++) ord[i] = i;
    sort_members(c, m, ord, c->order2, cnt);
    if (check_dups) {
        size_t best = SIZE_MAX, best_end = 0;
        for (size_t i = 1; i < cnt; i++) {
            if (member_cmp(c, &m[ord[i - 1]], &m[ord[i]]) == 0 && m[ord[i]].kpos < best) {
                best = m[ord[i]].kpos;
                best_end = m[ord[i]].kend;
            }
        }
        if (best != SIZE_MAX) {
            w->err = PJ_JCS_E_DUPLICATE;
            w->err_off = best;
            w->err_end = best_end;
            return -1;
        }
    }
    pj_buf *t = &c->tmp;
    t->len = 0;
    pj_buf_put(t, out->data + body, out->len - body);
    if (t->failed) return nomem(w);
    out->len = body;
    for (size_t i = 0; i < cnt; i++) {
        const member *x = &m[ord[i]];
        if (i) pj_buf_putc(out, ',');
        pj_buf_put(out, t->data + (x->start - body), x->end - x->start);
    }
    return out->failed ? nomem(w) : 0;
}

/* ------------------------------------------------------------------------ JSON text */

static inline int fail(wstate *w, int code, size_t off, size_t end) {
    w->err = code;
    w->err_off = off;
    w->err_end = end;
    return -1;
}

static inline size_t skip_ws(const unsigned char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
    return i;
}

static inline int unexpected(wstate *w, size_t i, size_t n) {
    return i >= n ? fail(w, PJ_JCS_E_END, n, n) : fail(w, PJ_JCS_E_CHAR, i, i);
}

static inline int hexval(unsigned c) {
    if (c - '0' < 10u) return (int)(c - '0');
    c |= 32u;
    if (c - 'a' < 6u) return (int)(c - 'a' + 10);
    return -1;
}

/* The code unit of the \uXXXX escape whose backslash is at s[i], or -1 if not 4 hex digits. */
static inline long hex4(const unsigned char *s, size_t i) {
    long v = 0;
    for (size_t j = 2; j < 6; j++) {
        int h = hexval(s[i + j]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

static void put_utf8(pj_buf *b, uint32_t cp) {
    char u[4];
    size_t len;
    if (cp < 0x80) {
        u[0] = (char)cp;
        len = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        len = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        len = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        len = 4;
    }
    pj_buf_put(b, u, len);
}

/* Parse the string whose quote is at s[*pi]. The decoded bytes are s itself when there is no
 * escape, else pushed on the arena (the caller pops it). */
static int t_string(wstate *w, const unsigned char *s, size_t n, size_t *pi,
                    const unsigned char **dp, size_t *dl) {
    size_t start = *pi + 1, j = start;
    for (;;) {
        if (j >= n) return fail(w, PJ_JCS_E_END, n, n);
        unsigned c = s[j];
        if (c == '"') {
            *dp = s + start;
            *dl = j - start;
            *pi = j + 1;
            return 0;
        }
        if (c < 0x20) return fail(w, PJ_JCS_E_CONTROL, j, j + 1);
        if (c == '\\') break;
        j++;
    }
    pj_buf *a = &w->ctx->arena;
    size_t mark = a->len, run = start;
    for (;;) {
        if (j >= n) return fail(w, PJ_JCS_E_END, n, n);
        unsigned c = s[j];
        if (c == '"') break;
        if (c < 0x20) return fail(w, PJ_JCS_E_CONTROL, j, j + 1);
        if (c != '\\') {
            j++;
            continue;
        }
        pj_buf_put(a, s + run, j - run);
        if (j + 1 >= n) return fail(w, PJ_JCS_E_END, n, n);
        unsigned e = s[j + 1];
        char simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        default: break;
        }
        if (simple) {
            pj_buf_putc(a, simple);
            j += 2;
        } else if (e == 'u') {
            if (n - j < 6) return fail(w, PJ_JCS_E_END, n, n);
            long cp = hex4(s, j);
            if (cp < 0) return fail(w, PJ_JCS_E_ESCAPE, j, j + 6);
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(w, PJ_JCS_E_SURROGATE, j, j + 6);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = -1;
                if (n - j >= 12 && s[j + 6] == '\\' && s[j + 7] == 'u') lo = hex4(s, j + 6);
                if (lo < 0xDC00 || lo > 0xDFFF) return fail(w, PJ_JCS_E_SURROGATE, j, j + 6);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                j += 6;
            }
            put_utf8(a, (uint32_t)cp);
            j += 6;
        } else {
            return fail(w, PJ_JCS_E_ESCAPE, j, j + 2);
        }
        run = j;
    }
    pj_buf_put(a, s + run, j - run);
    if (a->failed) return nomem(w);
    *dp = (const unsigned char *)a->data + mark;
    *dl = a->len - mark;
    *pi = j + 1;
    return 0;
}

static int t_number(wstate *w, const unsigned char *s, size_t n, size_t *pi, pj_buf *out) {
    size_t start = *pi, i = start;
    int is_int = 1;
    if (s[i] == '-') i++;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && (unsigned)s[i] - '1' < 9u) {
        while (i < n && is_digit(s[i])) i++;
    } else {
        return fail(w, PJ_JCS_E_NUMBER, start, i);
    }
    if (i < n && s[i] == '.') {
        i++;
        if (!(i < n && is_digit(s[i]))) return fail(w, PJ_JCS_E_NUMBER, start, i);
        while (i < n && is_digit(s[i])) i++;
        is_int = 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (!(i < n && is_digit(s[i]))) return fail(w, PJ_JCS_E_NUMBER, start, i);
        while (i < n && is_digit(s[i])) i++;
        is_int = 0;
    }
    *pi = i;
    if (is_int) {
        int neg = s[start] == '-';
        size_t ds = start + (size_t)neg;
        long long v = 0;
        if (i - ds <= 16) {
            for (size_t k = ds; k < i; k++) v = v * 10 + (s[k] - '0');
        }
        if (i - ds <= 16 && v <= MAX_SAFE_INT) {
            if (v == 0)
                pj_buf_putc(out, '0');
            else
                pj_buf_put(out, s + start, i - start);
            return 0;
        }
        if (!w->lenient_ints) return fail(w, PJ_JCS_E_INT_RANGE, start, i);
    }
    int oom = 0;
    double x = parse_double(s + start, i - start, &oom);
    if (oom) return nomem(w);
    if (!isfinite(x)) return fail(w, PJ_JCS_E_NOT_FINITE, start, i);
    char buf[PJ_DOUBLE_BUF];
    pj_buf_put(out, buf, pj_format_double(x, buf));
    return 0;
}

static int t_value(wstate *w, const unsigned char *s, size_t n, size_t *pi, int depth, pj_buf *out);
static int emit_string_value(wstate *w, const unsigned char *s, size_t n, pj_buf *out);

static int t_array(wstate *w, const unsigned char *s, size_t n, size_t *pi, int depth, pj_buf *out) {
    pj_buf_putc(out, '[');
    size_t i = skip_ws(s, n, *pi + 1);
    if (i < n && s[i] == ']') {
        pj_buf_putc(out, ']');
        *pi = i + 1;
        return 0;
    }
    for (;;) {
        if (t_value(w, s, n, &i, depth, out)) return -1;
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ',') {
            pj_buf_putc(out, ',');
            i = skip_ws(s, n, i + 1);
            continue;
        }
        if (i < n && s[i] == ']') {
            pj_buf_putc(out, ']');
            *pi = i + 1;
            return 0;
        }
        return unexpected(w, i, n);
    }
}

static int t_object(wstate *w, const unsigned char *s, size_t n, size_t *pi, int depth, pj_buf *out) {
    pj_jcs_ctx *c = w->ctx;
    size_t mbase = c->mem_len, abase = c->arena.len;
    pj_buf_putc(out, '{');
    size_t body = out->len;
    size_t i = skip_ws(s, n, *pi + 1);
    if (i < n && s[i] == '}') {
        pj_buf_putc(out, '}');
        *pi = i + 1;
        return 0;
    }
    for (;;) {
        if (i >= n || s[i] != '"') return unexpected(w, i, n);
        member m;
        m.kpos = i;
        size_t kmark = c->arena.len;
        const unsigned char *kp;
        size_t kl;
        if (t_string(w, s, n, &i, &kp, &kl)) return -1;
        m.kend = i;
        m.kp = c->arena.len > kmark ? NULL : (const char *)kp;
        m.koff = kmark;
        m.klen = kl;
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != ':') return unexpected(w, i, n);
        i = skip_ws(s, n, i + 1);
        int sensitive = 0;
        if (w->redact) {
            int kc = key_class(c, w->rules, kp, kl, fnv1a(kp, kl));
            sensitive = kc == PJ_KEY_SENSITIVE ||
                        (kc == PJ_KEY_UNLESS_NUMBER && !(i < n && (s[i] == '-' || is_digit(s[i]))));
        }
        if (c->mem_len > mbase) pj_buf_putc(out, ',');
        m.start = out->len;
        pj_jstr_write_valid(out, (const char *)kp, kl);
        pj_buf_putc(out, ':');
        size_t vstart = out->len;
        if (sensitive) {
            w->redact = 0;
            int rc = t_value(w, s, n, &i, depth, out);
            w->redact = 1;
            if (rc) return -1;
            if (!(out->len - vstart == REDACTED_Q_LEN &&
                  memcmp(out->data + vstart, REDACTED_Q, REDACTED_Q_LEN) == 0))
                w->changed = 1;
            out->len = vstart;
            pj_buf_put(out, REDACTED_Q, REDACTED_Q_LEN);
        } else if (t_value(w, s, n, &i, depth, out)) {
            return -1;
        }
        m.end = out->len;
        if (push_member(w, &m)) return -1;
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ',') {
            i = skip_ws(s, n, i + 1);
            continue;
        }
        if (i < n && s[i] == '}') break;
        return unexpected(w, i, n);
    }
    int rc = finish_object(w, mbase, body, out, 1);
    c->mem_len = mbase;
    c->arena.len = abase;
    if (rc) return -1;
    pj_buf_putc(out, '}');
    *pi = i + 1;
    return 0;
}

static int t_value(wstate *w, const unsigned char *s, size_t n, size_t *pi, int depth, pj_buf *out) {
    size_t i = *pi;
    if (i >= n) return fail(w, PJ_JCS_E_END, i, i);
    unsigned c = s[i];
    switch (c) {
    case '{':
    case '[':
        if (depth >= MAX_DEPTH) return fail(w, PJ_JCS_E_DEPTH, i, i + 1);
        return c == '{' ? t_object(w, s, n, pi, depth + 1, out) : t_array(w, s, n, pi, depth + 1, out);
    case '"': {
        size_t mark = w->ctx->arena.len;
        const unsigned char *dp;
        size_t dl;
        if (t_string(w, s, n, pi, &dp, &dl)) return -1;
        int rc = emit_string_value(w, dp, dl, out);
        w->ctx->arena.len = mark;
        return rc;
    }
    case 't':
        if (n - i >= 4 && memcmp(s + i, "true", 4) == 0) {
            pj_buf_put(out, "true", 4);
            *pi = i + 4;
            return 0;
        }
        return fail(w, PJ_JCS_E_LITERAL, i, i + 1);
    case 'f':
        if (n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
            pj_buf_put(out, "false", 5);
            *pi = i + 5;
            return 0;
        }
        return fail(w, PJ_JCS_E_LITERAL, i, i + 1);
    case 'n':
        if (n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
            pj_buf_put(out, "null", 4);
            *pi = i + 4;
            return 0;
        }
        return fail(w, PJ_JCS_E_LITERAL, i, i + 1);
    default:
        if (c == '-' || c - '0' < 10u) return t_number(w, s, n, pi, out);
        return fail(w, PJ_JCS_E_CHAR, i, i);
    }
}

/* A whole document: value with optional whitespace around; stacks restored whatever happens. */
static int t_document(wstate *w, const unsigned char *s, size_t n, pj_buf *out) {
    size_t mbase = w->ctx->mem_len, abase = w->ctx->arena.len;
    size_t i = skip_ws(s, n, 0);
    int rc = t_value(w, s, n, &i, 0, out);
    if (!rc) {
        i = skip_ws(s, n, i);
        if (i < n) rc = fail(w, PJ_JCS_E_TRAILING, i, i);
    }
    if (!rc && (out->failed || w->ctx->arena.failed)) rc = nomem(w);
    w->ctx->mem_len = mbase;
    w->ctx->arena.len = abase;
    return rc;
}

/* ---------------------------------------------------------------- string values, redacted */

/* JSON text inside a string value (s, already copied where the walk cannot move it): parse it
 * afresh and redact it; 0 with *inner_changed set (the canonical text in `inner`), 1 when it is not
 * JSON text after all, -1 out of memory. */
static int nested_json(wstate *w, const unsigned char *s, size_t n, pj_buf *inner, int *inner_changed) {
    wstate sub;
    wstate_init(&sub, w->ctx, w->rules, 1);
    sub.lenient_ints = 1;
    inner->len = 0;
    inner->failed = 0;
    int rc = t_document(&sub, s, n, inner);
    if (rc == 0) {
        *inner_changed = sub.changed;
        return 0;
    }
    return sub.err == PJ_JCS_NO_MEMORY ? -1 : 1;
}

/* Write the string value s (valid UTF-8) to out, applying the string rules of redaction. */
static int emit_string_value(wstate *w, const unsigned char *s, size_t n, pj_buf *out) {
    if (!w->redact) {
        pj_jstr_write_valid(out, (const char *)s, n);
        return 0;
    }
    pj_jcs_ctx *c = w->ctx;
    size_t h = skip_ws(s, n, 0);
    if (h < n && (s[h] == '{' || s[h] == '[')) {
        /* Parse a private copy (s may live on the arena the parse pushes onto), into this nesting
         * level's buffers: reused from event to event, allocated only beyond NEST_LEVELS. */
        int level = c->nest_depth;
        pj_buf own_copy, own_out;
        pj_buf *copy = &own_copy, *inner = &own_out;
        pj_buf_init(&own_copy);
        pj_buf_init(&own_out);
        if (level < NEST_LEVELS) {
            copy = &c->nest_copy[level];
            inner = &c->nest_out[level];
        }
        copy->len = 0;
        copy->failed = 0;
        pj_buf_put(copy, s, n);
        int rc = copy->failed ? -1 : 0, inner_changed = 0;
        if (rc == 0) {
            c->nest_depth++;
            rc = nested_json(w, (const unsigned char *)copy->data, n, inner, &inner_changed);
            c->nest_depth--;
        }
        if (rc == 0) {
            if (inner_changed) {
                w->changed = 1;
                pj_jstr_write_valid(out, inner->data, inner->len);
            } else {
                pj_jstr_write_valid(out, (const char *)copy->data, n);
            }
        } else if (rc > 0) {
            const unsigned char *t = (const unsigned char *)copy->data;
            if (pj_redact_text(w->rules, t, n, &c->mask)) {
                w->changed = 1;
                pj_jstr_write_valid(out, c->mask.data, c->mask.len);
            } else {
                pj_jstr_write_valid(out, (const char *)t, n);
            }
        }
        pj_buf_free(&own_copy);
        pj_buf_free(&own_out);
        if (rc < 0 || c->mask.failed) return nomem(w);
        return 0;
    }
    if (pj_redact_text(w->rules, s, n, &c->mask)) {
        if (c->mask.failed) return nomem(w);
        w->changed = 1;
        pj_jstr_write_valid(out, c->mask.data, c->mask.len);
        return 0;
    }
    if (c->mask.failed) return nomem(w);
    pj_jstr_write_valid(out, (const char *)s, n);
    return 0;
}

/* UTF-8 (unless the bytes come from a Python str, hence valid) and no BOM; 0 or an error code. */
static int text_precheck(const unsigned char *s, size_t n, int check_utf8, pj_jcs_result *res) {
    if (check_utf8) {
        size_t bad = pj_utf8_valid_prefix((const char *)s, n);
        if (bad < n) {
            res->err_offset = res->err_end = bad;
            return PJ_JCS_E_UTF8;
        }
    }
    if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
        res->err_offset = 0;
        res->err_end = 3;
        return PJ_JCS_E_BOM;
    }
    return 0;
}

static void reset(pj_jcs_ctx *c) {
    c->out.len = 0;
    c->arena.len = 0;
    c->mem_len = 0;
    c->nest_depth = 0;
    c->out.failed = c->arena.failed = c->tmp.failed = c->mask.failed = 0;
}

int pj_jcs_text(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, const char *text, size_t n, int redact,
                pj_jcs_result *res) {
    memset(res, 0, sizeof *res);
    if (!ctx || !rules || (!text && n)) return PJ_JCS_NO_MEMORY;
    reset(ctx);
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    int pre = text_precheck(s, n, 1, res);
    if (pre) return pre;
    wstate w;
    wstate_init(&w, ctx, rules, redact);
    if (t_document(&w, s, n, &ctx->out)) {
        res->err_offset = w.err_off;
        res->err_end = w.err_end;
        return w.err;
    }
    res->out = ctx->out.data;
    res->out_len = ctx->out.len;
    res->changed = w.changed;
    return 0;
}

/* ------------------------------------------------------------------------ Python values */

/* A bad value: the locator in w->loc[0..nloc) leads to it (array index, or the position of the
 * member in its dict's iteration order); the caller finds the object itself from the root. */
static int verr(wstate *w, int code) {
    w->err = code;
    return -1;
}

/* A bad key: the last locator entry is the key's position in the dict w->loc leads to. */
static int kerr(wstate *w, int code, Py_ssize_t ord) {
    w->loc[w->nloc++] = ord;
    w->err_on_key = 1;
    return verr(w, code);
}

static int v_value(wstate *w, PyObject *v, int depth, pj_buf *out);

static int v_str(wstate *w, PyObject *v, pj_buf *out) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (!s) {
        PyErr_Clear();
        return verr(w, PJ_JCS_V_SURROGATE);
    }
    return emit_string_value(w, (const unsigned char *)s, (size_t)n, out);
}

static inline int py_is_number(PyObject *v) {
    return (PyLong_Check(v) && !PyBool_Check(v)) || PyFloat_Check(v);
}

static int v_dict(wstate *w, PyObject *d, int depth, pj_buf *out) {
    pj_jcs_ctx *c = w->ctx;
    size_t mbase = c->mem_len;
    pj_buf_putc(out, '{');
    size_t body = out->len;
    Py_ssize_t pos = 0, ord = 0;
    PyObject *k, *v;
    int rc = 0;
    for (; PyDict_Next(d, &pos, &k, &v); ord++) {
        if (!PyUnicode_Check(k)) {
            rc = kerr(w, PJ_JCS_V_KEY_TYPE, ord);
            break;
        }
        Py_ssize_t kl;
        const char *kp = PyUnicode_AsUTF8AndSize(k, &kl);
        if (!kp) {
            PyErr_Clear();
            rc = kerr(w, PJ_JCS_V_KEY_SURROGATE, ord);
            break;
        }
        member m;
        m.kp = kp;
        m.koff = 0;
        m.klen = (size_t)kl;
        m.kpos = m.kend = 0;
        if (c->mem_len > mbase) pj_buf_putc(out, ',');
        m.start = out->len;
        pj_jstr_write_valid(out, kp, (size_t)kl);
        pj_buf_putc(out, ':');
        size_t vstart = out->len;
        w->loc[w->nloc++] = ord;
        int sensitive = 0;
        if (w->redact) {
            Py_hash_t kh = PyObject_Hash(k); /* cached in the str after its first use */
            if (kh == -1) PyErr_Clear();
            int kc = key_class(c, w->rules, (const unsigned char *)kp, (size_t)kl,
                               (uint32_t)((uint64_t)kh ^ ((uint64_t)kh >> 32)));
            sensitive = kc == PJ_KEY_SENSITIVE || (kc == PJ_KEY_UNLESS_NUMBER && !py_is_number(v));
        }
        if (sensitive) {
            w->redact = 0;
            rc = v_value(w, v, depth, out);
            w->redact = 1;
            if (rc) break;
            if (!(out->len - vstart == REDACTED_Q_LEN &&
                  memcmp(out->data + vstart, REDACTED_Q, REDACTED_Q_LEN) == 0 && PyUnicode_Check(v)))
                w->changed = 1;
            out->len = vstart;
            pj_buf_put(out, REDACTED_Q, REDACTED_Q_LEN);
        } else if ((rc = v_value(w, v, depth, out))) {
            break;
        }
        w->nloc--;
        m.end = out->len;
        if ((rc = push_member(w, &m))) break;
    }
    if (!rc) rc = finish_object(w, mbase, body, out, 0);
    c->mem_len = mbase;
    if (rc) return -1;
    pj_buf_putc(out, '}');
    return 0;
}

static int v_seq(wstate *w, PyObject *v, int depth, pj_buf *out) {
    int is_list = PyList_Check(v);
    Py_ssize_t n = is_list ? PyList_GET_SIZE(v) : PyTuple_GET_SIZE(v);
    pj_buf_putc(out, '[');
    Py_ssize_t *slot = &w->loc[w->nloc++];
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i) pj_buf_putc(out, ',');
        *slot = i;
        PyObject *item = is_list ? PyList_GET_ITEM(v, i) : PyTuple_GET_ITEM(v, i);
        if (v_value(w, item, depth, out)) return -1;
        if (is_list) n = PyList_GET_SIZE(v);
    }
    w->nloc--;
    pj_buf_putc(out, ']');
    return 0;
}

static int v_int(wstate *w, PyObject *v, pj_buf *out) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || x > MAX_SAFE_INT || x < -MAX_SAFE_INT) return verr(w, PJ_JCS_V_INT_RANGE);
    if (x == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return verr(w, PJ_JCS_V_INT_RANGE);
    }
    char buf[24];
    pj_buf_put(out, buf, put_i64(buf, x));
    return 0;
}

static int v_float(wstate *w, PyObject *v, pj_buf *out) {
    double x = PyFloat_AS_DOUBLE(v);
    if (!isfinite(x)) return verr(w, PJ_JCS_V_FLOAT);
    char buf[PJ_DOUBLE_BUF];
    pj_buf_put(out, buf, pj_format_double(x, buf));
    return 0;
}

static int v_value(wstate *w, PyObject *v, int depth, pj_buf *out) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type) return v_str(w, v, out);
    if (v == Py_None) {
        pj_buf_put(out, "null", 4);
        return 0;
    }
    if (v == Py_True) {
        pj_buf_put(out, "true", 4);
        return 0;
    }
    if (v == Py_False) {
        pj_buf_put(out, "false", 5);
        return 0;
    }
    if (t == &PyLong_Type) return v_int(w, v, out);
    if (t == &PyFloat_Type) return v_float(w, v, out);
    if (t == &PyDict_Type || t == &PyList_Type || t == &PyTuple_Type) {
        if (depth >= MAX_DEPTH) return verr(w, PJ_JCS_V_DEPTH);
        return t == &PyDict_Type ? v_dict(w, v, depth + 1, out) : v_seq(w, v, depth + 1, out);
    }
    if (PyLong_Check(v)) return v_int(w, v, out);
    if (PyFloat_Check(v)) return v_float(w, v, out);
    if (PyDict_Check(v) || PyList_Check(v) || PyTuple_Check(v)) {
        if (depth >= MAX_DEPTH) return verr(w, PJ_JCS_V_DEPTH);
        return PyDict_Check(v) ? v_dict(w, v, depth + 1, out) : v_seq(w, v, depth + 1, out);
    }
    if (PyUnicode_Check(v)) return v_str(w, v, out);
    return verr(w, PJ_JCS_V_TYPE);
}

/* Hand the locator of a value error to the caller (copied into the context: w is on the stack). */
static void report_locator(const wstate *w, pj_jcs_ctx *ctx, pj_jcs_result *res) {
    for (int i = 0; i < w->nloc; i++) ctx->loc[i] = (long long)w->loc[i];
    res->err_loc = ctx->loc;
    res->err_loc_len = (size_t)w->nloc;
    res->err_on_key = w->err_on_key;
}

static int emit_result(pj_jcs_ctx *ctx, int changed, PyObject *texts, PyObject *flags);

int pj_jcs_value(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, uintptr_t obj, int redact,
                 uintptr_t out, pj_jcs_result *res) {
    memset(res, 0, sizeof *res);
    if (!ctx || !rules || !obj || !out) return PJ_JCS_NO_MEMORY;
    reset(ctx);
    ctx->pack = 0;
    PyGILState_STATE gil = PyGILState_Ensure();
    wstate w;
    wstate_init(&w, ctx, rules, redact);
    int rc = v_value(&w, (PyObject *)obj, 0, &ctx->out);
    if (!rc && (ctx->out.failed || ctx->arena.failed)) rc = nomem(&w);
    if (rc) {
        if (w.err != PJ_JCS_NO_MEMORY) report_locator(&w, ctx, res);
    } else if (!PyList_Check((PyObject *)out) ||
               emit_result(ctx, w.changed, (PyObject *)out, (PyObject *)out)) {
        PyErr_Clear();
        rc = nomem(&w);
    }
    PyGILState_Release(gil);
    return rc ? w.err : 0;
}

/* ------------------------------------------------------------------------- batches */

/* Append the canonical text in ctx->out as a str to `texts` and the flag to `flags` (and, in a
 * batch with `pack`, the text NUL-ended to ctx->packed). */
static int emit_result(pj_jcs_ctx *ctx, int changed, PyObject *texts, PyObject *flags) {
    if (ctx->pack) {
        pj_buf_put(&ctx->packed, ctx->out.data, ctx->out.len);
        pj_buf_putc(&ctx->packed, '\0');
        if (ctx->packed.failed) return -1;
    }
    PyObject *t = PyUnicode_DecodeUTF8(ctx->out.data ? ctx->out.data : "", (Py_ssize_t)ctx->out.len,
                                       NULL);
    if (!t) return -1;
    int rc = PyList_Append(texts, t);
    Py_DECREF(t);
    if (rc) return -1;
    return PyList_Append(flags, changed ? Py_True : Py_False);
}

/* One item of a batch into ctx->out: 0, or an error code. */
static int many_item(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, PyObject *v, int redact,
                     int payloads, int *changed) {
    reset(ctx);
    wstate w;
    wstate_init(&w, ctx, rules, redact);
    int rc;
    if (payloads && v == Py_None) {
        pj_buf_put(&ctx->out, "{}", 2);
        rc = 0;
    } else if (payloads && (PyUnicode_Check(v) || PyBytes_Check(v))) {
        Py_ssize_t n;
        const char *s;
        int from_str = PyUnicode_Check(v);
        if (from_str) {
            s = PyUnicode_AsUTF8AndSize(v, &n);
            if (!s) {
                PyErr_Clear();
                return PJ_JCS_E_SURROGATE;
            }
        } else {
            s = PyBytes_AS_STRING(v);
            n = PyBytes_GET_SIZE(v);
        }
        pj_jcs_result tmp;
        rc = text_precheck((const unsigned char *)s, (size_t)n, !from_str, &tmp);
        if (rc) return rc;
        rc = t_document(&w, (const unsigned char *)s, (size_t)n, &ctx->out) ? w.err : 0;
    } else {
        rc = v_value(&w, v, 0, &ctx->out) ? w.err : 0;
    }
    if (!rc && (ctx->out.failed || ctx->arena.failed)) rc = PJ_JCS_NO_MEMORY;
    *changed = w.changed;
    return rc;
}

/* Start a batch's packed column (empty) when `pack`; pack_end hands it to the result. */
static void pack_begin(pj_jcs_ctx *ctx, int pack) {
    ctx->pack = pack;
    ctx->packed.len = 0;
    ctx->packed.failed = 0;
}

static void pack_end(pj_jcs_ctx *ctx, int rc, pj_jcs_result *res) {
    if (ctx->pack && !rc) {
        res->packed = ctx->packed.data ? ctx->packed.data : "";
        res->packed_len = ctx->packed.len;
    }
    ctx->pack = 0;
}

int pj_jcs_many(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, void *values, int redact, int payloads,
                long long max_bytes, int pack, void *texts, void *flags, pj_jcs_result *res) {
    memset(res, 0, sizeof *res);
    if (!ctx || !rules || !values || !texts || !flags) return PJ_JCS_NO_MEMORY;
    pack_begin(ctx, pack);
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *vals = (PyObject *)values, *tl = (PyObject *)texts, *fl = (PyObject *)flags;
    int rc = 0;
    if (!PyList_Check(vals) || !PyList_Check(tl) || !PyList_Check(fl)) {
        rc = PJ_JCS_NO_MEMORY;
    } else {
        Py_ssize_t n = PyList_GET_SIZE(vals);
        for (Py_ssize_t i = 0; i < n && i < PyList_GET_SIZE(vals); i++) {
            int changed = 0;
            rc = many_item(ctx, rules, PyList_GET_ITEM(vals, i), redact, payloads, &changed);
            res->err_index = (size_t)i;
            if (rc) break;
            if (max_bytes >= 0 && ctx->out.len > (unsigned long long)max_bytes) {
                res->out_len = ctx->out.len;
                rc = PJ_JCS_TOO_LARGE;
                break;
            }
            if (emit_result(ctx, changed, tl, fl)) {
                PyErr_Clear();
                rc = PJ_JCS_NO_MEMORY;
                break;
            }
        }
    }
    PyGILState_Release(gil);
    pack_end(ctx, rc, res);
    return rc;
}

/* ------------------------------------------------------------------- event lines */

enum { F_KIND, F_ACTOR, F_EVENT_ID, F_SESSION_ID, F_RUN_ID, F_PRINCIPAL, F_DEVICE_ID, F_CHANNEL,
       F_TIMESTAMP, F_PAYLOAD, F_IGNORED, F_UNKNOWN };
#define N_TEXT_FIELDS 8
#define N_COLUMNS 11

static int field_of(const unsigned char *k, size_t n) {
    static const char *const names[] = {"kind", "actor", "event_id", "session_id", "run_id",
                                        "principal", "device_id", "channel",
                                        "timestamp_unix_ms", "payload"};
    static const char *const ignored[] = {"seq", "hash", "prev_hash", "redacted",
                                          "created_at_unix_ms"};
    for (int f = 0; f < 10; f++)
        if (strlen(names[f]) == n && memcmp(names[f], k, n) == 0) return f;
    for (int f = 0; f < 5; f++)
        if (strlen(ignored[f]) == n && memcmp(ignored[f], k, n) == 0) return F_IGNORED;
    return F_UNKNOWN;
}

/* One line into the Python values vals[0..N_COLUMNS) (new references; NULL = not set yet).
 * Returns 0, or -1 when the line is not on the fast path (any doubt: the caller falls back). */
static int line_fields(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, int redact,
                       const unsigned char *s, size_t n, PyObject **vals, int *changed) {
    if (pj_utf8_valid_prefix((const char *)s, n) < n) return -1;
    wstate w;
    wstate_init(&w, ctx, rules, redact);
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') return -1;
    i = skip_ws(s, n, i + 1);
    unsigned seen = 0;
    int have_payload = 0;
    if (i < n && s[i] == '}') {
        i++;
    } else {
        for (;;) {
            if (i >= n || s[i] != '"') return -1;
            size_t mark = ctx->arena.len;
            const unsigned char *kp;
            size_t kl;
            if (t_string(&w, s, n, &i, &kp, &kl)) return -1;
            int f = field_of(kp, kl);
            ctx->arena.len = mark;
            if (f == F_UNKNOWN) return -1;
            if (f != F_IGNORED) {
                if (seen & (1u << f)) return -1;
                seen |= 1u << f;
            }
            i = skip_ws(s, n, i);
            if (i >= n || s[i] != ':') return -1;
            i = skip_ws(s, n, i + 1);
            if (i >= n) return -1;
            if (f < N_TEXT_FIELDS || f == F_TIMESTAMP) {
                PyObject *o;
                if (n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
                    i += 4;
                    Py_INCREF(Py_None);
                    o = Py_None;
                } else if (f < N_TEXT_FIELDS) {
                    if (s[i] != '"') return -1;
                    const unsigned char *dp;
                    size_t dl;
                    if (t_string(&w, s, n, &i, &dp, &dl)) return -1;
                    o = PyUnicode_DecodeUTF8((const char *)dp, (Py_ssize_t)dl, NULL);
                    ctx->arena.len = mark;
                    if (!o) {
                        PyErr_Clear();
                        return -1;
                    }
                } else {
                    size_t st = i;
                    if (s[i] == '-') i++;
                    size_t ds = i;
                    while (i < n && is_digit(s[i])) i++;
                    size_t nd = i - ds;
                    if (nd == 0 || nd > 16 || (nd > 1 && s[ds] == '0')) return -1;
                    if (i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')) return -1;
                    long long v = 0;
                    for (size_t k = ds; k < i; k++) v = v * 10 + (s[k] - '0');
                    if (v > MAX_SAFE_INT) return -1;
                    o = PyLong_FromLongLong(s[st] == '-' ? -v : v);
                    if (!o) {
                        PyErr_Clear();
                        return -1;
                    }
                }
                vals[f] = o;
            } else if (f == F_PAYLOAD) {
                ctx->out.len = 0;
                if (n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
                    i += 4;
                    pj_buf_put(&ctx->out, "{}", 2);
                } else if (s[i] == '"') {
                    /* a string payload is JSON text: canonicalize its decoded bytes (copied,
                     * since they may live on the arena the walk pushes onto) */
                    const unsigned char *dp;
                    size_t dl;
                    if (t_string(&w, s, n, &i, &dp, &dl)) return -1;
                    pj_buf *cp = &ctx->line;
                    cp->len = 0;
                    pj_buf_put(cp, dp, dl);
                    ctx->arena.len = mark;
                    if (cp->failed) return -1;
                    pj_jcs_result tmp;
                    if (text_precheck((const unsigned char *)cp->data, cp->len, 0, &tmp)) return -1;
                    if (t_document(&w, (const unsigned char *)(cp->data ? cp->data : ""), cp->len,
                                   &ctx->out))
                        return -1;
                } else if (t_value(&w, s, n, &i, 0, &ctx->out)) {
                    return -1;
                }
                have_payload = 1;
            } else {
                /* export-only keys: valid JSON, ignored */
                size_t keep = ctx->out.len;
                int r = w.redact, ch = w.changed;
                w.redact = 0;
                int rc = t_value(&w, s, n, &i, 0, &ctx->out);
                w.redact = r;
                w.changed = ch;
                ctx->out.len = keep;
                if (rc) return -1;
            }
            i = skip_ws(s, n, i);
            if (i < n && s[i] == ',') {
                i = skip_ws(s, n, i + 1);
                continue;
            }
            if (i < n && s[i] == '}') {
                i++;
                break;
            }
            return -1;
        }
    }
    if (skip_ws(s, n, i) != n) return -1;
    if (!have_payload) {
        ctx->out.len = 0;
        pj_buf_put(&ctx->out, "{}", 2);
    }
    if (ctx->out.failed || ctx->arena.failed) return -1;
    *changed = w.changed;
    return 0;
}

int pj_jcs_event_lines(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, void *lines, int redact,
                       long long max_bytes, int pack, void *columns, pj_jcs_result *res) {
    memset(res, 0, sizeof *res);
    if (!ctx || !rules || !lines || !columns) return PJ_JCS_NO_MEMORY;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *ls = (PyObject *)lines, *cols = (PyObject *)columns;
    int rc = 0;
    if (!PyList_Check(ls) || !PyList_Check(cols) || PyList_GET_SIZE(cols) != N_COLUMNS) {
        PyGILState_Release(gil);
        return PJ_JCS_NO_MEMORY;
    }
    for (Py_ssize_t c = 0; c < N_COLUMNS; c++) {
        if (!PyList_Check(PyList_GET_ITEM(cols, c))) {
            PyGILState_Release(gil);
            return PJ_JCS_NO_MEMORY;
        }
    }
    PyObject *system = PyUnicode_FromString("system");
    if (!system) {
        PyErr_Clear();
        PyGILState_Release(gil);
        return PJ_JCS_NO_MEMORY;
    }
    pack_begin(ctx, pack);
    Py_ssize_t nl = PyList_GET_SIZE(ls);
    for (Py_ssize_t li = 0; li < nl && li < PyList_GET_SIZE(ls); li++) {
        PyObject *line = PyList_GET_ITEM(ls, li);
        res->err_index = (size_t)li;
        if (!PyBytes_Check(line)) {
            rc = PJ_JCS_SLOW_PATH;
            break;
        }
        reset(ctx);
        PyObject *vals[F_PAYLOAD] = {NULL};
        int changed = 0;
        if (line_fields(ctx, rules, redact, (const unsigned char *)PyBytes_AS_STRING(line),
                        (size_t)PyBytes_GET_SIZE(line), vals, &changed)) {
            rc = PJ_JCS_SLOW_PATH;
        } else if (max_bytes >= 0 && ctx->out.len > (unsigned long long)max_bytes) {
            rc = PJ_JCS_SLOW_PATH;
        }
        if (!rc) {
            if (!vals[F_ACTOR]) {
                Py_INCREF(system);
                vals[F_ACTOR] = system;
            }
            for (int f = 0; f < F_PAYLOAD && !rc; f++) {
                PyObject *o = vals[f] ? vals[f] : Py_None;
                if (PyList_Append(PyList_GET_ITEM(cols, f), o)) rc = PJ_JCS_NO_MEMORY;
            }
            if (!rc && emit_result(ctx, changed, PyList_GET_ITEM(cols, F_PAYLOAD),
                                   PyList_GET_ITEM(cols, F_PAYLOAD + 1)))
                rc = PJ_JCS_NO_MEMORY;
            if (rc) PyErr_Clear();
        }
        for (int f = 0; f < F_PAYLOAD; f++) Py_XDECREF(vals[f]);
        if (rc) break;
    }
    Py_DECREF(system);
    PyGILState_Release(gil);
    pack_end(ctx, rc, res);
    return rc;
}
