/* Redaction rules v2: sensitive keys and secrets masked inside text (see redact.h). */
#include "redact.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t n;
} pj_str;

typedef struct {
    pj_str *items;
    size_t count;
} strlist;

struct pj_jcs_rules {
    unsigned long serial; /* unique per rules object built by this process (caches key on it) */
    char *storage;
    strlist l[PJ_RULES_NLISTS];
    pj_str pair_second[64]; /* PJ_RULES_KEY_PAIRS items are "first second": the second word */
    size_t scheme_min, prefix_min, aws_run;
    uint8_t start2[65536 / 8]; /* bit (lower(c0) << 8 | lower(c1)): a text rule may start here */
};

static inline unsigned lower(unsigned c) { return (c - 'A' < 26u) ? c + 32 : c; }
static inline int is_digit(unsigned c) { return c - '0' < 10u; }
static inline int is_upper(unsigned c) { return c - 'A' < 26u; }
static inline int is_alpha(unsigned c) { return (c | 32u) - 'a' < 26u; }
static inline int is_alnum(unsigned c) { return is_digit(c) || is_alpha(c); }
static inline int is_word_char(unsigned c) { return is_alnum(c) || c == '_' || c == '-'; }
static inline int is_cred_char(unsigned c) {
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
           c == '=';
}
static inline int is_scheme_char(unsigned c) { return is_alnum(c) || c == '+' || c == '.' || c == '-'; }
static inline int is_space(unsigned c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static inline int url_stop(unsigned c) {
    return c == '/' || c == '?' || c == '#' || c == '@' || is_space(c);
}
static inline int value_stop(unsigned c) {
    return is_space(c) || c == '&' || c == ',' || c == ';' || c == '"' || c == '\'' || c == '`';
}

/* s[0..avail) starts with the lowercase ASCII lit[0..len), ASCII-case-insensitively. */
static inline int ci_starts(const unsigned char *s, size_t avail, const char *lit, size_t len) {
    if (len > avail) return 0;
    for (size_t j = 0; j < len; j++)
        if (lower(s[j]) != (unsigned char)lit[j]) return 0;
    return 1;
}

static inline int ci_equals(const unsigned char *s, size_t n, const pj_str *it) {
    return it->n == n && ci_starts(s, n, it->s, n);
}

/* ---------------------------------------------------------------------------- building */

void pj_jcs_rules_free(pj_jcs_rules *r) {
    if (!r) return;
    for (int i = 0; i < PJ_RULES_NLISTS; i++) free(r->l[i].items);
    free(r->storage);
    free(r);
}

static void mark_start(pj_jcs_rules *r, const char *s, size_t n) {
    if (n < 2) return;
    unsigned v = lower((unsigned char)s[0]) << 8 | lower((unsigned char)s[1]);
    r->start2[v >> 3] |= (uint8_t)(1u << (v & 7));
}

pj_jcs_rules *pj_jcs_rules_new(const char *blob, size_t blob_len, const size_t *list_lens,
                               size_t nlists, int scheme_min_run, int prefix_min_run, int aws_run) {
    if (nlists != PJ_RULES_NLISTS || (!blob && blob_len) || !list_lens || scheme_min_run < 1 ||
        prefix_min_run < 1 || aws_run < 1)
        return NULL;
    size_t total = 0;
    for (size_t i = 0; i < nlists; i++) {
        if (list_lens[i] > blob_len - total) return NULL;
        total += list_lens[i];
    }
    if (total != blob_len) return NULL;
    pj_jcs_rules *r = (pj_jcs_rules *)calloc(1, sizeof *r);
    if (!r) return NULL;
    r->storage = (char *)malloc(blob_len + 1);
    if (!r->storage) goto fail;
    if (blob_len) memcpy(r->storage, blob, blob_len);
    r->storage[blob_len] = '\0';
    static atomic_ulong next_serial = 1;
    r->serial = atomic_fetch_add(&next_serial, 1);
    r->scheme_min = (size_t)scheme_min_run;
    r->prefix_min = (size_t)prefix_min_run;
    r->aws_run = (size_t)aws_run;
    size_t off = 0;
    for (size_t li = 0; li < nlists; li++) {
        const char *src = r->storage + off;
        size_t n = list_lens[li], cap = 0;
        for (size_t i = 0; i < n; i++) cap += (src[i] == '\0');
        strlist *l = &r->l[li];
        l->items = (pj_str *)calloc(cap + 1, sizeof(pj_str));
        if (!l->items) goto fail;
        size_t i = 0;
        while (i < n) {
            size_t j = i;
            while (j < n && src[j] != '\0') j++;
            if (j > i && l->count < cap) {
                l->items[l->count].s = src + i;
                l->items[l->count].n = j - i;
                l->count++;
            }
            i = j + 1;
        }
        off += n;
    }
    if (r->l[PJ_RULES_KEY_PAIRS].count > sizeof r->pair_second / sizeof r->pair_second[0]) goto fail;
    for (size_t k = 0; k < r->l[PJ_RULES_KEY_PAIRS].count; k++) {
        pj_str *it = &r->l[PJ_RULES_KEY_PAIRS].items[k];
        const char *sp = memchr(it->s, ' ', it->n);
        if (!sp) goto fail;
        r->pair_second[k].s = sp + 1;
        r->pair_second[k].n = it->n - (size_t)(sp + 1 - it->s);
        it->n = (size_t)(sp - it->s);
    }
    static const int text_lists[] = {PJ_RULES_HEADERS, PJ_RULES_ASSIGNMENTS, PJ_RULES_SCHEMES,
                                      PJ_RULES_TOKEN_PREFIXES, PJ_RULES_AWS_PREFIX};
    for (size_t t = 0; t < sizeof text_lists / sizeof text_lists[0]; t++) {
        const strlist *l = &r->l[text_lists[t]];
        for (size_t k = 0; k < l->count; k++) mark_start(r, l->items[k].s, l->items[k].n);
    }
    mark_start(r, "--", 2); /* PEM blocks */
    return r;
fail:
    pj_jcs_rules_free(r);
    return NULL;
}

/* ---------------------------------------------------------------------------- keys */

/* Some item of l occurs in the ASCII-lowercased s. */
static int contains_any(const strlist *l, const unsigned char *s, size_t n) {
    for (size_t k = 0; k < l->count; k++) {
        const pj_str *it = &l->items[k];
        if (it->n > n) continue;
        unsigned c0 = (unsigned char)it->s[0];
        for (size_t i = 0; i + it->n <= n; i++)
            if (lower(s[i]) == c0 && ci_starts(s + i, n - i, it->s, it->n)) return 1;
    }
    return 0;
}

static int in_list(const strlist *l, const unsigned char *w, size_t n) {
    for (size_t k = 0; k < l->count; k++)
        if (ci_equals(w, n, &l->items[k])) return 1;
    return 0;
}

static int ends_with_any(const strlist *l, const unsigned char *w, size_t n) {
    for (size_t k = 0; k < l->count; k++) {
        const pj_str *it = &l->items[k];
        if (it->n <= n && ci_starts(w + n - it->n, it->n, it->s, it->n)) return 1;
    }
    return 0;
}

static int pair_matches(const pj_jcs_rules *r, const unsigned char *a, size_t an,
                        const unsigned char *b, size_t bn) {
    const strlist *l = &r->l[PJ_RULES_KEY_PAIRS];
    for (size_t k = 0; k < l->count; k++)
        if (ci_equals(a, an, &l->items[k]) && ci_equals(b, bn, &r->pair_second[k])) return 1;
    return 0;
}

unsigned long pj_rules_serial(const pj_jcs_rules *r) { return r->serial; }

int pj_key_class(const pj_jcs_rules *r, const unsigned char *k, size_t n) {
    if (r->l[PJ_RULES_EXTRA_KEYS].count && contains_any(&r->l[PJ_RULES_EXTRA_KEYS], k, n))
        return PJ_KEY_SENSITIVE;
    int found = PJ_KEY_PLAIN, pending = 0, have_prev = 0;
    size_t ps = 0, pe = 0, i = 0;
    while (i < n) {
        if (!is_alnum(k[i])) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && is_alnum(k[j]) && !(!is_upper(k[j - 1]) && is_upper(k[j]))) j++;
        const unsigned char *w = k + i;
        size_t wn = j - i;
        if (pending) {
            if (!in_list(&r->l[PJ_RULES_COUNTING], w, wn)) return PJ_KEY_SENSITIVE;
            found = PJ_KEY_UNLESS_NUMBER;
            pending = 0;
        }
        if (ends_with_any(&r->l[PJ_RULES_KEY_ENDINGS], w, wn) || in_list(&r->l[PJ_RULES_KEY_WORDS], w, wn) ||
            (have_prev && pair_matches(r, k + ps, pe - ps, w, wn)))
            pending = 1;
        ps = i;
        pe = j;
        have_prev = 1;
        i = j;
    }
    return pending ? PJ_KEY_SENSITIVE : found;
}

