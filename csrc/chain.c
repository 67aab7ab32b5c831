/* Hash chain v1 over a batch of rows given as columns (see chain.h); the reference is
 * kernels/pure_chain.py.
 *
 * envelope = {"actor":..,"channel":..,"device_id":..,"event_id":..,"kind":..,"payload":<payload_json>,
 *             "principal":..,"run_id":..,"seq":N,"session_id":..,"timestamp_unix_ms":N}
 * preimage = prev_hash "\n" envelope;  hash = lowercase hex SHA-256(preimage).
 *
 * The eight text fields are strings or NULL (written "null"), payload_json is spliced raw (it is
 * already canonical), seq and timestamp_unix_ms are int64. No Python API: this file runs on
 * buffers only, with the GIL released by cffi for the whole call. */
#include "chain.h"

#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "jstr.h"
#include "sha256.h"

/* Text columns, in the order the caller packs them (CHAIN_FIELDS without the ints, then
 * VERIFY_FIELDS' two extra ones), and the CHAIN_FIELDS / VERIFY_FIELDS index of each. */
enum { C_EVENT_ID, C_KIND, C_ACTOR, C_SESSION_ID, C_RUN_ID, C_PRINCIPAL, C_DEVICE_ID, C_CHANNEL,
       C_PAYLOAD, C_HASH, C_PREV };
static const int FIELD_OF[PJ_VERIFY_TEXT_COLUMNS] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12};
enum { F_SEQ = 0, F_TS = 9 };

/* ---- columns: NUL-ended values, 0x01 for NULL --------------------------------------------------- */

typedef struct {
    const char *next[PJ_VERIFY_TEXT_COLUMNS]; /* each column's next value */
} columns;

/* One row's text values: NULL data for a NULL value. */
typedef struct {
    const char *s[PJ_VERIFY_TEXT_COLUMNS];
    size_t len[PJ_VERIFY_TEXT_COLUMNS];
} row_text;

/* Checks that each column holds exactly n NUL-ended values. On a bad column sets *field, and
 * *row to its first missing value (or leaves it -1 when the column has bytes left over). */
static int columns_init(columns *c, int ncols, size_t n, const char *const *text,
                        const size_t *text_len, int64_t *row, int *field) {
    for (int col = 0; col < ncols; col++) {
        const char *p = text[col], *end = p ? p + text_len[col] : NULL;
        c->next[col] = p;
        for (size_t i = 0; i < n; i++) {
            const char *nul = p && p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
            if (!nul) {
                *row = (int64_t)i;
                *field = FIELD_OF[col];
                return PJ_CHAIN_BAD_LAYOUT;
            }
            p = nul + 1;
        }
        if (p != end) {
            *field = FIELD_OF[col];
            return PJ_CHAIN_BAD_LAYOUT;
        }
    }
    return PJ_CHAIN_OK;
}

/* The next row's values (columns_init has checked that each one ends with a NUL). */
static void columns_next(columns *c, int ncols, row_text *r) {
    for (int col = 0; col < ncols; col++) {
        const char *v = c->next[col];
        size_t len = strlen(v);
        c->next[col] = v + len + 1;
        if (len == 1 && v[0] == '\x01') {
            r->s[col] = NULL;
            r->len[col] = 0;
        } else {
            r->s[col] = v;
            r->len[col] = len;
        }
    }
}

/* ---- envelope --------------------------------------------------------------------------------- */

#define LIT(b, s) pj_buf_put((b), (s), sizeof(s) - 1)

/* A text field: a JSON string, or null. Returns 0 or PJ_CHAIN_BAD_TEXT / PJ_CHAIN_NO_MEMORY. */
static int put_text(pj_buf *b, const row_text *r, int col) {
    if (!r->s[col]) {
        LIT(b, "null");
        return 0;
    }
    if (pj_jstr_write(b, r->s[col], r->len[col]) == 0) return 0;
    return b->failed ? PJ_CHAIN_NO_MEMORY : PJ_CHAIN_BAD_TEXT;
}

static void put_int(pj_buf *b, int64_t v) {
    char tmp[24];
    size_t i = sizeof tmp;
    uint64_t u = v < 0 ? 0ULL - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--i] = '-';
    pj_buf_put(b, tmp + i, sizeof tmp - i);
}

/* Write the canonical envelope of one row into b (emptied first); on a bad field returns its
 * status and sets *field. */
