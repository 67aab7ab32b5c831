"""The exported C2SP tiles directory read back by the independent reader of ``reference.py``; the
migration of a file from before the tree: built once, resumable, appends meanwhile unharmed."""

from __future__ import annotations

import sqlite3

import pytest

import palyra_journal as pj
from palyra_journal.tlog import hashing, tiles

from . import reference as ref
from .test_tamper import _rewrite_history


@pytest.mark.parametrize("n", [0, 1, 255, 256, 700, 65_536 + 300])
def test_exported_tiles_read_back_independently(tmp_path, backend, n):
    signer, verifier = pj.tlog.generate_key("example.com/key")
    with pj.JournalStore.open(tmp_path / "j.db") as store:
        for start in range(0, n, 20_000):
            store.append_many([{"kind": "k", "payload": {"i": i, "s": "é" * (i % 5)}}
                               for i in range(start, min(n, start + 20_000))])
        head = pj.tlog.export_tiles(store, tmp_path / "out", signer_key=signer,
                                    origin="example.com/log")
        events = list(store.iter_events()) if n <= 1000 else None
    cp = pj.tlog.open_checkpoint((tmp_path / "out" / "checkpoint").read_text(), verifier)
    assert (cp.size, cp.root) == (n, head.root)
    leaves, root = ref.read_tiles_tree(tmp_path / "out", n)
    assert root == cp.root
    if events is not None:
        assert leaves == [ref.leaf(ref.leaf_data(e)) for e in events]


def test_tile_paths_follow_c2sp():
    from palyra_journal.tlog.export import tile_path
    assert [tile_path(n) for n in (0, 7, 999, 1000, 1234067)] == \
        ["000", "007", "999", "x001/000", "x001/x234/067"]
    assert tile_path(12, 5) == "012.p/5"
    assert all(tile_path(n) == ref.tile_name(n) for n in range(0, 5000, 7))


def _as_older_file(path) -> None:
    """Make ``path`` look like a file written before the tree: schema 5, so neither the tiles
    table (migration 6) nor what later migrations add."""
    conn = sqlite3.connect(path)
    for sql in ("DROP TABLE tlog_tiles", "DROP TABLE journal_redaction_rules",
                "DROP TRIGGER memory_items_rewritten", "DROP TRIGGER memory_vectors_rewritten",
                "DROP TRIGGER memory_vectors_deleted", "DROP TABLE memory_rewrites",
                "DELETE FROM schema_migrations WHERE version >= 6"):
        conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.sqlite_only  # stores from before the tree exist only as SQLite files
def test_an_older_file_is_migrated_resumably(db_path, backend, monkeypatch):
    with pj.JournalStore.open(db_path) as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(3000)])
        want = store.tree_head().root
    _as_older_file(db_path)
    monkeypatch.setattr(tiles, "BUILD_CHUNK_TILES", 2)
    calls = {"n": 0}
    real = hashing.leaf_hashes

    def failing(*args, **kwargs):  # the build dies in its third transaction
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with pj.JournalStore.open(db_path) as store:
        store.append_many([{"kind": "k2"} for _ in range(300)])  # appends leave the lagging tiles
        assert tiles.tiles_lag(store) == 3300 // 256 * 256
        monkeypatch.setattr(hashing, "leaf_hashes", failing)
        with pytest.raises(KeyboardInterrupt):
            tiles.build_tiles(store)
        monkeypatch.setattr(hashing, "leaf_hashes", real)
        assert tiles.tiles_lag(store) == 3300 // 256 * 256 - 4 * 256  # two chunks were kept
        assert tiles.build_tiles(store) == 3300 // 256 * 256 - 4 * 256
        assert store.tree_head(3000).root == want
        assert store.verify().ok


@pytest.mark.sqlite_only  # stores from before the tree exist only as SQLite files
def test_tree_reads_build_the_tiles_of_an_older_file_first(db_path, backend):
    with pj.JournalStore.open(db_path) as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(1000)])
        want = store.tree_head().root
    _as_older_file(db_path)
    with pj.JournalStore.open(db_path) as store:
        assert store.verify().ok  # unbuilt tiles are not a mismatch
        assert store.tree_head().root == want
        assert tiles.tiles_lag(store) == 0
    with pj.JournalStore.open(db_path, read_only=True) as ro:
        assert ro.tree_head(999).size == 999


@pytest.mark.sqlite_only  # stores from before the tree exist only as SQLite files
def test_a_checkpoint_checks_an_unbuilt_file_from_its_leaves(db_path, backend):
    signer, verifier = pj.tlog.generate_key("k")
    with pj.JournalStore.open(db_path) as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(700)])
        note = store.sign_checkpoint(signer, "example.com/log", size=613)
        other = store.sign_checkpoint(signer, "example.com/log", size=700)
    _as_older_file(db_path)
    with pj.JournalStore.open(db_path) as store:  # migration 6 ran: no tiles yet
        assert tiles.tiles_lag(store) == 512
    with pj.JournalStore.open(db_path, read_only=True) as ro:
        assert ro.verify(checkpoint=note, verifier_key=verifier).ok
        assert ro.verify(checkpoint=other, verifier_key=verifier).ok
    _rewrite_history(db_path, 3, rebuild_tiles=False)  # chain recomputed: only the tree can tell
    with pj.JournalStore.open(db_path, read_only=True) as ro:
        rep = ro.verify(checkpoint=note, verifier_key=verifier)
    assert (rep.ok, rep.reason, rep.first_bad_seq) == (False, "checkpoint_mismatch", 613)


def test_an_event_too_large_for_an_entry_bundle_is_named(tmp_path, backend):
    with pj.JournalStore.open(tmp_path / "j.db") as store:
        store.append("small")
        store.append("big", {"blob": "x" * 70_000})
        with pytest.raises(pj.InvalidPayloadError, match="event seq 2 has 7[0-9]{4} bytes of leaf data"):
            pj.tlog.export_tiles(store, tmp_path / "out")
        with pytest.raises(pj.InvalidPayloadError, match="give both or neither"):
            pj.tlog.export_tiles(store, tmp_path / "out", origin="example.com/log")
        assert pj.tlog.export_tiles(store, tmp_path / "one", size=1).size == 1
