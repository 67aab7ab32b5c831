"""MemoryStore: ``store.memory``, the memory API of docs/api.md over the tables of docs/memory.md.

Every write is one :meth:`MemoryStore._mutation` (memory/mutation.py): one transaction of the
JournalStore holding the table changes and their ``memory.*`` journal events, with the in-memory
vector index changed only after the commit. Other connections' changes are detected with
``PRAGMA data_version`` (did anyone commit?) and the ``memory_generation`` counter that every
memory change bumps (was it memory?).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..errors import DuplicateIdError, InvalidPayloadError
from ..fields import check_int, check_number, check_text, clamp_limit
from ..ids import new_ulids
from . import retention
from .fts import query_terms
from .index import VectorIndex
from .mutation import Mutation, delete_items, generation, ids_sha256, mutation
from .ingest import (
    DEFAULT_MAX_CONTENT_BYTES, PreparedItem, check_confidence, check_embedding,
    check_fusion_weights, check_provider_output, check_sources, check_tags, check_time,
    normalize_text, prepare, prepare_many, unit_rows_of,
)
from .records import ITEM_COLUMNS, MaintenanceReport, MemoryHit, MemoryItem, item_from_row
from .index import PRECISIONS
from .snapshot import path_for as snapshot_path
from .search import (
    MODES, QueryEmbeddingCache, candidate_limit, fuse, hits, lexical_candidates, scope_sql,
    vector_candidates, vector_rankings,
)

if TYPE_CHECKING:
    from ..store import JournalStore

DEFAULT_WEIGHTS = (0.55, 0.35, 0.10)
MAX_TOP_K = 1000
_IN_CHUNK = 500

_INSERT_ITEM = (
    "INSERT INTO memory_items(memory_id, principal, channel, session_id, source, content, "
    "content_hash, tags_json, confidence, ttl_unix_ms, created_at_unix_ms, updated_at_unix_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_VECTOR = (
    "INSERT INTO memory_vectors(memory_id, model, dims, version, vector, embedded_at_unix_ms) "
    "VALUES (?, ?, ?, ?, ?, ?)")
_NOT_EXPIRED = "(ttl_unix_ms IS NULL OR ttl_unix_ms > ?)"
_List = list  # MemoryStore.list (the API's name) hides the builtin inside the class


@functools.lru_cache(maxsize=64)
def _select_items(count: int) -> str:
    """The items of ``count`` memory ids (search fetches its few survivors with it)."""
    return f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE memory_id IN ({', '.join('?' * count)})"


def _chunks(seq: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


class MemoryStore:
    """Ingest, hybrid search and retention of memories; reached as ``store.memory``."""

    def __init__(self, store: "JournalStore") -> None:
        self._store = store
        opts = store.options
        self.weights = check_fusion_weights(opts.get("memory_fusion_weights", DEFAULT_WEIGHTS))
        self.max_content_bytes: int = check_int(
            "memory_max_content_bytes",
            opts.get("memory_max_content_bytes", DEFAULT_MAX_CONTENT_BYTES), lo=1)
        precision = opts.get("vector_precision", "auto")
        if precision not in PRECISIONS or not isinstance(precision, str):
            raise InvalidPayloadError(
                f"vector_precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        #: ``auto``, ``float32`` or ``int8``: how vector search scans (docs/recall.md).
        self.vector_precision = precision
        self._last_stats: dict[str, Any] = {}
        self._index: VectorIndex | None = None
        self._query_cache = QueryEmbeddingCache()
        #: Seconds spent in each part of the last search: {"fts", "vector", "fusion", "total"}.
        self.last_timings: dict[str, float] = {}

    # ------------------------------------------------------------------ provider and index
    @property
    def provider(self) -> Any:
        return self._store.embedding_provider

    def _key(self) -> tuple[str, int, int]:
        p = self.provider
        return (str(p.model_name), int(p.dimensions), int(p.version))

    def _close(self) -> None:
        self._index = None
        self._query_cache.clear()

    def _current_index(self, conn: sqlite3.Connection) -> VectorIndex:
        """The index of the provider's key, reloaded if another connection changed memory."""
        key = self._key()
        idx = self._index
        if idx is None or idx.key != key:
            idx = self._index = VectorIndex(*key, precision=self.vector_precision)
        in_tx = self._store.in_transaction
        dialect = self._store.dialect
        dv = dialect.data_version(conn)  # None: the engine has none, the generation decides
        if idx.generation is not None and not idx.volatile and not in_tx:
            if dv is not None and dv == idx.data_version:
                return idx
            if generation(conn) == idx.generation:
                idx.data_version = dv
                return idx
        if not in_tx:
            dialect.begin_read(conn)  # one snapshot for the counter and the rows
        try:
            gen = generation(conn)
            path = self._store.path
            idx.load(conn, generation=gen, write=not self._store.read_only,
                     snapshot=None if path == ":memory:" or in_tx or not dialect.local_files
                     else snapshot_path(path))
        finally:
            if not in_tx:
                dialect.commit(conn)
        idx.generation, idx.data_version, idx.volatile = gen, dv, in_tx
        return idx

    def _mutation(self) -> AbstractContextManager[Mutation]:
        """The one way memory writes: a transaction with its events and post-commit index update."""
        return mutation(self)

    def _apply(self, gen_before: int, gen_after: int,
               changes: Sequence[Callable[[VectorIndex], None]]) -> None:
        """After a commit: replay this store's changes on the index if it was current, else drop it."""
        idx = self._index
        if idx is None or idx.generation is None:
            return
        if idx.volatile or idx.generation != gen_before:
            idx.generation = None
            return
        try:
            for change in changes:
                change(idx)
        except Exception:  # the rows are committed: never fail the call, reload the index instead
            idx.generation = None
            return
        idx.generation = gen_after

    def index_size(self) -> int:
        """Live rows in the loaded vector index (0 before the first search)."""
        return 0 if self._index is None else self._index.live

    # ------------------------------------------------------------------ ingest
    def ingest(self, content: Any, *, principal: str, channel: str | None = None,
               session_id: str | None = None, source: str = "manual", tags: Iterable[str] = (),
               confidence: float | None = None, ttl_unix_ms: int | None = None,
               memory_id: str | None = None, embedding: Any = None) -> MemoryItem:
        """Store one memory (docs/memory.md "Ingest"); returns it as stored."""
        spec = dict(content=content, principal=principal, channel=channel, session_id=session_id,
                    source=source, tags=tags, confidence=confidence, ttl_unix_ms=ttl_unix_ms,
                    memory_id=memory_id, embedding=embedding)
        return self._write_items([self._prepare(spec, "")])[0]

    def ingest_many(self, items: Iterable[dict[str, Any]]) -> list[MemoryItem]:
        """Store many memories in one transaction, embedded with one provider call."""
        prepared = prepare_many(list(items), dims=self._key()[1],
                                max_content_bytes=self.max_content_bytes,
                                rules=self._store.redaction)
        if not prepared:
            return []
        return self._write_items(prepared)

    def _prepare(self, spec: dict[str, Any], where: str) -> PreparedItem:
        return prepare(spec, dims=self._key()[1], max_content_bytes=self.max_content_bytes,
                       rules=self._store.redaction, where=where)

    def _embed_missing(self, prepared: list[PreparedItem]) -> None:
        todo = [p for p in prepared if p.vector is None]
        if not todo:
            return
        dims = self._key()[1]
        out = check_provider_output(self.provider.embed([p.item.content for p in todo]), len(todo), dims)
        for p, vec in zip(todo, out):
            p.vector = vec

    def _write_items(self, prepared: "_List[PreparedItem]") -> "_List[MemoryItem]":
        store = self._store
        store.check_open()
        given = [p.item.memory_id for p in prepared if p.item.memory_id]
        if len(set(given)) != len(given):
            seen: set[str] = set()
            dup = next(m for m in given if m in seen or seen.add(m))  # type: ignore[func-returns-value]
            raise DuplicateIdError(f"memory_id {dup!r} appears twice in the batch")
        self._embed_missing(prepared)  # the provider runs before the write lock is taken
        model, dims, version = self._key()
        now = store.now_ms()
        fresh = iter(new_ulids(len(prepared) - len(given), now))
        items = [MemoryItem(it.memory_id or next(fresh), it.principal, it.channel, it.session_id,
                            it.source, it.content, it.content_hash, it.tags, it.confidence,
                            it.ttl_unix_ms, now, now) for it in (p.item for p in prepared)]
        vectors = [p.vector for p in prepared if p.vector is not None]
        if len(vectors) != len(prepared):  # _embed_missing filled them all
            raise InvalidPayloadError("an item has no embedding after the provider ran")
        tags_json = [json.dumps(list(it.tags), separators=(",", ":")) if it.tags else "[]"
                     for it in items]
        with self._mutation() as m:
            conn = m.conn
            for chunk in _chunks(given):
                row = conn.execute(
                    f"SELECT memory_id FROM memory_items WHERE memory_id IN "
                    f"({', '.join('?' * len(chunk))}) LIMIT 1", chunk).fetchone()
                if row is not None:
                    raise DuplicateIdError(f"memory_id {row[0]!r} already exists")
            conn.executemany(_INSERT_ITEM, [
                (it.memory_id, it.principal, it.channel, it.session_id, it.source, it.content,
                 it.content_hash, tj, it.confidence, it.ttl_unix_ms, now, now)
                for it, tj in zip(items, tags_json)])
            blobs = np.asarray(vectors, dtype="<f4")  # one conversion, then a row per blob
            conn.executemany(_INSERT_VECTOR, [
                (it.memory_id, model, dims, version, blob.tobytes(), now)
                for it, blob in zip(items, blobs)])
            for it in items:
                m.event("memory.ingested", {
                    "memory_id": it.memory_id, "source": it.source,
                    "content_sha256": it.content_hash,
                    "content_bytes": len(it.content.encode("utf-8")),
                    "tags": len(it.tags), "ttl_unix_ms": it.ttl_unix_ms,
                }, principal=it.principal, channel=it.channel, session_id=it.session_id,
                    timestamp_unix_ms=now)
            rows = [(it.memory_id, vec, it.principal, it.channel, it.session_id, it.source, tj,
                     it.ttl_unix_ms, now) for it, vec, tj in zip(items, vectors, tags_json)]
            m.index(lambda idx: idx.add(rows, new_ids=True))
        return items

    # ------------------------------------------------------------------ reads
    def get(self, memory_id: str) -> MemoryItem | None:
        """The item, or None when it does not exist or has expired."""
        check_text("memory_id", memory_id)
        with self._store.read() as conn:
            row = conn.execute(
                f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE memory_id = ? AND {_NOT_EXPIRED}",
                (memory_id, self._store.now_ms())).fetchone()
        return None if row is None else item_from_row(row)

    def list(self, *, principal: str, channel: str | None = None, session_id: str | None = None,
             after_id: str | None = None, limit: int = 100, tags: Iterable[str] = (),
             sources: Iterable[str] = ()) -> list[MemoryItem]:
        """Items in scope ordered by memory_id (creation order for generated ids), paged by
        ``after_id``; ``limit`` is clamped to [1, 1000]."""
        where, params = self._scope(principal, channel, session_id, sources, tags)
        if after_id is not None:
            check_text("after_id", after_id)
            where += " AND i.memory_id > ?"
            params.append(after_id)
        limit = clamp_limit(limit, MAX_TOP_K)
        with self._store.read() as conn:
            rows = conn.execute(f"SELECT {ITEM_COLUMNS} FROM memory_items i WHERE {where} "
                                f"ORDER BY i.memory_id LIMIT ?", [*params, limit]).fetchall()
        return [item_from_row(r) for r in rows]

    def _scope(self, principal: Any, channel: Any, session_id: Any, sources: Any,
               tags: Any) -> "tuple[str, _List[Any]]":
        return scope_sql(principal=check_text("principal", principal),
                         channel=check_text("channel", channel, nullable=True),
                         session_id=check_text("session_id", session_id, nullable=True),
                         sources=check_sources(sources), tags=check_tags(tags),
                         now_ms=self._store.now_ms(), dialect=self._store.dialect)

    def _fetch(self, conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, MemoryItem]:
        ids = ids if isinstance(ids, list) else list(ids)
        return {row[0]: item_from_row(row)
                for chunk in _chunks(ids) for row in conn.execute(_select_items(len(chunk)), chunk)}

    # ------------------------------------------------------------------ search
    def search(self, query: Any, *, principal: str, channel: str | None = None,
               session_id: str | None = None, top_k: int = 8, min_score: float = 0.0,
               tags: Iterable[str] = (), sources: Iterable[str] = (), query_embedding: Any = None,
               mode: str = "hybrid") -> "_List[MemoryHit]":
        """Hybrid recall (docs/memory.md "Search"): FTS5 bm25 and exact cosine, fused, in scope."""
        t0 = time.perf_counter()
        q = normalize_text(query, "query", self.max_content_bytes)
        tags_t, sources_t = self._check_search(principal, channel, session_id, top_k, min_score,
                                               tags, sources)
        if mode not in MODES:
            raise InvalidPayloadError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        dims = self._key()[1]
        qvec = None if query_embedding is None else check_embedding(query_embedding, dims,
                                                                    "query_embedding")
        if not q:
            return []
        if mode != "lexical" and qvec is None:
            qvec = self._query_vector(q)
        terms = query_terms(q)
        store = self._store
        match = store.dialect.fts_match(terms)
        limit = candidate_limit(top_k)
        now = store.now_ms()
        lexical: dict[str, float] = {}
        vector: dict[str, float] = {}
        created: dict[str, int] = {}
        stats: dict[str, Any] = {}
        with store.read() as conn:
            t1 = time.perf_counter()
            if mode != "vector" and match is not None:
                where, params = scope_sql(principal=principal, channel=channel,
                                          session_id=session_id, sources=sources_t, tags=tags_t,
                                          now_ms=now, dialect=store.dialect)
                for mid, score, created_at in lexical_candidates(conn, match, limit, where, params):
                    lexical[mid] = score
                    created[mid] = created_at
            t2 = time.perf_counter()
            ranked = None
            if mode != "lexical" and qvec is not None:  # qvec is always set for these modes
                idx = self._current_index(conn)
                mask = idx.scope_mask(principal=principal, channel=channel, session_id=session_id,
                                      sources=sources_t, tags=tags_t, now_ms=now)
                if lexical:
                    rows, scores = idx.search_rows(qvec, limit, mask)
                    vector, born = vector_candidates(rows, scores, idx.created, idx.ids)
                    created.update(born)
                else:  # fusion of the vector branch alone
                    ranked = vector_rankings(
                        lambda k, _: [idx.search_rows(qvec, k, mask)], 1, idx.created, idx.ids,
                        weights=self.weights, now_ms=now, min_score=float(min_score),
                        top_k=top_k, limit=limit)[0]
                stats = idx.last_stats
            t3 = time.perf_counter()
            if ranked is None:
                ranked = fuse(created, lexical, vector, weights=self.weights, now_ms=now,
                              min_score=float(min_score), top_k=top_k)
            items = self._fetch(conn, [t[4] for t in ranked])
        found = hits(ranked, items, terms)
        t4 = time.perf_counter()
        self.last_timings = {"embed": t1 - t0, "fts": t2 - t1, "vector": t3 - t2,
                             "fusion": t4 - t3, "total": t4 - t0}
        self._last_stats = stats
        return found

    @staticmethod
    def _check_search(principal: Any, channel: Any, session_id: Any, top_k: Any, min_score: Any,
                      tags: Any, sources: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The arguments search and search_many share; returns the checked tags and sources."""
        check_text("principal", principal)
        check_text("channel", channel, nullable=True)
        check_text("session_id", session_id, nullable=True)
        check_int("top_k", top_k, lo=1, hi=MAX_TOP_K)
        check_number("min_score", min_score)
        return check_tags(tags), check_sources(sources)

    def search_many(self, query_embeddings: Any, *, principal: str, channel: str | None = None,
                    session_id: str | None = None, top_k: int = 8, min_score: float = 0.0,
                    tags: Iterable[str] = (), sources: Iterable[str] = ()) -> "_List[_List[MemoryHit]]":
        """Vector recall for many query embeddings in one pass over the index (evaluation sweeps,
        re-ranking jobs): entry i holds the hits ``search(..., mode="vector",
        query_embedding=query_embeddings[i])`` returns, in the same order, with the same scores
        (snippets start at the beginning of the content: there are no query terms)."""
        tags_t, sources_t = self._check_search(principal, channel, session_id, top_k, min_score,
                                               tags, sources)
        dims = self._key()[1]
        if isinstance(query_embeddings, np.ndarray) and query_embeddings.ndim == 2:
            rows = list(query_embeddings)
        elif isinstance(query_embeddings, (str, bytes)) or not isinstance(query_embeddings, Iterable):
            raise InvalidPayloadError(
                f"query_embeddings must be a sequence of embeddings, got {type(query_embeddings).__name__}")
        else:
            rows = list(query_embeddings)
        qs = unit_rows_of(rows, dims) if rows else None
        if qs is None:  # one at a time, for the message naming the first bad one
            qs = np.empty((len(rows), dims), dtype=np.float32)
            for i, v in enumerate(rows):
                qs[i] = check_embedding(v, dims, f"query_embeddings[{i}]")
        limit = candidate_limit(top_k)
        store = self._store
        now = store.now_ms()
        with store.read() as conn:
            idx = self._current_index(conn)
            mask = idx.scope_mask(principal=principal, channel=channel, session_id=session_id,
                                  sources=sources_t, tags=tags_t, now_ms=now)
            stats: dict[str, Any] = {}

            def scan(k: int, which: "_List[int]") -> "_List[tuple[np.ndarray, np.ndarray]]":
                found = idx.search_rows_many(qs[which], k, mask)
                if stats:  # a second pass for some queries: the counts add up
                    more = idx.last_stats
                    stats.update(scanned=stats["scanned"] + more["scanned"],
                                 rescored=stats["rescored"] + more["rescored"],
                                 fallback=stats["fallback"] or more["fallback"])
                else:
                    stats.update(idx.last_stats)
                return found
            ranked_all = vector_rankings(scan, len(qs), idx.created, idx.ids,
                                         weights=self.weights, now_ms=now,
                                         min_score=float(min_score), top_k=top_k, limit=limit)
            items = self._fetch(conn, list({t[4] for ranked in ranked_all for t in ranked}))
        self._last_stats = stats
        return [hits(ranked, items, ()) for ranked in ranked_all]

    def last_search_stats(self) -> dict[str, Any]:
        """What the vector scan of the last search did (empty when it ran none): ``precision``
        (``"int8"`` or ``"float32"``), ``rows`` in the index, ``scanned`` (rows in scope read),
        ``rescored`` (rows the int8 bound could not exclude, re-read in float32 and scored in
        double), ``rescored_fraction`` (of ``rows``) and ``fallback`` (the int8 bound could not
        prune and the float32 scan answered). After :meth:`search_many`, ``queries`` is set and
        the counts are sums over the queries (the fraction is of ``rows * queries``)."""
        stats = dict(self._last_stats)
        if stats:
            scanned_rows = stats["rows"] * stats.get("queries", 1)
            stats["rescored_fraction"] = stats["rescored"] / scanned_rows if scanned_rows else 0.0
        return stats

    def _query_vector(self, q: str) -> np.ndarray:
        key = (*self._key(), q)
        now = self._store.now_ms()
        vec = self._query_cache.get(key, now)
        if vec is None:
            vec = check_provider_output(self.provider.embed([q]), 1, key[1])[0]
            self._query_cache.put(key, vec, now)
        return vec

    # ------------------------------------------------------------------ changes
    def update(self, memory_id: str, *, principal: str, tags: Iterable[str] | None = None,
               confidence: float | None = None, ttl_unix_ms: int | None = None) -> MemoryItem | None:
        """Change tags / confidence / expiry of a visible item of ``principal`` (None: keep)."""
        check_text("memory_id", memory_id)
        check_text("principal", principal)
        new_tags = None if tags is None else check_tags(tags)
        conf = check_confidence(confidence)
        ttl = check_time(ttl_unix_ms, "ttl_unix_ms")
        now = self._store.now_ms()
        with self._mutation() as m:
            row = m.conn.execute(
                f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE memory_id = ? AND principal = ? "
                f"AND {_NOT_EXPIRED}", (memory_id, principal, now)).fetchone()
            if row is None:
                return None
            old = item_from_row(row)
            tags_t = old.tags if new_tags is None else new_tags
            tags_json = json.dumps(list(tags_t), separators=(",", ":"))
            conf = old.confidence if conf is None else conf
            ttl = old.ttl_unix_ms if ttl is None else ttl
            m.conn.execute("UPDATE memory_items SET tags_json = ?, confidence = ?, "
                           "ttl_unix_ms = ?, updated_at_unix_ms = ? WHERE memory_id = ?",
                           (tags_json, conf, ttl, now, memory_id))
            changed = [name for name, value in (("tags", tags), ("confidence", confidence),
                                                ("ttl_unix_ms", ttl_unix_ms)) if value is not None]
            m.event("memory.updated", {"memory_id": memory_id, "changed": changed,
                                       "content_sha256": old.content_hash},
                    principal=old.principal, channel=old.channel, session_id=old.session_id,
                    timestamp_unix_ms=now)
            m.index(lambda idx: idx.update_meta(memory_id, tags_json, ttl))
        return MemoryItem(old.memory_id, old.principal, old.channel, old.session_id, old.source,
                          old.content, old.content_hash, tags_t, conf, ttl,
                          old.created_at_unix_ms, now)

    def delete(self, memory_id: str, *, principal: str, channel: str | None = None) -> bool:
        """Delete one item of ``principal`` (and ``channel`` when given); False if none matched."""
        check_text("memory_id", memory_id)
        where = "memory_id = ? AND principal = ?"
        params: _List[Any] = [memory_id, check_text("principal", principal)]
        if check_text("channel", channel, nullable=True) is not None:
            where += " AND channel = ?"
            params.append(channel)
        return self._delete_where(where, params, "memory.deleted", principal=principal,
                                  channel=channel, session_id=None) > 0

    def purge(self, *, principal: str, channel: str | None = None,
              session_id: str | None = None) -> int:
        """Delete every item of ``principal`` (narrowed by channel / session); returns the count."""
        where = "principal = ?"
        params: _List[Any] = [check_text("principal", principal)]
        for col, value in (("channel", channel), ("session_id", session_id)):
            if check_text(col, value, nullable=True) is not None:
                where += f" AND {col} = ?"
                params.append(value)
        return self._delete_where(where, params, "memory.purged", principal=principal,
                                  channel=channel, session_id=session_id)

    def _delete_where(self, where: str, params: Sequence[Any], kind: str, *, principal: str,
                      channel: str | None, session_id: str | None) -> int:
        """Delete items matching a ``memory_items`` condition (vectors and FTS rows follow) and
        record ``kind`` with the count and the ids (their SHA-256 when many)."""
        with self._mutation() as m:
            ids = [r[0] for r in m.conn.execute(
                f"SELECT memory_id FROM memory_items WHERE {where} ORDER BY memory_id", params)]
            delete_items(m.conn, ids)
            if ids:
                payload: dict[str, Any] = {"count": len(ids), "ids_sha256": ids_sha256(ids)}
                if kind == "memory.deleted":
                    payload["memory_ids"] = ids
                m.event(kind, payload, principal=principal, channel=channel,
                        session_id=session_id)
                m.index(lambda idx: idx.remove(ids))
        return len(ids)

    # ------------------------------------------------------------------ retention
    def maintain(self, *, now_unix_ms: int | None = None, max_entries: int | None = None,
                 max_bytes: int | None = None, ttl_days: float | None = None,
                 vacuum: bool = False) -> MaintenanceReport:
        return retention.maintain(self, now_unix_ms=now_unix_ms, max_entries=max_entries,
                                  max_bytes=max_bytes, ttl_days=ttl_days, vacuum=vacuum)

    def reembed(self, *, batch_size: int = 256, progress: bool = False) -> int:
        return retention.reembed(self, batch_size=batch_size, progress=progress)

    def __repr__(self) -> str:
        return f"MemoryStore({self._store.path!r}, provider={self.provider!r})"