static int put_envelope(pj_buf *b, const row_text *r, int64_t seq, int64_t ts, int *field) {
    static const int ORDER[] = {C_ACTOR, C_CHANNEL, C_DEVICE_ID, C_EVENT_ID, C_KIND};
    static const char *const NAMES[] = {"{\"actor\":", ",\"channel\":", ",\"device_id\":",
                                        ",\"event_id\":", ",\"kind\":"};
    b->len = 0;
    int rc;
#define TEXT(col)                             \
    if ((rc = put_text(b, r, (col))) != 0) {  \
        *field = FIELD_OF[(col)];             \
        return rc;                            \
    }
    for (size_t k = 0; k < sizeof ORDER / sizeof ORDER[0]; k++) {
        pj_buf_put(b, NAMES[k], strlen(NAMES[k]));
        TEXT(ORDER[k]);
    }
    LIT(b, ",\"payload\":");
    if (!r->s[C_PAYLOAD]) {
        *field = FIELD_OF[C_PAYLOAD];
        return PJ_CHAIN_BAD_TYPE;
    }
    pj_buf_put(b, r->s[C_PAYLOAD], r->len[C_PAYLOAD]);
    LIT(b, ",\"principal\":");
    TEXT(C_PRINCIPAL);
    LIT(b, ",\"run_id\":");
    TEXT(C_RUN_ID);
    LIT(b, ",\"seq\":");
    put_int(b, seq);
    LIT(b, ",\"session_id\":");
    TEXT(C_SESSION_ID);
    LIT(b, ",\"timestamp_unix_ms\":");
    put_int(b, ts);
    pj_buf_putc(b, '}');
#undef TEXT
    return b->failed ? PJ_CHAIN_NO_MEMORY : 0;
}

static void hash_hex(const char *prefix, size_t prefix_len, const char *env, size_t env_len,
                     char out[64]) {
    pj_sha256_ctx ctx;
    uint8_t digest[32];
    pj_sha256_init(&ctx);
    pj_sha256_update(&ctx, prefix, prefix_len);
    pj_sha256_update(&ctx, "\n", 1);
    pj_sha256_update(&ctx, env, env_len);
    pj_sha256_final(&ctx, digest);
    pj_sha256_hex(digest, out);
}

/* A batch being hashed or verified: its columns, the envelope buffer, and the hash the next row
 * chains from. */
typedef struct {
    columns cols;
    pj_buf env;
    const char *prev;
    size_t prev_len;
} batch;

/* What both entry points start with: the arguments are there, then the columns' layout. A batch
 * is closed with batch_close whatever batch_open returned. */
static int batch_open(batch *b, int ncols, size_t n, const char *prev, size_t prev_len,
                      const int64_t *seq, const int64_t *ts, const char *const *text,
                      const size_t *text_len, int64_t *row, int *field) {
    pj_buf_init(&b->env);
    b->prev = prev ? prev : "";
    b->prev_len = prev_len;
    if ((n && !(seq && ts && text && text_len)) || (prev_len && !prev)) return PJ_CHAIN_BAD_ARGS;
    return n ? columns_init(&b->cols, ncols, n, text, text_len, row, field) : PJ_CHAIN_OK;
}

static void batch_close(batch *b) { pj_buf_free(&b->env); }

/* Row i's envelope (of a chain row's columns) into b->env; on a bad field sets *err_index to i
 * and returns its status. */
static int batch_envelope(batch *b, size_t i, const int64_t *seq, const int64_t *ts,
                          int64_t *err_index, int *err_field) {
    row_text r;
    columns_next(&b->cols, PJ_CHAIN_TEXT_COLUMNS, &r);
    int rc = put_envelope(&b->env, &r, seq[i], ts[i], err_field);
    if (rc) *err_index = (int64_t)i;
    return rc;
}

/* ---- chain_hashes (and the leaf hashes of the same envelopes) ------------------------------- */

static void leaf_hash(const char *env, size_t env_len, uint8_t out[32]) {
    static const uint8_t leaf_prefix = 0x00;
    pj_sha256_ctx ctx;
    pj_sha256_init(&ctx);
    pj_sha256_update(&ctx, &leaf_prefix, 1);
    pj_sha256_update(&ctx, env, env_len);
    pj_sha256_final(&ctx, out);
}

