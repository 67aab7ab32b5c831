"""Hybrid search: FTS query builder, ranking, fusion, scope, snippets, query cache (docs/memory.md)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import palyra_journal as pj
from palyra_journal.errors import InvalidPayloadError
from palyra_journal.memory.fts import fts_query, query_terms
from palyra_journal.memory.search import QueryEmbeddingCache, snippet

DAY = 86_400_000


@pytest.fixture
def fts_conn():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(content, tokenize='unicode61 remove_diacritics 2')")
    conn.executemany("INSERT INTO t(content) VALUES (?)", [
        ("Příliš žluťoučký kůň úpěl ďábelské ódy",), ("naïve café au lait",),
        ("東京 タワー",), ("AND OR NOT NEAR column:value",), ("plain words here",)])
    yield conn
    conn.close()


operators = st.sampled_from(['"', "'", "(", ")", "*", "^", ":", "-", "+", "AND", "OR", "NOT",
                             "NEAR", "NEAR(", "{", "}", ",", "content:", "\x00", " ", "é", "東"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=20), operators), max_size=12).map("".join))
def test_fts_query_never_raises_a_syntax_error(fts_conn, text):
    match = fts_query(text)
    if match is None:
        assert query_terms(text) == []
        return
    fts_conn.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t)", (match,)).fetchall()


def test_fts_query_drops_operators_and_joins_terms_with_or():
    assert fts_query('deploy AND "check-list" OR (x*)') == \
        '"deploy" OR "AND" OR "check" OR "list" OR "OR" OR "x"'
    assert fts_query('"" () * ^ -') is None
    assert fts_query("Deploy deploy DEPLOY") == '"Deploy"'


@pytest.mark.parametrize("query, row", [
    ("žluťoučký", 1), ("zlutoucky KUN", 1), ("cafe", 2), ("naive", 2), ("東京", 3),
    ("column", 4), ("NEAR", 4),
])
def test_non_ascii_words_match(fts_conn, query, row):
    rows = [r[0] for r in fts_conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (fts_query(query),))]
    assert rows == [row]


def fixed_clock(t0=1_700_000_000_000):
    now = [t0]
    return now, (lambda: now[0])


def test_all_query_words_beat_a_single_word(db_path, backend):
    with pj.JournalStore.open(db_path) as s:
        m = s.memory
        m.ingest("the deploy happened on friday", principal="p", memory_id="one")
        m.ingest("deploy checklist for the release train", principal="p", memory_id="all")
        m.ingest("the checklist of groceries", principal="p", memory_id="other")
        for mode in ("hybrid", "lexical"):
            hits = m.search("deploy checklist", principal="p", mode=mode)
            assert hits[0].item.memory_id == "all"
            assert hits[0].lexical_score == 1.0
            assert all(h.lexical_score < 1.0 for h in hits[1:])


def test_fusion_formula_order_and_min_score(db_path, backend):
    now, clock = fixed_clock()
    with pj.JournalStore.open(db_path, clock=clock) as s:
        m = s.memory
        m.ingest("apple banana", principal="p", memory_id="old")
        now[0] += 3 * DAY
        m.ingest("apple banana", principal="p", memory_id="new")
        m.ingest("apple banana", principal="p", memory_id="new2")
        now[0] += DAY
        hits = m.search("apple banana", principal="p")
        assert [h.item.memory_id for h in hits] == ["new", "new2", "old"]  # same score: id asc
        for h in hits:
            assert h.score == pytest.approx(0.55 * h.lexical_score + 0.35 * h.vector_score
                                            + 0.10 * h.recency_score)
        assert hits[0].recency_score == pytest.approx(1 / 2)
        assert hits[2].recency_score == pytest.approx(1 / 5)
        assert hits[0].vector_score == pytest.approx(1.0)
        cut = (hits[0].score + hits[2].score) / 2
        assert [h.item.memory_id for h in m.search("apple banana", principal="p", min_score=cut)] \
            == ["new", "new2"]
        assert m.search("apple", principal="p", top_k=1)[0].item.memory_id == "new"


def test_fusion_weights_are_configurable_and_checked(db_path, backend):
    with pj.JournalStore.open(db_path, memory_fusion_weights=(0.0, 0.0, 1.0)) as s:
        s.memory.ingest("kiwi", principal="p")
        hit = s.memory.search("kiwi", principal="p")[0]
        assert hit.score == pytest.approx(hit.recency_score)
    with pj.JournalStore.open(db_path, memory_fusion_weights=(0.5, 0.5, 0.5)) as s:
        with pytest.raises(InvalidPayloadError, match="sum to 1"):
            s.memory.search("kiwi", principal="p")


def test_vector_mode_ignores_non_positive_cosine(store):
    m = store.memory
    e = np.zeros(64)
    e[0] = 1.0
    m.ingest("one", principal="p", embedding=e, memory_id="pos")
    m.ingest("two", principal="p", embedding=-e, memory_id="neg")
    e2 = np.zeros(64)
    e2[1] = 1.0
    m.ingest("three", principal="p", embedding=e2, memory_id="orth")
    hits = m.search("anything", principal="p", mode="vector", query_embedding=e)
    assert [h.item.memory_id for h in hits] == ["pos"]


def test_scope_isolation(store):
    m = store.memory
    m.ingest("secret plan", principal="alice", channel="c1", session_id="s1", memory_id="a1")
    m.ingest("secret plan", principal="alice", channel="c2", session_id="s2", memory_id="a2",
             source="summary", tags=["t"])
    m.ingest("secret plan", principal="bob", channel="c1", session_id="s1", memory_id="b1")
    for mode in ("hybrid", "lexical", "vector"):
        def ids(mode=mode, **kw):
            return sorted(h.item.memory_id for h in m.search("secret plan", mode=mode, **kw))
        assert ids(principal="alice") == ["a1", "a2"]
        assert ids(principal="bob") == ["b1"]
        assert ids(principal="carol") == []
        assert ids(principal="alice", channel="c1") == ["a1"]
        assert ids(principal="alice", session_id="s2") == ["a2"]
        assert ids(principal="alice", channel="c1", session_id="s2") == []
        assert ids(principal="alice", channel="nope") == []
        assert ids(principal="alice", sources=["summary", "import"]) == ["a2"]
        assert ids(principal="alice", tags=["t"]) == ["a2"]
        assert ids(principal="alice", tags=["t", "u"]) == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(top_k=0), "top_k"), (dict(top_k=1001), "top_k"), (dict(top_k=True), "top_k"),
    (dict(top_k=2.0), "top_k"), (dict(mode="fuzzy"), "mode"), (dict(min_score=float("nan")), "min_score"),
    (dict(tags=["bad tag"]), "bad tag"), (dict(sources=["web"]), "web"),
    (dict(query_embedding=[1.0, 2.0]), "64 values"), (dict(principal=""), "principal"),
])
def test_search_refuses_bad_arguments(store, kwargs, match):
    args = dict(principal="p")
    args.update(kwargs)
    with pytest.raises(InvalidPayloadError, match=match):
        store.memory.search("hello", **args)


def test_empty_query_returns_nothing(store):
    store.memory.ingest("hello", principal="p")
    assert store.memory.search("  \x00 \n", principal="p") == []
    assert store.memory.search("?!", principal="p", mode="lexical") == []


def test_top_k_bounds_are_accepted(store):
    store.memory.ingest_many([{"content": f"word {i}", "principal": "p"} for i in range(5)])
    assert len(store.memory.search("word", principal="p", top_k=1)) == 1
    assert len(store.memory.search("word", principal="p", top_k=1000)) == 5


def test_snippet_rules():
    short = "x" * 200
    assert snippet(short, ["zzz"]) == short
    text = "a" * 300 + " Needle " + "b" * 300
    s = snippet(text, ["needle"])
    assert len(s) == 200 and s == text[301 - 48:301 + 152] and s.startswith("a" * 47 + " Needle")
    assert snippet(text, ["absent"]) == text[:200]
    assert snippet(text, []) == text[:200]
    near_start = "ab needle " + "c" * 300
    assert snippet(near_start, ["NEEDLE"]) == near_start[:200]


def test_search_hit_carries_snippet(store):
    content = "lorem " * 60 + "the kubernetes upgrade notes " + "ipsum " * 60
    store.memory.ingest(content, principal="p")
    hit = store.memory.search("kubernetes upgrade", principal="p")[0]
    assert "kubernetes upgrade" in hit.snippet and len(hit.snippet) == 200


class CountingProvider(pj.HashEmbeddingProvider):
    def __init__(self):
        super().__init__(64)
        self.texts = []

    def embed(self, texts):
        self.texts.extend(texts)
        return super().embed(texts)


def test_query_embeddings_are_cached_for_five_minutes(db_path, backend):
    now, clock = fixed_clock()
    provider = CountingProvider()
    with pj.JournalStore.open(db_path, embedding_provider=provider, clock=clock) as s:
        s.memory.ingest("cached query target", principal="p")
        provider.texts.clear()
        s.memory.search("cached  query", principal="p")
        s.memory.search("cached query ", principal="p")  # same normalized query
        assert provider.texts == ["cached query"]
        s.memory.search("cached query", principal="p", mode="lexical")
        s.memory.search("cached query", principal="p", query_embedding=np.ones(64))
        assert provider.texts == ["cached query"]
        now[0] += 300_000
        s.memory.search("cached query", principal="p")
        assert provider.texts == ["cached query", "cached query"]


def test_query_cache_is_lru_with_256_entries():
    cache = QueryEmbeddingCache()
    for i in range(256):
        cache.put(("m", 1, 1, str(i)), np.zeros(1), 0)
    assert cache.get(("m", 1, 1, "0"), 1) is not None  # now most recent
    cache.put(("m", 1, 1, "new"), np.zeros(1), 1)
    assert len(cache) == 256
    assert cache.get(("m", 1, 1, "1"), 2) is None
    assert cache.get(("m", 1, 1, "0"), 2) is not None
    assert cache.get(("m", 1, 1, "0"), 300_000) is None
