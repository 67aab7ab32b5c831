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
    for (size_t i = 0; i < n && !*reason && !rc; i++) {
        row_text r;
        columns_next(&b.cols, PJ_VERIFY_TEXT_COLUMNS, &r);
        const char *h = r.s[C_HASH];
        int found = 0;
        if (seq[i] != first_seq + (int64_t)i) {
            found = PJ_VERIFY_SEQ_GAP;
        } else if (!h) {
            found = PJ_VERIFY_UNCHAINED_ROW;
        } else if (!r.s[C_PREV] || r.len[C_PREV] != b.prev_len ||
                   memcmp(r.s[C_PREV], b.prev, b.prev_len) != 0) {
            found = PJ_VERIFY_PREV_LINK_MISMATCH;
        } else if (r.len[C_HASH] != 64 || !is_ascii(h, 64) || !p_ascii) {
            found = PJ_VERIFY_HASH_MISMATCH; /* cannot equal a computed hash */
        } else {
            int field = -1;
            int e = put_envelope(&b.env, &r, seq[i], ts[i], &field);
            if (e == PJ_CHAIN_BAD_TYPE) {
                found = PJ_VERIFY_HASH_MISMATCH; /* a NULL payload: the row cannot hash right */
            } else if (e) {
                rc = e;
                *bad_index = (int64_t)i;
                *err_field = field;
                break;
            } else {
                char hex[64];
                hash_hex(b.prev, b.prev_len, b.env.data, b.env.len, hex);
                if (memcmp(hex, h, 64) != 0) found = PJ_VERIFY_HASH_MISMATCH;
            }
        }
        if (found) {
            *reason = found;
            *bad_index = (int64_t)i;
            break;
        }
        b.prev = h;
        b.prev_len = 64;
        p_ascii = 1;
    }
    batch_close(&b);
    return rc;
}