/* ---------------------------------------------------------------------------- text */

static const char REDACTED[] = "<redacted>";
#define REDACTED_LEN 10

typedef struct {
    const unsigned char *s;
    size_t n;
    size_t last; /* s[last..) is not yet copied to out */
    pj_buf *out;
} masker;

/* Replace s[from..to) by rep: copy what precedes it, then rep; the caller resumes at `to`. */
static void replace(masker *m, size_t from, size_t to, const char *rep, size_t rlen) {
    pj_buf_put(m->out, m->s + m->last, from - m->last);
    pj_buf_put(m->out, rep, rlen);
    m->last = to;
}

/* "(?:[A-Za-z0-9]+ )*PRIVATE KEY-----" at s[j..): the index after it, or 0. */
static size_t pem_label_end(const unsigned char *s, size_t n, size_t j) {
    for (;;) {
        if (ci_starts(s + j, n - j, "private key-----", 16)) return j + 16;
        size_t k = j;
        while (k < n && is_alnum(s[k])) k++;
        if (k == j || k >= n || s[k] != ' ') return 0;
        j = k + 1;
    }
}

static size_t try_pem(masker *m, size_t i) {
    const unsigned char *s = m->s;
    size_t n = m->n;
    if (!ci_starts(s + i, n - i, "-----begin ", 11)) return 0;
    size_t h = pem_label_end(s, n, i + 11);
    if (!h) return 0;
    size_t end = n; /* unterminated: masked to the end of the string */
    for (size_t p = h; p + 9 <= n; p++) {
        const unsigned char *d = memchr(s + p, '-', n - p);
        if (!d) break;
        p = (size_t)(d - s);
        if (ci_starts(s + p, n - p, "-----end ", 9)) {
            size_t e = pem_label_end(s, n, p + 9);
            if (e) {
                end = e;
                break;
            }
        }
    }
    replace(m, i, end, REDACTED, REDACTED_LEN);
    return end;
}