int pj_chain_hashes_leaves(const char *prev, size_t prev_len, size_t n, const int64_t *seq,
                           const int64_t *ts, const char *const *text, const size_t *text_len,
                           char *out_hex, size_t out_hex_len, uint8_t *leaf_out,
                           size_t leaf_count, int64_t *err_index, int *err_field) {
    *err_index = -1;
    *err_field = -1;
    if (n && (!out_hex || out_hex_len / 64 < n)) return PJ_CHAIN_BAD_ARGS;
    if (leaf_count > n || (leaf_count && !leaf_out)) return PJ_CHAIN_BAD_ARGS;
    batch b;
    int rc = batch_open(&b, PJ_CHAIN_TEXT_COLUMNS, n, prev, prev_len, seq, ts, text, text_len,
                        err_index, err_field);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = batch_envelope(&b, i, seq, ts, err_index, err_field);
        if (rc) break;
        char *dst = out_hex + 64 * i;
        hash_hex(b.prev, b.prev_len, b.env.data, b.env.len, dst);
        if (i < leaf_count) leaf_hash(b.env.data, b.env.len, leaf_out + 32 * i);
        b.prev = dst;
        b.prev_len = 64;
    }
    batch_close(&b);
    return rc;
}

int pj_chain_hashes(const char *prev, size_t prev_len, size_t n, const int64_t *seq,
                    const int64_t *ts, const char *const *text, const size_t *text_len, char *out_hex,
                    size_t out_hex_len, int64_t *err_index, int *err_field) {
    return pj_chain_hashes_leaves(prev, prev_len, n, seq, ts, text, text_len, out_hex, out_hex_len,
                                  NULL, 0, err_index, err_field);
}

int pj_chain_row(const char *prev, size_t prev_len, int64_t seq, int64_t ts, const char *packed,
                 size_t packed_len, char *out, size_t out_len, int *err_field) {
    int64_t err_index;
    int field = -1;
    if (!err_field) err_field = &field; /* optional */
    *err_field = -1;
    if (!out || out_len < 96 || !packed) return PJ_CHAIN_BAD_ARGS;
    const char *cols[PJ_CHAIN_TEXT_COLUMNS];
    size_t lens[PJ_CHAIN_TEXT_COLUMNS];
    const char *p = packed, *end = packed + packed_len;
    for (int c = 0; c < PJ_CHAIN_TEXT_COLUMNS; c++) {
        const char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
        if (!nul) {
            *err_field = FIELD_OF[c];
            return PJ_CHAIN_BAD_LAYOUT;
        }
        cols[c] = p;
        lens[c] = (size_t)(nul + 1 - p);
        p = nul + 1;
    }
    if (p != end) { /* a value held a NUL: more values than fields */
        *err_field = FIELD_OF[PJ_CHAIN_TEXT_COLUMNS - 1];
        return PJ_CHAIN_BAD_LAYOUT;
    }
    return pj_chain_hashes_leaves(prev, prev_len, 1, &seq, &ts, cols, lens, out, 64,
                                  (uint8_t *)out + 64, 1, &err_index, err_field);
}

/* ---- leaf_hashes (RFC 9162) ------------------------------------------------------------------ */

int pj_chain_leaf_hashes(size_t n, const int64_t *seq, const int64_t *ts, const char *const *text,
                         const size_t *text_len, uint8_t *out, size_t out_len, int64_t *err_index,
                         int *err_field) {
    *err_index = -1;
    *err_field = -1;
    if (n && (!out || out_len / 32 < n)) return PJ_CHAIN_BAD_ARGS;
    batch b;
    int rc = batch_open(&b, PJ_CHAIN_TEXT_COLUMNS, n, NULL, 0, seq, ts, text, text_len, err_index,
                        err_field);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = batch_envelope(&b, i, seq, ts, err_index, err_field);
        if (rc) break;
        leaf_hash(b.env.data, b.env.len, out + 32 * i);
    }
    batch_close(&b);
    return rc;
}

/* ---- verify_chain ----------------------------------------------------------------------------- */

static int is_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

/* One row's checks, in the reference's order (kernels/pure_chain.py verify_chain): seq_gap,
 * unchained_row, prev_link_mismatch, hash_mismatch. Returns the finding (PJ_VERIFY_*) or 0; a
 * packing error (invalid UTF-8, no memory) goes to *rc with its field. On a good row b->env holds
 * its envelope and the chain moves on to its hash. */
