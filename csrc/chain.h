/* Hash chain v1 (docs/journal.md): envelopes, hashes and verification over a whole batch per call.
 *
 * The boundary is plain C: the rows come as columns of buffers and lengths, never as Python
 * objects, so the functions run without the GIL and need no Python API (docs/native.md). The
 * Python wrapper (kernels/native_chain.py) packs a batch of well-formed rows into columns; any row
 * it cannot pack (a wrong type, a lone surrogate, an int beyond int64) goes to the reference
 * (kernels/pure_chain.py), which raises or finds exactly what it must.
 *
 * Columns: seq[n] and ts[n] (int64), then one buffer per text column, text[c] of text_len[c]
 * bytes (CHAIN_FIELDS order without the two ints: event_id, kind, actor, session_id, run_id,
 * principal, device_id, channel, payload_json; verification adds hash and prev_hash). A column's
 * buffer holds its n values in row order, each UTF-8 followed by one NUL byte, and NULL is the one
 * byte 0x01; so no value may hold a NUL or be "\x01" (the Python side hands such rows to the
 * reference). The layout is checked against the lengths and the text must be valid UTF-8;
 * problems come back as a status code with the row index and the field (its CHAIN_FIELDS /
 * VERIFY_FIELDS index), never as an object. */
#ifndef PJ_CHAIN_H
#define PJ_CHAIN_H

#include <stddef.h>
#include <stdint.h>

/* Status codes. */
#define PJ_CHAIN_OK 0
#define PJ_CHAIN_BAD_TYPE 1   /* field *err_field of row *err_index is NULL where it may not be */
#define PJ_CHAIN_BAD_TEXT 2   /* that field's bytes are not valid UTF-8 */
#define PJ_CHAIN_BAD_LAYOUT 3 /* a column does not hold exactly n NUL-ended values */
#define PJ_CHAIN_NO_MEMORY 4
#define PJ_CHAIN_BAD_ARGS 5   /* a NULL buffer with rows, or out_hex_len < 64 * n */

/* Verification findings (*reason); 0 means every row is good. */
#define PJ_VERIFY_SEQ_GAP 1
#define PJ_VERIFY_UNCHAINED_ROW 2
#define PJ_VERIFY_PREV_LINK_MISMATCH 3
#define PJ_VERIFY_HASH_MISMATCH 4

/* Text columns of a chain row and of a verification row. */
#define PJ_CHAIN_TEXT_COLUMNS 9
#define PJ_VERIFY_TEXT_COLUMNS 11
/* Columns of a verification row (VERIFY_FIELDS): the text ones and seq, timestamp_unix_ms. */
#define PJ_VERIFY_COLUMNS 13

/* Each row's lowercase hex hash (64 bytes per row into out_hex), chaining from prev[0..prev_len). */
int pj_chain_hashes(const char *prev, size_t prev_len, size_t n, const int64_t *seq,
                    const int64_t *ts, const char *const *text, const size_t *text_len, char *out_hex,
                    size_t out_hex_len, int64_t *err_index, int *err_field);

/* Check rows (with hash and prev_hash columns) that should start at first_seq after prev (the
 * previous row's stored hash): sets *reason to the first finding (PJ_VERIFY_*) and *bad_index to
 * its row, or *reason = 0. Returns a status code (a bad length or invalid UTF-8 is an error of the
 * caller's packing, not a finding). */
int pj_chain_verify(const char *prev, size_t prev_len, int64_t first_seq, size_t n,
                    const int64_t *seq, const int64_t *ts, const char *const *text,
                    const size_t *text_len, int64_t *bad_index, int *reason, int *err_field);

/* pj_chain_verify over a range of n rows read as one result row by SQLite's aggregates, without a
 * Python object per value: column c (VERIFY_FIELDS order) is col_len[c] bytes, json_group_array()
 * of the column for every column but the payload (a JSON array of n tokens: an INTEGER as SQLite
 * writes it, a TEXT as a JSON string, NULL as null), and for payload_json the n texts joined by
 * single NUL bytes (group_concat). A text token is spliced into the envelope as it is, so it must
 * be written exactly as RFC 8785 writes a string (SQLite's JSON quoting is); the hash columns'
 * strings are compared by their content. Also writes the RFC 9162 leaf hash (as
 * pj_chain_leaf_hashes) of each of the first leaf_count rows into leaf_out.
 *
 * Values this form cannot say exactly are a status, never a finding: PJ_CHAIN_BAD_LAYOUT (a
 * column without n values), PJ_CHAIN_BAD_TYPE (a number where text belongs, an int that is not an
 * INTEGER's text, a string escaped otherwise than RFC 8785 would), PJ_CHAIN_BAD_TEXT (invalid
 * UTF-8 in the payload); *err_field names the column. The caller then reads the rows. */
int pj_chain_verify_joined(const char *prev, size_t prev_len, int64_t first_seq, size_t n,
                           const char *const *cols, const size_t *col_len, uint8_t *leaf_out,
                           size_t leaf_count, int64_t *bad_index, int *reason, int *err_field);

/* The RFC 9162 leaf hash of each row, SHA-256(0x00 || envelope), as 32 raw bytes per row into out
 * (the Merkle tree of kernels/pure_merkle.py); the columns are those of pj_chain_hashes. */
int pj_chain_leaf_hashes(size_t n, const int64_t *seq, const int64_t *ts, const char *const *text,
                         const size_t *text_len, uint8_t *out, size_t out_len, int64_t *err_index,
                         int *err_field);

/* pj_chain_hashes, and the RFC 9162 leaf hash (as pj_chain_leaf_hashes) of the first leaf_count
 * rows into leaf_out (32 bytes each) from the same envelopes: the append path's one call for the
 * chain and the Merkle tiles. leaf_count 0 (leaf_out may be NULL) is pj_chain_hashes. */
int pj_chain_hashes_leaves(const char *prev, size_t prev_len, size_t n, const int64_t *seq,
                           const int64_t *ts, const char *const *text, const size_t *text_len,
                           char *out_hex, size_t out_hex_len, uint8_t *leaf_out,
                           size_t leaf_count, int64_t *err_index, int *err_field);

/* The hash and the RFC 9162 leaf hash of one row (append's call): its nine text values packed as
 * one column each would be (NUL-ended UTF-8, "\x01" for NULL) one after the other in
 * packed[0..packed_len), seq and ts by value. out[0..64) gets the lowercase hex hash, out[64..96)
 * the leaf hash (out_len >= 96). A value holding a NUL gives more than nine values:
 * PJ_CHAIN_BAD_LAYOUT, and the caller takes its reference path. err_field may be NULL. */
int pj_chain_row(const char *prev, size_t prev_len, int64_t seq, int64_t ts, const char *packed,
                 size_t packed_len, char *out, size_t out_len, int *err_field);

#endif