/* The length of the first item of l, from index *k on, that starts at s[i] (ASCII-case-
 * insensitively), *k left on it; 0 when none does. */
static inline size_t marker_at(const masker *m, const strlist *l, size_t *k, size_t i) {
    for (; *k < l->count; ++*k) {
        const pj_str *it = &l->items[*k];
        if (ci_starts(m->s + i, m->n - i, it->s, it->n)) return it->n;
    }
    return 0;
}

static size_t try_header(masker *m, const strlist *l, size_t i) {
    const unsigned char *s = m->s;
    size_t n = m->n, len, k = 0;
    if ((len = marker_at(m, l, &k, i)) != 0) {
        size_t j = i + len, e = j;
        int blank = 1;
        while (e < n && s[e] != '\r' && s[e] != '\n' && s[e] != '"' && s[e] != '\'' && s[e] != '`') {
            if (s[e] != ' ' && s[e] != '\t') blank = 0;
            e++;
        }
        if (!blank) replace(m, j, e, " <redacted>", 1 + REDACTED_LEN);
        return e; /* nothing after the marker: matched, nothing to hide */
    }
    return 0;
}

static size_t try_assignment(masker *m, const strlist *l, size_t i) {
    const unsigned char *s = m->s;
    size_t n = m->n, len;
    for (size_t k = 0; (len = marker_at(m, l, &k, i)) != 0; k++) {
        size_t j = i + len;
        while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
        if (j >= n || (s[j] != '=' && s[j] != ':')) continue;
        j++;
        while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
        if (j >= n) continue;
        unsigned q = s[j];
        if (q == '"' || q == '\'' || q == '`') {
            size_t e = j + 1;
            while (e < n && s[e] != q) e++;
            size_t end = e < n ? e + 1 : n;
            if (e > j + 1) replace(m, j + 1, e, REDACTED, REDACTED_LEN);
            return end; /* an empty quoted value hides nothing */
        }
        size_t e = j;
        while (e < n && !value_stop(s[e])) e++;
        if (e == j) continue;
        replace(m, j, e, REDACTED, REDACTED_LEN);
        return e;
    }
    return 0;
}

/* A marker of l at i, then a run of at least `min` characters of class `cls` (with a digit among
 * them when `need_digit`): the run becomes <redacted>, or marker and run together with `whole`. */
static inline __attribute__((always_inline)) size_t try_marker_run(
    masker *m, const strlist *l, size_t i, int (*cls)(unsigned), size_t min, int need_digit,
    int whole) {
    const unsigned char *s = m->s;
    size_t n = m->n, len;
    for (size_t k = 0; (len = marker_at(m, l, &k, i)) != 0; k++) {
        size_t j = i + len, e = j;
        int digit = 0;
        while (e < n && cls(s[e])) digit |= is_digit(s[e++]);
        if (e - j < min || (need_digit && !digit)) continue;
        replace(m, whole ? i : j, e, REDACTED, REDACTED_LEN);
        return e;
    }
    return 0;
}

