"""The in-memory vector index: one contiguous float32 matrix of every live vector of one
(model, dims, version), plus the row metadata that scope filters need, as numpy arrays.

Why a matrix and not an ANN index: recall must be exact over every item in scope, and one native
pass over a contiguous matrix with a row mask is both exact and close to memory bandwidth. Large
matrices are scanned through their int8 tier (docs/recall.md): a quarter of the memory traffic,
the same answer.

Rows are appended in place (the buffer grows by doubling) and deleted by tombstone (``alive``),
compacted when tombstones pile up. Principal, channel and session are integer codes (a dict gives
each distinct string a code, ``None`` is ``-1``), so a scope filter is a few vector comparisons;
the tags all-of filter checks only the rows already in scope. Scope masks are cached until the
rows change or a row in scope expires, so a repeated search does no per-row Python or numpy work
before the scan. The owner (MemoryStore) decides when the index is current; this module only holds
and filters rows.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Iterable, Sequence

import numpy as np

from .. import kernels
from ..engines import dialect_of
from ..errors import CorruptVectorError
from ..kernels.pure_vector import MAX_INT8_DIMS, Int8Tier
from .snapshot import InvalidSnapshot, Snapshot, open_snapshot, write_snapshot
from .ingest import SOURCES

PRECISIONS = ("auto", "float32", "int8")
#: ``auto`` scans through the int8 tier from this many matrix elements on (4 MB of float32: from
#: there on the int8 scan measured 2-3 x faster than the float32 one on AVX-512 VNNI, and the
#: tier's build, one pass, is paid once per snapshot).
AUTO_INT8_ELEMENTS = 1 << 20
#: From this many bytes of float32 rows in a mapped snapshot on, the int8 tier rescores rows read
#: with ``pread`` (``snapshot.RowReader``) instead of through the map, so that they never become
#: resident; below it the map is faster and the memory small anyway.
PREAD_RESCORE_BYTES = 256 << 20
_MASK_CACHE = 64
#: Rows fetched (and copied into the matrix) at a time when the index is read from SQLite.
_LOAD_CHUNK = 1 << 14
NO_EXPIRY = np.iinfo(np.int64).max


def _rewrites(conn: sqlite3.Connection) -> int | None:
    """The database's count of in-place memory changes (None on a schema without it)."""
    try:
        return conn.execute("SELECT count FROM memory_rewrites WHERE id = 1").fetchone()[0]
    except sqlite3.OperationalError:
        return None
_SOURCE_CODE = {s: i for i, s in enumerate(SOURCES)}
_F32 = np.dtype("<f4")

# Sources come back as small integer codes and empty tag lists as NULL: cached Python objects
# instead of one new string per row, which is most of what fetching costs.
LOAD_SQL = (
    "SELECT v.memory_id, v.vector, i.principal, i.channel, i.session_id, CASE i.source "
    + " ".join(f"WHEN '{s}' THEN {c}" for s, c in _SOURCE_CODE.items())
    + " END, NULLIF(i.tags_json, '[]'), i.ttl_unix_ms, i.created_at_unix_ms "
    "FROM memory_vectors v JOIN memory_items i ON i.memory_id = v.memory_id "
    "WHERE v.model = ? AND v.dims = ? AND v.version = ?"
)


