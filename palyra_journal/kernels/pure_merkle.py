"""RFC 9162 Merkle tree hashing in Python: the reference for ``csrc/merkle.c``.

``leaf_hash = SHA-256(0x00 || leaf data)``, ``node_hash = SHA-256(0x01 || left || right)``; the leaf
data of an event is its chain v1 envelope (:func:`.pure_chain.envelope_text`), so an event alone
gives its leaf hash. Hashes are raw 32-byte digests, batches are concatenated digests.
"""

from __future__ import annotations

from hashlib import sha256 as _sha256
from typing import Sequence

from ..errors import InvalidPayloadError
from . import pure_chain

HASH_SIZE = 32


def _check_rows(rows: Sequence, start: int, count: int) -> None:
    if not isinstance(start, int) or not isinstance(count, int) or start < 0 or count < 0 \
            or start + count > len(rows):
        raise InvalidPayloadError(
            f"rows[{start}:{start}+{count}] is outside a batch of {len(rows)} rows")


def leaf_hashes(rows: Sequence[Sequence], start: int = 0, count: int | None = None) -> bytes:
    """Leaf hashes of ``rows[start:start+count]`` (rows in ``CHAIN_FIELDS`` order, extra fields
    ignored), concatenated. A bad row raises :class:`InvalidPayloadError` naming its index
    (relative to ``start``) and field, with chain_hashes' messages."""
    if count is None:
        count = len(rows) - start
    _check_rows(rows, start, count)
    out = bytearray()
    for i in range(count):
        out += _sha256(b"\x00" + leaf_data(i, rows[start + i])).digest()
    return bytes(out)


def chain_columns(prev_hash: str, first_seq: int, columns: Sequence[Sequence],
                  leaf_count: int = 0, packed_payload: bytes | None = None
                  ) -> tuple[list[str], bytes]:
    """The batch path's one call: each row's hash (:func:`.pure_chain.chain_hashes`) of a batch
    given as columns (:func:`.pure_chain.column_rows`), and the leaf hashes of its first
    ``leaf_count`` rows (:func:`leaf_hashes`), which the Merkle tiles take from the same envelopes.
    It lives here, beside the leaves, since this module builds on ``pure_chain``.
    ``packed_payload`` (the payload column as the native canonicalizer packs it) is a hint for the
    native kernel; the reference reads the texts of ``columns``."""
    rows = pure_chain.column_rows(first_seq, columns)
    if not (type(leaf_count) is int and 0 <= leaf_count <= len(rows)):
        raise InvalidPayloadError(f"leaf_count must be an int in 0..{len(rows)}, got {leaf_count!r}")
    hashes = pure_chain.chain_hashes(prev_hash, rows)
    return hashes, leaf_hashes(rows, 0, leaf_count)


def chain_row(prev_hash: str, row: Sequence) -> tuple[str, bytes]:
    """``append``'s call: the hash of one row (CHAIN_FIELDS order) chained from ``prev_hash``, and
    its leaf hash (32 bytes) from the same envelope, for the Merkle tiles."""
    rows = [row]
    return pure_chain.chain_hashes(prev_hash, rows)[0], leaf_hashes(rows)


def leaf_data(index: int, row: Sequence) -> bytes:
    """The leaf data of one row: the UTF-8 of its chain v1 envelope, with chain_hashes' checks."""
    row = pure_chain._shaped(index, row, 11)
    if not pure_chain._types_ok(row):
        raise pure_chain._first_bad(index, row)
    try:
        return pure_chain.envelope_text(row).encode("utf-8")
    except UnicodeEncodeError:
        raise pure_chain._first_bad(index, row) from None


def _check_hashes(name: str, data: bytes, unit: int) -> None:
    if len(data) % unit:
        raise InvalidPayloadError(f"{name} is {len(data)} bytes, not a whole number of {unit}-byte "
                                  f"{'pairs' if unit == 64 else 'hashes'}")


def node_hashes(pairs: bytes) -> bytes:
    """``node_hash(left, right)`` of each 64-byte pair of ``pairs``, concatenated."""
    _check_hashes("pairs", pairs, 64)
    return b"".join(_sha256(b"\x01" + pairs[i:i + 64]).digest() for i in range(0, len(pairs), 64))


def subtree(entries: bytes) -> bytes:
    """The levels above ``entries`` (a power-of-two count w of hashes): w/2 hashes, then w/4, ...,
    then the root; w-1 hashes in all."""
    _check_hashes("entries", entries, HASH_SIZE)
    w = len(entries) // HASH_SIZE
    if w == 0 or w & (w - 1):
        raise InvalidPayloadError(f"a subtree needs a power-of-two count of hashes, got {w}")
    out = bytearray()
    level = entries
    while len(level) > HASH_SIZE:
        level = node_hashes(level)
        out += level
    return bytes(out)


__all__ = ["HASH_SIZE", "chain_columns", "leaf_data", "leaf_hashes", "node_hashes", "subtree"]
