"""JournalStore.open: file modes, path checks, migrations, refusals, and failures that write nothing."""

from __future__ import annotations

import os
import stat

import pytest
import raw_db

import palyra_journal as pj
from palyra_journal import JournalStore, schema


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_creates_private_directories_and_files(tmp_path):
    path = tmp_path / "a" / "b" / "journal.db"
    old = os.umask(0o022)
    try:
        with JournalStore.open(path) as store:
            store.append("k", {})
            for d in (tmp_path / "a", tmp_path / "a" / "b"):
                assert mode(d) == 0o700
            assert mode(path) == 0o600
            for suffix in ("-wal", "-shm"):
                side = str(path) + suffix
                if os.path.exists(side):
                    assert mode(side) & ~0o600 == 0
            with store.read() as conn:
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    finally:
        os.umask(old)


def test_existing_wide_file_is_narrowed(tmp_path):
    path = tmp_path / "j.db"
    JournalStore.open(path).close()
    os.chmod(path, 0o644)
    JournalStore.open(path).close()
    assert mode(path) == 0o600


@pytest.mark.parametrize("bad", ["../x.db", "a/../x.db"])
def test_dotdot_is_refused(tmp_path, monkeypatch, bad):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pj.InvalidPathError, match=r"\.\."):
        JournalStore.open(bad)
    assert not (tmp_path / "a").exists()


def test_directory_is_refused(tmp_path):
    with pytest.raises(pj.InvalidPathError, match="directory"):
        JournalStore.open(tmp_path)


def test_not_a_database_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / "notes.txt"
    data = b"these are my notes, not a database\n" * 200
    path.write_bytes(data)
    os.chmod(path, 0o644)
    with pytest.raises(pj.NotADatabaseError, match="not a SQLite database"):
        JournalStore.open(path)
    assert path.read_bytes() == data and mode(path) == 0o644
    assert not os.path.exists(str(path) + "-wal")


def test_migrations_are_recorded_once(db_path):
    JournalStore.open(db_path).close()
    JournalStore.open(db_path).close()
    conn = raw_db.connect(db_path)
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    conn.close()
    assert versions == [m.version for m in schema.MIGRATIONS]


def test_newer_schema_is_refused(db_path):
    JournalStore.open(db_path).close()
    conn = raw_db.connect(db_path)
    conn.execute("INSERT INTO schema_migrations VALUES (?, 'from_the_future', 0)",
                 (schema.LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(pj.SchemaTooNewError, match=str(schema.LATEST_VERSION + 1)):
        JournalStore.open(db_path)
    with pytest.raises(pj.SchemaTooNewError):
        JournalStore.open(db_path, read_only=True)


def test_read_only_store_reads_and_refuses_writes(db_path):
    with JournalStore.open(db_path) as store:
        store.append("k", {"a": 1})
    with JournalStore.open(db_path, read_only=True) as ro:
        assert ro.head().seq == 1 and ro.verify().ok
        with pytest.raises(pj.ReadOnlyError, match="read_only"):
            ro.append("k", {})
        with pytest.raises(pj.ReadOnlyError):
            ro.append_many([{"kind": "k"}])
        assert ro.head().seq == 1


@pytest.mark.sqlite_only  # SQLite max_page_count fills the file
def test_full_storage_raises_and_writes_nothing(db_path, backend):
    with JournalStore.open(db_path) as store:
        store.append("k", {"a": 1})
        with store.read() as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        big = [{"kind": "k", "payload": {"blob": "x" * 4000, "i": i}} for i in range(50)]
        with pytest.raises(pj.StorageFullError, match="full"):
            store.append_many(big)
        with pytest.raises(pj.StorageFullError):
            store.append("k", {"blob": "y" * 200_000})
        assert store.head().seq == 1
        assert store.verify().ok


def test_context_manager_closes(db_path):
    with JournalStore.open(db_path) as store:
        pass
    assert store.closed
    with pytest.raises(pj.JournalError, match="closed"):
        store.append("k")


def test_memory_database_for_tests():
    with JournalStore.open(":memory:") as store:
        assert store.append("k").seq == 1
