"""Reading every vector of one (model, dims, version) and its rows' scope fields from SQLite in bulk,
for the first search after open.

Why not one joined ``SELECT``: fetching a row costs a Python tuple and one object per column, and
at 100 000 rows that, not SQLite, is most of the time (plus the join's lookup per row). Here SQLite
does the per-row work in C and hands over a few large values:

* vectors: one aggregate query per chunk of rowids: ``group_concat`` of the blobs (one ``bytes``
  copied straight into the preallocated matrix) and of the memory ids (one ``str`` split once),
  with the row count and the count of blobs of the right length to check them. Chunks of about
  256 KiB stay in cache while SQLite builds them; much larger ones cost a third more;
* items: scans of the covering indexes, not of the table (which also holds the content): memory
  ids with their rowids, then the rowids of each distinct (principal, channel, session) and of
  each source, one list per value, put in place with numpy; expiry and non-empty tags, which
  few rows have, are read sparsely;
* vectors and items are lined up by memory id (equal id lists, the usual case, need no lookup).

Any value these encodings cannot carry exactly (a separator inside a memory id, a NULL id, an unknown
source, a blob of the wrong length, a vector without its item, a non-UTF-8 database)
makes :func:`read_index_rows` return ``None``, and the caller uses the plain row-by-row read, which
also reports a corrupt blob precisely. Every count is checked, so a silent misalignment is not
possible.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

import numpy as np

from .ingest import SOURCES

SEP = "\x1f"                      # between names in one aggregated column
CHUNK_BYTES = 256 << 10           # vector bytes per aggregate query
NO_EXPIRY = np.iinfo(np.int64).max
_F32 = np.dtype("<f4")
_SOURCE_CODE = {s: i for i, s in enumerate(SOURCES)}

_VECTOR_RANGE = (
    "SELECT min(rowid), max(rowid), count(*) FROM memory_vectors "
    "WHERE model = ? AND dims = ? AND version = ?")
# rowid range first, then the key: the scan walks the table b-tree in rowid order
_VECTOR_CHUNK = (
    "SELECT count(*), sum(length(vector) = ?), CAST(group_concat(vector, '') AS BLOB), "
    "group_concat(memory_id, char(31)) FROM memory_vectors NOT INDEXED "
    "WHERE rowid BETWEEN ? AND ? AND model = ? AND dims = ? AND version = ?")
# covering-index scans, not the table (which also holds the content): memory ids with their rowids,
# and the rowids of each scope and of each source as one list per distinct value
_ITEM_IDS = "SELECT count(*), group_concat(rowid), group_concat(memory_id, char(31)) FROM memory_items"
_SCOPES = ("SELECT principal, channel, session_id, group_concat(rowid) FROM memory_items "
           "GROUP BY principal, channel, session_id")
_SOURCES = "SELECT source, group_concat(rowid) FROM memory_items GROUP BY source"
_CREATED = "SELECT group_concat(rowid), group_concat(created_at_unix_ms) FROM memory_items"
_EXPIRING = "SELECT rowid, ttl_unix_ms FROM memory_items WHERE ttl_unix_ms IS NOT NULL"
_TAGGED = "SELECT rowid, tags_json FROM memory_items NOT INDEXED WHERE tags_json <> '[]'"


class IndexRows(NamedTuple):
    """The rows of one index, in matrix order. A scope column comes factorized: its distinct
    values (None for NULL) and, per row, the position of the row's value in them."""

    ids: list[str]
    matrix: np.ndarray                          # (n, dims) float32, C-contiguous
    principal: tuple[list, np.ndarray]          # (values, int32 position per row)
    channel: tuple[list, np.ndarray]
    session: tuple[list, np.ndarray]
    source: np.ndarray                          # int8 codes, SOURCES order
    expiry: np.ndarray                          # int64, NO_EXPIRY for none
    tags: list[str]                             # tags JSON text, "[]" for none
    created: np.ndarray                         # int64 created_at_unix_ms (recency in fusion)


