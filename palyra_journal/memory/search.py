"""Hybrid recall pieces: the lexical branch's SQL, fusion, snippets and the query-embedding cache.

Kept apart from MemoryStore so each rule of docs/memory.md "Search" reads as one small function.
"""

from __future__ import annotations

import re
import sqlite3
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

from ..engines import SQLITE, Dialect, dialect_of
from .records import MemoryHit, MemoryItem

MODES = ("hybrid", "lexical", "vector")
SNIPPET_CHARS = 200
SNIPPET_LEAD = 48
DAY_MS = 86_400_000
#: Up to this many vector candidates, :func:`fuse_vector` hands them to :func:`fuse` (a dozen
#: numpy calls on a few rows cost more than a Python loop over them).
_FUSE_IN_PYTHON = 32


def candidate_limit(top_k: int) -> int:
    return max(64, 8 * top_k)


def scope_sql(*, principal: str, channel: str | None, session_id: str | None,
              sources: Sequence[str], tags: Sequence[str], now_ms: int,
              alias: str = "i", dialect: Dialect = SQLITE) -> tuple[str, list]:
    """``WHERE`` conditions (without the keyword) and parameters for a scope over memory_items."""
    a = alias
    conds = [f"{a}.principal = ?", f"({a}.ttl_unix_ms IS NULL OR {a}.ttl_unix_ms > ?)"]
    params: list = [principal, now_ms]
    if channel is not None:
        conds.append(f"{a}.channel = ?")
        params.append(channel)
    if session_id is not None:
        conds.append(f"{a}.session_id = ?")
        params.append(session_id)
    if sources:
        conds.append(f"{a}.source IN ({', '.join('?' * len(sources))})")
        params.extend(sources)
    for tag in tags:
        conds.append(dialect.json_array_has(f"{a}.tags_json"))
        params.append(tag)
    return " AND ".join(conds), params


def lexical_candidates(conn: sqlite3.Connection, match: str, limit: int, where: str,
                       params: list) -> list[tuple[str, float, int]]:
    """Best ``limit`` rows in scope by the engine's full-text rank (SQLite: ``-bm25``):
    ``(memory_id, score, created_at_unix_ms)`` best first (the creation time is what fusion
    needs of a row it has not fetched). ``match`` is the engine's :meth:`fts_match`."""
    sql = dialect_of(conn).lexical_sql(where)
    return [(mid, max(0.0, float(s)), created)
            for mid, s, created in conn.execute(sql, [match, *params, limit])]


def snippet(content: str, terms: Sequence[str]) -> str:
    """The whole content up to 200 characters; else 200 from 48 before the first query term."""
    if len(content) <= SNIPPET_CHARS:
        return content
    start = 0
    if terms:
        m = re.search(re.escape(terms[0]), content, re.IGNORECASE)
        if m is not None:
            start = max(0, m.start() - SNIPPET_LEAD)
    return content[start:start + SNIPPET_CHARS]


def fuse(created: dict[str, int], lexical: dict[str, float], vector: dict[str, float], *,
         weights: tuple[float, float, float], now_ms: int, min_score: float,
         top_k: int) -> list[tuple[float, float, float, float, str]]:
    """Fusion (docs/memory.md, "Search"): normalized L, V and recency R, weighted, filtered,
    ordered, cut.

    ``created`` maps every candidate to its creation time, so fusion runs before any row is
    fetched: only the ``top_k`` survivors ``(score, L, V, R, memory_id)`` are, by :func:`hits`."""
    wl, wv, wr = weights
    max_l = max(lexical.values(), default=0.0)
    max_v = max(vector.values(), default=0.0)
    scored = []
    for mid, created_at in created.items():
        l_raw = lexical.get(mid, 0.0)
        v_raw = vector.get(mid, 0.0)
        L = l_raw / max_l if max_l > 0 else 0.0
        V = v_raw / max_v if max_v > 0 else 0.0
        age_days = max(0, now_ms - created_at) / DAY_MS
        R = 1.0 / (1.0 + age_days)
        score = wl * L + wv * V + wr * R
        if score >= min_score:
            scored.append((score, L, V, R, mid, created_at))
    scored.sort(key=lambda t: t[4])
    scored.sort(key=lambda t: (t[0], t[5]), reverse=True)
    return [t[:5] for t in scored[:top_k]]


def vector_candidates(rows: np.ndarray, scores: np.ndarray, created: np.ndarray,
                      ids) -> tuple[dict[str, float], dict[str, int]]:
    """The vector branch's candidates as :func:`fuse` takes them: ``memory_id -> cosine`` and
    ``memory_id -> creation time``, rows of cosine <= 0 left out."""
    vector: dict[str, float] = {}
    born: dict[str, int] = {}
    for r, s in zip(rows.tolist(), scores.tolist()):
        if s > 0.0:
            mid = ids[r]
            vector[mid] = s
            born[mid] = int(created[r])
    return vector, born


