/* Hash chain v1 over a batch of rows (see chain.h); the reference is kernels/pure_chain.py.
 *
 * envelope = {"actor":..,"channel":..,"device_id":..,"event_id":..,"kind":..,"payload":<payload_json>,
 *             "principal":..,"run_id":..,"seq":N,"session_id":..,"timestamp_unix_ms":N}
 * preimage = prev_hash "\n" envelope;  hash = lowercase hex SHA-256(preimage).
 *
 * Types are strict and the same as the reference: the eight text fields are str or None, payload_json
 * is str (spliced raw: it is already canonical), seq and timestamp_unix_ms are int (not bool). */
/* The module is built as a stable-ABI (abi3) extension, so this file keeps to the limited API of
 * the oldest Python supported (3.10), as cffi's own wrapper does (not in debug builds of Python). */
#define PY_SSIZE_T_CLEAN
#include <pyconfig.h>
#if !defined(Py_DEBUG) && !defined(Py_TRACE_REFS) && !defined(Py_REF_DEBUG) && !defined(Py_LIMITED_API)
#define Py_LIMITED_API 0x030A0000
#endif
#include <Python.h>

#include "chain.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jstr.h"
#include "sha256.h"

/* Field indexes of CHAIN_FIELDS / VERIFY_FIELDS. */
enum {
    F_SEQ, F_EVENT_ID, F_KIND, F_ACTOR, F_SESSION_ID, F_RUN_ID, F_PRINCIPAL, F_DEVICE_ID,
    F_CHANNEL, F_TS, F_PAYLOAD, F_HASH, F_PREV, N_CHAIN_FIELDS = F_HASH, N_VERIFY_FIELDS = F_PREV + 1
};

/* A chunk is hashed with the GIL released once its envelopes are written: big enough that the
 * release costs nothing, small enough that the envelopes are still in cache when hashed and the
 * buffer stays bounded for huge batches. */
#define CHUNK_ROWS 4096
#define CHUNK_BYTES ((size_t)1 << 20)

/* ---- envelope ------------------------------------------------------------------------------- */

#define LIT(b, s) pj_buf_put((b), (s), sizeof(s) - 1)

/* A text field: str (escaped) or, when nullable, None. Returns 0 or PJ_CHAIN_BAD_*. */
static int put_text(pj_buf *b, PyObject *o, int nullable) {
    if (o == Py_None && nullable) {
        LIT(b, "null");
        return 0;
    }
    if (!PyUnicode_Check(o)) return PJ_CHAIN_BAD_TYPE;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s) {
        PyErr_Clear(); /* a lone surrogate has no UTF-8 form */
        return PJ_CHAIN_BAD_TEXT;
    }
    pj_jstr_write_valid(b, s, (size_t)n); /* UTF-8 from a str is valid by construction */
    return 0;
}

/* payload_json: canonical text already, spliced raw. */
static int put_raw(pj_buf *b, PyObject *o) {
    if (!PyUnicode_Check(o)) return PJ_CHAIN_BAD_TYPE;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s) {
        PyErr_Clear();
        return PJ_CHAIN_BAD_TEXT;
    }
    pj_buf_put(b, s, (size_t)n);
    return 0;
}

static int is_int(PyObject *o) { return PyLong_Check(o) && !PyBool_Check(o); }

/* An int in decimal, of any size (as Python's %d writes it). */
static int put_int(pj_buf *b, PyObject *o) {
    if (!is_int(o)) return PJ_CHAIN_BAD_TYPE;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) {
        PyObject *t = PyNumber_ToBase(o, 10);
        Py_ssize_t n;
        const char *s = t ? PyUnicode_AsUTF8AndSize(t, &n) : NULL;
        if (!s) {
            PyErr_Clear();
            Py_XDECREF(t);
            return PJ_CHAIN_NO_MEMORY;
        }
        pj_buf_put(b, s, (size_t)n);
        Py_DECREF(t);
        return 0;
    }
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return PJ_CHAIN_NO_MEMORY;
    }
    char tmp[24];
    size_t i = sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--i] = '-';
    pj_buf_put(b, tmp + i, sizeof tmp - i);
    return 0;
}

/* Append the canonical envelope of row f[0..N_CHAIN_FIELDS); on a bad field returns its status
 * and sets *field (the buffer then holds a partial envelope). */
