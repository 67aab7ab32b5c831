"""RFC 9162 §2.1.3-2.1.4 proofs: building them from a tree's nodes, and verifying them.

Building is written once, against a ``node(level, index)`` function that returns the hash of a
*complete* subtree (leaves ``index·2^level`` .. ``(index+1)·2^level - 1``); the tile store serves it
from stored hashes, so a proof costs O(log n) lookups. Verifying follows the RFC's algorithms
step by step and needs nothing but hashlib; every failure raises :class:`ProofError` naming what
did not match.
"""

from __future__ import annotations

import base64
from typing import Callable, Sequence

from ..errors import ProofError
from .hashing import EMPTY_ROOT, HASH_SIZE, node_hash

NodeFn = Callable[[int, int], bytes]


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2): RFC 9162's split point k."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(node: NodeFn, start: int, end: int, memo: dict | None = None) -> bytes:
    """MTH(D[start:end]) for a range whose ``start`` is a multiple of a power of two >= its size
    (every range RFC 9162's recursions visit is): the complete subtrees of its binary
    decomposition, folded from the right. ``memo`` keeps them across calls: the hash of a range
    never changes in an append-only log, and the right edge's ranges recur in every proof."""
    if end <= start:
        return EMPTY_ROOT
    size = end - start
    if not size & (size - 1):  # one complete subtree
        level = size.bit_length() - 1
        return node(level, start >> level)
    if memo is not None:
        h = memo.get((start, end))
        if h is None:
            h = memo[(start, end)] = range_hash(node, start, end)
        return h
    parts = []
    pos = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            parts.append(node(level, pos >> level))
            pos += 1 << level
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h


def inclusion_nodes(index: int, size: int) -> list[tuple[int, int]]:
    """The nodes of PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), bottom-up, as ``(level, i)``.

    Unrolled from the RFC's recursion: below level ``inner`` (the highest bit where ``index`` and
    ``size - 1`` differ) the path takes the sibling at each level; above it, the left sibling at
    each level where ``index`` has a 1 bit. Every one is the complete node ``(level, i)`` except
    possibly the last inner one, which may reach past the right edge: it then stands for the hash
    of the leaves ``i·2^level .. size-1`` (:func:`range_hash`). Each node shares its C2SP tile
    with the path, so a tile store serves a proof from one tile per 8 levels."""
    inner = (index ^ (size - 1)).bit_length()
    nodes = [(level, (index >> level) ^ 1) for level in range(inner)]
    nodes += [(level, (index >> level) - 1) for level in range(inner, size.bit_length())
              if index >> level & 1]
    return nodes


def consistency_path(node: NodeFn, old_size: int, new_size: int,
                     memo: dict | None = None) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1 (empty when old is 0 or new)."""
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []
    m, start, end, complete = old_size, 0, new_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(range_hash(node, start, end, memo))
            break
        k = _largest_power_below(n)
        if m <= k:
            proof.append(range_hash(node, start + k, end, memo))
            end = start + k
        else:
            proof.append(range_hash(node, start, start + k, memo))
            m -= k
            start += k
            complete = False
    proof.reverse()
    return proof


# ------------------------------------------------------------------------------------ verifying
def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


def _check_hash(name: str, value: object) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != HASH_SIZE:
        got = f"{len(value)} bytes" if isinstance(value, (bytes, bytearray, memoryview)) \
            else type(value).__name__
        raise ProofError(f"{name} must be a {HASH_SIZE}-byte hash, got {got}")
    return bytes(value)


def _check_root(name: str, value: object) -> bytes:
    """A root to compare against: any bytes (a root of the wrong length simply never matches a
    computed one; the published vectors use such placeholders where a root is not looked at)."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ProofError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _check_size(name: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise ProofError(f"{name} must be an int >= 0, got {value!r:.60}")
    return value


def _hashes(name: str, hashes: object) -> list[bytes]:
    if hashes is None:
        return []
    if isinstance(hashes, (bytes, str)) or not isinstance(hashes, Sequence):
        raise ProofError(f"{name} must be a sequence of hashes, got {type(hashes).__name__}")
    return [_check_hash(f"{name}[{i}]", h) for i, h in enumerate(hashes)]


