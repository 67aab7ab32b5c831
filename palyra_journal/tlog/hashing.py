"""Merkle hashing on the kernel backend in use: leaf and node hashes, one call per batch.

The twins live in the kernel layer (``kernels/pure_merkle.py`` is the reference,
``kernels/native_merkle.py`` runs ``csrc/merkle.c``); this module picks the one matching
:func:`palyra_journal.kernels.backend_name` at each call, so ``kernels.set_backend`` switches the
tree code with everything else.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from .. import kernels
from ..kernels import pure_merkle

HASH_SIZE = 32
#: The root of the empty tree (RFC 9162 §2.1.1): SHA-256 of nothing.
EMPTY_ROOT = hashlib.sha256(b"").digest()


_native = None


def _impl():
    global _native
    if kernels.backend_name() != "native":
        return pure_merkle
    if _native is None:
        from ..kernels import native_merkle
        _native = native_merkle
    return _native


def leaf_hashes(rows: Sequence[Sequence], start: int = 0, count: int | None = None) -> bytes:
    """Leaf hashes of ``rows[start:start+count]`` (``CHAIN_FIELDS`` first), concatenated."""
    return _impl().leaf_hashes(rows, start, count)


def node_hashes(pairs: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` of each 64-byte pair, concatenated."""
    return _impl().node_hashes(pairs)


def subtree(entries: bytes) -> bytes:
    """The levels above a power-of-two count of hashes, ending with their root."""
    return _impl().subtree(entries)


def node_hash(left: bytes, right: bytes) -> bytes:
    """One interior node (verifiers hash O(log n) of them: hashlib is as fast as a native call)."""
    return hashlib.sha256(b"\x01" + left + right).digest()
