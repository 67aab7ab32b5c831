"""Memory ingest, validation, get/list/update/delete/purge (docs/memory.md "Ingest", docs/api.md "Memory")."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import raw_db

import palyra_journal as pj
from palyra_journal.errors import DuplicateIdError, InvalidPayloadError, PayloadTooLargeError


def count(db_path, table: str) -> int:
    conn = raw_db.connect(db_path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_ingest_normalizes_content_and_stores_hash_tags_and_vector(store, db_path):
    item = store.memory.ingest("  Deploy\tchecklist\x00\x07:\n\n run   it  ", principal="alice",
                               tags=[" Ops ", "deploy", "OPS", "a.b:c_d-e"], confidence=0.5)
    assert item.content == "Deploy checklist: run it"
    assert item.content_hash == hashlib.sha256(item.content.encode()).hexdigest()
    assert item.tags == ("ops", "deploy", "a.b:c_d-e")
    assert item.confidence == 0.5 and item.source == "manual"
    assert item.created_at_unix_ms == item.updated_at_unix_ms
    assert store.memory.get(item.memory_id) == item
    conn = raw_db.connect(db_path)
    model, dims, version, blob = conn.execute(
        "SELECT model, dims, version, vector FROM memory_vectors WHERE memory_id = ?",
        (item.memory_id,)).fetchone()
    conn.close()
    assert (model, dims, version) == ("hash-embedding-v1", 64, 1)
    vec = np.frombuffer(blob, dtype="<f4")
    assert vec.shape == (64,)
    assert np.allclose(vec, pj.HashEmbeddingProvider(64).embed([item.content])[0])
    assert item.to_dict()["tags"] == ["ops", "deploy", "a.b:c_d-e"]


def test_ingest_redacts_json_payloads_and_secret_text(store):
    m = store.memory
    assert m.ingest('{"token": "x", "note": "hi"}', principal="p").content == \
        '{"note":"hi","token":"<redacted>"}'
    assert m.ingest("Authorization: Bearer abc", principal="p").content == "Authorization: <redacted>"
    assert m.ingest("sk-live-0123456789abcdef", principal="p").content == "<redacted>"
    assert m.ingest("the sk-1 form", principal="p").content == "the sk-1 form"
    assert m.ingest("the cookie jar holds a token count: 5", principal="p").content == \
        "the cookie jar holds a token count: 5"
    assert m.ingest("[1, 2, {broken", principal="p").content == "[1, 2, {broken"


def test_caller_embedding_is_normalized(store, db_path):
    vec = np.arange(64, dtype=np.float64)
    item = store.memory.ingest("x", principal="p", embedding=vec)
    conn = raw_db.connect(db_path)
    blob = conn.execute("SELECT vector FROM memory_vectors").fetchone()[0]
    conn.close()
    stored = np.frombuffer(blob, dtype="<f4")
    assert np.allclose(stored, vec / np.linalg.norm(vec), atol=1e-7)
    assert item.memory_id


@pytest.mark.parametrize("kwargs, match", [
    (dict(content=""), "content is empty"),
    (dict(content=" \t\x00\n "), "content is empty"),
    (dict(content=b"bytes"), "content must be a str"),
    (dict(content="ok", tags="ops"), "tags must be a list"),
    (dict(content="ok", tags=["bad tag"]), "'bad tag'"),
    (dict(content="ok", tags=[""]), "tag ''"),
    (dict(content="ok", tags=["ü"]), "'ü'"),
    (dict(content="ok", tags=[1]), "each tag must be a str"),
    (dict(content="ok", tags=[f"t{i}" for i in range(33)]), "at most 32"),
    (dict(content="ok", confidence=1.5), "confidence"),
    (dict(content="ok", confidence=-0.1), "confidence"),
    (dict(content="ok", confidence=float("nan")), "confidence"),
    (dict(content="ok", confidence=True), "confidence"),
    (dict(content="ok", source="web"), "source must be one of .*got 'web'"),
    (dict(content="ok", embedding=[0.1] * 63), "64 values"),
    (dict(content="ok", embedding=[float("nan")] + [0.1] * 63), r"embedding\[0\]"),
    (dict(content="ok", embedding=[float("inf")] * 64), "finite"),
    (dict(content="ok", ttl_unix_ms="soon"), "ttl_unix_ms"),
    (dict(content="ok", channel=""), "channel"),
    (dict(content="ok", memory_id=""), "memory_id"),
])
def test_bad_input_raises_and_writes_nothing(store, db_path, kwargs, match):
    with pytest.raises(InvalidPayloadError, match=match):
        store.memory.ingest(principal="p", **kwargs)
    assert count(db_path, "memory_items") == 0
    assert count(db_path, "memory_vectors") == 0


def test_empty_principal_is_refused(store):
    with pytest.raises(InvalidPayloadError, match="principal"):
        store.memory.ingest("ok", principal="")


def test_content_limit_is_utf8_bytes_after_normalization_and_configurable(db_path, backend):
    with pj.JournalStore.open(db_path) as s:
        s.memory.ingest("a" * 16384, principal="p")
        s.memory.ingest("a" * 16384 + "   ", principal="p")  # trimmed back under the limit
        with pytest.raises(PayloadTooLargeError, match="16385 bytes"):
            s.memory.ingest("a" * 16385, principal="p")
        with pytest.raises(PayloadTooLargeError, match="limit is 16384"):
            s.memory.ingest("é" * 8193, principal="p")
    with pj.JournalStore.open(db_path, memory_max_content_bytes=10) as s:
        with pytest.raises(PayloadTooLargeError):
            s.memory.ingest("x" * 11, principal="p")


def test_duplicate_id_raises_and_writes_nothing(store, db_path):
    store.memory.ingest("first", principal="p", memory_id="m1")
    with pytest.raises(DuplicateIdError, match="'m1'"):
        store.memory.ingest("second", principal="p", memory_id="m1")
    with pytest.raises(DuplicateIdError, match="'m1'"):
        store.memory.ingest_many([{"content": "a", "principal": "p", "memory_id": "m2"},
                                  {"content": "b", "principal": "p", "memory_id": "m1"}])
    with pytest.raises(DuplicateIdError, match="twice"):
        store.memory.ingest_many([{"content": "a", "principal": "p", "memory_id": "m3"},
                                  {"content": "b", "principal": "p", "memory_id": "m3"}])
    assert count(db_path, "memory_items") == 1
    assert store.memory.get("m2") is None
    assert [h.item.memory_id for h in store.memory.search("first second a b", principal="p")] == ["m1"]


class CountingProvider(pj.HashEmbeddingProvider):
    def __init__(self):
        super().__init__(16)
        self.calls = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return super().embed(texts)


def test_ingest_many_embeds_in_one_batch_and_one_transaction(db_path, backend):
    provider = CountingProvider()
    with pj.JournalStore.open(db_path, embedding_provider=provider) as s:
        items = s.memory.ingest_many(
            [{"content": f"note {i}", "principal": "p", "tags": ["t"]} for i in range(20)]
            + [{"content": "given", "principal": "p", "embedding": np.ones(16)}])
        assert len(items) == 21 and len({i.memory_id for i in items}) == 21
        assert provider.calls == [[f"note {i}" for i in range(20)]]
        with pytest.raises(InvalidPayloadError, match=r"items\[1\]: confidence"):
            s.memory.ingest_many([{"content": "ok", "principal": "p"},
                                  {"content": "ok", "principal": "p", "confidence": 2}])
        with pytest.raises(InvalidPayloadError, match=r"items\[0\]: unknown field"):
            s.memory.ingest_many([{"content": "ok", "principal": "p", "colour": "red"}])
        assert len(provider.calls) == 1
    assert count(db_path, "memory_items") == 21


def test_get_list_update_delete_purge(store):
    m = store.memory
    a = m.ingest("alpha", principal="p", channel="c1", session_id="s1", tags=["x"], memory_id="a")
    m.ingest("beta", principal="p", channel="c1", session_id="s2", memory_id="b",
             source="summary")
    m.ingest("gamma", principal="p", channel="c2", memory_id="c", tags=["x", "y"])
    m.ingest("delta", principal="q", channel="c1", memory_id="d")
    assert [i.memory_id for i in m.list(principal="p")] == ["a", "b", "c"]
    assert [i.memory_id for i in m.list(principal="p", channel="c1")] == ["a", "b"]
    assert [i.memory_id for i in m.list(principal="p", session_id="s2")] == ["b"]
    assert [i.memory_id for i in m.list(principal="p", tags=["x"])] == ["a", "c"]
    assert [i.memory_id for i in m.list(principal="p", tags=["x", "y"])] == ["c"]
    assert [i.memory_id for i in m.list(principal="p", sources=["summary"])] == ["b"]
    assert [i.memory_id for i in m.list(principal="p", after_id="a", limit=1)] == ["b"]

    assert m.update("a", principal="q", tags=["z"]) is None
    u = m.update("a", principal="p", tags=["Z"], confidence=0.25)
    assert u.tags == ("z",) and u.confidence == 0.25 and u.content == a.content
    assert m.get("a") == u
    assert [h.item.memory_id for h in m.search("alpha", principal="p", tags=["z"])] == ["a"]
    assert m.search("alpha", principal="p", tags=["x"]) == []

    assert m.delete("d", principal="p") is False
    assert m.delete("a", principal="p", channel="c2") is False
    assert m.delete("a", principal="p", channel="c1") is True
    assert m.get("a") is None
    assert m.purge(principal="p", channel="c1") == 1
    assert m.purge(principal="p") == 1
    assert m.list(principal="p") == []
    assert [i.memory_id for i in m.list(principal="q")] == ["d"]


@pytest.mark.sqlite_only  # the FTS5 table and its integrity-check (PostgreSQL: a column of memory_items)
def test_delete_and_purge_keep_fts_and_vectors_in_step(store, db_path):
    m = store.memory
    for i in range(10):
        m.ingest(f"shared word number {i}", principal="p", memory_id=f"m{i}")
    assert len(m.search("shared", principal="p", top_k=20)) == 10
    m.delete("m3", principal="p")
    assert m.purge(principal="p", session_id=None, channel=None) == 9
    conn = raw_db.connect(db_path)
    fts = conn.execute("SELECT count(*) FROM memory_items_fts WHERE memory_items_fts MATCH 'shared'"
                       ).fetchone()[0]
    conn.execute("INSERT INTO memory_items_fts(memory_items_fts, rank) VALUES ('integrity-check', 1)")
    conn.close()
    assert fts == 0
    assert count(db_path, "memory_vectors") == 0
    assert m.search("shared", principal="p") == []
    assert m.index_size() == 0


def test_expired_items_are_invisible_and_maintain_deletes_them(db_path, backend):
    now = [1_700_000_000_000]
    with pj.JournalStore.open(db_path, clock=lambda: now[0]) as s:
        m = s.memory
        m.ingest("short lived fact", principal="p", ttl_unix_ms=now[0] + 1000, memory_id="e")
        m.ingest("long lived fact", principal="p", memory_id="k")
        assert {h.item.memory_id for h in m.search("fact", principal="p")} == {"e", "k"}
        now[0] += 1000
        assert m.get("e") is None
        assert [i.memory_id for i in m.list(principal="p")] == ["k"]
        for mode in ("hybrid", "lexical", "vector"):
            assert [h.item.memory_id for h in m.search("fact", principal="p", mode=mode)] == ["k"]
        report = m.maintain()
        assert report.deleted_expired == 1 and report.entries_after == 1
    assert count(db_path, "memory_items") == 1 and count(db_path, "memory_vectors") == 1


def test_stored_vector_of_wrong_length_is_an_error_not_zeros(store, db_path):
    store.memory.ingest("fine", principal="p", memory_id="m1")
    conn = raw_db.connect(db_path)
    conn.execute("UPDATE memory_vectors SET vector = zeroblob(12)")
    conn.commit()
    conn.close()
    with pytest.raises(pj.CorruptVectorError, match="'m1'.*12 bytes"):
        store.memory.search("fine", principal="p")