class VectorIndex:
    """Vectors and scope metadata of one (model, dims, version)."""

    def __init__(self, model: str, dims: int, version: int, precision: str = "auto"):
        self.key = (model, dims, version)
        self.dims = dims
        self.precision = precision
        #: What the last search did: precision, rows, scanned, rescored, fallback.
        self.last_stats: dict = {}
        self.generation: int | None = None     # memory_generation the rows correspond to
        self.data_version: int | None = None   # PRAGMA data_version when last found current
        self.volatile = False                   # loaded inside a transaction that may roll back
        self.snapshot_state = "none"            # how the last load got its rows (see load)
        self._names: dict[str | None, int] = {None: -1}
        self._tagsets: dict[str, frozenset[str]] = {}
        self._clear()

    def _clear(self) -> None:
        d = self.dims
        self.n = 0
        self.dead = 0
        self.ids: list[str] = []
        self._row_of: dict[str, int] | None = {}
        self.matrix = np.empty((0, d), dtype=np.float32)
        self.alive = np.empty(0, dtype=np.bool_)
        self.principal = np.empty(0, dtype=np.int32)
        self.channel = np.empty(0, dtype=np.int32)
        self.session = np.empty(0, dtype=np.int32)
        self.source = np.empty(0, dtype=np.int8)
        self.expiry = np.empty(0, dtype=np.int64)
        self.created = np.empty(0, dtype=np.int64)
        self.tags: list[str] = []
        self.tier: Int8Tier | None = None  # the int8 tier, built on the first int8 search
        self.row_reader = None  # the mapped snapshot's float32 rows, read without the map
        self._masks: dict[tuple, tuple[int, int, np.ndarray | None]] = {}

    # ------------------------------------------------------------------ loading
    @property
    def live(self) -> int:
        return self.n - self.dead

    def load(self, conn: sqlite3.Connection, *, snapshot: str | None = None,
             generation: int | None = None, write: bool = True) -> None:
        """Read every vector of this key and its scope fields, from one database snapshot.

        With ``snapshot`` (the path of ``<db>-vectors``), a valid snapshot file of the same
        rewrite count is mapped instead, and the rows added since it was written are read from
        SQLite; otherwise the rows are read from SQLite and a new snapshot is written (unless
        ``write`` is false: a read-only store).
        :attr:`snapshot_state` says which happened (``"mapped"``, ``"mapped + N rows"``,
        ``"rebuilt: <why>"`` or ``"none"``)."""
        own_tx = not conn.in_transaction
        dialect = dialect_of(conn)
        if own_tx:
            dialect.begin_read(conn)
        try:
            if generation is None:
                generation = conn.execute(
                    "SELECT generation FROM memory_generation WHERE id = 1").fetchone()[0]
            rewrites = _rewrites(conn)
            why = "no rewrite counter" if rewrites is None else None
            snap = None
            if snapshot is not None and why is None:
                try:
                    snap = open_snapshot(snapshot, self.key)
                    head = snap.header
                    if head["rewrites"] != rewrites or head["generation"] > generation:
                        raise InvalidSnapshot("stale: rows changed since it was written")
                except InvalidSnapshot as exc:
                    snap, why = None, str(exc)
                except (OSError, ValueError, KeyError, TypeError) as exc:  # a mangled header
                    snap, why = None, f"unreadable header ({type(exc).__name__})"
            if snap is not None:
                self._set_snapshot(snap)
                added = 0
                if snap.header["generation"] != generation:
                    added = self._load_rows(conn, after_rowid=snap.header["max_rowid"])
                self.snapshot_state = f"mapped + {added} rows" if added else "mapped"
                if write and added > max(10_000, self.n // 4):  # not again on the next open
                    self._write_snapshot(snapshot, generation, rewrites, conn)
            else:
                self._load_rows(conn)
                self.snapshot_state = "none"
                if snapshot is not None and rewrites is not None and write:
                    self._write_snapshot(snapshot, generation, rewrites, conn)
                    self.snapshot_state = f"rebuilt: {why}"
        finally:
            if own_tx:
                dialect.commit(conn)

    def _set_snapshot(self, snap: Snapshot) -> None:
        self._clear()
        head, a = snap.header, snap.arrays
        self.n = head["n"]
        self.matrix = a["matrix"]  # stays in the map: only rescored rows become resident
        self.tier = Int8Tier(a["codes"], a["scale"], a["norm"], a["err"])
        for name, code in zip(head["names"], range(len(head["names"]))):
            self._names[name] = code
        for name in ("principal", "channel", "session", "source", "expiry", "created"):
            setattr(self, name, a[name].astype(a[name].dtype.newbyteorder("="), copy=True))
        self.alive = np.ones(self.n, dtype=np.bool_)
        self.ids = snap.ids
        self.tags = snap.tags
        self._row_of = None
        if self.matrix.nbytes >= PREAD_RESCORE_BYTES:
            self.row_reader = snap.rows

    def _write_snapshot(self, path: str, generation: int, rewrites: int, conn) -> None:
        """Write the snapshot of this freshly loaded index (no tombstones); a failure to write (a
        read-only directory) only means the next open reads SQLite again."""
        n = self.n
        max_rowid = conn.execute("SELECT coalesce(max(rowid), 0) FROM memory_vectors").fetchone()[0]
        names = [None] * (len(self._names) - 1)
        for name, code in self._names.items():
            if code >= 0:
                names[code] = name
        tier = self.int8_tier() if self.dims <= MAX_INT8_DIMS else None
        zeros = np.zeros(n, dtype=np.float32)
        arrays = {"matrix": self.matrix[:n],
                  "codes": tier.codes if tier else np.zeros((n, self.dims), np.int8),
                  "scale": tier.scale if tier else zeros, "norm": tier.norm if tier else zeros,
                  "err": tier.err if tier else np.full(n, np.inf, np.float32)}
        for name in ("principal", "channel", "session", "source", "expiry", "created"):
            arrays[name] = getattr(self, name)[:n]
        model, dims, version = self.key
        header = {"model": model, "dims": dims, "version": version, "n": n,
                  "generation": generation, "rewrites": rewrites, "max_rowid": max_rowid,
                  "names": names}
        try:
            write_snapshot(path, header, arrays, (self.ids[i] for i in range(n)),
                           (self.tags[i] for i in range(n)))
        except OSError:
            pass

    def _load_rows(self, conn: sqlite3.Connection, after_rowid: int | None = None) -> int:
        """The joined read, one Python row per item, in vector rowid order: every row of the key,
        or (``after_rowid``) only the rows added after a snapshot, appended. Returns the count.

        The blobs are copied into the matrix a chunk at a time (the caller holds one read
        transaction, so the count and the rows agree): memory peaks at the matrix plus one chunk,
        not at the matrix three times over (a list of blobs, their join, the array)."""
        where, params = "", list(self.key)
        if after_rowid is not None:
            where, params = " AND v.rowid > ?", [*params, after_rowid]
        else:
            self._clear()
        count = conn.execute("SELECT count(*) FROM memory_vectors v WHERE v.model = ? AND "
                             "v.dims = ? AND v.version = ?" + where, params).fetchone()[0]
        if count == 0:
            return 0
        cur = conn.execute(LOAD_SQL + where + " ORDER BY v.rowid", params)
        d, width = self.dims, self.dims * 4
        matrix = np.empty((count, d), dtype=np.float32)
        columns: list[list] = [[] for _ in range(9)]
        n = 0
        while chunk := cur.fetchmany(_LOAD_CHUNK):
            if n + len(chunk) > count:
                raise CorruptVectorError("memory_vectors changed during a read transaction")
            part = list(zip(*chunk))
            blobs = part[1]
            data = b"".join(blobs)
            if len(data) != len(blobs) * width or set(map(len, blobs)) != {width}:
                bad = next(i for i, b in enumerate(blobs) if len(b) != width)
                raise CorruptVectorError(
                    f"memory_vectors row {part[0][bad]!r}: vector blob is {len(blobs[bad])} bytes, "
                    f"expected {width} for dims={d}")
            matrix[n:n + len(chunk)] = np.frombuffer(data, dtype=_F32).reshape(-1, d)
            for col, values in zip(columns, part):
                if col is not columns[1]:
                    col.extend(values)
            n += len(chunk)
        matrix = matrix[:n]
        ids, _, princ, chan, sess, src, tags, ttl, created = columns
        if after_rowid is not None:
            self.add([(i, v, p, c, se, SOURCES[so], "[]" if t is None else t, tt, cr)
                      for i, v, p, c, se, so, t, tt, cr in zip(ids, matrix, princ, chan, sess, src,
                                                              tags, ttl, created)], new_ids=True)
            return n
        code = self._code
        self.matrix = matrix
        self.n = n
        self.ids = list(ids)
        self._row_of = None  # built on first need (deletes, updates)
        self.alive = np.ones(n, dtype=np.bool_)
        self.principal = np.fromiter(map(code, princ), np.int32, n)
        self.channel = np.fromiter(map(code, chan), np.int32, n)
        self.session = np.fromiter(map(code, sess), np.int32, n)
        self.source = np.array(src, dtype=np.int8)
        self.expiry = np.array([NO_EXPIRY if t is None else t for t in ttl], dtype=np.int64)
        self.created = np.array(created, dtype=np.int64)
        self.tags = ["[]" if t is None else t for t in tags]
        return n

    def _code(self, name: str | None) -> int:
        names = self._names
        c = names.get(name)
        if c is None:
            c = names[name] = len(names) - 1
        return c

    @property
    def row_of(self) -> dict[str, int]:
        if self._row_of is None:
            alive = self.alive
            self._row_of = {mid: i for i, mid in enumerate(self.ids) if alive[i]}
        return self._row_of

    # ------------------------------------------------------------------ in-place changes
    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        cap = self.matrix.shape[0]
        if need <= cap and self.matrix.flags.writeable:
            return
        new_cap = max(need, 2 * cap, 1024)

        def grow(arr: np.ndarray) -> np.ndarray:
            out = np.empty((new_cap,) + arr.shape[1:], dtype=arr.dtype)
            out[:self.n] = arr[:self.n]
            return out

        self.matrix = grow(self.matrix)
        self.row_reader = None  # the rows now live in memory
        self.alive = grow(self.alive)
        self.principal = grow(self.principal)
        self.channel = grow(self.channel)
        self.session = grow(self.session)
        self.source = grow(self.source)
        self.expiry = grow(self.expiry)
        self.created = grow(self.created)
        if self.tier is not None:
            self.tier = Int8Tier(*map(grow, self.tier))

    def add(self, rows: Sequence[tuple], *, new_ids: bool = False) -> None:
        """Append rows ``(memory_id, vector, principal, channel, session_id, source, tags_json,
        ttl_unix_ms, created_at_unix_ms)``; an id already present is replaced. ``new_ids``: the
        caller knows none is present (an ingest, rows added after a snapshot), so the id lookup
        is not built just for this."""
        if not rows:
            return
        row_of = self._row_of if new_ids else self.row_of
        if not new_ids:
            self.remove([r[0] for r in rows if r[0] in row_of])
        self._reserve(len(rows))
        start = self.n
        self._masks.clear()
        for mid, vec, principal, channel, session_id, source, tags_json, ttl, created in rows:
            i = self.n
            self.matrix[i] = vec
            self.alive[i] = True
            self.principal[i] = self._code(principal)
            self.channel[i] = self._code(channel)
            self.session[i] = self._code(session_id)
            self.source[i] = _SOURCE_CODE[source]
            self.expiry[i] = NO_EXPIRY if ttl is None else ttl
            self.created[i] = created
            self.ids.append(mid)
            self.tags.append(tags_json)
            if row_of is not None:
                row_of[mid] = i
            self.n += 1
        if self.tier is not None:
            new = kernels.quantize_int8(self.matrix[start:self.n])
            for mine, part in zip(self.tier, new):
                mine[start:self.n] = part

    def remove(self, memory_ids: Iterable[str]) -> None:
        row_of = self.row_of
        self._masks.clear()
        for mid in memory_ids:
            i = row_of.pop(mid, None)
            if i is not None:
                self.alive[i] = False
                self.dead += 1
        if self.dead > 1024 and self.dead * 4 > self.n:
            self.compact()

    def update_meta(self, memory_id: str, tags_json: str, ttl: int | None) -> None:
        i = self.row_of.get(memory_id)
        if i is not None:
            self._masks.clear()
            self.tags[i] = tags_json
            self.expiry[i] = NO_EXPIRY if ttl is None else ttl

    def compact(self) -> None:
        """Drop tombstoned rows (one copy of the live rows)."""
        keep = np.flatnonzero(self.alive[:self.n])
        self.matrix = np.ascontiguousarray(self.matrix[keep])
        self.row_reader = None
        for name in ("principal", "channel", "session", "source", "expiry", "created"):
            setattr(self, name, getattr(self, name)[keep].copy())
        if self.tier is not None:
            self.tier = Int8Tier(*(a[keep].copy() for a in self.tier))
        self._masks.clear()
        self.alive = np.ones(keep.shape[0], dtype=np.bool_)
        self.ids = [self.ids[i] for i in keep]
        self.tags = [self.tags[i] for i in keep]
        self.n = keep.shape[0]
        self.dead = 0
        self._row_of = None

    # ------------------------------------------------------------------ queries
    def _tagset(self, tags_json: str) -> frozenset[str]:
        s = self._tagsets.get(tags_json)
        if s is None:
            s = frozenset(json.loads(tags_json))
            if len(self._tagsets) < 100_000:
                self._tagsets[tags_json] = s
        return s

    def scope_mask(self, *, principal: str, channel: str | None = None,
                   session_id: str | None = None, sources: Sequence[str] = (),
                   tags: Sequence[str] = (), now_ms: int) -> np.ndarray | None | bool:
        """The rows in scope: a boolean row mask, None when no row can be, or True when every
        row is (the scan then reads no mask).

        Cached per scope until the rows change (any add, remove or update clears the cache) or the
        first row in scope reaches its expiry; a clock that goes back rebuilds it."""
        key = (principal, channel, session_id, tuple(sources), tuple(tags))
        hit = self._masks.get(key)
        if hit is not None and hit[0] <= now_ms < hit[1]:
            return hit[2]
        mask = self._build_mask(principal=principal, channel=channel, session_id=session_id,
                                sources=sources, tags=tags, now_ms=now_ms)
        until = NO_EXPIRY
        if mask is not None:
            live = self.expiry[:self.n][mask]
            later = live[live > now_ms]
            until = int(later.min()) if later.size else NO_EXPIRY
            if mask.all():
                mask = True
        if len(self._masks) >= _MASK_CACHE:
            self._masks.clear()
        self._masks[key] = (now_ms, until, mask)
        return mask

    def _build_mask(self, *, principal: str, channel: str | None, session_id: str | None,
                    sources: Sequence[str], tags: Sequence[str], now_ms: int) -> np.ndarray | None:
        n = self.n
        names = self._names
        code = names.get(principal)
        if code is None or n == 0:
            return None
        mask = self.principal[:n] == code
        mask &= self.alive[:n]
        for value, column in ((channel, self.channel), (session_id, self.session)):
            if value is not None:
                c = names.get(value)
                if c is None:
                    return None
                mask &= column[:n] == c
        if sources:
            mask &= np.isin(self.source[:n], [_SOURCE_CODE[s] for s in sources])
        mask &= self.expiry[:n] > now_ms
        if tags:
            want = frozenset(tags)
            rows = np.flatnonzero(mask)
            for i in rows:
                tj = self.tags[i]
                if tj == "[]" or not want <= self._tagset(tj):
                    mask[i] = False
        return mask

    def uses_int8(self) -> bool:
        if self.precision == "auto":
            return self.n * self.dims >= AUTO_INT8_ELEMENTS
        return self.precision == "int8"

    def int8_tier(self) -> Int8Tier:
        """The int8 tier of the live matrix, built on first use and kept in step afterwards."""
        if self.tier is None:
            self.tier = kernels.quantize_int8(self.matrix[:self.n])
        t = self.tier
        return Int8Tier(t.codes[:self.n], t.scale[:self.n], t.norm[:self.n], t.err[:self.n])

    def search_rows(self, query: np.ndarray, k: int,
                    mask: np.ndarray | None | bool) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` rows by cosine among ``mask`` (see :meth:`scope_mask`): row numbers and
        cosines, best first. Records what the scan did in :attr:`last_stats`."""
        n = self.n
        if mask is None or k <= 0 or n == 0:
            self.last_stats = {"precision": None, "rows": n, "scanned": 0, "rescored": 0,
                               "fallback": False}
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        rows_mask = None if mask is True else mask
        matrix = self.matrix[:n]
        if self.dims <= MAX_INT8_DIMS and self.uses_int8() and self.row_reader is not None:
            kept, stats = kernels.int8_candidates(self.int8_tier(), query, k, rows_mask)
            if kept is None:  # the bound cannot prune: the float32 scan, through the map
                rows, scores = kernels.topk(matrix, query, k, rows_mask)
            else:
                rows, scores = kernels.topk_rows(self.row_reader, kept, query, k)
            self.last_stats = {"precision": "int8", "rows": n, **stats}
        elif self.dims <= MAX_INT8_DIMS and self.uses_int8():
            rows, scores, stats = kernels.topk_int8(matrix, self.int8_tier(), query, k, rows_mask)
            self.last_stats = {"precision": "int8", "rows": n, **stats}
        else:
            rows, scores = kernels.topk(matrix, query, k, rows_mask)
            scanned = n if rows_mask is None else int(np.count_nonzero(rows_mask))
            self.last_stats = {"precision": "float32", "rows": n, "scanned": scanned,
                               "rescored": 0, "fallback": False}
        return rows, scores

    def search_rows_many(self, queries: np.ndarray, k: int, mask: np.ndarray | None | bool
                         ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search_rows` of every row of ``queries`` (nq, dims), in one pass over the int8
        codes unless the index is pinned to ``float32``; :attr:`last_stats` sums the queries'."""
        n, nq = self.n, queries.shape[0]
        empty = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))
        if mask is None or k <= 0 or n == 0 or nq == 0:
            self.last_stats = {"precision": None, "rows": n, "queries": nq, "scanned": 0,
                               "rescored": 0, "fallback": False}
            return [empty] * nq
        rows_mask = None if mask is True else mask
        matrix = self.matrix[:n]
        if self.dims <= MAX_INT8_DIMS and self.precision != "float32":
            found = kernels.topk_int8_many(matrix, self.int8_tier(), queries, k, rows_mask)
            self.last_stats = {"precision": "int8", "rows": n, "queries": nq,
                               "scanned": sum(f[2]["scanned"] for f in found),
                               "rescored": sum(f[2]["rescored"] for f in found),
                               "fallback": any(f[2]["fallback"] for f in found)}
            return [(ids, scores) for ids, scores, _ in found]
        scanned = n if rows_mask is None else int(np.count_nonzero(rows_mask))
        self.last_stats = {"precision": "float32", "rows": n, "queries": nq,
                           "scanned": scanned * nq, "rescored": 0, "fallback": False}
        return [kernels.topk(matrix, q, k, rows_mask) for q in queries]

    def search(self, query: np.ndarray, k: int, mask: np.ndarray | None | bool) -> list[tuple[str, float]]:
        """Exact top ``k`` rows by cosine among ``mask``; ``(memory_id, cosine)`` best first."""
        rows, scores = self.search_rows(query, k, mask)
        ids = self.ids
        return [(ids[r], s) for r, s in zip(rows.tolist(), scores.tolist())]
