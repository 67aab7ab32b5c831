"""SHA-256 and hash chain v1 on the native module (``csrc/sha256.c``, ``csrc/chain.c``).

Same results as :mod:`.pure_chain`, the reference. The boundary is buffers (docs/native.md): a
batch of rows is packed into columns here (the two int columns as int64 arrays, the text columns as
buffers of NUL-ended UTF-8 values, ``\x01`` for NULL) and C hashes it with the GIL released.
Packing is a few C-speed passes per column (``str.join``, ``str.count``, ``str.encode``), no
per-field Python code. A batch that is not plainly well formed (a row that is not a tuple or list,
a field of another type, a lone surrogate, an int beyond int64, a NULL payload, a text holding NUL
or equal to ``\x01``) is handed to the reference whole, so every error and finding is the reference's own.
"""

from __future__ import annotations

from array import array
from operator import itemgetter
from typing import Sequence, cast

from .._native import ffi, lib
from ..errors import InvalidPayloadError
from . import pure_chain, pure_chain_joined, pure_merkle
from .layout import CHAIN_FIELDS, VERIFY_FIELDS

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT_COLUMNS = tuple(CHAIN_FIELDS.index(f) for f in ("seq", "timestamp_unix_ms"))
#: Text columns in the order csrc/chain.h packs them: CHAIN_FIELDS without the ints (verification
#: adds the stored hash and prev_hash).
_TEXT_COLUMNS = tuple(i for i in range(len(CHAIN_FIELDS)) if i not in _INT_COLUMNS)
_VERIFY_TEXT_COLUMNS = _TEXT_COLUMNS + (len(CHAIN_FIELDS), len(CHAIN_FIELDS) + 1)
_PAYLOAD = CHAIN_FIELDS.index("payload_json")
assert len(_TEXT_COLUMNS) == lib.PJ_CHAIN_TEXT_COLUMNS
assert len(_VERIFY_TEXT_COLUMNS) == lib.PJ_VERIFY_TEXT_COLUMNS == len(VERIFY_FIELDS) - 2

_REASONS = {
    lib.PJ_VERIFY_SEQ_GAP: "seq_gap",
    lib.PJ_VERIFY_UNCHAINED_ROW: "unchained_row",
    lib.PJ_VERIFY_PREV_LINK_MISMATCH: "prev_link_mismatch",
    lib.PJ_VERIFY_HASH_MISMATCH: "hash_mismatch",
}


_SEP, _NULL = "\x00", "\x01"


