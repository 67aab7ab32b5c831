/* Hash chain v1 (JOURNAL.md): envelopes, hashes and verification over a whole batch per call.
 *
 * The rows are the Python objects themselves (tuples in kernels.CHAIN_FIELDS / VERIFY_FIELDS
 * order, straight from sqlite3), read through the CPython C API: the entry points take `void *`
 * addresses of live objects (the caller keeps them alive) and take the GIL inside, since cffi
 * releases it around the call. Envelopes of a chunk of rows are written under the GIL into one
 * reused buffer, then hashed with the GIL released.
 *
 * The functions never leave a Python exception set: they return a status code and the row index
 * and field of the problem, and the Python wrapper raises. */
#ifndef PJ_CHAIN_H
#define PJ_CHAIN_H

#include <stddef.h>
#include <stdint.h>

/* Status codes. */
#define PJ_CHAIN_OK 0
#define PJ_CHAIN_BAD_TYPE 1   /* field *err_field of row *err_index has the wrong type */
#define PJ_CHAIN_BAD_TEXT 2   /* that field's text holds a lone surrogate (not valid Unicode) */
#define PJ_CHAIN_BAD_ROW 3    /* row *err_index is not a sequence of enough fields */
#define PJ_CHAIN_NO_MEMORY 4
#define PJ_CHAIN_BAD_ARGS 5   /* rows is not a sequence, or the output is not a list / too small */

/* Verification findings (*reason); 0 means every row is good. */
#define PJ_VERIFY_SEQ_GAP 1
#define PJ_VERIFY_UNCHAINED_ROW 2
#define PJ_VERIFY_PREV_LINK_MISMATCH 3
#define PJ_VERIFY_HASH_MISMATCH 4

/* Each row's lowercase hex hash, chaining from prev[0..prev_len) (ASCII).
 * rows: address of a sequence of CHAIN_FIELDS sequences. Output: when out_list is not NULL it is the
 * address of a list to which one 64-character str per row is appended; otherwise 64 bytes per row
 * are written to out_hex (out_hex_len bytes available). */
int pj_chain_hashes(const char *prev, size_t prev_len, void *rows, void *out_list, char *out_hex,
                    size_t out_hex_len, int64_t *err_index, int *err_field);

/* Check rows (VERIFY_FIELDS) that should start at first_seq after prev_hash (address of a str):
 * sets *reason to the first finding (PJ_VERIFY_*) and *bad_index to its row, or *reason = 0.
 * Returns a status code (PJ_CHAIN_BAD_ROW for a row too short to verify). */
int pj_chain_verify(void *prev_hash, int64_t first_seq, void *rows, int64_t *bad_index, int *reason);

#endif