static int put_envelope(pj_buf *b, PyObject *const *f, int *field) {
    int rc;
#define STEP(call, idx)        \
    if ((rc = (call)) != 0) {  \
        *field = (idx);        \
        return rc;             \
    }
    LIT(b, "{\"actor\":");
    STEP(put_text(b, f[F_ACTOR], 1), F_ACTOR);
    LIT(b, ",\"channel\":");
    STEP(put_text(b, f[F_CHANNEL], 1), F_CHANNEL);
    LIT(b, ",\"device_id\":");
    STEP(put_text(b, f[F_DEVICE_ID], 1), F_DEVICE_ID);
    LIT(b, ",\"event_id\":");
    STEP(put_text(b, f[F_EVENT_ID], 1), F_EVENT_ID);
    LIT(b, ",\"kind\":");
    STEP(put_text(b, f[F_KIND], 1), F_KIND);
    LIT(b, ",\"payload\":");
    STEP(put_raw(b, f[F_PAYLOAD]), F_PAYLOAD);
    LIT(b, ",\"principal\":");
    STEP(put_text(b, f[F_PRINCIPAL], 1), F_PRINCIPAL);
    LIT(b, ",\"run_id\":");
    STEP(put_text(b, f[F_RUN_ID], 1), F_RUN_ID);
    LIT(b, ",\"seq\":");
    STEP(put_int(b, f[F_SEQ]), F_SEQ);
    LIT(b, ",\"session_id\":");
    STEP(put_text(b, f[F_SESSION_ID], 1), F_SESSION_ID);
    LIT(b, ",\"timestamp_unix_ms\":");
    STEP(put_int(b, f[F_TS]), F_TS);
    pj_buf_putc(b, '}');
#undef STEP
    return b->failed ? PJ_CHAIN_NO_MEMORY : 0;
}

/* Borrowed references to the first `n` items of tuple t (which holds at least n). */
static void tuple_items(PyObject *t, PyObject **f, int n) {
    for (int k = 0; k < n; k++) f[k] = PyTuple_GetItem(t, k);
}

/* The row as a tuple (a new reference) holding at least `need` fields, or NULL. Any sequence but
 * text and bytes is accepted (sqlite3.Row too), as the reference does. */