class _Unpackable(Exception):
    """The batch is not plainly well formed: the reference takes it."""


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of ``data`` (bytes-like), on the SHA path :func:`cpu_info` reports."""
    out = ffi.new("uint8_t[32]")
    buf = ffi.from_buffer(data)
    lib.pj_sha256(buf, len(buf), out)
    return ffi.buffer(out)[:]


def _int_values(col: list) -> array:
    if set(map(type, col)) - {int}:  # bool, float, None, an int subclass: the reference decides
        raise _Unpackable
    try:
        return array("q", col)
    except OverflowError:
        raise _Unpackable from None


def _int_column(rows: Sequence, k: int) -> array:
    return _int_values(list(map(itemgetter(k), rows)))


def _text_values(col: list, nullable: bool) -> bytes:
    """A column's values as NUL-ended UTF-8, ``\x01`` for NULL.

    A text holding NUL makes the column hold more than n values, which C refuses
    (PJ_CHAIN_BAD_LAYOUT: the batch then goes to the reference); a text equal to ``\x01`` is
    caught here. A non-ASCII value is replaced by its UTF-8 bytes read as Latin-1, so the joined
    column stays a one-byte-per-character str whose Latin-1 encoding is the UTF-8 wanted: encoding
    a wide str to UTF-8 costs several times more (docs/native.md).
    """
    nulls = col.count(None)
    if nulls == len(col) and nullable:
        return b"\x01\x00" * nulls  # a column that is all NULL (the usual optional field)
    if nulls and not nullable:
        raise _Unpackable
    values = [_NULL if v is None else v for v in col] if nulls else col.copy()
    if values.count(_NULL) != nulls:
        raise _Unpackable  # a text "\x01" would read as NULL
    values.append("")  # the last value ends with a NUL too
    try:
        joined = _SEP.join(values)  # TypeError: a value that is not a str
        if not joined.isascii():
            joined = _SEP.join([v if str.isascii(v) else str.encode(v).decode("latin-1")
                                for v in values])
    except (TypeError, UnicodeEncodeError):  # a lone surrogate has no UTF-8
        raise _Unpackable from None
    return joined.encode("latin-1")


def _text_column(rows: Sequence, k: int, nullable: bool) -> bytes:
    """Column k of the rows, packed by :func:`_text_values`."""
    return _text_values(list(map(itemgetter(k), rows)), nullable)


def _columns(rows: Sequence, text_columns: tuple[int, ...], nullable_payload: bool):
    """(seq, ts, text buffers) of a well-formed batch; raises _Unpackable otherwise."""
    if not all(issubclass(t, (tuple, list)) for t in set(map(type, rows))):
        raise _Unpackable  # any other sequence (or a str): the reference checks the shape
    try:
        seq, ts = (_int_column(rows, k) for k in _INT_COLUMNS)
        text = [_text_column(rows, k, k != _PAYLOAD or nullable_payload) for k in text_columns]
    except IndexError:  # a row too short
        raise _Unpackable from None
    return seq, ts, text


def _c_columns(seq: array, ts: array, text: list[bytes]) -> tuple:
    """The cffi arguments of the columns (seq, ts, text pointers, text lengths); the bytes
    objects stay alive in the caller."""
    return (ffi.from_buffer("int64_t[]", seq), ffi.from_buffer("int64_t[]", ts),
            ffi.new("char *[]", [ffi.from_buffer(t) for t in text]),
            ffi.new("size_t[]", [len(t) for t in text]))


def _rows(rows) -> Sequence:
    return rows if isinstance(rows, (list, tuple)) else list(rows)


def _prev_bytes(prev_hash: str) -> bytes:
    try:
        return prev_hash.encode("ascii")
    except (AttributeError, UnicodeEncodeError):
        raise InvalidPayloadError(pure_chain.bad_prev_message(prev_hash)) from None


def _packing_error(rc: int, index: int, field: int) -> Exception:
    """A status that well-packed columns never produce (a bug here, not bad input)."""
    if rc == lib.PJ_CHAIN_NO_MEMORY:
        return MemoryError("out of memory while hashing the chain")
    return AssertionError(f"chain kernel refused the packed columns: status {rc}, row {index}, "
                          f"field {field}")


_new, _unpack, _chain_row = ffi.new, ffi.unpack, lib.pj_chain_row
_BAD_LAYOUT = lib.PJ_CHAIN_BAD_LAYOUT
_NO_FIELD = ffi.NULL


def chain_row(prev_hash: str, row: Sequence) -> tuple[str, bytes]:
    """Same contract as :func:`.pure_merkle.chain_row`: one row's hash and leaf hash, through
    ``pj_chain_row``. The nine text values cross as one buffer packed by one ``join`` and one
    ``encode`` (``\x01`` for NULL); anything that is not plainly well formed (a NULL or
    non-str payload, a text equal to ``\x01``, a lone surrogate, an int that is not exactly an
    int or is beyond int64, a NUL inside a text) is the reference's."""
    try:
        seq, event_id, kind, actor, sess, run, princ, dev, chan, ts, payload = row
    except (TypeError, ValueError):  # not a sequence of 11 fields: the reference says why
        return pure_merkle.chain_row(prev_hash, row)
    values = [event_id, kind, actor, sess, run, princ, dev, chan, payload]
    if type(seq) is not int or type(ts) is not int or payload is None or _NULL in values:
        return pure_merkle.chain_row(prev_hash, row)
    if None in values:
        values = [_NULL if v is None else v for v in values]
    values.append("")  # the payload ends with a NUL too
    try:
        packed = _SEP.join(values).encode()
        prev = prev_hash.encode("ascii")
    except (TypeError, AttributeError, UnicodeEncodeError):
        return pure_merkle.chain_row(prev_hash, row)
    out = _new("char[96]")
    try:
        rc = _chain_row(prev, len(prev), seq, ts, packed, len(packed), out, 96, _NO_FIELD)
    except OverflowError:  # seq or ts beyond int64
        return pure_merkle.chain_row(prev_hash, row)
    if rc:
        if rc == _BAD_LAYOUT:  # a text holding NUL
            return pure_merkle.chain_row(prev_hash, row)
        raise _packing_error(rc, 0, -1)  # out of memory (the field is not asked for)
    raw = _unpack(out, 96)
    return raw[:64].decode("ascii"), raw[64:]


