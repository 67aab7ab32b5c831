"""Memory writes its audit trail: memory.* events in the same transaction, never the content."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from palyra_journal import DuplicateIdError, JournalStore

SECRET_CONTENT = "the launch code is swordfish-42 and the vault is behind the painting"


def _events(store, prefix="memory."):
    return [e for e in store.iter_events() if e.kind.startswith(prefix)]


def _sha(ids):
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def test_every_memory_write_records_its_event_without_the_content(db_path, backend):
    with JournalStore.open(db_path) as store:
        m = store.memory
        a = m.ingest(SECRET_CONTENT, principal="ada", channel="c", session_id="s",
                     memory_id="m-a", tags=["x"])
        m.ingest_many([{"content": f"note {i}", "principal": "bob", "memory_id": f"m-b{i}"}
                       for i in range(3)])
        m.update("m-a", principal="ada", confidence=0.5)
        assert m.update("missing", principal="ada", confidence=0.5) is None
        assert m.delete("m-b0", principal="bob")
        assert m.purge(principal="bob") == 2
        m.ingest("expiring", principal="ada", memory_id="m-old", ttl_unix_ms=1)
        m.maintain()
        evs = _events(store)
        kinds = [e.kind for e in evs]
        assert kinds == ["memory.ingested"] * 4 + ["memory.updated", "memory.deleted",
                                                  "memory.purged", "memory.ingested",
                                                  "memory.maintained"]
        first = evs[0]
        assert (first.principal, first.channel, first.session_id) == ("ada", "c", "s")
        assert first.payload == {"memory_id": "m-a", "source": "manual",
                                 "content_sha256": a.content_hash,
                                 "content_bytes": len(a.content.encode()), "tags": 1,
                                 "ttl_unix_ms": None}
        assert a.content_hash == hashlib.sha256(a.content.encode()).hexdigest()
        assert evs[4].payload == {"memory_id": "m-a", "changed": ["confidence"],
                                  "content_sha256": a.content_hash}
        assert evs[5].payload == {"count": 1, "ids_sha256": _sha(["m-b0"]),
                                  "memory_ids": ["m-b0"]}
        assert evs[6].payload == {"count": 2, "ids_sha256": _sha(["m-b1", "m-b2"])}
        assert evs[6].principal == "bob"
        assert evs[8].payload["deleted_expired"] == 1 and evs[8].payload["count"] == 1
        assert evs[8].payload["ids_sha256"] == _sha(["m-old"])
        journal_text = "".join(e.payload_json for e in store.iter_events())
        assert "swordfish" not in journal_text and "launch code" not in journal_text
        assert store.verify().ok


def test_a_failed_memory_write_records_no_event(db_path, backend):
    with JournalStore.open(db_path) as store:
        store.memory.ingest("one", principal="p", memory_id="dup")
        head = store.head()
        with pytest.raises(DuplicateIdError):
            store.memory.ingest_many([{"content": "two", "principal": "p"},
                                      {"content": "three", "principal": "p", "memory_id": "dup"}])
        assert store.head() == head


def test_reembed_records_one_event_per_batch(db_path, backend):
    with JournalStore.open(db_path) as store:
        for i in range(5):
            store.memory.ingest(f"note {i}", principal="p", memory_id=f"m{i}")
    from palyra_journal import HashEmbeddingProvider
    with JournalStore.open(db_path, embedding_provider=HashEmbeddingProvider(32)) as store:
        assert store.memory.reembed(batch_size=2) == 5
        evs = _events(store, "memory.reembedded")
        assert [e.payload["count"] for e in evs] == [2, 2, 1]
        assert evs[0].payload["ids_sha256"] == _sha(["m0", "m1"])
        assert (evs[0].payload["model"], evs[0].payload["dims"]) == ("hash-embedding-v1", 32)


def test_memory_writes_inside_an_outer_transaction_keep_the_index_in_step(db_path, backend):
    with JournalStore.open(db_path) as store:
        m = store.memory
        m.ingest("alpha deploy", principal="p", memory_id="a")
        assert [h.item.memory_id for h in m.search("alpha", principal="p", mode="vector")] == ["a"]
        with store.write():
            m.ingest("beta deploy", principal="p", memory_id="b")
            m.delete("a", principal="p")
            m.ingest("gamma deploy", principal="p", memory_id="c")
        assert m.index_size() == 2
        with pytest.raises(RuntimeError):
            with store.write():
                m.ingest("delta deploy", principal="p", memory_id="d")
                raise RuntimeError("the caller's other work failed")
        assert m.index_size() == 2  # the rolled-back ingest never reached the index
        hits = m.search("deploy", principal="p", mode="vector", top_k=10)
        assert sorted(h.item.memory_id for h in hits) == ["b", "c"]
        assert [e.kind for e in _events(store)][-3:] == ["memory.ingested", "memory.deleted",
                                                          "memory.ingested"]
        emb = np.zeros(64, dtype=np.float32)
        emb[0] = 1.0
        m.ingest("epsilon", principal="p", memory_id="e", embedding=emb)
        assert m.index_size() == 3
        assert json.loads(_events(store)[-1].payload_json)["memory_id"] == "e"


def test_a_failing_index_update_after_commit_drops_the_index_not_the_call(db_path, monkeypatch):
    from palyra_journal.memory.index import VectorIndex
    with JournalStore.open(db_path) as store:
        m = store.memory
        m.ingest("alpha deploy", principal="p", memory_id="a")
        m.search("alpha", principal="p", mode="vector")

        def broken(self, ids):
            raise RuntimeError("index bug")

        monkeypatch.setattr(VectorIndex, "remove", broken)
        assert m.delete("a", principal="p") is True  # committed; the call does not fail
        monkeypatch.undo()
        assert m.search("alpha", principal="p", mode="vector") == []  # reloaded from the table
