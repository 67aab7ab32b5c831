/* RFC 9162 Merkle tree hashing in batches (see merkle.h); the reference is kernels/pure_merkle.py. */
#include "envelope.h"

#include "merkle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "sha256.h"

/* Envelopes of a chunk of rows are written under the GIL, then hashed without it: big enough that
 * the release costs nothing, small enough that the envelopes are still in cache when hashed. */
#define CHUNK_ROWS 4096
#define CHUNK_BYTES ((size_t)1 << 20)

static void leaf_hash(const char *data, size_t n, uint8_t out[32]) {
    static const uint8_t prefix = 0x00;
    pj_sha256_ctx ctx;
    pj_sha256_init(&ctx);
    pj_sha256_update(&ctx, &prefix, 1);
    pj_sha256_update(&ctx, data, n);
    pj_sha256_final(&ctx, out);
}

static void node_hash(const uint8_t *left_right, uint8_t out[32]) {
    uint8_t pre[65];
    pre[0] = 0x01;
    memcpy(pre + 1, left_right, 64);
    pj_sha256(pre, sizeof pre, out);
}

/* A borrowed reference to item i of a list or tuple, or a new one of another sequence (*owned). */
static PyObject *item_at(PyObject *seq, Py_ssize_t i, int *owned) {
    *owned = 0;
    if (PyList_Check(seq)) return PyList_GetItem(seq, i);
    if (PyTuple_Check(seq)) return PyTuple_GetItem(seq, i);
    *owned = 1;
    return PySequence_GetItem(seq, i);
}

int pj_merkle_leaf_hashes(void *rows_addr, int64_t start, int64_t count, uint8_t *out, size_t out_len,
                          int64_t *err_index, int *err_field) {
    *err_index = -1;
    *err_field = -1;
    if (start < 0 || count < 0 || (uint64_t)count > out_len / 32) return PJ_MERKLE_BAD_LENGTH;
    if (count == 0) return PJ_CHAIN_OK;
    PyGILState_STATE gil = PyGILState_Ensure();
    int rc = PJ_CHAIN_OK;
    pj_buf buf;
    pj_buf_init(&buf);
    size_t cap = (uint64_t)count < CHUNK_ROWS ? (size_t)count : CHUNK_ROWS;
    size_t *ends = (size_t *)malloc(cap * sizeof *ends);
    PyObject *rows = (PyObject *)rows_addr;
    Py_ssize_t n = PySequence_Check(rows) ? PySequence_Size(rows) : -1;
    if (n < 0) {
        PyErr_Clear();
        rc = PJ_CHAIN_BAD_ARGS;
        goto done;
    }
    if (start > (int64_t)n || count > (int64_t)n - start) {
        rc = PJ_MERKLE_BAD_LENGTH;
        goto done;
    }
    if (!ends) {
        rc = PJ_CHAIN_NO_MEMORY;
        goto done;
    }
    for (int64_t i0 = 0; i0 < count;) {
        size_t m = 0;
        buf.len = 0;
        while (i0 + (int64_t)m < count && m < cap && buf.len < CHUNK_BYTES) {
            int64_t i = i0 + (int64_t)m;
            int owned;
            PyObject *row = item_at(rows, (Py_ssize_t)(start + i), &owned);
            PyObject *t = row ? pj_envelope_row(row, PJ_ENVELOPE_FIELDS) : NULL;
            if (owned) Py_XDECREF(row);
            if (!t) {
                PyErr_Clear();
                rc = PJ_CHAIN_BAD_ROW;
                *err_index = i;
                goto done;
            }
            PyObject *f[PJ_ENVELOPE_FIELDS];
            for (int k = 0; k < PJ_ENVELOPE_FIELDS; k++) f[k] = PyTuple_GetItem(t, k);
            int field = -1;
            rc = pj_envelope_put(&buf, f, &field);
            Py_DECREF(t);
            if (rc) {
                *err_index = i;
                *err_field = field;
                goto done;
            }
            ends[m++] = buf.len;
        }
        PyThreadState *ts = PyEval_SaveThread();
        size_t from = 0;
        for (size_t j = 0; j < m; j++) {
            leaf_hash(buf.data + from, ends[j] - from, out + 32 * (size_t)(i0 + (int64_t)j));
            from = ends[j];
        }
        PyEval_RestoreThread(ts);
        i0 += (int64_t)m;
    }
done:
    free(ends);
    pj_buf_free(&buf);
    PyGILState_Release(gil);
    return rc;
}

int pj_merkle_node_hashes(const uint8_t *pairs, size_t pairs_len, uint8_t *out, size_t out_len) {
    if (pairs_len % 64 || out_len < pairs_len / 2) return PJ_MERKLE_BAD_LENGTH;
    size_t n = pairs_len / 64;
    for (size_t i = 0; i < n; i++) node_hash(pairs + 64 * i, out + 32 * i);
    return PJ_CHAIN_OK;
}

int pj_merkle_subtree(const uint8_t *entries, size_t entries_len, uint8_t *out, size_t out_len) {
    if (entries_len % 32) return PJ_MERKLE_BAD_LENGTH;
    size_t w = entries_len / 32;
    if (w == 0 || (w & (w - 1)) || out_len / 32 < w - 1) return PJ_MERKLE_BAD_LENGTH;
    const uint8_t *level = entries;
    uint8_t *dst = out;
    for (size_t width = w; width > 1; width /= 2) {
        for (size_t i = 0; i < width / 2; i++) node_hash(level + 64 * i, dst + 32 * i);
        level = dst;
        dst += 32 * (width / 2);
    }
    return PJ_CHAIN_OK;
}
