"""``verify_joined`` in Python: the reference for ``pj_chain_verify_joined`` (``csrc/chain.c``).

``verify()`` reads a range of rows as one result row (docs/journal.md, "Verifying on both
cores"), so that no Python object is made per value: every ``VERIFY_FIELDS`` column but the
payload as SQLite's ``json_group_array(column)`` (a JSON array: an INTEGER as its decimal text, a
TEXT as a JSON string, NULL as ``null``; a BLOB makes SQLite raise), and ``payload_json`` as
``group_concat(payload_json, char(0))`` (the texts joined by NUL bytes).

SQLite writes a JSON string exactly as RFC 8785 does, so a text value's token is already what the
envelope holds. The call only proves a range good: it returns the RFC 9162 leaf hashes of the
first ``leaf_count`` rows when every row verifies (:func:`.pure_chain.verify_chain` from
``prev_hash``) and every token is in that form, and None on anything else, a finding or a value
this form cannot say exactly (a number where text belongs, an int column value that is not an
INTEGER, another spelling of a string, invalid UTF-8, a column without ``n`` values): the caller
then reads those rows the ordinary way, and the finding is that path's own.
"""

from __future__ import annotations

import json
from typing import Sequence

from . import pure_chain, pure_merkle
from .layout import CHAIN_INT_FIELDS, VERIFY_FIELDS

_INT_COLUMNS = tuple(VERIFY_FIELDS.index(f) for f in CHAIN_INT_FIELDS)
_PAYLOAD = VERIFY_FIELDS.index("payload_json")
_INT64 = range(-(2**63), 2**63)


def _array(k: int, column: bytes, n: int) -> list | None:
    """The n values of a JSON array column, when each is written as SQLite (and RFC 8785) write it
    and has the column's type; else None."""
    try:
        text = bytes(column).decode("utf-8")
        values = json.loads(text)
    except ValueError:  # invalid UTF-8 or JSON
        return None
    if type(values) is not list or len(values) != n \
            or json.dumps(values, ensure_ascii=False, separators=(",", ":")) != text:
        return None
    if k in _INT_COLUMNS:
        ok = all(type(v) is int and v in _INT64 for v in values)
    else:
        ok = all(v is None or type(v) is str for v in values)
    return values if ok else None


def joined_rows(n: int, columns: Sequence[bytes]) -> list[tuple] | None:
    """The ``n`` rows (``VERIFY_FIELDS`` order) of a range's columns, or None when they do not
    hold exactly ``n`` values each in the form above."""
    if len(columns) != len(VERIFY_FIELDS) or n < 1:
        return None
    cols: list[list] = []
    for k, column in enumerate(columns):
        values = _payloads(column, n) if k == _PAYLOAD else _array(k, column, n)
        if values is None:
            return None
        cols.append(values)
    return list(zip(*cols))


def _payloads(column: bytes, n: int) -> list | None:
    """The n payload texts joined by NUL bytes, or None."""
    try:
        values = [v.decode("utf-8") for v in bytes(column).split(b"\x00")]
    except UnicodeDecodeError:
        return None
    return values if len(values) == n else None


def verify_joined(prev_hash: str, first_seq: int, n: int, columns: Sequence[bytes],
                  leaf_count: int) -> bytes | None:
    """The leaf hashes of the first ``leaf_count`` rows when the ``n`` rows of ``columns`` all
    verify from ``prev_hash``, else None (see the module docstring)."""
    rows = joined_rows(n, columns)
    if rows is None or pure_chain.verify_chain(prev_hash, first_seq, rows) is not None:
        return None
    return pure_merkle.leaf_hashes(rows, 0, leaf_count)
