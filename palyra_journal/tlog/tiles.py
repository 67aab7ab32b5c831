"""The tree's storage: full 256-wide tiles (C2SP tlog-tiles numbering) kept in step with the journal.

A tile at level L, index N holds the tree level 8L hashes N·256 … N·256+255 (level 0: leaf
hashes), plus, so that a proof needs one row per 8 levels, the 254 interior hashes above them
and the root of its subtree (``migrations/0006_tlog.sql``). Only **full** tiles are stored, and
stored once: a tile is written in the transaction of the append that completes it
(:func:`record_leaves`, called right after the journal inserts rows), from the batch in memory and
the <= 255 rows before it. The partial tiles of the right edge are derived on demand
(:class:`TreeReader`), so an append that completes no tile costs nothing here.

Tiles always cover a prefix of the journal. An older file has none: :func:`build_tiles` builds
them, in transactions of :data:`BUILD_CHUNK_TILES` tiles, resuming where a previous run stopped;
until then appends leave the tiles alone (the prefix is not theirs to extend).
"""

from __future__ import annotations

import sqlite3
import weakref
from collections import OrderedDict
from typing import Any, Sequence

from .. import kernels
from ..errors import IntegrityError, ProofError
from ..progress import Progress
from . import hashing, proofs
from .hashing import HASH_SIZE

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
TILE_BYTES = TILE_WIDTH * HASH_SIZE
#: Offset (in hashes) of interior level k = 0..7 inside a stored tile's ``nodes``.
LEVEL_OFFSET = tuple(2 * TILE_WIDTH - (2 * TILE_WIDTH >> k) for k in range(TILE_HEIGHT))
NODES_BYTES = (2 * TILE_WIDTH - 2) * HASH_SIZE
#: Tiles built per transaction by :func:`build_tiles` (65 536 events).
BUILD_CHUNK_TILES = 256
#: Rows read per slice while the previous slice is hashed, during a build.
READ_SLICE = 8 * TILE_WIDTH
#: Full tiles kept in memory per store (16 KiB each).
CACHE_TILES = 1024

LEAF_FIELDS = ("seq", "event_id", "kind", "actor", "session_id", "run_id", "principal",
               "device_id", "channel", "timestamp_unix_ms", "payload_json")
_LEAF_ROWS = (f"SELECT {', '.join(LEAF_FIELDS)} FROM journal_events "
              "WHERE seq >= ? AND seq <= ? ORDER BY seq")
_INSERT = "INSERT INTO tlog_tiles (level, idx, root, nodes) VALUES (?, ?, ?, ?)"
_HAS_TILE = "SELECT 1 FROM tlog_tiles WHERE level = ? AND idx = ?"
# Bare MAX() keeps SQLite's min/max optimization (one index probe); COALESCE around it would scan.
_LAST_TILE = "SELECT MAX(idx) FROM tlog_tiles WHERE level = ?"
_ROOTS = "SELECT idx, root FROM tlog_tiles WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx"
_NODES = "SELECT nodes FROM tlog_tiles WHERE level = ? AND idx = ?"
_TREE_SIZE = "SELECT MAX(seq) FROM journal_events"


def tile_of(entries: bytes) -> tuple[bytes, bytes]:
    """``(root, nodes)`` of a full tile from its 256 entries."""
    above = hashing.subtree(entries)
    return above[-HASH_SIZE:], entries + above[:-HASH_SIZE]


def leaf_rows(conn: sqlite3.Connection, first_leaf: int, count: int) -> list[tuple]:
    """The rows of leaves ``first_leaf .. first_leaf+count-1`` (``LEAF_FIELDS``), all present."""
    rows = conn.execute(_LEAF_ROWS, (first_leaf + 1, first_leaf + count)).fetchall()
    if len(rows) != count:
        raise IntegrityError(f"journal_events is missing rows between seq {first_leaf + 1} and "
                             f"{first_leaf + count} (found {len(rows)} of {count}): run verify")
    return rows


