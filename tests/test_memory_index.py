"""The vector index: exact recall over all items in scope, coherence with this and other
connections' writes, and rollbacks (docs/memory.md "Vector index")."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import palyra_journal as pj

N = 50_000
DIMS = 32
T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """50 000 random unit vectors in 3 principals x 2 channels, 30 % tagged, stored once."""
    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((N, DIMS)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    principal = rng.integers(0, 3, N)
    channel = rng.integers(0, 2, N)
    tagged = rng.random(N) < 0.3
    path = tmp_path_factory.mktemp("recall") / "m.db"
    with pj.JournalStore.open(path, embedding_provider=pj.HashEmbeddingProvider(DIMS),
                              clock=lambda: T0) as s:
        s.memory.ingest_many(
            {"content": f"item {i}", "principal": f"p{principal[i]}", "channel": f"c{channel[i]}",
             "tags": ["t"] if tagged[i] else [], "memory_id": f"m{i:06d}", "embedding": vecs[i]}
            for i in range(N))
    return path, vecs, principal, channel, tagged


def brute_force(vecs, query, mask, k):
    """numpy float64 reference: cosine desc, then row (= memory_id) asc, cosine > 0 only."""
    scores = vecs.astype(np.float64) @ query.astype(np.float64)
    rows = np.flatnonzero(mask & (scores > 0))
    order = np.lexsort((rows, -scores[rows]))[:k]
    return [f"m{r:06d}" for r in rows[order]]


def test_vector_recall_equals_numpy_brute_force_over_all_items(backend, corpus):
    path, vecs, principal, channel, tagged = corpus
    with pj.JournalStore.open(path, embedding_provider=pj.HashEmbeddingProvider(DIMS),
                              clock=lambda: T0) as s:
        rng = np.random.default_rng(11)
        cases = [dict(principal="p0"), dict(principal="p1", channel="c1"),
                 dict(principal="p2", tags=["t"]), dict(principal="p0", channel="c0", tags=["t"])]
        for kw in cases:
            mask = principal == int(kw["principal"][1])
            if "channel" in kw:
                mask &= channel == int(kw["channel"][1])
            if "tags" in kw:
                mask &= tagged
            for k in (1, 10, 100):
                q = rng.standard_normal(DIMS).astype(np.float32)
                q /= np.linalg.norm(q)
                hits = s.memory.search("query", top_k=k, mode="vector", query_embedding=q, **kw)
                assert [h.item.memory_id for h in hits] == brute_force(vecs, q, mask, k), (kw, k)
        # the oldest items are as findable as the newest: exact over everything in scope
        q = vecs[0]
        hit = s.memory.search("x", principal=f"p{principal[0]}", top_k=1, mode="vector",
                              query_embedding=q)[0]
        assert hit.item.memory_id == "m000000"
        assert s.memory.index_size() == N


def test_second_process_ingest_is_seen_by_next_search(db_path, backend):
    with pj.JournalStore.open(db_path) as s:
        s.memory.ingest("first local note", principal="p", memory_id="local")
        assert [h.item.memory_id for h in s.memory.search("remote note", principal="p",
                                                          mode="vector")] == ["local"]
        script = textwrap.dedent(f"""
            import palyra_journal as pj
            with pj.JournalStore.open({str(db_path)!r}) as s:
                s.memory.ingest("remote note arrives", principal="p", memory_id="remote")
                s.memory.delete("local", principal="p")
        """)
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        for mode in ("vector", "hybrid", "lexical"):
            hits = s.memory.search("remote note", principal="p", mode=mode)
            assert [h.item.memory_id for h in hits] == ["remote"], mode
        assert s.memory.index_size() == 1


def test_own_writes_update_the_loaded_index_in_place(store):
    m = store.memory
    m.ingest("alpha beta", principal="p", memory_id="a")
    m.search("alpha", principal="p", mode="vector")
    idx = m._index
    m.ingest_many([{"content": f"beta {i}", "principal": "p"} for i in range(3)])
    m.update("a", principal="p", tags=["new"])
    assert [h.item.memory_id for h in m.search("alpha beta", principal="p", mode="vector",
                                              tags=["new"])] == ["a"]
    m.delete("a", principal="p")
    assert m._index is idx and idx.generation is not None  # kept in step, never reloaded
    assert "a" not in [h.item.memory_id for h in m.search("alpha beta", principal="p", mode="vector")]
    assert m.index_size() == 3


def test_rolled_back_writes_never_reach_the_index(store):
    m = store.memory
    m.ingest("kept note", principal="p", memory_id="kept")
    m.search("note", principal="p", mode="vector")
    with pytest.raises(RuntimeError):
        with store.write():
            m.ingest("ghost note", principal="p", memory_id="ghost")
            m.delete("kept", principal="p")
            raise RuntimeError("abort")
    assert [h.item.memory_id for h in m.search("note", principal="p", mode="vector")] == ["kept"]
    with pytest.raises(pj.DuplicateIdError):
        m.ingest_many([{"content": "note two", "principal": "p", "memory_id": "two"},
                       {"content": "note dup", "principal": "p", "memory_id": "kept"}])
    assert [h.item.memory_id for h in m.search("note", principal="p", mode="vector")] == ["kept"]


def test_index_compacts_tombstones(db_path, backend):
    with pj.JournalStore.open(db_path, embedding_provider=pj.HashEmbeddingProvider(8)) as s:
        m = s.memory
        m.ingest_many([{"content": f"n {i}", "principal": "p", "memory_id": f"m{i:05d}"}
                       for i in range(3000)])
        m.search("n", principal="p", mode="vector")
        m.purge(principal="p")  # 3000 tombstones > 1024 and > n/4: compacted
        assert m._index.n == 0 and m._index.dead == 0
        m.ingest("n fresh", principal="p", memory_id="fresh")
        assert [h.item.memory_id for h in m.search("n fresh", principal="p")] == ["fresh"]


def _index_state(idx):
    """Everything a search reads from an index, by memory id, codes replaced by their names."""
    names = {c: v for v, c in idx._names.items()}
    out = {}
    for i in range(idx.n):
        if idx.alive[i]:
            out[idx.ids[i]] = (idx.matrix[i].tobytes(), names[int(idx.principal[i])],
                               names[int(idx.channel[i])], names[int(idx.session[i])],
                               int(idx.source[i]), int(idx.expiry[i]), idx.tags[i])
    return out


def _both_loads(conn, key, snapshot):
    """The index as the snapshot gives it (written by a first load, then mapped) and as the joined
    SQLite read gives it."""
    from palyra_journal.memory.index import VectorIndex
    first, mapped, rows = VectorIndex(*key), VectorIndex(*key), VectorIndex(*key)
    first.load(conn, snapshot=snapshot)
    mapped.load(conn, snapshot=snapshot)
    rows.load(conn)
    assert first.snapshot_state == "rebuilt: missing" and mapped.snapshot_state == "mapped"
    return mapped, rows


@pytest.mark.sqlite_only  # the <db>-vectors snapshot file
def test_snapshot_load_equals_the_joined_row_read(db_path, backend):
    """Nulls, tags, expiry, every source, sparse rowids, vectors stored in another order than their
    items, items with another model's vector and odd ids: the mapped snapshot gives what the
    joined read gives."""
    import sqlite3
    provider = pj.HashEmbeddingProvider(16)
    with pj.JournalStore.open(db_path, embedding_provider=provider, clock=lambda: T0) as s:
        m = s.memory
        sources = ["manual", "summary", "import", "tape:user_message", "tape:tool_result"]
        m.ingest_many([{"content": f"note {i}", "principal": f"p{i % 3}",
                        "channel": None if i % 4 == 0 else f"c{i % 2}",
                        "session_id": None if i % 3 else f"s{i % 5}", "source": sources[i % 5],
                        "tags": ["a", "b"][: i % 3], "memory_id": f"z{(i * 7919) % 600:04d}",
                        "ttl_unix_ms": T0 + 10**9 + i if i % 7 == 0 else None}
                       for i in range(600)] +
                      [{"content": "odd id", "principal": "p1", "memory_id": "a\x1fb,\u00e9\U0001f600"}])
        m.purge(principal="p0", channel="c1")           # holes in both rowid sequences
        m.update("z0005", principal="p2", tags=["late"])
        key = m._key()
    conn = sqlite3.connect(db_path)
    with conn:  # move some vectors to the end of the table, and give one item another model
        conn.execute("UPDATE memory_vectors SET rowid = rowid + 100000 WHERE memory_id < 'z0100'")
        conn.execute("UPDATE memory_vectors SET model = 'other' WHERE memory_id = 'z0200'")
    mapped, rows = _both_loads(conn, key, str(db_path) + "-vectors")
    assert mapped.n == rows.n > 300
    assert _index_state(mapped) == _index_state(rows)
    np.testing.assert_array_equal(mapped.created[:mapped.n], rows.created[:rows.n])
    conn.close()
    with pj.JournalStore.open(db_path, embedding_provider=provider, clock=lambda: T0) as s:
        hits = s.memory.search("odd id", principal="p1", mode="vector")
        assert s.memory._index.snapshot_state == "mapped"
        assert hits[0].item.memory_id == "a\x1fb,\u00e9\U0001f600"
