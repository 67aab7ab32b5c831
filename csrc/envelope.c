/* The canonical envelope of hash chain v1 (see envelope.h); the reference is
 * kernels/pure_chain.py envelope_text. */
#include "envelope.h"

#include <stdint.h>
#include <string.h>

#include "chain.h"
#include "jstr.h"

/* Field indexes of CHAIN_FIELDS. */
enum {
    F_SEQ, F_EVENT_ID, F_KIND, F_ACTOR, F_SESSION_ID, F_RUN_ID, F_PRINCIPAL, F_DEVICE_ID,
    F_CHANNEL, F_TS, F_PAYLOAD
};

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
int pj_envelope_put(pj_buf *b, PyObject *const *f, int *field) {
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

/* The row as a tuple (a new reference) holding at least `need` fields, or NULL. Any sequence but
 * text and bytes is accepted (sqlite3.Row too), as the reference does. */
PyObject *pj_envelope_row(PyObject *row, Py_ssize_t need) {
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