def _insert(conn: sqlite3.Connection, level: int, first_idx: int, entries: bytes) -> None:
    """Store the full tiles ``first_idx, ...`` of ``level`` from their concatenated entries, then
    the tiles of the levels above that they complete."""
    count = len(entries) // TILE_BYTES
    conn.executemany(_INSERT, [(level, first_idx + j, *tile_of(entries[j * TILE_BYTES:
                                                                          (j + 1) * TILE_BYTES]))
                               for j in range(count)])
    p0, p1 = first_idx >> TILE_HEIGHT, (first_idx + count) >> TILE_HEIGHT
    if p1 > p0:
        roots = conn.execute(_ROOTS, (level, p0 << TILE_HEIGHT, p1 << TILE_HEIGHT)).fetchall()
        if len(roots) != (p1 - p0) << TILE_HEIGHT:
            raise IntegrityError(f"tlog_tiles is missing tiles of level {level} below index "
                                 f"{p1 << TILE_HEIGHT}: run verify")
        _insert(conn, level + 1, p0, b"".join(r[1] for r in roots))


class TailLeaves:
    """The leaf hashes of the journal's rows after its last full tile, as this process's last batch
    left them, with the chain hash of that batch's last row. The next batch takes them from here
    instead of reading and hashing those rows again, but only when its ``prev_hash`` (the stored
    tail's hash) is that chain hash: then the rows are the very ones hashed (another writer, or a
    rolled-back batch, leaves a different tail, and the rows are read as before)."""

    __slots__ = ("end_seq", "end_hash", "leaves")

    def __init__(self) -> None:
        self.end_seq = -1  # the seq of the last row covered; -1: nothing kept
        self.end_hash: str | None = None
        self.leaves = b""


def batch_leaf_count(conn: sqlite3.Connection, first_seq: int, n: int) -> int:
    """How many leaf hashes of a batch about to be inserted (``n`` rows from ``first_seq``)
    :func:`record_leaves` takes: all ``n`` while the tiles are current, 0 while they lag behind
    (an older file). The journal asks before hashing its chain, so both hashes come from one
    envelope per row (``kernels.chain_columns``)."""
    t0 = (first_seq - 1) >> TILE_HEIGHT
    if t0 and conn.execute(_HAS_TILE, (0, t0 - 1)).fetchone() is None:
        return 0
    return n


def record_leaves(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]],
                  batch_leaves: bytes | None = None, tail: TailLeaves | None = None,
                  chain: tuple[str, str] | None = None) -> None:
    """The journal's hook: store the tiles that the just-inserted ``rows`` (consecutive seqs,
    ``LEAF_FIELDS`` first) complete, in the caller's transaction. Does nothing when no tile
    completes, or when the tiles lag behind (an older file: :func:`build_tiles` catches up).

    ``batch_leaves``: the leaf hashes of all the rows, when the caller has them already
    (:func:`batch_leaf_count` said so); then ``tail`` keeps the leaves past the last full tile for
    the next batch, and ``chain`` is ``(prev_hash of the first row, hash of the last row)``."""
    if not rows:
        return
    first, n = rows[0][0] - 1, len(rows)
    t0, t1 = first >> TILE_HEIGHT, (first + n) >> TILE_HEIGHT
    start = t0 << TILE_HEIGHT
    if batch_leaves is None:
        if t0 == t1 or (t0 and conn.execute(_HAS_TILE, (0, t0 - 1)).fetchone() is None):
            return
        batch_leaves = hashing.leaf_hashes(rows, 0, (t1 << TILE_HEIGHT) - first)
    elif len(batch_leaves) != n * HASH_SIZE:
        raise IntegrityError(f"batch_leaves holds {len(batch_leaves)} bytes, the leaf hashes of "
                             f"{n} rows are {n * HASH_SIZE}")
    kept = tail is not None and chain is not None and tail.end_seq == first \
        and tail.end_hash == chain[0] and len(tail.leaves) == (first - start) * HASH_SIZE
    if t0 == t1 and not kept:  # no tile completes, and the rows before are not at hand
        if tail is not None:
            tail.end_seq = -1
        return
    if kept:
        leaves = tail.leaves + batch_leaves  # type: ignore[union-attr]
    elif first > start:
        leaves = hashing.leaf_hashes(leaf_rows(conn, start, first - start)) + batch_leaves
    else:
        leaves = batch_leaves
    full = ((t1 - t0) << TILE_HEIGHT) * HASH_SIZE
    if t1 > t0:
        _insert(conn, 0, t0, leaves[:full])
    if tail is not None and chain is not None and len(leaves) == (first + n - start) * HASH_SIZE:
        tail.end_seq, tail.end_hash, tail.leaves = first + n, chain[1], leaves[full:]