static int verify_row(batch *b, const row_text *r, int64_t seq, int64_t expect, int64_t ts,
                      int *p_ascii, int *rc, int *err_field) {
    const char *h = r->s[C_HASH];
    if (seq != expect) return PJ_VERIFY_SEQ_GAP;
    if (!h) return PJ_VERIFY_UNCHAINED_ROW;
    if (!r->s[C_PREV] || r->len[C_PREV] != b->prev_len ||
        memcmp(r->s[C_PREV], b->prev, b->prev_len) != 0)
        return PJ_VERIFY_PREV_LINK_MISMATCH;
    if (r->len[C_HASH] != 64 || !is_ascii(h, 64) || !*p_ascii)
        return PJ_VERIFY_HASH_MISMATCH; /* cannot equal a computed hash */
    int field = -1;
    int e = put_envelope(&b->env, r, seq, ts, &field);
    if (e == PJ_CHAIN_BAD_TYPE) return PJ_VERIFY_HASH_MISMATCH; /* a NULL payload */
    if (e) {
        *rc = e;
        *err_field = field;
        return 0;
    }
    char hex[64];
    hash_hex(b->prev, b->prev_len, b->env.data, b->env.len, hex);
    if (memcmp(hex, h, 64) != 0) return PJ_VERIFY_HASH_MISMATCH;
    b->prev = h;
    b->prev_len = 64;
    *p_ascii = 1;
    return 0;
}

int pj_chain_verify(const char *prev, size_t prev_len, int64_t first_seq, size_t n,
                    const int64_t *seq, const int64_t *ts, const char *const *text,
                    const size_t *text_len, int64_t *bad_index, int *reason, int *err_field) {
    *bad_index = -1;
    *reason = 0;
    *err_field = -1;
    if (n && first_seq >= 0 && (uint64_t)n - 1 > (uint64_t)(INT64_MAX - first_seq))
        return PJ_CHAIN_BAD_ARGS; /* seq would pass int64 */
    batch b;
    int rc = batch_open(&b, PJ_VERIFY_TEXT_COLUMNS, n, prev, prev_len, seq, ts, text, text_len,
                        bad_index, err_field);
    int p_ascii = is_ascii(b.prev, b.prev_len); /* b.prev: the previous row's stored hash */
    for (size_t i = 0; i < n && !rc; i++) {
        row_text r;
        columns_next(&b.cols, PJ_VERIFY_TEXT_COLUMNS, &r);
        int found = verify_row(&b, &r, seq[i], first_seq + (int64_t)i, ts[i], &p_ascii, &rc,
                               err_field);
        if (rc) *bad_index = (int64_t)i;
        if (found) {
            *reason = found;
            *bad_index = (int64_t)i;
            break;
        }
    }
    batch_close(&b);
    return rc;
}

/* An int value as SQLite writes an INTEGER: "0" or an optional '-' and digits without a leading
 * zero, within int64. Anything else (a REAL such as "1.0", a string, null) returns -1. */
static int parse_int(const char *s, size_t len, int64_t *out) {
    size_t i;
    int neg = len && s[0] == '-';
    i = (size_t)neg;
    if (i == len || len - i > 19 || (s[i] == '0' && len - i > 1) || (neg && s[i] == '0'))
        return -1;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg) return -1;
    *out = neg ? -(int64_t)(v - 1) - 1 : (int64_t)v; /* v - 1 fits: -2**63 stays defined */
    return 0;
}

/* ---- verify_joined: a range as SQLite's aggregates hand it out ------------------------------ */

/* A JSON array column: its next token starts at p, the array's closing ']' is at end. */
typedef struct {
    const char *p, *end;
} json_col;

static int json_col_open(json_col *c, const char *s, size_t len) {
    if (!s || len < 2 || s[0] != '[' || s[len - 1] != ']') return -1;
    c->p = s + 1;
    c->end = s + len - 1;
    return 0;
}

/* Steps over the ',' before every token but the first; -1 when it is missing. */
static int json_col_sep(json_col *c, size_t i) {
    if (i == 0) return 0;
    if (c->p >= c->end || *c->p != ',') return -1;
    c->p++;
    return 0;
}

