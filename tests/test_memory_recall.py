"""Recall at scale through the store (docs/recall.md): ``vector_precision``, the int8 tier's stats,
scope masks cached per scope and generation, and fusion before fetching (only survivors are read)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import palyra_journal as pj
from palyra_journal.errors import InvalidPayloadError
from palyra_journal.memory.embeddings import HashEmbeddingProvider

DIMS = 32


def unit(rng, n, d=DIMS):
    m = rng.standard_normal((n, d)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


class Clock:
    def __init__(self, now: int = 1_700_000_000_000):
        self.now = now

    def __call__(self) -> int:
        return self.now


def fill(store, vectors, *, principal="p", channel=None, ttl=None):
    store.memory.ingest_many([
        {"content": f"note {i}", "principal": principal, "channel": channel,
         "embedding": v.tolist(), "memory_id": f"{principal}-{channel}-{i:06d}", "ttl_unix_ms": ttl}
        for i, v in enumerate(vectors)])


def open_store(path, **options):
    return pj.JournalStore.open(path, embedding_provider=HashEmbeddingProvider(dimensions=DIMS),
                                **options)


def vector_ids(store, q, top_k=10, **scope):
    hits = store.memory.search("q", principal=scope.pop("principal", "p"), top_k=top_k,
                               mode="vector", query_embedding=q.tolist(), **scope)
    return [h.item.memory_id for h in hits]


def test_every_precision_gives_the_same_hits(tmp_path, backend):
    rng = np.random.default_rng(1)
    vectors = unit(rng, 3000)
    queries = unit(rng, 5)
    answers = {}
    for precision in ("float32", "int8", "auto"):
        with open_store(tmp_path / f"{precision}.db", vector_precision=precision) as s:
            fill(s, vectors)
            answers[precision] = [vector_ids(s, q) for q in queries]
            stats = s.memory.last_search_stats()
            assert stats["rows"] == 3000
            if precision == "int8":
                assert stats["precision"] == "int8" and not stats["fallback"]
                assert 10 <= stats["rescored"] < 3000
                assert stats["rescored_fraction"] == stats["rescored"] / 3000
            else:  # auto: 3000 x 32 is far below the size where int8 pays
                assert stats["precision"] == "float32" and stats["rescored"] == 0
    assert answers["int8"] == answers["float32"] == answers["auto"]
    assert all(len(a) == 10 for a in answers["int8"])


def test_int8_precision_follows_ingest_and_delete(tmp_path, backend):
    rng = np.random.default_rng(2)
    with open_store(tmp_path / "a.db", vector_precision="int8") as s:
        fill(s, unit(rng, 500))
        q = unit(rng, 1)[0]
        vector_ids(s, q)  # builds the int8 tier
        s.memory.ingest(content="exact match", principal="p", embedding=q.tolist(),
                        memory_id="best")
        assert vector_ids(s, q)[0] == "best"  # the new row's code was added to the tier
        assert s.memory.delete("best", principal="p")
        assert "best" not in vector_ids(s, q)
        ref = np.argsort(-(unit(np.random.default_rng(2), 500) @ q), kind="stable")[:10]
        assert vector_ids(s, q) == [f"p-None-{i:06d}" for i in ref]


def test_a_bad_precision_is_refused_naming_it(tmp_path):
    with open_store(tmp_path / "a.db", vector_precision="int4") as s:
        with pytest.raises(InvalidPayloadError, match="vector_precision.*'int4'"):
            s.memory.search("x", principal="p")


def test_no_stats_before_a_vector_search(tmp_path):
    with open_store(tmp_path / "a.db") as s:
        assert s.memory.last_search_stats() == {}


def test_scope_masks_are_reused_until_the_rows_change(tmp_path):
    rng = np.random.default_rng(3)
    with open_store(tmp_path / "a.db") as s:
        fill(s, unit(rng, 200), principal="p")
        fill(s, unit(rng, 100), principal="r")
        q = unit(rng, 1)[0]
        vector_ids(s, q)
        idx = s.memory._index
        first = idx.scope_mask(principal="p", now_ms=s.now_ms())
        assert first is idx.scope_mask(principal="p", now_ms=s.now_ms())  # cached, not rebuilt
        assert int(first.sum()) == 200
        s.memory.ingest(content="new", principal="p", embedding=q.tolist(), memory_id="new")
        assert vector_ids(s, q)[0] == "new"  # the ingest invalidated the cached mask
        assert int(idx.scope_mask(principal="p", now_ms=s.now_ms()).sum()) == 201


def test_a_scope_with_every_row_scans_without_a_mask(tmp_path):
    rng = np.random.default_rng(4)
    with open_store(tmp_path / "a.db") as s:
        fill(s, unit(rng, 50))
        vector_ids(s, unit(rng, 1)[0])
        assert s.memory._index.scope_mask(principal="p", now_ms=s.now_ms()) is True


def test_a_cached_mask_expires_with_the_first_row_in_scope(tmp_path):
    rng = np.random.default_rng(5)
    clock = Clock()
    with open_store(tmp_path / "a.db", clock=clock) as s:
        vectors = unit(rng, 40)
        fill(s, vectors[:20], channel="c")
        q = vectors[25]
        fill(s, vectors[20:], channel="d", ttl=clock.now + 1000)
        assert vector_ids(s, q)[0] == "p-d-000005"
        clock.now += 1000  # the channel-d rows expire now
        assert all(h.startswith("p-c-") for h in vector_ids(s, q))
        clock.now -= 500  # a clock that goes back: the rows are visible again
        assert vector_ids(s, q)[0] == "p-d-000005"


def test_only_the_fused_survivors_are_fetched(tmp_path):
    rng = np.random.default_rng(6)
    with open_store(tmp_path / "a.db") as s:
        fill(s, unit(rng, 300))
        statements = []
        s._conn.set_trace_callback(statements.append)
        try:
            ids = vector_ids(s, unit(rng, 1)[0], top_k=3)
        finally:
            s._conn.set_trace_callback(None)
        fetches = [t for t in statements if re.search(r"FROM memory_items WHERE memory_id IN", t)]
        assert len(ids) == 3 and len(fetches) == 1
        assert fetches[0].count("'p-None-") == 3  # 3 rows read, not the 64 vector candidates


def test_hybrid_fusion_orders_as_before_fetching(tmp_path):
    rng = np.random.default_rng(7)
    clock = Clock()
    with open_store(tmp_path / "a.db", clock=clock) as s:
        vectors = unit(rng, 30)
        for i, v in enumerate(vectors):
            s.memory.ingest(content=f"alpha {'beta ' * (i % 3)}item{i}", principal="p",
                            embedding=v.tolist(), memory_id=f"m{i:02d}")
            clock.now += 86_400_000
        hits = s.memory.search("alpha beta", principal="p", top_k=30,
                               query_embedding=vectors[3].tolist())
        assert len(hits) == 30
        keys = [(-h.score, -h.item.created_at_unix_ms, h.item.memory_id) for h in hits]
        assert keys == sorted(keys)
        for h in hits:
            assert h.score == pytest.approx(0.55 * h.lexical_score + 0.35 * h.vector_score
                                            + 0.10 * h.recency_score)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_search_many_answers_as_each_search(tmp_path, backend, precision):
    rng = np.random.default_rng(8)
    with open_store(tmp_path / "a.db", vector_precision=precision, clock=Clock()) as s:
        fill(s, unit(rng, 1500), channel="a")
        fill(s, unit(rng, 500), channel="b")
        queries = unit(rng, 13)
        for scope in ({}, {"channel": "b"}):
            many = s.memory.search_many(queries, principal="p", top_k=7, **scope)
            stats = s.memory.last_search_stats()
            assert stats["queries"] == 13 and stats["precision"] == precision
            assert len(many) == 13
            for q, got in zip(queries, many):
                one = s.memory.search("q", principal="p", top_k=7, mode="vector",
                                      query_embedding=q.tolist(), **scope)
                assert [h.item.memory_id for h in got] == [h.item.memory_id for h in one]
                assert [h.score for h in got] == [h.score for h in one]
                assert len(got) == 7


def test_search_many_refuses_bad_embeddings_naming_the_position(tmp_path):
    with open_store(tmp_path / "a.db") as s:
        fill(s, unit(np.random.default_rng(9), 10))
        good = [0.1] * DIMS
        with pytest.raises(InvalidPayloadError, match=r"query_embeddings\[1\] must have 32 values"):
            s.memory.search_many([good, [0.1] * 3], principal="p")
        with pytest.raises(InvalidPayloadError, match="query_embeddings must be a sequence"):
            s.memory.search_many(3, principal="p")
        with pytest.raises(InvalidPayloadError, match="top_k"):
            s.memory.search_many([good], principal="p", top_k=0)
        assert s.memory.search_many([], principal="p") == []


def test_vector_only_fusion_ranks_exactly_as_the_general_fusion():
    from palyra_journal.memory.search import fuse, fuse_vector
    rng = np.random.default_rng(10)
    for trial in range(200):
        k = int(rng.integers(1, 40))
        rows = rng.permutation(500)[:k].astype(np.int64)
        scores = rng.choice([0.9, 0.5, 0.5, 0.3, -0.1, 0.0, 0.7], size=k) if trial % 2 \
            else rng.random(k) - 0.1
        created = rng.choice([0, 5 * 86_400_000, 10**12], size=500).astype(np.int64)
        ids = [f"id{(i * 7919) % 500:04d}" for i in range(500)]
        now = 10**12 + int(rng.integers(0, 10**9))
        min_score = float(rng.choice([0.0, 0.2, 0.5]))
        top_k = int(rng.integers(1, 12))
        vector = {ids[r]: float(s) for r, s in zip(rows, scores) if s > 0.0}
        born = {ids[r]: int(created[r]) for r, s in zip(rows, scores) if s > 0.0}
        want = fuse(born, {}, vector, weights=(0.55, 0.35, 0.10), now_ms=now, min_score=min_score,
                    top_k=top_k)
        got = fuse_vector(rows, scores.astype(np.float64), created, ids,
                          weights=(0.55, 0.35, 0.10), now_ms=now, min_score=min_score, top_k=top_k)
        assert got == want