def read_index_rows(conn: sqlite3.Connection, model: str, dims: int,
                    version: int) -> IndexRows | None:
    """The rows of (model, dims, version), or None when the bulk encoding cannot carry them
    exactly (the caller then reads row by row). Run it inside one read transaction."""
    if conn.execute("PRAGMA encoding").fetchone()[0] != "UTF-8":
        return None  # group_concat would transcode the blobs
    vectors = _read_vectors(conn, model, dims, version)
    if vectors is None:
        return None
    ids, matrix = vectors
    n = len(ids)
    rows_of = _item_rows(conn, ids)
    if rows_of is None:
        return None
    scope = [([], np.full(n, -1, dtype=np.int32)) for _ in range(3)]
    seen = [{} for _ in range(3)]
    for *names, rowids in conn.execute(_SCOPES):
        rows = rows_of(rowids)
        for (values, pos), known, name in zip(scope, seen, names):
            p = known.get(name)
            if p is None:
                p = known[name] = len(values)
                values.append(name)
            pos[rows] = p
    source = np.full(n, -1, dtype=np.int8)
    for name, rowids in conn.execute(_SOURCES):
        code = _SOURCE_CODE.get(name)
        if code is None:
            return None  # not a source this version knows: the row-by-row read reports it
        source[rows_of(rowids)] = code
    if n and (source.min() < 0 or any(pos.min() < 0 for _, pos in scope)):
        return None  # a row no scan saw (cannot happen within one snapshot; never guess)
    expiry = np.full(n, NO_EXPIRY, dtype=np.int64)
    tags = ["[]"] * n
    created = np.zeros(n, dtype=np.int64)
    rowids, values = conn.execute(_CREATED).fetchone()
    rows, keep = rows_of(rowids, sparse=True)
    if rows.shape[0] != n:
        return None  # a row no scan saw (never guess)
    created[rows] = _rowids(values)[keep]
    for sql, store in ((_EXPIRING, "expiry"), (_TAGGED, "tags")):
        found = conn.execute(sql).fetchall()
        if not found:
            continue
        rowids, values = zip(*found)
        rows, keep = rows_of(rowids, sparse=True)
        if store == "expiry":
            expiry[rows] = np.array(values, dtype=np.int64)[keep]
        else:
            for r, k in zip(rows.tolist(), keep.tolist()):
                tags[r] = values[k]
    return IndexRows(ids, matrix, *scope, source, expiry, tags, created)


def _read_vectors(conn, model: str, dims: int, version: int):
    lo, hi, count = conn.execute(_VECTOR_RANGE, (model, dims, version)).fetchone()
    width = dims * 4
    matrix = np.empty((count, dims), dtype=np.float32)
    ids: list[str] = []
    if not count:
        return ids, matrix
    flat = matrix.reshape(-1).view(np.uint8)
    # rowids per query, scaled by how densely this key fills its rowid range, so the number of
    # queries is about count / rows_per_chunk however sparse the table is
    rows_per_chunk = max(1, CHUNK_BYTES // width)
    step = max(1, int(rows_per_chunk * (hi - lo + 1) / count))
    done = 0
    for start in range(lo, hi + 1, step):
        k, exact, blob, names = conn.execute(
            _VECTOR_CHUNK, (width, start, start + step - 1, model, dims, version)).fetchone()
        if not k:
            continue
        if exact != k or names is None or done + k > count or len(blob) != k * width:
            return None
        part = names.split(SEP)
        if len(part) != k:
            return None
        flat[done * width:(done + k) * width] = np.frombuffer(blob, dtype=np.uint8)
        ids += part
        done += k
    if done != count:
        return None
    if _F32 != np.dtype(np.float32):  # big-endian host: the blobs are little-endian
        matrix = matrix.view(_F32).astype(np.float32)
    return ids, matrix


def _rowids(text: str | None) -> np.ndarray:
    """A ``group_concat(rowid)``: integers joined by commas, parsed in C."""
    if not text:
        return np.empty(0, dtype=np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",")


def _item_rows(conn, ids: list[str]):
    """A function from item rowids to the matrix rows holding them; None when a vector has no item.

    ``rows_of(rowids)`` expects every rowid to have a row (dense scans of the items that own the
    vectors, or items without a vector of this key, which map to nothing and are dropped);
    ``rows_of(rowids, sparse=True)`` returns ``(rows, which of the rowids were found)``.
    """
    n, rowids, names = conn.execute(_ITEM_IDS).fetchone()
    item_rowids = _rowids(rowids)
    item_ids = names.split(SEP) if names is not None else []
    if len(item_rowids) != n or len(item_ids) != n:
        return None
    if item_ids == ids:
        row_rowid = item_rowids  # same rows in the same order (the usual case)
    else:
        rowid_of = dict(zip(item_ids, item_rowids.tolist()))
        try:
            row_rowid = np.fromiter(map(rowid_of.__getitem__, ids), np.int64, len(ids))
        except KeyError:
            return None  # a vector without its item: the joined read drops it
    order = np.argsort(row_rowid, kind="stable")
    sorted_rowids = row_rowid[order]

    def rows_of(found, sparse: bool = False):
        r = _rowids(found) if isinstance(found, str) or found is None else \
            np.asarray(found, dtype=np.int64)
        j = np.searchsorted(sorted_rowids, r)
        j[j >= len(sorted_rowids)] = 0
        hit = sorted_rowids[j] == r if len(sorted_rowids) else np.zeros(len(r), dtype=np.bool_)
        keep = np.flatnonzero(hit)
        rows = order[j[keep]]
        return (rows, keep) if sparse else rows

    return rows_of