/* The next token of a text column, as the envelope wants it: `null`, or a JSON string written
 * exactly as RFC 8785 writes it (the short escapes \" \\ \b \f \n \r \t, \u00xx in lowercase for
 * the other controls, nothing else escaped, valid UTF-8). Returns its length, or 0 when the next
 * token is anything else (a number: a non-text value; an escape RFC 8785 would not write). */
static size_t json_text_token(const json_col *c) {
    const char *p = c->p, *end = c->end;
    size_t avail = (size_t)(end - p);
    if (avail >= 4 && memcmp(p, "null", 4) == 0) return 4;
    if (!avail || *p != '"') return 0;
    size_t i = 1;
    for (;;) {
        if (i >= avail) return 0;
        unsigned char ch = (unsigned char)p[i];
        if (ch == '"') break;
        if (ch < 0x20) return 0;
        if (ch != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= avail) return 0;
        char e = p[i + 1];
        if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
            i += 2;
            continue;
        }
        if (e != 'u' || avail - i < 6 || p[i + 2] != '0' || p[i + 3] != '0') return 0;
        char h = p[i + 4], l = p[i + 5];
        int lo = l >= '0' && l <= '9' ? l - '0' : (l >= 'a' && l <= 'f' ? l - 'a' + 10 : -1);
        if ((h != '0' && h != '1') || lo < 0) return 0;
        int v = (h - '0') * 16 + lo;
        if (v == 8 || v == 9 || v == 10 || v == 12 || v == 13) return 0; /* has a short form */
        i += 6;
    }
    size_t len = i + 1;
    return pj_utf8_valid_prefix(p, len) == len ? len : 0;
}

/* The next token of an int column: an INTEGER as SQLite writes it; -1 for anything else. */
static int json_int_token(json_col *c, int64_t *out) {
    const char *p = c->p;
    while (c->p < c->end && *c->p != ',') c->p++;
    return parse_int(p, (size_t)(c->p - p), out);
}

/* The payload column: n raw texts separated by single NUL bytes. */
typedef struct {
    const char *p, *end;
    int done;
} nul_col;

static int nul_col_next(nul_col *c, const char **s, size_t *len) {
    if (c->done) return -1;
    const char *nul = c->p < c->end ? memchr(c->p, '\0', (size_t)(c->end - c->p)) : NULL;
    if (!nul) {
        nul = c->end;
        c->done = 1;
    }
    *s = c->p;
    *len = (size_t)(nul - c->p);
    c->p = nul < c->end ? nul + 1 : c->end;
    return 0;
}

/* Text columns in the envelope's order, and their VERIFY_FIELDS index. */
static const int ENV_TEXT[] = {C_ACTOR, C_CHANNEL, C_DEVICE_ID, C_EVENT_ID, C_KIND};
static const char *const ENV_NAMES[] = {"{\"actor\":", ",\"channel\":", ",\"device_id\":",
                                        ",\"event_id\":", ",\"kind\":"};

