"""maintain() caps and records, reembed() batches and resumes, embedding providers, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import raw_db

import palyra_journal as pj
from palyra_journal.cli import main
from palyra_journal.errors import InvalidPayloadError
from palyra_journal.memory.retention import last_maintenance

DAY = 86_400_000
T0 = 1_700_000_000_000


def clocked(db_path, **kw):
    now = [T0]
    return now, pj.JournalStore.open(db_path, clock=lambda: now[0], **kw)


def test_maintain_ttl_days_and_entry_cap_delete_oldest_first(db_path, backend):
    now, s = clocked(db_path)
    with s:
        m = s.memory
        for i in range(6):
            m.ingest(f"note {i}", principal="p", memory_id=f"m{i}")
            now[0] += DAY
        m.search("note", principal="p")  # index loaded: must follow the deletions
        r = m.maintain(ttl_days=4.5)  # m0 is 6 days old, m1 5 days
        assert (r.deleted_ttl, r.entries_after) == (2, 4)
        r = m.maintain(max_entries=3)
        assert r.deleted_for_entries == 1 and r.entries_after == 3
        assert [i.memory_id for i in m.list(principal="p")] == ["m3", "m4", "m5"]
        assert sorted(h.item.memory_id for h in m.search("note", principal="p", mode="vector")) \
            == ["m3", "m4", "m5"]
        assert last_maintenance(m) == r
        with pytest.raises(InvalidPayloadError, match="max_entries"):
            m.maintain(max_entries=-1)
        with pytest.raises(InvalidPayloadError, match="ttl_days"):
            m.maintain(ttl_days=0)


def test_maintain_byte_cap_and_vacuum(db_path, backend):
    now, s = clocked(db_path)
    with s:
        m = s.memory
        for i in range(5):
            m.ingest("x" * 1000 + f" {i}", principal="p", memory_id=f"m{i}")
            now[0] += 1
        per_item = 1002 + 64 * 4
        r = m.maintain(max_bytes=2 * per_item + 10, vacuum=True)
        assert r.deleted_for_bytes == 3 and r.entries_after == 2
        assert r.bytes_after == 2 * per_item and r.vacuumed
        assert [i.memory_id for i in m.list(principal="p")] == ["m3", "m4"]
    conn = raw_db.connect(db_path)
    row = conn.execute("SELECT deleted_for_bytes, entries_after, vacuumed FROM "
                       "memory_maintenance_state").fetchall()
    conn.close()
    assert row == [(3, 2, 1)]


def test_reembed_switches_model_in_batches_and_resumes(db_path, backend):
    with pj.JournalStore.open(db_path) as s:
        s.memory.ingest_many([{"content": f"apple note {i}", "principal": "p",
                               "memory_id": f"m{i:02d}"} for i in range(10)])
    new = pj.RandomProjectionProvider(32, seed=3)

    class Failing(pj.RandomProjectionProvider):
        calls = 0

        def embed(self, texts):
            Failing.calls += 1
            if Failing.calls == 2:
                raise RuntimeError("model crashed")
            return super().embed(texts)

    with pj.JournalStore.open(db_path, embedding_provider=Failing(32, seed=3)) as s:
        with pytest.raises(RuntimeError):
            s.memory.reembed(batch_size=4)
    with pj.JournalStore.open(db_path, embedding_provider=new) as s:
        # only the first batch (m00..m03) was re-embedded before the crash
        assert sorted(h.item.memory_id for h in s.memory.search("apple", principal="p",
                                                                 mode="vector")) == \
            ["m00", "m01", "m02", "m03"]
        assert s.memory.reembed(batch_size=4) == 6  # the first batch survived the crash
        assert s.memory.reembed() == 0
        hits = s.memory.search("apple note 3", principal="p", mode="vector", top_k=10)
        assert len(hits) == 10 and hits[0].item.memory_id == "m03"
    conn = raw_db.connect(db_path)
    models = conn.execute("SELECT DISTINCT model, dims FROM memory_vectors").fetchall()
    conn.close()
    assert models == [(new.model_name, 32)]


def test_hash_embedding_matches_the_spec_vectors():
    v = pj.HashEmbeddingProvider().embed(["hello world", "deploy checklist", "   "])
    assert v.dtype == np.float32 and v.shape == (3, 64)
    expect = np.zeros(64)
    expect[8], expect[44] = 0.78378022, 0.62103832
    assert np.allclose(v[0], expect, atol=1e-6)
    expect = np.zeros(64)
    expect[45], expect[55] = 0.65023911, -0.75972962
    assert np.allclose(v[1], expect, atol=1e-6)
    assert not v[2].any()
    assert isinstance(pj.HashEmbeddingProvider(), pj.MemoryEmbeddingProvider)


def test_random_projection_is_deterministic_and_seeded():
    a = pj.RandomProjectionProvider(384, seed=1).embed(["the cat sat", "the cat ran", "stocks fell"])
    b = pj.RandomProjectionProvider(384, seed=1).embed(["the cat sat", "the cat ran", "stocks fell"])
    c = pj.RandomProjectionProvider(384, seed=2).embed(["the cat sat"])
    assert np.array_equal(a, b) and not np.array_equal(a[0], c[0])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    assert a[0] @ a[1] > a[0] @ a[2]


def test_sentence_transformer_provider_loads_a_local_model_only():
    pytest.importorskip("sentence_transformers")
    with pytest.raises(pj.JournalError, match="not available locally"):
        pj.SentenceTransformerProvider("no-such-model-anywhere/xyz")


def test_cli_memory_commands(db_path, capsys):
    db = str(db_path)
    assert main(["memory", "add", db, "Deploy checklist: migrate, restart", "--principal", "ada",
                 "--tag", "ops", "--id", "m1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tags"] == ["ops"]
    assert main(["memory", "add", db, "grocery list", "--principal", "ada", "--id", "m2"]) == 0
    capsys.readouterr()
    assert main(["memory", "search", db, "deploy checklist", "--principal", "ada", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["item"]["memory_id"] == "m1" and set(hits[0]) >= {"score", "snippet"}
    assert main(["memory", "list", db, "--principal", "ada", "--tag", "ops", "--json"]) == 0
    assert [i["memory_id"] for i in json.loads(capsys.readouterr().out)] == ["m1"]
    assert main(["memory", "delete", db, "m2", "--principal", "bob"]) == 1
    assert main(["memory", "delete", db, "m2", "--principal", "ada", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["deleted"] is True
    assert main(["memory", "maintain", db, "--max-entries", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["deleted_for_entries"] == 1
    assert main(["memory", "reembed", db, "--embedding", "random:16", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reembedded"] == 0
    assert main(["memory", "search", db, "x", "--principal", "ada", "-k", "0"]) == 2
    assert "top_k" in capsys.readouterr().err
    assert main(["memory", "list", db + ".missing", "--principal", "ada"]) == 2
