"""Vector-only fusion asks the kernel for ``top_k + 1`` rows first (memory/search.py
``first_ask``/``prefix_decides``): the hits must be exactly those of fusing the kernel's full
``candidate_limit`` rows, whatever the weights, ties, creation times, ``min_score`` and scope."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import palyra_journal as pj
from palyra_journal.memory.embeddings import HashEmbeddingProvider
from palyra_journal.memory.ingest import check_embedding
from palyra_journal.memory.search import (candidate_limit, first_ask, fuse_vector,
                                          prefix_decides)

from test_memory_recall import Clock  # a settable store clock

DIMS = 16
T0 = 1_700_000_000_000


def full_limit_answer(store, q, top_k, min_score, **scope):
    """What search returned before the shorter first ask: fusion of the kernel's ``limit`` rows."""
    mem = store.memory
    idx = mem._index
    mask = idx.scope_mask(principal="p", now_ms=store.now_ms(), **scope)
    rows, scores = idx.search_rows(check_embedding(q, DIMS), candidate_limit(top_k), mask)
    ranked = fuse_vector(rows, scores, idx.created, idx.ids, weights=mem.weights,
                         now_ms=store.now_ms(), min_score=min_score, top_k=top_k)
    return [(mid, score) for score, _, _, _, mid in ranked]


def build(path, vectors, clock, weights, precision):
    store = pj.JournalStore.open(path, embedding_provider=HashEmbeddingProvider(dimensions=DIMS),
                                 clock=clock, memory_fusion_weights=weights,
                                 vector_precision=precision)
    for i, v in enumerate(vectors):
        clock.now = T0 + (i % 3) * 86_400_000  # three creation days: ties of recency
        store.memory.ingest_many([{"content": f"note {i}", "principal": "p",
                                   "channel": "a" if i % 2 else "b", "embedding": v.tolist(),
                                   "memory_id": f"m{i:05d}"}])
    clock.now = T0 + 5 * 86_400_000
    return store


WEIGHTS = [(0.0, 1.0, 0.0), (0.55, 0.45, 0.0), (0.55, 0.35, 0.10), (0.0, 0.9, 0.1),
           (1.0, 0.0, 0.0)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 160), dup=st.integers(0, 40),
       top_k=st.integers(1, 20), weights=st.sampled_from(WEIGHTS),
       min_score=st.sampled_from([0.0, 0.5, 0.9, 0.999]), channel=st.sampled_from([None, "a"]),
       precision=st.sampled_from(["float32", "int8"]))
def test_search_matches_fusion_of_the_full_candidate_list(tmp_path_factory, backend, seed, n, dup,
                                                          top_k, weights, min_score, channel,
                                                          precision):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIMS)).astype(np.float32)
    vectors[: min(dup, n)] = vectors[0]  # exact ties of the cosine at any boundary
    queries = [vectors[0], rng.standard_normal(DIMS).astype(np.float32), -vectors[-1]]
    clock = Clock(T0)
    path = tmp_path_factory.mktemp("prefix") / "a.db"
    with build(path, vectors, clock, weights, precision) as store:
        for q in queries:
            hits = store.memory.search("q", principal="p", channel=channel, mode="vector",
                                       query_embedding=q.tolist(), top_k=top_k,
                                       min_score=min_score)
            got = [(h.item.memory_id, h.score) for h in hits]
            assert got == full_limit_answer(store, q, top_k, min_score, channel=channel)
        many = store.memory.search_many(queries, principal="p", channel=channel, top_k=top_k,
                                        min_score=min_score)
        for q, hits in zip(queries, many):
            got = [(h.item.memory_id, h.score) for h in hits]
            assert got == full_limit_answer(store, q, top_k, min_score, channel=channel)


def test_first_ask_is_short_only_without_recency_weight():
    assert first_ask((0.0, 1.0, 0.0), 10, candidate_limit(10)) == 11
    assert first_ask((0.5, 0.5, 0.0), 10, candidate_limit(10)) == 11
    assert first_ask((0.55, 0.35, 0.10), 10, candidate_limit(10)) == candidate_limit(10)
    assert first_ask((1.0, 0.0, 0.0), 10, candidate_limit(10)) == candidate_limit(10)
    assert first_ask((0.0, 1.0, 0.0), 500, candidate_limit(500)) == 501


def ranked_of(scores, top_k, weights=(0.0, 1.0, 0.0), min_score=0.0, age_days=0):
    rows = np.arange(len(scores))
    created = np.full(len(scores), T0 - age_days * 86_400_000, dtype=np.int64)
    ids = [f"m{i}" for i in rows]
    return fuse_vector(rows, np.asarray(scores, np.float64), created, ids, weights=weights,
                       now_ms=T0, min_score=min_score, top_k=top_k)


@pytest.mark.parametrize("scores,top_k,decides", [
    ([0.9, 0.8, 0.7], 2, True),          # strictly below the last kept row
    ([0.9, 0.8, 0.8], 2, False),         # a tie at the boundary: the next rows could tie too
    ([0.9, 0.8], 2, True),               # fewer rows than asked: nothing beyond
    ([0.9, 0.8, -0.1], 2, True),         # the rows beyond are <= 0: fusion drops them
])
def test_prefix_decides_on_the_boundary(scores, top_k, decides):
    ranked = ranked_of(scores, top_k)
    assert prefix_decides(np.asarray(scores), top_k + 1, ranked, (0.0, 1.0, 0.0), 0.0,
                          top_k) is decides


def test_prefix_decides_counts_recency_and_min_score():
    scores = np.array([0.9, 0.75, 0.7])
    weights = (0.0, 0.9, 0.1)
    ranked = ranked_of(scores, 2, weights, age_days=100)  # second: 0.75 + 0.1 / 101
    # a row beyond could be new: its recency 1 would lift it to 0.7 + 0.1 = 0.8
    assert not prefix_decides(scores, 3, ranked, weights, 0.0, 2)
    ranked = ranked_of(scores, 2, weights)  # second: 0.75 + 0.1, above any row beyond
    assert prefix_decides(scores, 3, ranked, weights, 0.0, 2)
    # min_score rules out everything the bound allows
    ranked = ranked_of(scores, 2, weights, min_score=0.95, age_days=100)
    assert prefix_decides(scores, 3, ranked, weights, 0.95, 2)