def tree_size(conn: sqlite3.Connection) -> int:
    """The number of leaves: the last seq (seqs have no gaps; verify reports one)."""
    return conn.execute(_TREE_SIZE).fetchone()[0] or 0


def built_tiles(conn: sqlite3.Connection) -> int:
    """How many level-0 tiles are stored (they form a prefix)."""
    last = conn.execute(_LAST_TILE, (0,)).fetchone()[0]
    return 0 if last is None else last + 1


_SIZES = ("SELECT (SELECT MAX(seq) FROM journal_events), "
          "(SELECT MAX(idx) FROM tlog_tiles WHERE level = 0)")


def sizes(conn: sqlite3.Connection) -> tuple[int, int]:
    """``(tree size, level-0 tiles stored)`` in one statement."""
    n, last = conn.execute(_SIZES).fetchone()
    return n or 0, 0 if last is None else last + 1


def tiles_lag(store: Any) -> int:
    """How many events lie in full tiles not built yet (0 when the tree is current)."""
    with store.read() as conn:
        return max(0, (tree_size(conn) >> TILE_HEIGHT) - built_tiles(conn)) << TILE_HEIGHT


def build_tiles(store: Any, *, progress: bool = False) -> int:
    """Build the tiles an older journal lacks (the migration of docs/verifiable.md); returns how
    many events it covered. One transaction per :data:`BUILD_CHUNK_TILES` tiles, so an
    interrupted build keeps what it committed and the next call resumes there."""
    lag = tiles_lag(store)
    if not lag:
        return 0
    done = 0
    pool = None
    if kernels.backend_name() == "native":  # hash one slice while the next one is read
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(1, thread_name_prefix="pj-tlog-build")
    try:
        with Progress("tlog tiles", lag, enabled=progress) as bar:
            while True:
                with store.write() as conn:
                    want = tree_size(conn) >> TILE_HEIGHT
                    have = built_tiles(conn)
                    if have >= want:
                        break
                    stop = min(want, have + BUILD_CHUNK_TILES)
                    count = (stop - have) << TILE_HEIGHT
                    _insert(conn, 0, have, _read_and_hash(conn, have << TILE_HEIGHT, count, pool))
                done += count
                bar.update(count)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return done


def _read_and_hash(conn: sqlite3.Connection, first: int, count: int, pool: Any) -> bytes:
    """Leaf hashes of ``count`` leaves from ``first``, read in slices of :data:`READ_SLICE`; with a
    ``pool`` each slice is hashed on its worker (the kernel releases the GIL) while the next is
    read, so the migration runs at about the speed of reading the rows."""
    if pool is None:
        return hashing.leaf_hashes(leaf_rows(conn, first, count))
    futures = [pool.submit(hashing.leaf_hashes, leaf_rows(conn, start, min(READ_SLICE,
                                                                            first + count - start)))
               for start in range(first, first + count, READ_SLICE)]
    return b"".join(f.result() for f in futures)