def fuse_vector(rows: np.ndarray, scores: np.ndarray, created: np.ndarray, ids, *,
                weights: tuple[float, float, float], now_ms: int, min_score: float,
                top_k: int) -> list[tuple[float, float, float, float, str]]:
    """:func:`fuse` when there are no lexical candidates, on the vector branch's arrays: the same
    arithmetic (IEEE double, same order of operations), vectorized, and ids read only for the
    rows that can still be ranked. ``rows``/``scores``: the kernel's answer; ``created``: the
    index's creation times; ``ids``: row -> memory_id."""
    if rows.shape[0] <= _FUSE_IN_PYTHON:  # a few rows: fewer calls as Python floats, same bits
        vector, born_of = vector_candidates(rows, scores, created, ids)
        return fuse(born_of, {}, vector, weights=weights, now_ms=now_ms, min_score=min_score,
                    top_k=top_k)
    keep = scores > 0.0
    rows, v_raw = rows[keep], scores[keep]
    if rows.shape[0] == 0:
        return []
    wl, wv, wr = weights
    born = created[rows]
    V = v_raw / v_raw.max()
    R = 1.0 / (1.0 + np.maximum(0, now_ms - born) / DAY_MS)
    score = (wl * 0.0 + wv * V) + wr * R
    ok = np.flatnonzero(score >= min_score)
    order = ok[np.lexsort((-born[ok], -score[ok]))]
    if order.shape[0] > top_k:  # keep every row tied with the last one: memory_id decides
        last = order[top_k - 1]
        tail = order[top_k:]
        tied = tail[(score[tail] == score[last]) & (born[tail] == born[last])]
        order = np.concatenate([order[:top_k], tied])
    ranked = [(float(score[i]), 0.0, float(V[i]), float(R[i]), ids[int(rows[i])], int(born[i]))
              for i in order.tolist()]
    ranked.sort(key=lambda t: t[4])
    ranked.sort(key=lambda t: (t[0], t[5]), reverse=True)
    return [t[:5] for t in ranked[:top_k]]


def first_ask(weights: tuple[float, float, float], top_k: int, limit: int) -> int:
    """How many vector candidates to ask the kernel for first when fusion has only the vector
    branch: ``top_k + 1`` when recency has no weight (the fused order is then the cosine order,
    and :func:`prefix_decides` almost always accepts them; the int8 scan at k = 80 costs 2-3 x
    its k = 10 time), else the whole ``limit`` (recency can lift any of the ``limit``)."""
    _, wv, wr = weights
    return top_k + 1 if wr == 0.0 and wv > 0.0 and top_k + 1 < limit else limit


def prefix_decides(scores: np.ndarray, asked: int, ranked: list, weights: tuple[float, float, float],
                   min_score: float, top_k: int) -> bool:
    """Whether :func:`fuse_vector` of the kernel's best ``asked`` rows (``scores``, best first;
    ``ranked``: its answer) is its answer on any longer prefix of the kernel's ranking.

    The kernel's top ``asked`` is a prefix of its top ``limit`` (one exact order: cosine desc, row
    asc), whose first row sets the same normalization. A row past the prefix has a cosine at most
    the last one's, so its fused score is at most ``bound`` (IEEE rounding is monotone, weights
    are >= 0, recency is <= 1): the answer stands when such rows are filtered out (cosine <= 0,
    ``bound < min_score``) or rank strictly below the ``top_k``-th (no tie for fusion's
    creation-time and id order to break)."""
    if scores.shape[0] < asked:  # every row in scope was a candidate
        return True
    v_last = float(scores[-1])
    if not v_last > 0.0:
        return True
    wl, wv, wr = weights
    bound = (wl * 0.0 + wv * (v_last / float(scores[0]))) + wr * 1.0
    return bound < min_score or (len(ranked) == top_k and bound < ranked[-1][0])


def vector_rankings(search_rows: Callable[[int, list[int]], list[tuple[np.ndarray, np.ndarray]]],
                    nq: int, created: np.ndarray, ids, *, weights: tuple[float, float, float],
                    now_ms: int, min_score: float, top_k: int,
                    limit: int) -> list[list[tuple[float, float, float, float, str]]]:
    """:func:`fuse_vector` of the kernel's top ``limit`` rows for each of ``nq`` queries
    (``search_rows(k, queries)``: the kernel's top ``k`` in scope of each of those queries),
    asking first for :func:`first_ask` rows and again for ``limit`` only for the queries whose
    shorter answer :func:`prefix_decides` cannot vouch for."""
    ask = first_ask(weights, top_k, limit)
    out: list = [None] * nq
    todo = list(range(nq))
    while todo:
        redo = []
        for j, (rows, scores) in zip(todo, search_rows(ask, todo)):
            out[j] = fuse_vector(rows, scores, created, ids, weights=weights, now_ms=now_ms,
                                 min_score=min_score, top_k=top_k)
            if ask < limit and not prefix_decides(scores, ask, out[j], weights, min_score, top_k):
                redo.append(j)
        todo, ask = redo, limit
    return out


def hits(ranked: list[tuple[float, float, float, float, str]], items: dict[str, MemoryItem],
         terms: Sequence[str]) -> list[MemoryHit]:
    """The fused survivors as MemoryHits, from their fetched rows."""
    return [MemoryHit(items[mid], score, L, V, R, snippet(items[mid].content, terms))
            for score, L, V, R, mid in ranked if mid in items]


class QueryEmbeddingCache:
    """LRU of query embeddings: 256 entries, 5 minutes, keyed by (model, dims, version, query)."""

    def __init__(self, capacity: int = 256, ttl_ms: int = 300_000):
        self.capacity = capacity
        self.ttl_ms = ttl_ms
        self._entries: OrderedDict[tuple, tuple[int, np.ndarray]] = OrderedDict()

    def get(self, key: tuple, now_ms: int) -> np.ndarray | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        stored_at, vec = hit
        if now_ms - stored_at >= self.ttl_ms or now_ms < stored_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return vec

    def put(self, key: tuple, vec: np.ndarray, now_ms: int) -> None:
        self._entries[key] = (now_ms, vec)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
