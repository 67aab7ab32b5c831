"""SHA-256 and hash chain v1 on the native module (``csrc/sha256.c``, ``csrc/chain.c``).

Same results as :mod:`.pure_chain`, the reference. The chain functions hand the row objects
themselves to C (their addresses, while this frame keeps them alive), which reads them through the
CPython API: no per-row Python work, one native call per batch.
"""

from __future__ import annotations

from typing import Sequence

from .._native import ffi, lib
from ..errors import InvalidPayloadError
from . import pure_chain
from .layout import CHAIN_FIELDS

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_REASONS = {
    lib.PJ_VERIFY_SEQ_GAP: "seq_gap",
    lib.PJ_VERIFY_UNCHAINED_ROW: "unchained_row",
    lib.PJ_VERIFY_PREV_LINK_MISMATCH: "prev_link_mismatch",
    lib.PJ_VERIFY_HASH_MISMATCH: "hash_mismatch",
}


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of ``data`` (bytes-like), on the SHA path :func:`cpu_info` reports."""
    out = ffi.new("uint8_t[32]")
    buf = ffi.from_buffer(data)
    lib.pj_sha256(buf, len(buf), out)
    return ffi.buffer(out)[:]


def _rows(rows) -> Sequence:
    return rows if isinstance(rows, (list, tuple)) else list(rows)


def _raise(rc: int, rows: Sequence, index: int, field: int, expected: int) -> None:
    if rc == lib.PJ_CHAIN_NO_MEMORY:
        raise MemoryError("out of memory while hashing the chain")
    if rc == lib.PJ_CHAIN_BAD_ARGS:
        raise InvalidPayloadError(f"rows must be a sequence of rows, got {type(rows).__name__}")
    if rc == lib.PJ_CHAIN_BAD_ROW:
        raise InvalidPayloadError(pure_chain.row_shape_message(index, rows[index], expected))
    name = CHAIN_FIELDS[field]
    if rc == lib.PJ_CHAIN_BAD_TEXT:
        raise InvalidPayloadError(pure_chain.bad_text_message(index, name))
    raise InvalidPayloadError(pure_chain.bad_type_message(index, name, rows[index][field]))


def _prev_bytes(prev_hash: str) -> bytes:
    try:
        return prev_hash.encode("ascii")
    except (AttributeError, UnicodeEncodeError):
        raise InvalidPayloadError(pure_chain.bad_prev_message(prev_hash)) from None


def chain_hashes(prev_hash: str, rows: Sequence[Sequence]) -> list[str]:
    """Each row's hash (rows in ``CHAIN_FIELDS`` order), chaining from ``prev_hash``."""
    prev = _prev_bytes(prev_hash)
    rows = _rows(rows)
    out: list[str] = []
    index = ffi.new("int64_t *")
    field = ffi.new("int *")
    rc = lib.pj_chain_hashes(prev, len(prev), ffi.cast("void *", id(rows)), ffi.cast("void *", id(out)),
                             ffi.NULL, 0, index, field)
    if rc:
        _raise(rc, rows, index[0], field[0], len(CHAIN_FIELDS))
    return out


def chain_hashes_joined(prev_hash: str, rows: Sequence[Sequence]) -> list[str]:
    """:func:`chain_hashes` with the hex written to one buffer split in Python (kept for the
    benchmark that chose the list built in C)."""
    prev = _prev_bytes(prev_hash)
    rows = _rows(rows)
    n = len(rows)
    buf = ffi.new("char[]", 64 * n or 1)
    index = ffi.new("int64_t *")
    field = ffi.new("int *")
    rc = lib.pj_chain_hashes(prev, len(prev), ffi.cast("void *", id(rows)), ffi.NULL, buf, 64 * n,
                             index, field)
    if rc:
        _raise(rc, rows, index[0], field[0], len(CHAIN_FIELDS))
    text = ffi.unpack(buf, 64 * n).decode("ascii")
    return [text[i:i + 64] for i in range(0, 64 * n, 64)]


def verify_chain(prev_hash: str, first_seq: int, rows: Sequence[Sequence]) -> tuple[int, str] | None:
    """Same contract as :func:`.pure_chain.verify_chain`: ``(index, reason)`` of the first bad row."""
    if not isinstance(prev_hash, str):
        raise InvalidPayloadError(pure_chain.bad_prev_message(prev_hash))
    rows = _rows(rows)
    if not (isinstance(first_seq, int) and _INT64_MIN <= first_seq
            and first_seq + len(rows) <= _INT64_MAX):
        return pure_chain.verify_chain(prev_hash, first_seq, rows)  # beyond SQLite's seq range
    index = ffi.new("int64_t *")
    reason = ffi.new("int *")
    rc = lib.pj_chain_verify(ffi.cast("void *", id(prev_hash)), first_seq,
                             ffi.cast("void *", id(rows)), index, reason)
    if rc:
        _raise(rc, rows, index[0], -1, len(CHAIN_FIELDS) + 2)
    if reason[0] == 0:
        return None
    return index[0], _REASONS[reason[0]]


__all__ = ["sha256", "chain_hashes", "verify_chain"]