def chain_hashes(prev_hash: str, rows: Sequence[Sequence]) -> list[str]:
    """Each row's hash (rows in ``CHAIN_FIELDS`` order), chaining from ``prev_hash``."""
    prev = _prev_bytes(prev_hash)
    rows = _rows(rows)
    if len(rows) == 1:
        return [chain_row(prev_hash, rows[0])[0]]
    try:
        seq, ts, text = _columns(rows, _TEXT_COLUMNS, nullable_payload=False)
    except _Unpackable:
        return pure_chain.chain_hashes(prev_hash, rows)
    n = len(rows)
    out = bytearray(64 * n)
    index = ffi.new("int64_t *")
    field = ffi.new("int *")
    rc = lib.pj_chain_hashes(prev, len(prev), n, *_c_columns(seq, ts, text), ffi.from_buffer(out),
                             len(out), index, field)
    if rc == lib.PJ_CHAIN_BAD_LAYOUT:  # a text holding NUL
        return pure_chain.chain_hashes(prev_hash, rows)
    if rc:
        raise _packing_error(rc, index[0], field[0])
    hexes = out.decode("ascii")
    return [hexes[i:i + 64] for i in range(0, 64 * n, 64)]


def leaf_hashes(rows: Sequence[Sequence]) -> bytes:
    """The RFC 9162 leaf hash of each row (rows in ``CHAIN_FIELDS`` order, extra fields ignored),
    32 raw bytes each, concatenated: the same envelopes as :func:`chain_hashes`, hashed as leaves
    (:func:`.pure_merkle.leaf_hashes` is the reference, and takes every batch C cannot)."""
    rows = _rows(rows)
    try:
        seq, ts, text = _columns(rows, _TEXT_COLUMNS, nullable_payload=False)
    except _Unpackable:
        return pure_merkle.leaf_hashes(rows)
    n = len(rows)
    out = bytearray(32 * n)
    index = ffi.new("int64_t *")
    field = ffi.new("int *")
    rc = lib.pj_chain_leaf_hashes(n, *_c_columns(seq, ts, text), ffi.from_buffer(out), len(out),
                                  index, field)
    if rc == lib.PJ_CHAIN_BAD_LAYOUT:  # a text holding NUL
        return pure_merkle.leaf_hashes(rows)
    if rc:
        raise _packing_error(rc, index[0], field[0])
    return bytes(out)


def _pack_columns(first_seq: int, columns: Sequence[Sequence], packed_payload: bytes | None) -> tuple:
    """(seq, ts, text buffers) of a batch given as columns (CHAIN_FIELDS after seq, as
    :func:`.pure_chain.column_rows` takes them), packed straight from the lists the batch already
    holds: no rows are built; the payload column is ``packed_payload`` when the canonicalizer
    wrote it. Raises _Unpackable when the reference must take the batch."""
    if len(columns) != len(CHAIN_FIELDS) - 1 or not all(type(c) is list for c in columns):
        raise _Unpackable
    n = len(columns[0])
    if any(len(c) != n for c in columns) or type(first_seq) is not int \
            or not (_INT64_MIN <= first_seq and first_seq + n <= _INT64_MAX):
        raise _Unpackable
    lists = cast("list[list]", columns)
    seq = array("q", range(first_seq, first_seq + n))
    ts = _int_values(lists[_INT_COLUMNS[1] - 1])
    if packed_payload is None:
        text = [_text_values(lists[k - 1], k != _PAYLOAD) for k in _TEXT_COLUMNS]
    elif type(packed_payload) is bytes:  # C checks that it holds n NUL-ended values
        text = [packed_payload if k == _PAYLOAD else _text_values(lists[k - 1], True)
                for k in _TEXT_COLUMNS]
    else:
        raise _Unpackable
    return seq, ts, text


