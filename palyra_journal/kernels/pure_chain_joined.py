"""``verify_joined`` in Python: the reference for ``pj_chain_verify_joined`` (``csrc/chain.c``).

``verify()`` reads a range of rows as one result row: each ``VERIFY_FIELDS`` column as SQLite's
``group_concat(ifnull(column, X'01'), X'00')``, so no Python object is made per value
(docs/journal.md, "Verifying on both cores"). Column ``c`` holds the range's values separated by
single NUL bytes; the one byte ``0x01`` stands for NULL; the two int columns are decimal text as
SQLite writes an INTEGER.

The call only proves a range good: it returns ``(leaves, nulls)`` when every row verifies
(:func:`.pure_chain.verify_chain` from ``prev_hash``), with the RFC 9162 leaf hashes of the first
``leaf_count`` rows and the number of ``0x01`` values in the eleven text columns (the caller
compares it with SQLite's count of NULLs, since a stored text ``"\\x01"`` reads as NULL here). It
returns None on anything else, a finding or a value this form cannot say exactly (a column
without ``n`` values, an int that is not an INTEGER's text, invalid UTF-8): the caller then reads
those rows the ordinary way, and the finding is that path's own.
"""

from __future__ import annotations

import re
from typing import Sequence

from . import pure_chain, pure_merkle
from .layout import CHAIN_INT_FIELDS, VERIFY_FIELDS

_INT_COLUMNS = tuple(VERIFY_FIELDS.index(f) for f in CHAIN_INT_FIELDS)
_INTEGER_TEXT = re.compile(rb"(?:0|-?[1-9][0-9]{0,18})\Z")
_INT64 = range(-(2**63), 2**63)
_NULL = b"\x01"


def _value(k: int, v: bytes) -> int | str | None:
    """One value as the ordinary read gives it; ValueError when this form cannot say it."""
    if k in _INT_COLUMNS:
        if not _INTEGER_TEXT.match(v) or int(v) not in _INT64:
            raise ValueError(v)
        return int(v)
    return None if v == _NULL else v.decode("utf-8")  # UnicodeDecodeError is a ValueError


def joined_rows(n: int, columns: Sequence[bytes]) -> list[tuple] | None:
    """The ``n`` rows (``VERIFY_FIELDS`` order) of joined columns, or None when they do not hold
    exactly ``n`` readable values each."""
    if len(columns) != len(VERIFY_FIELDS) or n < 1:
        return None
    split = [bytes(c).split(b"\x00") for c in columns]
    if any(len(c) != n for c in split):
        return None
    try:
        return [tuple(_value(k, v) for k, v in enumerate(values)) for values in zip(*split)]
    except ValueError:
        return None


def verify_joined(prev_hash: str, first_seq: int, n: int, columns: Sequence[bytes],
                  leaf_count: int) -> tuple[bytes, int] | None:
    """``(leaves, nulls)`` when the ``n`` rows of ``columns`` all verify from ``prev_hash``, else
    None (see the module docstring)."""
    rows = joined_rows(n, columns)
    if rows is None or pure_chain.verify_chain(prev_hash, first_seq, rows) is not None:
        return None
    nulls = sum(v is None for row in rows for k, v in enumerate(row) if k not in _INT_COLUMNS)
    return pure_merkle.leaf_hashes(rows, 0, leaf_count), nulls