/* "bearer " / "basic " and a credential-looking run: the run is masked. */
static size_t try_scheme(masker *m, const pj_jcs_rules *r, size_t i) {
    return try_marker_run(m, &r->l[PJ_RULES_SCHEMES], i, is_cred_char, r->scheme_min, 1, 0);
}

/* A token prefix and a long run of word characters: the whole word is masked. */
static size_t try_token_prefix(masker *m, const pj_jcs_rules *r, size_t i) {
    return try_marker_run(m, &r->l[PJ_RULES_TOKEN_PREFIXES], i, is_word_char, r->prefix_min, 0, 1);
}

static size_t try_aws(masker *m, const pj_jcs_rules *r, size_t i) {
    const strlist *l = &r->l[PJ_RULES_AWS_PREFIX];
    const unsigned char *s = m->s;
    size_t n = m->n;
    for (size_t k = 0; k < l->count; k++) {
        const pj_str *it = &l->items[k];
        if (it->n > n - i || memcmp(s + i, it->s, it->n) != 0) continue;
        size_t j = i + it->n;
        if (r->aws_run > n - j) continue;
        size_t e = j;
        while (e < j + r->aws_run && (is_upper(s[e]) || is_digit(s[e]))) e++;
        if (e < j + r->aws_run || (e < n && is_word_char(s[e]))) continue;
        replace(m, i, e, REDACTED, REDACTED_LEN);
        return e;
    }
    return 0;
}

/* The next URL candidate at or after `from`: the start b of the scheme before a "://" (b >= from,
 * a letter, not preceded by a scheme character); *sep gets the "://" position. SIZE_MAX if none. */
static size_t next_url(const unsigned char *s, size_t n, size_t from, size_t *sep) {
    size_t p = from;
    while (p + 3 <= n) {
        const unsigned char *c = memchr(s + p, ':', n - p);
        if (!c) return SIZE_MAX;
        p = (size_t)(c - s);
        if (p + 3 <= n && s[p + 1] == '/' && s[p + 2] == '/') {
            size_t b = p;
            while (b > 0 && is_scheme_char(s[b - 1])) b--;
            if (b >= from && b < p && is_alpha(s[b])) {
                *sep = p;
                return b;
            }
        }
        p++;
    }
    return SIZE_MAX;
}

static size_t try_url(masker *m, size_t sep) {
    const unsigned char *s = m->s;
    size_t n = m->n, q = sep + 3;
    while (q < n && !url_stop(s[q]) && s[q] != ':') q++;
    if (q >= n || s[q] != ':') return 0;
    size_t ps = ++q;
    while (q < n && !url_stop(s[q])) q++;
    if (q == ps || q >= n || s[q] != '@') return 0;
    replace(m, ps, q, REDACTED, REDACTED_LEN);
    return q + 1;
}

