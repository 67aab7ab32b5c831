/* The canonical envelope of hash chain v1, written from a row of Python objects.
 *
 * envelope = {"actor":..,"channel":..,"device_id":..,"event_id":..,"kind":..,"payload":<payload_json>,
 *             "principal":..,"run_id":..,"seq":N,"session_id":..,"timestamp_unix_ms":N}
 *
 * It is both the tail of a chain preimage and the Merkle leaf data (docs/verifiable.md), so it has
 * one writer. Types are strict, as in kernels/pure_chain.py: the eight text fields are str or None,
 * payload_json is str (spliced raw: it is already canonical), seq and timestamp_unix_ms are int
 * (not bool). Status codes are chain.h's PJ_CHAIN_*. Internal to csrc/ (no cdef): it takes
 * PyObject pointers, which never cross the cffi boundary. */
#ifndef PJ_ENVELOPE_H
#define PJ_ENVELOPE_H

/* The module is built as a stable-ABI (abi3) extension: keep to the limited API of Python 3.10. */
#define PY_SSIZE_T_CLEAN
#include <pyconfig.h>
#if !defined(Py_DEBUG) && !defined(Py_TRACE_REFS) && !defined(Py_REF_DEBUG) && !defined(Py_LIMITED_API)
#define Py_LIMITED_API 0x030A0000
#endif
#include <Python.h>

#include "buf.h"

/* Number of leading row fields the envelope reads (kernels.CHAIN_FIELDS). */
#define PJ_ENVELOPE_FIELDS 11

/* Append the canonical envelope of f[0..PJ_ENVELOPE_FIELDS) (CHAIN_FIELDS order) to b. On a bad
 * field returns its PJ_CHAIN_* status and sets *field (b then holds a partial envelope). */
int pj_envelope_put(pj_buf *b, PyObject *const *f, int *field);

/* The row as a tuple (a new reference) holding at least `need` fields, or NULL. Any sequence but
 * text and bytes is accepted (sqlite3.Row too). Needs the GIL. */
PyObject *pj_envelope_row(PyObject *row, Py_ssize_t need);

#endif
