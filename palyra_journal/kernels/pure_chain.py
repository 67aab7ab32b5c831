"""Hash chain v1 (docs/journal.md) in Python: the reference for ``csrc/chain.c``.

The envelope's members are already in RFC 8785 order, and JCS of a nested value is its own JCS, so
the canonical envelope is assembled by splicing the stored ``payload_json`` between the other
members. ``json.dumps(s, ensure_ascii=False)`` writes a string exactly as RFC 8785 does (minimal
escapes, lowercase ``\\u00xx`` for other controls, everything else raw); a lone surrogate fails at
UTF-8 encoding, as it must.

Field types are strict (both backends): the eight text fields are ``str`` or ``None``,
``payload_json`` is ``str``, ``seq`` and ``timestamp_unix_ms`` are ``int`` (not ``bool``). A float
timestamp or an int where text belongs would otherwise hash as something the stored row does not
hold. ``chain_hashes`` refuses such a row with :class:`InvalidPayloadError` naming the row index and
field; ``verify_chain`` reports it as ``hash_mismatch`` (a tampered row, not a crash).
"""

from __future__ import annotations

import hashlib
from json import dumps as _dumps
from collections.abc import Mapping
from typing import Sequence

from ..errors import InvalidPayloadError
from .layout import CHAIN_FIELDS, CHAIN_INT_FIELDS, ENVELOPE_NAMES

_FIELDS = CHAIN_FIELDS
_INTS = tuple(CHAIN_FIELDS.index(f) for f in CHAIN_INT_FIELDS)
_PAYLOAD = CHAIN_FIELDS.index("payload_json")
_TEXT = tuple(k for k in range(len(CHAIN_FIELDS)) if k not in _INTS and k != _PAYLOAD)
#: Field indexes in the order the envelope names them (RFC 8785 sorts members by name).
_ENVELOPE_ORDER = tuple(sorted(range(len(CHAIN_FIELDS)), key=ENVELOPE_NAMES.__getitem__))
#: The canonical envelope with a slot per member: ``%d`` for ints, ``%s`` for quoted text (or
#: null) and for the stored payload text, spliced verbatim.
_ENVELOPE = "{" + ",".join(f'"{ENVELOPE_NAMES[k]}":' + ("%d" if k in _INTS else "%s")
                           for k in _ENVELOPE_ORDER) + "}"


def row_shape_message(index: int, row, expected: int) -> str:
    got = f"{len(row)} fields" if hasattr(row, "__len__") else type(row).__name__
    return f"row {index}: expected a sequence of {expected} fields, got {got}"


def bad_type_message(index: int, field: str, value) -> str:
    want = "str" if field == "payload_json" else (
        "int" if field in ("seq", "timestamp_unix_ms") else "str or None")
    return f"row {index}: {field} must be {want}, not {type(value).__name__}"


def bad_text_message(index: int, field: str) -> str:
    return f"row {index}: {field} is not valid Unicode (lone surrogate)"


def bad_prev_message(prev_hash) -> str:
    return f"prev_hash must be an ASCII str, got {prev_hash!r}"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _types_ok(row: Sequence) -> bool:
    return (_is_int(row[0]) and _is_int(row[9]) and isinstance(row[10], str)
            and all(row[k] is None or isinstance(row[k], str) for k in _TEXT))


def _has_surrogate(v) -> bool:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_bad(index: int, row: Sequence) -> InvalidPayloadError:
    """The error for the first bad field in envelope order (the order the native code writes)."""
    for k in _ENVELOPE_ORDER:
        v = row[k]
        if k in _INTS:
            if not _is_int(v):
                return InvalidPayloadError(bad_type_message(index, _FIELDS[k], v))
            continue
        if v is None and k != _PAYLOAD:
            continue
        if not isinstance(v, str):
            return InvalidPayloadError(bad_type_message(index, _FIELDS[k], v))
        if _has_surrogate(v):
            return InvalidPayloadError(bad_text_message(index, _FIELDS[k]))
    raise AssertionError("no bad field in a row that failed")  # pragma: no cover


def _s(value: str | None) -> str:
    return "null" if value is None else _dumps(value, ensure_ascii=False)


def envelope_text(row: Sequence) -> str:
    """The canonical envelope of one row given in ``CHAIN_FIELDS`` order."""
    return _ENVELOPE % tuple([_s(row[k]) if k in _TEXT else row[k] for k in _ENVELOPE_ORDER])


def _hash(prev_hash: str, index: int, row: Sequence) -> str:
    if not _types_ok(row):
        raise _first_bad(index, row)
    try:
        prefix = prev_hash.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidPayloadError(bad_prev_message(prev_hash)) from None
    try:
        pre = prefix + b"\n" + envelope_text(row).encode("utf-8")
    except UnicodeEncodeError:
        raise _first_bad(index, row) from None
    return hashlib.sha256(pre).hexdigest()


def _shaped(index: int, row, expected: int) -> Sequence:
    if (isinstance(row, (str, bytes, bytearray, Mapping)) or not hasattr(row, "__getitem__")
            or len(row) < expected):
        raise InvalidPayloadError(row_shape_message(index, row, expected))
    return row


def chain_hashes(prev_hash: str, rows: Sequence[Sequence]) -> list[str]:
    """Each row's hash, chaining from ``prev_hash``."""
    if not isinstance(prev_hash, str) or not prev_hash.isascii():
        raise InvalidPayloadError(bad_prev_message(prev_hash))
    out = []
    p = prev_hash
    for i, row in enumerate(rows):
        p = _hash(p, i, _shaped(i, row, 11))
        out.append(p)
    return out


def column_rows(first_seq: int, columns: Sequence[Sequence]) -> list[tuple]:
    """The rows (``CHAIN_FIELDS`` order) of a batch given as ``columns``: the fields after ``seq``,
    one sequence each, with seqs ``first_seq, first_seq + 1, ...``."""
    if len(columns) != len(_FIELDS) - 1:
        raise InvalidPayloadError(f"expected {len(_FIELDS) - 1} columns (CHAIN_FIELDS after seq), "
                                  f"got {len(columns)}")
    n = len(columns[0])
    for name, col in zip(_FIELDS[1:], columns):
        if len(col) != n:
            raise InvalidPayloadError(f"column {name} holds {len(col)} values, {_FIELDS[1]} {n}")
    return list(zip(range(first_seq, first_seq + n), *columns))


def verify_chain(prev_hash: str, first_seq: int, rows: Sequence[Sequence]) -> tuple[int, str] | None:
    """Check rows (``VERIFY_FIELDS`` order) that should start at ``first_seq`` after ``prev_hash``.

    Returns ``(index, reason)`` of the first bad row, checking per row, in this order: ``seq_gap``
    (seq is not the previous + 1), ``unchained_row`` (NULL hash), ``prev_link_mismatch``,
    ``hash_mismatch``. ``None`` when every row is good.
    """
    if not isinstance(prev_hash, str):
        raise InvalidPayloadError(bad_prev_message(prev_hash))
    p = prev_hash
    expect = first_seq
    for i, row in enumerate(rows):
        row = _shaped(i, row, 13)
        if not _is_int(row[0]) or row[0] != expect:
            return i, "seq_gap"
        stored, prev = row[11], row[12]
        if stored is None:
            return i, "unchained_row"
        if prev != p:
            return i, "prev_link_mismatch"
        try:
            if _hash(p, i, row) != stored:
                return i, "hash_mismatch"
        except InvalidPayloadError:
            return i, "hash_mismatch"
        p = stored
        expect += 1
    return None


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