# ------------------------------------------------------------------------------------ reading
class TreeReader:
    """``node(level, index)`` for a tree of a given size, from stored tiles and derived partial
    ones. Both are immutable once they exist (the journal is append-only), so each store keeps
    one cache across calls: an LRU of full tiles and the partial tiles last derived."""

    def __init__(self) -> None:
        self.full: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self.partial: OrderedDict[tuple[int, int, int], list[bytes]] = OrderedDict()
        self.ranges: dict[tuple[int, int], bytes] = {}  # proofs.range_hash's memo

    def memo(self) -> dict[tuple[int, int], bytes]:
        """The memo of range hashes (bounded: emptied when it grows past 4096 entries)."""
        if len(self.ranges) > 4096:
            self.ranges.clear()
        return self.ranges

    def nodes_source(self, conn: sqlite3.Connection, size: int, stored_size: int | None = None):
        """A ``node(level, index)`` function over the tree of ``size`` leaves (see proofs.py).

        ``stored_size`` is the file's tree size (default ``size``): a tile full in it is stored,
        and a complete node is the same in every tree that holds it, so a past tree reads its
        right edge from tiles completed since; only the file's own right edge is derived."""
        stored = size if stored_size is None else stored_size
        full, partial = self._full, self._partial
        cache = self.full

        def node(level: int, index: int) -> bytes:
            tile_level, k = divmod(level, TILE_HEIGHT)
            n = (index << k) >> TILE_HEIGHT
            pos = index - (n << (TILE_HEIGHT - k))
            width = (stored >> (TILE_HEIGHT * tile_level)) - (n << TILE_HEIGHT)
            if width >= TILE_WIDTH:
                off = (LEVEL_OFFSET[k] + pos) * HASH_SIZE
                nodes = cache.get((tile_level, n)) or full(conn, tile_level, n)
                return nodes[off:off + HASH_SIZE]
            return partial(conn, tile_level, n, width)[k][pos * HASH_SIZE:(pos + 1) * HASH_SIZE]
        return node

    def inclusion(self, conn: sqlite3.Connection, index: int, size: int,
                  stored: int) -> tuple[bytes, list[bytes]]:
        """``(leaf hash, audit path)`` of leaf ``index`` in the tree of ``size`` (RFC 9162 PATH):
        the nodes ``proofs.inclusion_nodes`` lists, those of each tile level sliced from the one
        stored tile that holds them, the others (the right edge) from :meth:`nodes_source`."""
        node = self.nodes_source(conn, size, stored)
        tile_blob: list = [None, None]  # (tile level, nodes of the stored tile or None)

        def tile(level: int) -> tuple[int, bytes | None]:
            tile_level = level >> 3
            n = index >> (TILE_HEIGHT * tile_level + TILE_HEIGHT)
            if tile_blob[0] != tile_level:
                full = (stored >> (TILE_HEIGHT * tile_level)) - (n << TILE_HEIGHT) >= TILE_WIDTH
                tile_blob[:] = [tile_level, (self.full.get((tile_level, n))
                                             or self._full(conn, tile_level, n)) if full else None]
            return n, tile_blob[1]

        n, nodes = tile(0)
        if nodes is None:
            leaf = node(0, index)
        else:
            leaf = nodes[(index - (n << TILE_HEIGHT)) * HASH_SIZE:][:HASH_SIZE]
        path = []
        memo = self.memo()
        for level, i in proofs.inclusion_nodes(index, size):
            if (i + 1) << level > size:
                path.append(proofs.range_hash(node, i << level, size, memo))
                continue
            n, nodes = tile(level)
            if nodes is None:
                path.append(node(level, i))
            else:
                k = level & 7
                off = (LEVEL_OFFSET[k] + i - (n << (TILE_HEIGHT - k))) * HASH_SIZE
                path.append(nodes[off:off + HASH_SIZE])
        return leaf, path

    def _full(self, conn: sqlite3.Connection, level: int, idx: int) -> bytes:
        key = (level, idx)
        nodes = self.full.get(key)
        if nodes is not None:
            self.full.move_to_end(key)
            return nodes
        row = conn.execute(_NODES, key).fetchone()
        if row is None or len(row[0]) != NODES_BYTES:
            raise ProofError(f"tile {level}/{idx} is missing or damaged: run verify "
                             "(or tlog.build_tiles on a file from before the tree)")
        nodes = bytes(row[0])
        self.full[key] = nodes
        if len(self.full) > CACHE_TILES:
            self.full.popitem(last=False)
        return nodes

    def _partial(self, conn: sqlite3.Connection, level: int, idx: int, width: int) -> list[bytes]:
        key = (level, idx, width)
        levels = self.partial.get(key)
        if levels is not None:
            return levels
        first = idx << TILE_HEIGHT
        if level == 0:
            entries = hashing.leaf_hashes(leaf_rows(conn, first, width))
        else:
            rows = conn.execute(_ROOTS, (level - 1, first, first + width)).fetchall()
            if len(rows) != width:
                raise ProofError(f"tiles of level {level - 1} from index {first} are missing: "
                                 "run verify (or tlog.build_tiles)")
            entries = b"".join(r[1] for r in rows)
        levels = [entries]
        while len(levels[-1]) >= 2 * HASH_SIZE:
            below = levels[-1]
            levels.append(hashing.node_hashes(below[:len(below) // (2 * HASH_SIZE) * 2 * HASH_SIZE]))
        self.partial[key] = levels
        if len(self.partial) > 4 * TILE_HEIGHT:
            self.partial.popitem(last=False)
        return levels


_READERS: "weakref.WeakKeyDictionary[Any, TreeReader]" = weakref.WeakKeyDictionary()


def reader(store: Any) -> TreeReader:
    """The store's :class:`TreeReader` (one per store, made on first use)."""
    r = _READERS.get(store)
    if r is None:
        r = _READERS[store] = TreeReader()
    return r


def root_from_leaves(conn: sqlite3.Connection, size: int) -> bytes:
    """The root of the first ``size`` leaves rehashed from their rows, without tiles (a file whose
    tiles are not built): a stack of complete subtrees, merged as the leaves stream in."""
    stack: list[tuple[int, bytes]] = []  # (height, hash), heights strictly decreasing
    for start in range(0, size, BUILD_CHUNK_TILES * TILE_WIDTH):
        count = min(size - start, BUILD_CHUNK_TILES * TILE_WIDTH)
        leaves = hashing.leaf_hashes(leaf_rows(conn, start, count))
        for i in range(0, len(leaves), HASH_SIZE):
            height, h = 0, leaves[i:i + HASH_SIZE]
            while stack and stack[-1][0] == height:
                h = hashing.node_hash(stack.pop()[1], h)
                height += 1
            stack.append((height, h))
    if not stack:
        return hashing.EMPTY_ROOT
    h = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        h = hashing.node_hash(left, h)
    return h


# ------------------------------------------------------------------------------------ checking
def first_mismatch(conn: sqlite3.Connection, first_tile: int, leaves: bytes) -> int | None:
    """The first seq of the first level-0 tile from ``first_tile`` on (and then of the tiles above
    them) that is missing or differs from the tiles built from ``leaves`` (whole tiles, in order),
    or None."""
    count = len(leaves) // TILE_BYTES
    checked: list[tuple[int, bytes]] = []
    for t in range(first_tile, first_tile + count, BUILD_CHUNK_TILES):
        stop = min(first_tile + count, t + BUILD_CHUNK_TILES)
        stored = {r[0]: r for r in conn.execute(
            "SELECT idx, root, nodes FROM tlog_tiles WHERE level = 0 AND idx >= ? AND idx < ? "
            "ORDER BY idx", (t, stop))}
        for idx in range(t, stop):
            off = (idx - first_tile) * TILE_BYTES
            row = stored.get(idx)
            if row is None or (bytes(row[1]), bytes(row[2])) != tile_of(leaves[off:off + TILE_BYTES]):
                return (idx << TILE_HEIGHT) + 1
            checked.append((idx, bytes(row[1])))
    return _upper_mismatch(conn, checked)


def _upper_mismatch(conn: sqlite3.Connection, below: list[tuple[int, bytes]]) -> int | None:
    """Check the tiles above the checked level-0 tiles against their (checked) children."""
    level = 1
    while below:
        groups: dict[int, list[tuple[int, bytes]]] = {}
        for idx, root in below:
            groups.setdefault(idx >> TILE_HEIGHT, []).append((idx, root))
        above: list[tuple[int, bytes]] = []
        for parent, children in sorted(groups.items()):
            row = conn.execute("SELECT root, nodes FROM tlog_tiles WHERE level = ? AND idx = ?",
                               (level, parent)).fetchone()
            complete = len(children) == TILE_WIDTH
            if row is None:
                if complete:
                    return (parent << (TILE_HEIGHT * (level + 1))) + 1
                continue  # a partial group, or children checked only in part: nothing stored
            entries = bytes(row[1])[:TILE_BYTES]
            for idx, root in children:
                off = (idx - (parent << TILE_HEIGHT)) * HASH_SIZE
                if entries[off:off + HASH_SIZE] != root:
                    return (idx << (TILE_HEIGHT * level)) + 1
            if (bytes(row[0]), bytes(row[1])) != tile_of(entries):
                return (parent << (TILE_HEIGHT * (level + 1))) + 1
            above.append((parent, bytes(row[0])))
        below = above
        level += 1
    return None