static inline int may_start(const pj_jcs_rules *r, unsigned c0, unsigned c1) {
    unsigned v = lower(c0) << 8 | lower(c1);
    return (r->start2[v >> 3] >> (v & 7)) & 1;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t has_byte(uint64_t w, unsigned c) {
    uint64_t x = w ^ (ONES * c);
    return (x - ONES) & ~x & HIGHS;
}

/* Some item of l, less its last `drop` bytes, ends at s[b) (ASCII-case-insensitively). */
static int item_ends_at(const strlist *l, size_t drop, const unsigned char *s, size_t b) {
    for (size_t k = 0; k < l->count; k++) {
        const pj_str *it = &l->items[k];
        if (it->n < drop) continue;
        size_t len = it->n - drop;
        if (len <= b && ci_starts(s + b - len, len, it->s, len)) return 1;
    }
    return 0;
}

/* A ':' or '=' at s[p] that a rule could use: "://" with an '@' somewhere after it (a URL with
 * a password), or one that ends a header marker or follows an assignment marker (past spaces and
 * tabs). A timestamp's or a plain URL's colon is neither. */
static int separator_may_match(const pj_jcs_rules *r, const unsigned char *s, size_t n, size_t p) {
    if (s[p] == ':' && p + 2 < n && s[p + 1] == '/' && s[p + 2] == '/' &&
        memchr(s + p + 3, '@', n - p - 3) != NULL)
        return 1;
    if (s[p] == ':' && item_ends_at(&r->l[PJ_RULES_HEADERS], 1, s, p)) return 1;
    size_t b = p;
    while (b > 0 && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
    return item_ends_at(&r->l[PJ_RULES_ASSIGNMENTS], 0, s, b);
}

/* The prefilter. Header, assignment and URL rules need a ':' or '=' that separator_may_match
 * accepts; PEM blocks and the token prefixes need '-' or '_'; the scheme rule needs "bearer " or
 * "basic " (a space after the word); an AWS key id needs its prefix ("AKIA"). A string with none
 * of these costs one scan, 8 bytes at a time, and is kept as it is without trying any rule. */
static int may_hold_secret(const pj_jcs_rules *r, const unsigned char *s, size_t n) {
    size_t i = 0;
    uint64_t spaces = 0, seps = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (has_byte(w, '-') | has_byte(w, '_')) return 1;
        seps |= has_byte(w, ':') | has_byte(w, '=');
        spaces |= has_byte(w, ' ');
    }
    for (; i < n; i++) {
        unsigned c = s[i];
        if (c == '-' || c == '_') return 1;
        seps |= (c == ':' || c == '=');
        spaces |= (c == ' ');
    }
    if (seps) {
        for (size_t p = 0; p < n; p++)
            if ((s[p] == ':' || s[p] == '=') && separator_may_match(r, s, n, p)) return 1;
    }
    if (spaces) {
        const strlist *l = &r->l[PJ_RULES_SCHEMES];
        for (const unsigned char *sp = s; (sp = memchr(sp, ' ', n - (size_t)(sp - s))) != NULL; sp++) {
            size_t end = (size_t)(sp - s) + 1; /* the markers end with the space */
            for (size_t k = 0; k < l->count; k++)
                if (l->items[k].n <= end && ci_starts(sp + 1 - l->items[k].n, l->items[k].n,
                                                      l->items[k].s, l->items[k].n))
                    return 1;
        }
    }
    const strlist *aws = &r->l[PJ_RULES_AWS_PREFIX];
    for (size_t k = 0; k < aws->count; k++) {
        const pj_str *it = &aws->items[k];
        for (size_t p = 0; p + it->n <= n; p++) {
            const unsigned char *a = memchr(s + p, it->s[0], n - it->n + 1 - p);
            if (!a) break;
            p = (size_t)(a - s);
            if (memcmp(a, it->s, it->n) == 0) return 1;
        }
    }
    return 0;
}

/* Mask the secrets of s in place (rules v2) into out; 1 when the result differs from s. */
static int mask_text(const pj_jcs_rules *r, const unsigned char *s, size_t n, pj_buf *out) {
    if (!may_hold_secret(r, s, n)) return 0;
    masker m = {s, n, 0, out};
    out->len = 0;
    size_t sep = 0, ub = n >= 3 ? next_url(s, n, 0, &sep) : SIZE_MAX;
    size_t i = 0;
    while (i + 2 < n) {
        if (ub < i) ub = next_url(s, n, i, &sep);
        if (i != ub && !may_start(r, s[i], s[i + 1])) {
            i++;
            continue;
        }
        size_t e = try_pem(&m, i);
        if (!e) e = try_header(&m, &r->l[PJ_RULES_HEADERS], i);
        if (!e) e = try_assignment(&m, &r->l[PJ_RULES_ASSIGNMENTS], i);
        if (!e) e = try_scheme(&m, r, i);
        if (!e && (i == 0 || !is_word_char(s[i - 1]))) {
            e = try_token_prefix(&m, r, i);
            if (!e) e = try_aws(&m, r, i);
        }
        if (!e && i == ub) e = try_url(&m, sep);
        i = e ? e : i + 1;
    }
    if (m.last == 0) return 0; /* nothing replaced (only markers with nothing to hide) */
    pj_buf_put(out, s + m.last, n - m.last);
    if (out->failed) return 1; /* the caller reports out of memory */
    return !(out->len == n && memcmp(out->data, s, n) == 0);
}

int pj_redact_text(const pj_jcs_rules *r, const unsigned char *s, size_t n, pj_buf *out) {
    if (r->l[PJ_RULES_EXTRA_MARKERS].count && contains_any(&r->l[PJ_RULES_EXTRA_MARKERS], s, n)) {
        if (n == REDACTED_LEN && memcmp(s, REDACTED, REDACTED_LEN) == 0) return 0;
        out->len = 0;
        pj_buf_put(out, REDACTED, REDACTED_LEN);
        return 1;
    }
    return mask_text(r, s, n, out);
}