def chain_columns(prev_hash: str, first_seq: int, columns: Sequence[Sequence],
                  leaf_count: int = 0, packed_payload: bytes | None = None
                  ) -> tuple[list[str], bytes]:
    """Same contract as :func:`.pure_merkle.chain_columns`: the chain hashes of a batch given as
    columns and the leaf hashes of its first ``leaf_count`` rows, from one packing of the columns
    and one envelope per row (``pj_chain_hashes_leaves``). ``packed_payload``: the payload column
    already packed by ``canonicalize_many(pack=True)`` (the same texts, NUL-ended UTF-8)."""
    try:
        seq, ts, text = _pack_columns(first_seq, columns, packed_payload)
    except _Unpackable:
        return pure_merkle.chain_columns(prev_hash, first_seq, columns, leaf_count)
    n = len(seq)
    if not (type(leaf_count) is int and 0 <= leaf_count <= n):
        return pure_merkle.chain_columns(prev_hash, first_seq, columns, leaf_count)
    prev = _prev_bytes(prev_hash)
    out = bytearray(64 * n)
    leaves = bytearray(32 * leaf_count)
    index = ffi.new("int64_t *")
    field = ffi.new("int *")
    rc = lib.pj_chain_hashes_leaves(prev, len(prev), n, *_c_columns(seq, ts, text),
                                    ffi.from_buffer(out), len(out), ffi.from_buffer(leaves),
                                    leaf_count, index, field)
    if rc == lib.PJ_CHAIN_BAD_LAYOUT:  # a text holding NUL
        return pure_merkle.chain_columns(prev_hash, first_seq, columns, leaf_count)
    if rc:
        raise _packing_error(rc, index[0], field[0])
    hexes = out.decode("ascii")
    return [hexes[i:i + 64] for i in range(0, 64 * n, 64)], bytes(leaves)


def verify_chain(prev_hash: str, first_seq: int, rows: Sequence[Sequence]) -> tuple[int, str] | None:
    """Same contract as :func:`.pure_chain.verify_chain`: ``(index, reason)`` of the first bad row."""
    if not isinstance(prev_hash, str):
        raise InvalidPayloadError(pure_chain.bad_prev_message(prev_hash))
    rows = _rows(rows)
    if not (type(first_seq) is int and _INT64_MIN <= first_seq
            and first_seq + len(rows) <= _INT64_MAX):
        return pure_chain.verify_chain(prev_hash, first_seq, rows)  # beyond SQLite's seq range
    try:
        prev = prev_hash.encode("utf-8")
        seq, ts, text = _columns(rows, _VERIFY_TEXT_COLUMNS, nullable_payload=True)
    except (_Unpackable, UnicodeEncodeError):
        return pure_chain.verify_chain(prev_hash, first_seq, rows)
    index = ffi.new("int64_t *")
    reason = ffi.new("int *")
    field = ffi.new("int *")
    rc = lib.pj_chain_verify(prev, len(prev), first_seq, len(rows), *_c_columns(seq, ts, text),
                             index, reason, field)
    if rc == lib.PJ_CHAIN_BAD_LAYOUT:  # a text holding NUL
        return pure_chain.verify_chain(prev_hash, first_seq, rows)
    if rc:
        raise _packing_error(rc, index[0], field[0])
    if reason[0] == 0:
        return None
    return index[0], _REASONS[reason[0]]


def verify_joined(prev_hash: str, first_seq: int, n: int, columns: Sequence[bytes],
                  leaf_count: int) -> bytes | None:
    """Same contract as :func:`.pure_chain_joined.verify_joined`: the columns go to C as they came
    from SQLite (``pj_chain_verify_joined``, GIL released), no value is a Python object."""
    if not (isinstance(prev_hash, str) and prev_hash.isascii() and type(n) is int and n >= 1
            and len(columns) == lib.PJ_VERIFY_COLUMNS and type(first_seq) is int
            and _INT64_MIN <= first_seq and first_seq + n <= _INT64_MAX
            and type(leaf_count) is int and 0 <= leaf_count <= n):
        return pure_chain_joined.verify_joined(prev_hash, first_seq, n, columns, leaf_count)
    prev = prev_hash.encode("ascii")
    leaves = bytearray(32 * leaf_count)
    index = ffi.new("int64_t *")
    reason = ffi.new("int *")
    field = ffi.new("int *")
    bufs = [ffi.from_buffer(c) for c in columns]
    rc = lib.pj_chain_verify_joined(prev, len(prev), first_seq, n, ffi.new("char *[]", bufs),
                                    ffi.new("size_t[]", [len(b) for b in bufs]),
                                    ffi.from_buffer(leaves), leaf_count, index, reason, field)
    if rc == lib.PJ_CHAIN_NO_MEMORY:
        raise MemoryError("out of memory while verifying the chain")
    if rc or reason[0]:
        return None
    return bytes(leaves)


__all__ = ["sha256", "chain_hashes", "chain_columns", "chain_row", "verify_chain", "verify_joined"]