def _walk(fn: int, sn: int, path: list[bytes], what: str):
    """The walk up the tree shared by RFC 9162 §2.1.3.2 and §2.1.4.2: yields each hash of
    ``path`` with True when it is a left sibling (hash it before the running value), False when a
    right one; ``fn``/``sn`` are the node and last-node indexes; the path must end at the root."""
    for c in path:
        if sn == 0:
            raise ProofError(f"{what} has too many hashes")
        if fn & 1 or fn == sn:
            yield c, True
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            yield c, False
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"{what} has too few hashes")


def inclusion_length(index: int, size: int) -> int:
    """How many hashes PATH(index, size) holds: the inner levels plus the right border."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + bin(index >> inner).count("1")


def root_from_inclusion(leaf_hash: bytes, leaf_index: int, tree_size: int,
                        hashes: Sequence[bytes]) -> bytes:
    """The root that ``hashes`` lead to from ``leaf_hash`` (RFC 9162 §2.1.3.2 steps 1-6)."""
    leaf_hash = _check_hash("leaf_hash", leaf_hash)
    leaf_index = _check_size("leaf_index", leaf_index)
    tree_size = _check_size("tree_size", tree_size)
    path = _hashes("hashes", hashes)
    if leaf_index >= tree_size:
        raise ProofError(f"leaf_index {leaf_index} is not in a tree of size {tree_size}")
    want = inclusion_length(leaf_index, tree_size)
    if len(path) != want:
        raise ProofError(f"an inclusion proof for leaf {leaf_index} in a tree of size {tree_size} "
                         f"has {want} hashes, got {len(path)}")
    r = leaf_hash
    what = f"inclusion proof for leaf {leaf_index} in a tree of size {tree_size}"
    for c, left in _walk(leaf_index, tree_size - 1, path, what):
        r = node_hash(c, r) if left else node_hash(r, c)
    return r


def verify_inclusion(leaf_hash: bytes, leaf_index: int, tree_size: int, hashes: Sequence[bytes],
                     root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``leaf_index`` of the tree of ``tree_size`` with ``root``;
    raises :class:`ProofError` naming what failed."""
    root = _check_root("root", root)
    got = root_from_inclusion(leaf_hash, leaf_index, tree_size, hashes)
    if got != root:
        raise ProofError(f"inclusion proof for leaf {leaf_index} in a tree of size {tree_size} "
                         f"leads to root {_b64(got)}, not {_b64(root)}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       hashes: Sequence[bytes]) -> None:
    """Check that the tree of ``old_size`` with ``old_root`` is a prefix of the tree of
    ``new_size`` with ``new_root`` (RFC 9162 §2.1.4.2); raises :class:`ProofError`."""
    old_size = _check_size("old_size", old_size)
    new_size = _check_size("new_size", new_size)
    old_root = _check_root("old_root", old_root)
    new_root = _check_root("new_root", new_root)
    proof = _hashes("hashes", hashes)
    if old_size > new_size:
        raise ProofError(f"old_size {old_size} is larger than new_size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError(f"a consistency proof between equal sizes is empty, got "
                             f"{len(proof)} hashes")
        if old_root != new_root:
            raise ProofError(f"trees of the same size {old_size} have different roots "
                             f"{_b64(old_root)} and {_b64(new_root)}")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError(f"the empty tree's root is {_b64(EMPTY_ROOT)}, not {_b64(old_root)}")
        return
    if old_size == 0:  # RFC 9162 defines proofs for 0 < old_size < new_size only
        raise ProofError(f"there is no consistency proof from the empty tree (to size {new_size}): "
                         "every tree extends it")
    if not proof:
        raise ProofError(f"consistency proof from {old_size} to {new_size} is empty")
    if old_size & (old_size - 1) == 0:  # step 2: a power of two starts from its own root
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c, left in _walk(fn, sn, proof[1:], f"consistency proof from {old_size} to {new_size}"):
        if left:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
    if fr != old_root:
        raise ProofError(f"consistency proof leads to old root {_b64(fr)}, not {_b64(old_root)}")
    if sr != new_root:
        raise ProofError(f"consistency proof leads to new root {_b64(sr)}, not {_b64(new_root)}")