static PyObject *row_tuple(PyObject *row, Py_ssize_t need) {
    PyObject *t;
    if (PyTuple_Check(row)) {
        Py_INCREF(row);
        t = row;
    } else if (PyList_Check(row) || (PySequence_Check(row) && !PyUnicode_Check(row) &&
                                     !PyBytes_Check(row) && !PyByteArray_Check(row))) {
        t = PySequence_Tuple(row);
        if (!t) {
            PyErr_Clear();
            return NULL;
        }
    } else {
        return NULL;
    }
    if (PyTuple_Size(t) < need) {
        Py_DECREF(t);
        return NULL;
    }
    return t;
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

/* ---- chain_hashes ------------------------------------------------------------------------- */

int pj_chain_hashes(const char *prev, size_t prev_len, void *rows_addr, void *out_addr, char *out_hex,
                    size_t out_hex_len, int64_t *err_index, int *err_field) {
    PyGILState_STATE gil = PyGILState_Ensure();
    int rc = PJ_CHAIN_OK;
    pj_buf buf;
    pj_buf_init(&buf);
    size_t *ends = NULL;
    char *hexes = NULL;
    *err_index = -1;
    *err_field = -1;

    PyObject *out = (PyObject *)out_addr;
    PyObject *rows = PySequence_Tuple((PyObject *)rows_addr);
    if (!rows) {
        PyErr_Clear();
        rc = PJ_CHAIN_BAD_ARGS;
        goto done;
    }
    Py_ssize_t n = PyTuple_Size(rows);
    if (out ? !PyList_Check(out) : (!out_hex || out_hex_len / 64 < (size_t)n)) {
        rc = PJ_CHAIN_BAD_ARGS;
        goto done;
    }
    if (n == 0) goto done;
    size_t cap = (size_t)n < CHUNK_ROWS ? (size_t)n : CHUNK_ROWS;
    ends = (size_t *)malloc(cap * sizeof *ends);
    hexes = out ? (char *)malloc(cap * 64) : NULL;
    if (!ends || (out && !hexes)) {
        rc = PJ_CHAIN_NO_MEMORY;
        goto done;
    }
    char last[64]; /* the previous row's hex hash, the next prefix */
    for (Py_ssize_t i0 = 0; i0 < n;) {
        /* Envelopes of rows i0 .. i0+m under the GIL. */
        size_t m = 0;
        buf.len = 0;
        while (i0 + (Py_ssize_t)m < n && m < cap && buf.len < CHUNK_BYTES) {
            Py_ssize_t i = i0 + (Py_ssize_t)m;
            PyObject *t = row_tuple(PyTuple_GetItem(rows, i), N_CHAIN_FIELDS);
            if (!t) {
                rc = PJ_CHAIN_BAD_ROW;
                *err_index = i;
                goto done;
            }
            int field = -1;
            PyObject *f[N_CHAIN_FIELDS];
            tuple_items(t, f, N_CHAIN_FIELDS);
            rc = put_envelope(&buf, f, &field);
            Py_DECREF(t);
            if (rc) {
                *err_index = i;
                *err_field = field;
                goto done;
            }
            ends[m++] = buf.len;
        }
        /* Hash them without it: each prefix is the hash before. */
        char *dst = out ? hexes : out_hex + (size_t)i0 * 64;
        PyThreadState *ts = PyEval_SaveThread();
        size_t start = 0;
        for (size_t j = 0; j < m; j++) {
            const char *pre = i0 + (Py_ssize_t)j == 0 ? prev : last;
            size_t pre_len = i0 + (Py_ssize_t)j == 0 ? prev_len : 64;
            hash_hex(pre, pre_len, buf.data + start, ends[j] - start, dst + 64 * j);
            memcpy(last, dst + 64 * j, 64);
            start = ends[j];
        }
        PyEval_RestoreThread(ts);
        if (out) {
            for (size_t j = 0; j < m; j++) {
                PyObject *s = PyUnicode_FromStringAndSize(hexes + 64 * j, 64);
                if (!s) {
                    PyErr_Clear();
                    rc = PJ_CHAIN_NO_MEMORY;
                    goto done;
                }
                int bad = PyList_Append(out, s);
                Py_DECREF(s);
                if (bad) {
                    PyErr_Clear();
                    rc = PJ_CHAIN_NO_MEMORY;
                    goto done;
                }
            }
        }
        i0 += (Py_ssize_t)m;
    }
done:
    Py_XDECREF(rows);
    free(ends);
    free(hexes);
    pj_buf_free(&buf);
    PyGILState_Release(gil);
    return rc;
}

/* ---- verify_chain ------------------------------------------------------------------------- */

/* The UTF-8 of o when it is an ASCII str, else NULL. */
static const char *ascii_text(PyObject *o, Py_ssize_t *n) {
    if (!PyUnicode_Check(o)) return NULL;
    const char *s = PyUnicode_AsUTF8AndSize(o, n);
    if (!s) {
        PyErr_Clear();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *n; i++)
        if ((unsigned char)s[i] >= 0x80) return NULL;
    return s;
}

/* A stored hash usable as the next prefix and comparable to a computed one: 64 ASCII characters.
 * Anything else can never equal a computed hash. */
static const char *hash_text(PyObject *o) {
    Py_ssize_t n = 0;
    const char *s = ascii_text(o, &n);
    return s && n == 64 ? s : NULL;
}

static int same_str(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    if (!PyUnicode_Check(a) || !PyUnicode_Check(b)) return 0;
    int c = PyUnicode_Compare(a, b);
    if (c == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return c == 0;
}

int pj_chain_verify(void *prev_addr, int64_t first_seq, void *rows_addr, int64_t *bad_index,
                    int *reason) {
    PyGILState_STATE gil = PyGILState_Ensure();
    int rc = PJ_CHAIN_OK;
    pj_buf buf;
    pj_buf_init(&buf);
    size_t *ends = NULL;
    char *stored = NULL;
    *bad_index = -1;
    *reason = 0;

    PyObject *p = (PyObject *)prev_addr; /* the previous row's stored hash (a new reference) */
    Py_INCREF(p);
    PyObject *rows = PySequence_Tuple((PyObject *)rows_addr);
    if (!rows || !PyUnicode_Check(p)) {
        PyErr_Clear();
        rc = PJ_CHAIN_BAD_ARGS;
        goto done;
    }
    Py_ssize_t n = PyTuple_Size(rows);
    if (n == 0) goto done;
    size_t cap = (size_t)n < CHUNK_ROWS ? (size_t)n : CHUNK_ROWS;
    ends = (size_t *)malloc(cap * sizeof *ends);
    stored = (char *)malloc(cap * 64);
    if (!ends || !stored) {
        rc = PJ_CHAIN_NO_MEMORY;
        goto done;
    }
    int64_t expect = first_seq;
    /* The ASCII text of p, the next prefix (NULL when p is not ASCII: no row can hash right). */
    Py_ssize_t pre_len = 0;
    const char *pre = ascii_text(p, &pre_len);
    for (Py_ssize_t i0 = 0; i0 < n;) {
        /* Under the GIL: the per-row checks before the hash, and each preimage. A finding stops the
         * chunk there; the rows before it still have their hashes checked, which come first. */
        size_t m = 0;
        Py_ssize_t found_at = -1;
        int found = 0;
        buf.len = 0;
        while (i0 + (Py_ssize_t)m < n && m < cap && buf.len < CHUNK_BYTES) {
            Py_ssize_t i = i0 + (Py_ssize_t)m;
            PyObject *t = row_tuple(PyTuple_GetItem(rows, i), N_VERIFY_FIELDS);
            if (!t) {
                rc = PJ_CHAIN_BAD_ROW;
                *bad_index = i;
                goto done;
            }
            PyObject *f[N_VERIFY_FIELDS];
            tuple_items(t, f, N_VERIFY_FIELDS);
            int overflow = 0;
            long long seq = is_int(f[F_SEQ]) ? PyLong_AsLongLongAndOverflow(f[F_SEQ], &overflow) : 0;
            if (PyErr_Occurred()) PyErr_Clear();
            const char *h = NULL;
            int field = -1;
            if (!is_int(f[F_SEQ]) || overflow || seq != expect) {
                found = PJ_VERIFY_SEQ_GAP;
            } else if (f[F_HASH] == Py_None) {
                found = PJ_VERIFY_UNCHAINED_ROW;
            } else if (!same_str(f[F_PREV], p)) {
                found = PJ_VERIFY_PREV_LINK_MISMATCH;
            } else if (!(h = hash_text(f[F_HASH])) || !pre) {
                found = PJ_VERIFY_HASH_MISMATCH; /* cannot equal a computed hash */
            } else {
                size_t mark = buf.len;
                pj_buf_put(&buf, pre, (size_t)pre_len);
                pj_buf_putc(&buf, '\n');
                int e = put_envelope(&buf, f, &field);
                if (e == PJ_CHAIN_NO_MEMORY) {
                    Py_DECREF(t);
                    rc = e;
                    goto done;
                }
                if (e) { /* a field of the wrong type or a lone surrogate: it cannot hash right */
                    buf.len = mark;
                    found = PJ_VERIFY_HASH_MISMATCH;
                }
            }
            if (found) {
                Py_DECREF(t);
                found_at = i;
                break;
            }
            memcpy(stored + 64 * m, h, 64);
            ends[m++] = buf.len;
            Py_INCREF(f[F_HASH]);
            Py_DECREF(p);
            p = f[F_HASH];
            pre = h; /* p's UTF-8, alive as long as p */
            pre_len = 64;
            Py_DECREF(t);
            expect++;
        }
        /* Without the GIL: recompute and compare. */
        Py_ssize_t mismatch = -1;
        PyThreadState *ts = m ? PyEval_SaveThread() : NULL;
        size_t start = 0;
        for (size_t j = 0; j < m; j++) {
            pj_sha256_ctx ctx;
            uint8_t digest[32];
            char hex[64];
            pj_sha256_init(&ctx);
            pj_sha256_update(&ctx, buf.data + start, ends[j] - start);
            pj_sha256_final(&ctx, digest);
            pj_sha256_hex(digest, hex);
            if (memcmp(hex, stored + 64 * j, 64) != 0) {
                mismatch = i0 + (Py_ssize_t)j;
                break;
            }
            start = ends[j];
        }
        if (ts) PyEval_RestoreThread(ts);
        if (mismatch >= 0) {
            *bad_index = mismatch;
            *reason = PJ_VERIFY_HASH_MISMATCH;
            goto done;
        }
        if (found) {
            *bad_index = found_at;
            *reason = found;
            goto done;
        }
        i0 += (Py_ssize_t)m;
    }
done:
    Py_XDECREF(p);
    Py_XDECREF(rows);
    free(ends);
    free(stored);
    pj_buf_free(&buf);
    PyGILState_Release(gil);
    return rc;
}
