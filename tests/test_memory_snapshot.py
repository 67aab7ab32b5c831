"""The vector snapshot beside the database (``<db>-vectors``, docs/recall.md): mapped on open,
validated against the generation and rewrite counters, rows added since read from SQLite, and a
missing, stale, truncated or corrupted file detected and rebuilt without changing an answer."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import palyra_journal as pj
from palyra_journal.memory.embeddings import HashEmbeddingProvider
from palyra_journal.memory.snapshot import MAGIC

DIMS = 24
N = 700


def unit(rng, n):
    m = rng.standard_normal((n, DIMS)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def open_store(path, **options):
    return pj.JournalStore.open(path, embedding_provider=HashEmbeddingProvider(dimensions=DIMS),
                                clock=lambda: 1_700_000_000_000, **options)


def ingest(store, vectors, start=0):
    store.memory.ingest_many([{"content": f"note {start + i}", "principal": "p",
                               "embedding": v.tolist(), "memory_id": f"m{start + i:05d}"}
                              for i, v in enumerate(vectors)])


QUERIES = unit(np.random.default_rng(99), 4)


def answers(store):
    return [[(h.item.memory_id, h.score) for h in
             store.memory.search("q", principal="p", mode="vector", query_embedding=q.tolist(),
                                 top_k=10)] for q in QUERIES]


def expected(vectors):
    """The answer by brute force over the vectors given (float64)."""
    out = []
    for q in QUERIES:
        s = vectors.astype(np.float64) @ q.astype(np.float64)
        out.append([f"m{i:05d}" for i in np.lexsort((np.arange(len(s)), -s))[:10]])
    return out


@pytest.fixture
def store_with_snapshot(tmp_path):
    path = tmp_path / "mem.db"
    vectors = unit(np.random.default_rng(1), N)
    with open_store(path) as s:
        ingest(s, vectors)
        answers(s)
        assert s.memory._index.snapshot_state == "rebuilt: missing"
    return path, vectors


def state_after_open(path):
    with open_store(path) as s:
        got = answers(s)
        return s.memory._index.snapshot_state, got


def test_the_snapshot_is_written_0600_and_mapped_on_the_next_open(store_with_snapshot):
    path, vectors = store_with_snapshot
    snap = str(path) + "-vectors"
    assert stat.S_IMODE(os.stat(snap).st_mode) == 0o600
    state, got = state_after_open(path)
    assert state == "mapped"
    assert [[mid for mid, _ in a] for a in got] == expected(vectors)


def test_rows_added_after_the_snapshot_come_from_sqlite(store_with_snapshot):
    path, vectors = store_with_snapshot
    more = unit(np.random.default_rng(2), 50)
    with open_store(path) as s:  # writes without searching: the snapshot is not touched
        ingest(s, more, start=N)
    state, got = state_after_open(path)
    assert state == "mapped + 50 rows"
    assert [[mid for mid, _ in a] for a in got] == expected(np.concatenate([vectors, more]))


@pytest.mark.parametrize("change", ["delete", "update", "reembed"])
def test_a_stale_snapshot_is_rebuilt(store_with_snapshot, change):
    path, vectors = store_with_snapshot
    best = expected(vectors)[0][0]
    with open_store(path) as s:
        if change == "delete":
            s.memory.delete(best, principal="p")
        elif change == "update":
            s.memory.update(best, principal="p", ttl_unix_ms=1)  # expired: out of every scope
        else:
            with s.write() as conn:
                conn.execute("UPDATE memory_vectors SET vector = ? WHERE memory_id = ?",
                             (np.zeros(DIMS, np.float32).tobytes(), best))
    state, got = state_after_open(path)
    assert state.startswith("rebuilt: stale")
    assert best not in [mid for mid, _ in got[0]]
    assert state_after_open(path)[0] == "mapped"  # and the rebuilt one is used next time


def _corrupt(snap: str, how: str) -> str:
    data = bytearray(open(snap, "rb").read())
    hlen = int.from_bytes(data[8:12], "little")
    head = json.loads(bytes(data[44:44 + hlen]))
    if how == "truncated":
        data = data[: len(data) // 2]
        reason = "size"
    elif how == "truncated to nothing":
        data = data[:5]
        reason = "truncated"
    elif how == "magic":
        data[:8] = b"NOTASNAP"
        reason = "bad magic"
    elif how == "header":
        data[44 + hlen // 2] ^= 0x01
        reason = "header checksum"
    elif how == "ids":
        off = head["sections"]["id_blob"][0]
        data[off + 3] ^= 0x01
        reason = "id list checksum"
    elif how == "garbage":
        data = bytearray(os.urandom(5000))
        reason = "bad magic"
    else:
        raise AssertionError(how)
    with open(snap, "wb") as f:
        f.write(data)
    return reason


@pytest.mark.parametrize("how", ["truncated", "truncated to nothing", "magic", "header", "ids",
                                 "garbage"])
def test_a_damaged_snapshot_is_detected_and_rebuilt(store_with_snapshot, how):
    path, vectors = store_with_snapshot
    snap = str(path) + "-vectors"
    with open_store(path) as s:
        reference = answers(s)
    reason = _corrupt(snap, how)
    state, got = state_after_open(path)
    assert state.startswith("rebuilt:") and reason in state
    assert got == reference
    assert state_after_open(path) == ("mapped", reference)


def test_a_missing_snapshot_is_rebuilt(store_with_snapshot):
    path, vectors = store_with_snapshot
    os.unlink(str(path) + "-vectors")
    state, got = state_after_open(path)
    assert state == "rebuilt: missing"
    assert [[mid for mid, _ in a] for a in got] == expected(vectors)


def test_a_snapshot_of_another_model_is_replaced(store_with_snapshot):
    path, _ = store_with_snapshot
    with pj.JournalStore.open(path, embedding_provider=HashEmbeddingProvider(dimensions=8)) as s:
        s.memory.search("note", principal="p", mode="vector")
        assert s.memory._index.snapshot_state == "rebuilt: another embedding model"


def test_the_int8_tier_comes_from_the_snapshot(store_with_snapshot):
    path, vectors = store_with_snapshot
    with open_store(path, vector_precision="int8") as s:
        got = answers(s)
        idx = s.memory._index
        assert idx.snapshot_state == "mapped"
        assert not idx.tier.codes.flags.writeable  # the codes are read from the map
        assert s.memory.last_search_stats()["precision"] == "int8"
    assert [[mid for mid, _ in a] for a in got] == expected(vectors)


def test_deleting_the_snapshot_while_another_process_searches(store_with_snapshot):
    path, vectors = store_with_snapshot
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import palyra_journal as pj
        from palyra_journal.memory.embeddings import HashEmbeddingProvider
        qs = np.array({QUERIES.tolist()!r}, dtype=np.float32)
        with pj.JournalStore.open({str(path)!r},
                                  embedding_provider=HashEmbeddingProvider(dimensions={DIMS})) as s:
            def run():
                return [[h.item.memory_id for h in s.memory.search(
                    "q", principal="p", mode="vector", query_embedding=q.tolist(), top_k=10)]
                    for q in qs]
            first = run()
            print(json.dumps([s.memory._index.snapshot_state, first]), flush=True)
            sys.stdin.readline()  # the parent deletes the snapshot now
            print(json.dumps([run() for _ in range(5)]), flush=True)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        state, first = json.loads(child.stdout.readline())
        assert state == "mapped"
        os.unlink(str(path) + "-vectors")
        child.stdin.write("go\n")
        child.stdin.flush()
        later = json.loads(child.stdout.readline())
    finally:
        child.stdin.close()
        assert child.wait(timeout=60) == 0
    assert first == expected(vectors)
    assert later == [first] * 5
    state, got = state_after_open(path)
    assert state == "rebuilt: missing"
    assert [[mid for mid, _ in a] for a in got] == first


def test_a_read_only_store_maps_the_snapshot_and_never_writes_it(store_with_snapshot):
    path, vectors = store_with_snapshot
    with open_store(path, read_only=True) as s:
        got = answers(s)
        assert s.memory._index.snapshot_state == "mapped"
    assert [[mid for mid, _ in a] for a in got] == expected(vectors)
    assert open(str(path) + "-vectors", "rb").read(8) == MAGIC


def test_a_read_only_store_without_a_snapshot_does_not_write_one(store_with_snapshot):
    path, vectors = store_with_snapshot
    os.unlink(str(path) + "-vectors")
    with open_store(path, read_only=True) as s:
        got = answers(s)
        assert s.memory._index.snapshot_state == "none"
    assert [[mid for mid, _ in a] for a in got] == expected(vectors)
    assert not os.path.exists(str(path) + "-vectors")


def test_the_rewrite_counter_moves_on_updates_and_deletes_only(tmp_path):
    rng = np.random.default_rng(3)
    with open_store(tmp_path / "a.db") as s:
        def rewrites():
            with s.read() as conn:
                return conn.execute("SELECT count FROM memory_rewrites").fetchone()[0]
        ingest(s, unit(rng, 5))
        assert rewrites() == 0  # inserts leave it alone: the snapshot stays valid
        s.memory.update("m00001", principal="p", tags=["x"])
        assert rewrites() == 1
        s.memory.delete("m00002", principal="p")
        assert rewrites() >= 2


def test_large_mapped_matrices_rescore_rows_read_without_the_map(store_with_snapshot, monkeypatch):
    from palyra_journal.memory import index as index_module
    path, vectors = store_with_snapshot
    monkeypatch.setattr(index_module, "PREAD_RESCORE_BYTES", 1)  # every mapped matrix is "large"
    with open_store(path, vector_precision="int8") as s:
        got = answers(s)
        idx = s.memory._index
        assert idx.row_reader is not None and s.memory.last_search_stats()["rescored"] > 0
        rows = np.array([0, 1, 2, 7, 8, N - 1])
        np.testing.assert_array_equal(idx.row_reader[rows], idx.matrix[rows])
        with pytest.raises(IndexError):
            idx.row_reader[np.array([N])]
        ingest(s, unit(np.random.default_rng(5), 3), start=N)  # rows now in memory: no reader
        assert idx.row_reader is None
    assert [[mid for mid, _ in a] for a in got] == expected(vectors)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 14])
def test_reading_from_sqlite_in_chunks_gives_the_same_index(store_with_snapshot, monkeypatch, chunk):
    """The index is copied from SQLite a chunk of rows at a time (memory peaks at the matrix plus
    one chunk): every chunk size, a full read and the rows added after a snapshot, same answers."""
    from palyra_journal.memory import index as index_module
    monkeypatch.setattr(index_module, "_LOAD_CHUNK", chunk)
    path, vectors = store_with_snapshot
    more = unit(np.random.default_rng(3), 30)
    with open_store(path) as s:
        ingest(s, more, start=N)
    both = np.concatenate([vectors, more])
    state, got = state_after_open(path)
    assert state == "mapped + 30 rows"
    assert [[mid for mid, _ in a] for a in got] == expected(both)
    os.unlink(str(path) + "-vectors")
    state, got_full = state_after_open(path)
    assert state == "rebuilt: missing" and got_full == got
    os.unlink(str(path) + "-vectors")
    with open_store(path, read_only=True) as s:  # read from SQLite, no snapshot written
        answers(s)
        idx = s.memory._index
        assert idx.snapshot_state == "none" and idx.n == N + 30
        assert list(idx.ids) == [f"m{i:05d}" for i in range(N + 30)]
        from palyra_journal.memory.ingest import unit_rows  # how the store normalizes them
        np.testing.assert_array_equal(idx.matrix[:idx.n], unit_rows(both.astype(np.float64)))
