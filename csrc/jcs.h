/* Canonical JSON (RFC 8785) with redaction: JSON text or Python values in, canonical text out.
 *
 * One emitter (string escaping, number formatting, UTF-16 key order, redaction checks) serves two
 * front ends: a strict parser over UTF-8 bytes (pj_jcs_text) and a walker over Python objects
 * through the CPython API (pj_jcs_value). The rules are those of docs/canonical-json.md, and the
 * results match the pure-Python reference byte for byte, errors included. */
#ifndef PJ_JCS_H
#define PJ_JCS_H

#include <stddef.h>
#include <stdint.h>

/* Error codes of JSON text (same numbers as the Python reference). */
#define PJ_JCS_E_UTF8 1
#define PJ_JCS_E_BOM 2
#define PJ_JCS_E_CHAR 3
#define PJ_JCS_E_END 4
#define PJ_JCS_E_TRAILING 5
#define PJ_JCS_E_CONTROL 6
#define PJ_JCS_E_ESCAPE 7
#define PJ_JCS_E_SURROGATE 8
#define PJ_JCS_E_DEPTH 9
#define PJ_JCS_E_INT_RANGE 10
#define PJ_JCS_E_NOT_FINITE 11
#define PJ_JCS_E_DUPLICATE 12
#define PJ_JCS_E_LITERAL 13
#define PJ_JCS_E_NUMBER 14
/* Error codes of Python values. */
#define PJ_JCS_V_TYPE 101
#define PJ_JCS_V_KEY_TYPE 102
#define PJ_JCS_V_KEY_SURROGATE 103
#define PJ_JCS_V_SURROGATE 104
#define PJ_JCS_V_INT_RANGE 105
#define PJ_JCS_V_FLOAT 106
#define PJ_JCS_V_DEPTH 107
/* Out of memory, or bad arguments. */
#define PJ_JCS_NO_MEMORY 200
#define PJ_JCS_TOO_LARGE 201
#define PJ_JCS_SLOW_PATH 202

#include "redact.h"

typedef struct pj_jcs_ctx pj_jcs_ctx;

typedef struct {
    const char *out;      /* canonical text (valid until the next call on the same ctx) */
    size_t out_len;
    int changed;          /* redaction replaced something */
    size_t err_offset;    /* text errors: the offending token [err_offset, err_end) */
    size_t err_end;
    const long long *err_loc; /* value errors: from the root, each level's array index or the
                               * position of the member in its dict's iteration order */
    size_t err_loc_len;
    int err_on_key;           /* value errors: the last err_loc entry is a bad key's position */
    size_t err_index;     /* batches: the item the error is about */
    const char *packed;   /* batches with `pack`: every text NUL-ended, one after the other (a
                           * chain column, chain.h), valid until the next call on the same ctx */
    size_t packed_len;
} pj_jcs_result;

pj_jcs_ctx *pj_jcs_ctx_new(void);
void pj_jcs_ctx_free(pj_jcs_ctx *ctx);


/* Canonicalize JSON text; returns 0 or an error code (details in *res). No GIL needed. */
int pj_jcs_text(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, const char *text, size_t n,
                int redact, pj_jcs_result *res);
/* Canonicalize the Python value `obj` (the address of a PyObject, id() on CPython, kept alive by
 * the caller; passed as an integer so that the call builds no pointer object) and append its
 * text (str) and redaction flag (bool) to the list `out`; takes the GIL. */
int pj_jcs_value(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, uintptr_t obj, int redact,
                 uintptr_t out, pj_jcs_result *res);
/* Canonicalize every item of the Python list `values`, appending each text as a str to the list
 * `texts` and its redaction flag (True/False) to the list `flags`; takes the GIL. With `payloads`,
 * None is written "{}" and str/bytes items are JSON text. max_bytes >= 0 refuses a longer text
 * (PJ_JCS_TOO_LARGE, its size in out_len). Stops at the first bad item (res->err_index). With
 * `pack`, the texts are also written NUL-ended into res->packed: the payload column the chain
 * kernel takes, without a second UTF-8 encoding of every text. */
int pj_jcs_many(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, void *values, int redact, int payloads,
                long long max_bytes, int pack, void *texts, void *flags, pj_jcs_result *res);
/* Parse JSON lines (a list of bytes), each an event object, into 11 column lists: kind, actor,
 * event_id, session_id, run_id, principal, device_id, channel, timestamp_unix_ms (str, int or
 * None; actor "system" when absent), canonical payload str, redaction flag. Only the plain case
 * is handled: anything unusual (an error, an unknown or repeated key, a non-str field, a payload
 * over max_bytes) returns PJ_JCS_SLOW_PATH and the caller uses its reference path. GIL taken.
 * `pack`: the payloads also into res->packed, as pj_jcs_many. */
int pj_jcs_event_lines(pj_jcs_ctx *ctx, const pj_jcs_rules *rules, void *lines, int redact,
                       long long max_bytes, int pack, void *columns, pj_jcs_result *res);

#endif
