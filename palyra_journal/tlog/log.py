"""The verifiable journal of one store: tree heads, proofs, signed checkpoints, the verify check.

These are the bodies of ``store.tree_head``, ``store.inclusion_proof``, ``store.consistency_proof``,
``store.sign_checkpoint`` and of the tree part of ``store.verify`` (docs/verifiable.md). Each call
reads the tree size once and serves every hash from :mod:`.tiles`; a file from before the tree
has its tiles built first (written, when the store is writable).
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import InvalidPayloadError, ProofError
from .. import kernels
from . import hashing, proofs, tiles
from .hashing import EMPTY_ROOT


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


@dataclass(frozen=True)
class TreeHead:
    """The tree of the first ``size`` events and its ``root`` (32 bytes)."""

    size: int
    root: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "root": _b64(self.root), "root_hex": self.root.hex()}


@dataclass(frozen=True)
class InclusionProof:
    """Event ``leaf_index + 1`` (seq) is in the tree of ``tree_size``: its ``leaf_hash`` and the
    RFC 9162 audit path ``hashes`` (bottom-up)."""

    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    hashes: list[bytes]

    def to_dict(self) -> dict[str, Any]:
        return {"leaf_index": self.leaf_index, "tree_size": self.tree_size,
                "leaf_hash": _b64(self.leaf_hash), "hashes": [_b64(h) for h in self.hashes]}


def _int_arg(name: str, value: Any, low: int) -> int:
    if type(value) is not int or value < low:
        raise InvalidPayloadError(f"{name} must be an int >= {low}, got {value!r:.60}")
    return value


@contextmanager
def _tree(store: Any) -> Iterator[tuple[Any, int, tiles.TreeReader]]:
    """``(conn, the file's tree size, reader)`` under the store's read lock, the tiles of a file
    from before the tree built first (a read-only store cannot build them)."""
    with store.read() as conn:
        current, built = tiles.sizes(conn)
        if built >= current >> tiles.TILE_HEIGHT:
            yield conn, current, _reader(store, conn)
            return
    if store.read_only:
        raise ProofError(f"the tree of {store.path!r} is not built yet: open it writable once "
                         "(or run `palyra-journal tlog build`)")
    tiles.build_tiles(store)
    with store.read() as conn:
        yield conn, tiles.tree_size(conn), _reader(store, conn)


def _reader(store: Any, conn: Any) -> tiles.TreeReader:
    """The store's cached reader; a fresh one inside an open transaction, whose rows and tiles
    may still be rolled back and must not outlive it in a cache."""
    return tiles.TreeReader() if conn.in_transaction else tiles.reader(store)


def _size(size: Any, current: int, name: str = "size") -> int:
    """``size`` checked against the file's tree size ``current``; None means ``current``."""
    if size is None:
        return current
    _int_arg(name, size, 0)
    if size > current:
        raise ProofError(f"{name} {size} is beyond the journal's {current} events")
    return size


def tree_head(store: Any, size: int | None = None) -> TreeHead:
    """The root of the tree of the first ``size`` events (None: all of them)."""
    with _tree(store) as (conn, current, r):
        size = _size(size, current)
        node = r.nodes_source(conn, size, current)
        return TreeHead(size, proofs.range_hash(node, 0, size, r.memo()) if size else EMPTY_ROOT)


def inclusion_proof(store: Any, seq: int, size: int | None = None) -> InclusionProof:
    """The proof that event ``seq`` is in the tree of ``size`` events (None: all of them)."""
    _int_arg("seq", seq, 1)
    with _tree(store) as (conn, current, r):
        size = _size(size, current)
        if seq > size:
            raise ProofError(f"seq {seq} is not in a tree of {size} events")
        return InclusionProof(seq - 1, size, *r.inclusion(conn, seq - 1, size, current))


def consistency_proof(store: Any, old_size: int, new_size: int | None = None) -> list[bytes]:
    """The proof that the tree of ``old_size`` events is a prefix of the tree of ``new_size``."""
    _int_arg("old_size", old_size, 0)
    with _tree(store) as (conn, current, r):
        new_size = _size(new_size, current, "new_size")
        if old_size > new_size:
            raise ProofError(f"old_size {old_size} is larger than new_size {new_size}")
        node = r.nodes_source(conn, new_size, current)
        return proofs.consistency_path(node, old_size, new_size, r.memo())


def sign_checkpoint(store: Any, signer_key: str, origin: str, *, size: int | None = None) -> str:
    """A C2SP signed checkpoint of the tree of ``size`` events (None: all), as note text."""
    from . import notes
    notes.parse_signer(signer_key)  # bad keys and origins fail before any work
    notes.check_origin(origin)
    head = tree_head(store, size)
    return notes.sign_note(notes.checkpoint_text(origin, head.size, head.root), signer_key)


class TreeCheck:
    """The tree part of ``verify``, fed the rows of the chain pass so that the rows are read once.

    ``feed(rows)`` takes each batch the chain pass reads (rows in ``VERIFY_FIELDS`` order, seqs
    contiguous from ``from_seq``); with the native backend their leaves are hashed on a worker
    thread (the kernel releases the GIL), beside the chain's own hashing. ``result(first_bad)``
    then reports, as ``(seq, reason)`` or None:

    - ``bad_signature`` (seq None) when the checkpoint does not open with ``verifier_key``;
    - ``tree_mismatch`` at the first seq of a stored tile that disagrees with the leaves (only
      tiles wholly before the chain's first problem ``first_bad``, which names that row more
      precisely), a tile missing inside the built prefix, or a tile stored past the last event (a
      truncated journal);
    - ``checkpoint_mismatch`` at the checkpoint's size when the file's tree at that size has another
      root (the consistency proof from the checkpoint to today's tree fails), or the file holds
      fewer events. An append-only growth passes.
    """

    def __init__(self, store: Any, conn: Any, from_seq: int, to_seq: int, last_seq: int,
                 checkpoint: str | None, verifier_key: str | None):
        self.store, self.conn, self.last_seq, self.to_seq = store, conn, last_seq, to_seq
        self.checkpoint = None
        self.bad_signature = False
        if checkpoint is not None:
            from . import notes
            if verifier_key is None:
                raise InvalidPayloadError("verify(checkpoint=...) needs verifier_key= to check it")
            notes.parse_verifier(verifier_key)  # a malformed key is bad input, not a bad signature
            try:
                self.checkpoint = notes.open_checkpoint(checkpoint, verifier_key)
            except ProofError:
                self.bad_signature = True
        self.built = tiles.built_tiles(conn)
        self.first_tile = (from_seq - 1) >> tiles.TILE_HEIGHT
        self.end_leaf = min(to_seq >> tiles.TILE_HEIGHT, self.built) << tiles.TILE_HEIGHT
        self.next_leaf = self.first_tile << tiles.TILE_HEIGHT
        self.chunks: list[Any] = []
        self.pool: ThreadPoolExecutor | None = None
        if self.next_leaf < self.end_leaf and from_seq - 1 > self.next_leaf:
            self.feed(tiles.leaf_rows(conn, self.next_leaf, from_seq - 1 - self.next_leaf))

    def feed(self, rows: list) -> None:
        n = min(len(rows), self.end_leaf - self.next_leaf)
        if n <= 0 or rows[0][0] != self.next_leaf + 1 or rows[n - 1][0] != self.next_leaf + n:
            self.end_leaf = min(self.end_leaf, self.next_leaf)  # a gap: the chain reports it
            return
        first = self.next_leaf
        self.next_leaf += n
        if kernels.backend_name() == "native":
            if self.pool is None:
                self.pool = ThreadPoolExecutor(1, thread_name_prefix="pj-tree-check")
            self.chunks.append((first, self.pool.submit(_hash_or_none, rows, n)))
        else:
            self.chunks.append((first, _Done(_hash_or_none(rows, n))))

    def leaves_until(self) -> int:
        """The last seq whose leaf hash the chain pass hands over with :meth:`feed_leaves` (0 for
        none): the tiles to check end there."""
        return self.end_leaf if self.next_leaf < self.end_leaf else 0

    def feed_leaves(self, leaves: bytes) -> None:
        """Leaf hashes the chain pass already made (``verify``'s ranges hash them with the chain),
        of the rows from seq ``next_leaf + 1`` on; those past :meth:`leaves_until` are ignored."""
        n = min(len(leaves) // hashing.HASH_SIZE, self.end_leaf - self.next_leaf)
        if n > 0:
            self.chunks.append((self.next_leaf, _Done(bytes(leaves[:n * hashing.HASH_SIZE]))))
            self.next_leaf += n

    def result(self, first_bad: int | None) -> tuple[int | None, str] | None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        if self.bad_signature:
            return None, "bad_signature"
        bad = self._tiles(first_bad)
        if bad is None and self.to_seq == self.last_seq \
                and self.built > self.last_seq >> tiles.TILE_HEIGHT:
            bad = ((self.last_seq >> tiles.TILE_HEIGHT) << tiles.TILE_HEIGHT) + 1
        if bad is not None:
            return bad, "tree_mismatch"
        return None if self.checkpoint is None else self._checkpoint()

    def _tiles(self, first_bad: int | None) -> int | None:
        leaves = bytearray()
        for _, future in self.chunks:
            got = future.result()
            if got is None:  # a row the kernel refuses (a type forged into a column): the chain
                break        # reports it; tiles from there on are not checked
            leaves += got
        whole = len(leaves) // tiles.TILE_BYTES
        if first_bad is not None:  # only tiles wholly before the chain's first problem
            whole = min(whole, max(0, ((first_bad - 1) >> tiles.TILE_HEIGHT) - self.first_tile))
        return tiles.first_mismatch(self.conn, self.first_tile,
                                    bytes(leaves[:whole * tiles.TILE_BYTES]))

    def _checkpoint(self) -> tuple[int, str] | None:
        cp, conn, last_seq = self.checkpoint, self.conn, self.last_seq
        if cp is None:
            return None
        if cp.size > last_seq:
            return max(last_seq + 1, 1), "checkpoint_mismatch"
        if self.built < last_seq >> tiles.TILE_HEIGHT:  # a file from before the tree
            return None if tiles.root_from_leaves(conn, cp.size) == cp.root else \
                (cp.size, "checkpoint_mismatch")
        if cp.size == 0:
            return None if cp.root == EMPTY_ROOT else (1, "checkpoint_mismatch")
        node = tiles.TreeReader().nodes_source(conn, last_seq)  # no cache: verify reads the file
        head = proofs.range_hash(node, 0, last_seq)
        proof = proofs.consistency_path(node, cp.size, last_seq)
        try:
            proofs.verify_consistency(cp.size, last_seq, cp.root, head, proof)
        except ProofError:
            return cp.size, "checkpoint_mismatch"
        return None


class _Done:
    """A finished result with the interface of a future (the pure backend hashes inline)."""

    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        return self.value


def _hash_or_none(rows: list, n: int) -> bytes | None:
    try:
        return hashing.leaf_hashes(rows, 0, n)
    except InvalidPayloadError:
        return None