int pj_chain_verify_joined(const char *prev, size_t prev_len, int64_t first_seq, size_t n,
                           const char *const *cols, const size_t *col_len, uint8_t *leaf_out,
                           size_t leaf_count, int64_t *bad_index, int *reason, int *err_field) {
    *bad_index = -1;
    *reason = 0;
    *err_field = -1;
    if (!cols || !col_len || (prev_len && !prev) || leaf_count > n || (leaf_count && !leaf_out))
        return PJ_CHAIN_BAD_ARGS;
    if (n && first_seq >= 0 && (uint64_t)n - 1 > (uint64_t)(INT64_MAX - first_seq))
        return PJ_CHAIN_BAD_ARGS;
    if (!n) return PJ_CHAIN_OK;
    json_col jc[PJ_VERIFY_COLUMNS];
    nul_col payload = {NULL, NULL, 0};
    for (int col = 0; col < PJ_VERIFY_COLUMNS; col++) {
        if (!cols[col] && col_len[col]) return PJ_CHAIN_BAD_ARGS;
        if (col == 10) {
            if (!cols[col]) return PJ_CHAIN_BAD_ARGS;
            payload.p = cols[col];
            payload.end = cols[col] + col_len[col];
        } else if (json_col_open(&jc[col], cols[col], col_len[col])) {
            *err_field = col;
            return PJ_CHAIN_BAD_LAYOUT;
        }
    }
    pj_buf env;
    pj_buf_init(&env);
    const char *p = prev ? prev : "";
    size_t p_len = prev_len;
    int p_ascii = is_ascii(p, p_len);
    int rc = PJ_CHAIN_OK;
    size_t tok[PJ_VERIFY_COLUMNS];
    for (size_t i = 0; i < n && !rc && !*reason; i++) {
        int64_t seq = 0, ts = 0;
        const char *pl = NULL;
        size_t pl_len = 0;
        *bad_index = (int64_t)i;
        for (int col = 0; col < PJ_VERIFY_COLUMNS && !rc; col++) {
            if (col == 10) {
                if (nul_col_next(&payload, &pl, &pl_len)) rc = PJ_CHAIN_BAD_LAYOUT;
                else if (pj_utf8_valid_prefix(pl, pl_len) != pl_len) rc = PJ_CHAIN_BAD_TEXT;
            } else if (json_col_sep(&jc[col], i)) {
                rc = PJ_CHAIN_BAD_LAYOUT;
            } else if (col == F_SEQ || col == F_TS) {
                if (json_int_token(&jc[col], col == F_SEQ ? &seq : &ts)) rc = PJ_CHAIN_BAD_TYPE;
            } else if ((tok[col] = json_text_token(&jc[col])) == 0) {
                rc = PJ_CHAIN_BAD_TYPE; /* a number, or an escape RFC 8785 would not write */
            } else {
                jc[col].p += tok[col];
            }
            if (rc) *err_field = col;
        }
        if (rc) break;
        /* The checks of verify_row, on tokens: a hash is its string's content. */
        const char *h = jc[11].p - tok[11], *pv = jc[12].p - tok[12];
        if (seq != first_seq + (int64_t)i) {
            *reason = PJ_VERIFY_SEQ_GAP;
        } else if (tok[11] == 4 && h[0] == 'n') {
            *reason = PJ_VERIFY_UNCHAINED_ROW;
        } else if (tok[12] != p_len + 2 || pv[0] != '"' || memcmp(pv + 1, p, p_len) != 0) {
            *reason = PJ_VERIFY_PREV_LINK_MISMATCH;
        } else if (tok[11] != 66 || !is_ascii(h + 1, 64) || !p_ascii) {
            *reason = PJ_VERIFY_HASH_MISMATCH;
        } else {
            env.len = 0;
            for (size_t k = 0; k < sizeof ENV_TEXT / sizeof ENV_TEXT[0]; k++) {
                int col = FIELD_OF[ENV_TEXT[k]];
                pj_buf_put(&env, ENV_NAMES[k], strlen(ENV_NAMES[k]));
                pj_buf_put(&env, jc[col].p - tok[col], tok[col]);
            }
            LIT(&env, ",\"payload\":");
            pj_buf_put(&env, pl, pl_len);
            LIT(&env, ",\"principal\":");
            pj_buf_put(&env, jc[6].p - tok[6], tok[6]);
            LIT(&env, ",\"run_id\":");
            pj_buf_put(&env, jc[5].p - tok[5], tok[5]);
            LIT(&env, ",\"seq\":");
            put_int(&env, seq);
            LIT(&env, ",\"session_id\":");
            pj_buf_put(&env, jc[4].p - tok[4], tok[4]);
            LIT(&env, ",\"timestamp_unix_ms\":");
            put_int(&env, ts);
            pj_buf_putc(&env, '}');
            if (env.failed) {
                rc = PJ_CHAIN_NO_MEMORY;
                break;
            }
            char hex[64];
            hash_hex(p, p_len, env.data, env.len, hex);
            if (memcmp(hex, h + 1, 64) != 0) {
                *reason = PJ_VERIFY_HASH_MISMATCH;
            } else {
                if (i < leaf_count) leaf_hash(env.data, env.len, leaf_out + 32 * i);
                p = h + 1;
                p_len = 64;
                p_ascii = 1;
            }
        }
    }
    if (!rc && !*reason) {
        *bad_index = -1;
        for (int col = 0; col < PJ_VERIFY_COLUMNS && !rc; col++) {
            int left = col == 10 ? !payload.done : jc[col].p != jc[col].end;
            if (left) { /* values left over */
                rc = PJ_CHAIN_BAD_LAYOUT;
                *err_field = col;
            }
        }
    }
    pj_buf_free(&env);
    return rc;
}
