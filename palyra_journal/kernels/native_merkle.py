"""RFC 9162 Merkle tree hashing on the native module (``csrc/merkle.c``; leaf hashes in
``csrc/chain.c``, which writes the envelopes).

Same results as :mod:`.pure_merkle`, the reference. C sees buffers only: ``leaf_hashes`` packs the
rows into the chain kernel's columns (:mod:`.native_chain`).
"""

from __future__ import annotations

from typing import Sequence

from .._native import ffi, lib
from . import native_chain, pure_merkle
from .pure_merkle import HASH_SIZE, leaf_data


def leaf_hashes(rows: Sequence[Sequence], start: int = 0, count: int | None = None) -> bytes:
    """Leaf hashes of ``rows[start:start+count]``, concatenated (see :func:`.pure_merkle.leaf_hashes`)."""
    if not isinstance(rows, (list, tuple)):
        rows = list(rows)
    if count is None:
        count = len(rows) - start
    pure_merkle._check_rows(rows, start, count)
    return native_chain.leaf_hashes(rows[start:start + count])


def node_hashes(pairs: bytes) -> bytes:
    """``node_hash(left, right)`` of each 64-byte pair of ``pairs``, concatenated."""
    pure_merkle._check_hashes("pairs", pairs, 64)
    out = bytearray(len(pairs) // 2)
    lib.pj_merkle_node_hashes(ffi.from_buffer(pairs), len(pairs), ffi.from_buffer(out), len(out))
    return bytes(out)


def subtree(entries: bytes) -> bytes:
    """The levels above a power-of-two count of hashes, up to the root (see :mod:`.pure_merkle`)."""
    w = len(entries) // HASH_SIZE
    if len(entries) % HASH_SIZE or w == 0 or w & (w - 1):
        return pure_merkle.subtree(entries)  # raises the reference's error
    out = bytearray(HASH_SIZE * (w - 1))
    if out:
        lib.pj_merkle_subtree(ffi.from_buffer(entries), len(entries), ffi.from_buffer(out), len(out))
    return bytes(out)


__all__ = ["HASH_SIZE", "leaf_data", "leaf_hashes", "node_hashes", "subtree"]
