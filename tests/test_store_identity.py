"""Opening a file that is not (yet) a journal: read_only creates nothing, another application's
SQLite file is refused untouched unless adopted, an empty one is initialized only for writing,
and a journal whose append-only triggers were dropped is refused for writing and reported by
verify. No raw sqlite3 error escapes any of it."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
import raw_db

import palyra_journal as pj
from palyra_journal import JournalStore


def state(directory) -> dict:
    """Every file of ``directory`` with its mode and content digest."""
    out = {}
    for name in sorted(os.listdir(directory)):
        p = os.path.join(directory, name)
        with open(p, "rb") as f:
            out[name] = (stat.S_IMODE(os.stat(p).st_mode), hashlib.sha256(f.read()).hexdigest())
    return out


def foreign(path, *, migrations_table=False):
    conn = raw_db.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    if migrations_table:  # another framework's own bookkeeping table of the same name
        conn.execute("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('20240101000000')")
    conn.commit()
    conn.close()
    os.chmod(path, 0o644)


def test_read_only_on_a_missing_path_creates_nothing(tmp_path):
    with pytest.raises(pj.InvalidPathError, match="no database at .*nodir"):
        JournalStore.open(tmp_path / "nodir" / "a.db", read_only=True)
    with pytest.raises(pj.InvalidPathError, match="no database at"):
        JournalStore.open(tmp_path / "a.db", read_only=True)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("migrations_table", [False, True], ids=["plain", "own-schema_migrations"])
@pytest.mark.parametrize("read_only", [False, True])
def test_foreign_sqlite_file_is_refused_untouched(tmp_path, read_only, migrations_table):
    path = tmp_path / "app.db"
    foreign(path, migrations_table=migrations_table)
    before = state(tmp_path)
    with pytest.raises(pj.NotAJournalError, match=r"another application \(tables .*users") as exc:
        JournalStore.open(path, read_only=read_only)
    assert isinstance(exc.value, pj.JournalError)
    if not read_only:
        assert "adopt=True" in str(exc.value)
    assert state(tmp_path) == before


def test_adopt_adds_the_journal_to_an_application_database(tmp_path):
    path = tmp_path / "app.db"
    foreign(path)
    with JournalStore.open(path, adopt=True) as store:
        store.append("k", {"a": 1})
        assert store.verify().ok
    conn = raw_db.connect(path)
    assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]
    conn.close()
    with JournalStore.open(path) as store:  # ours now: no adopt needed any more
        assert store.head().seq == 1
    with JournalStore.open(path, read_only=True) as store:
        assert store.verify().ok


def test_empty_file_is_initialized_for_writing_only(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(pj.NotAJournalError, match="empty"):
        JournalStore.open(path, read_only=True)
    assert path.read_bytes() == b"" and sorted(os.listdir(tmp_path)) == ["empty.db"]
    with JournalStore.open(path) as store:
        store.append("k", {})
    with JournalStore.open(path, read_only=True) as store:
        assert store.verify().ok and store.head().seq == 1


def test_read_only_open_leaves_no_files_behind(tmp_path):
    path = tmp_path / "j.db"
    with JournalStore.open(path) as store:
        store.append("k", {})
        store.checkpoint("truncate")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.remove(str(path) + suffix)
    before = state(tmp_path)
    with JournalStore.open(path, read_only=True) as store:
        assert store.verify().ok
        store.memory.list(principal="p")
        store.cron.list_jobs()
    assert state(tmp_path) == before


def test_read_only_keeps_the_wal_of_a_live_writer(tmp_path):
    path = tmp_path / "j.db"
    with JournalStore.open(path) as writer:
        writer.append("k", {})
        with JournalStore.open(path, read_only=True) as reader:
            assert reader.head().seq == 1
        writer.append("k", {})  # the writer's -wal/-shm are still there and usable
        assert writer.verify().ok and writer.head().seq == 2


def raw(path, *statements):
    """Change the file behind the store's back, as another program (or an attacker) would."""
    conn = raw_db.connect(path)
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("trigger", ["journal_events_no_update", "journal_events_no_delete",
                                     "canvas_patches_no_update", "approvals_no_delete"])
def test_dropped_append_only_trigger_refuses_writing_and_fails_verify(db_path, trigger, backend):
    with JournalStore.open(db_path) as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(5)])
    raw(db_path, f"DROP TRIGGER {trigger}")
    before = raw_db.contents(db_path)
    with pytest.raises(pj.IntegrityError, match=f"triggers {trigger} are missing.*refusing to write"):
        JournalStore.open(db_path)
    assert raw_db.contents(db_path) == before
    with JournalStore.open(db_path, read_only=True) as store:
        report = store.verify()
    assert (report.ok, report.reason, report.first_bad_seq, report.checked) == \
        (False, "triggers_missing", None, 5)
    assert report.missing_triggers == (trigger,)
    assert report.to_dict()["missing_triggers"] == [trigger]


def test_a_broken_chain_outranks_the_missing_triggers_but_both_are_reported(db_path):
    with JournalStore.open(db_path) as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(5)])
    raw(db_path, "DROP TRIGGER journal_events_no_update",
        "UPDATE journal_events SET payload_json = '{\"i\":9}' WHERE seq = 3")
    with JournalStore.open(db_path, read_only=True) as store:
        report = store.verify()
    assert (report.reason, report.first_bad_seq) == ("hash_mismatch", 3)
    assert report.missing_triggers == ("journal_events_no_update",)


def test_head_mismatch_names_both_hashes(db_path):
    with JournalStore.open(db_path) as store:
        recs = store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(5)])
        report = store.verify(expected_head=(4, recs[4].hash))  # seq 4 with the hash of seq 5
        missing = store.verify(expected_head=(9, recs[4].hash))
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "head_mismatch", 4)
    assert (report.expected_hash, report.actual_hash) == (recs[4].hash, recs[3].hash)
    assert report.checked == 5 and report.head.seq == 5  # the chain itself verifies in full
    assert (missing.first_bad_seq, missing.actual_hash) == (9, None)


def test_a_damaged_schema_raises_a_journal_error_not_sqlite3(db_path):
    with JournalStore.open(db_path) as store:
        store.append("k", {})
    raw(db_path, "DROP TABLE cron_runs")
    with JournalStore.open(db_path, read_only=True) as store:
        with pytest.raises(pj.StorageError, match="cron_runs"):
            store.cron.list_runs()
        assert store.verify().ok


def test_missing_source_files_raise_invalid_path(tmp_path, store):
    with pytest.raises(pj.InvalidPathError, match="cannot read .*nope.jsonl"):
        store.ingest_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(pj.InvalidPathError, match="cannot read"):
        store.ingest_jsonl(tmp_path)
    with pytest.raises(pj.InvalidPathError, match="cannot write"):
        store.export_jsonl(tmp_path / "nodir" / "out.jsonl")
    assert store.head() is None


def test_a_stored_payload_edited_into_non_json_raises_integrity_error(db_path):
    with JournalStore.open(db_path) as store:
        store.append("k", {"a": 1})
    raw(db_path, "DROP TRIGGER journal_events_no_update",
        "UPDATE journal_events SET payload_json = '{oops'")
    with JournalStore.open(db_path, read_only=True) as store:
        (rec,) = store.recent()
        for read in (lambda: rec.payload, rec.to_dict):
            with pytest.raises(pj.IntegrityError, match="seq 1: the stored payload_json is not JSON"):
                read()


def test_damaged_stored_json_read_by_a_domain_raises_integrity_error(db_path):
    with JournalStore.open(db_path) as store:
        cid = store.canvas.create({"n": 0}, session_id="s", principal="p").canvas_id
    raw(db_path, "UPDATE canvas_state SET state_json = '{oops'")
    with JournalStore.open(db_path, read_only=True) as store:
        with pytest.raises(pj.IntegrityError, match="stored JSON value is damaged"):
            store.canvas.state_at(cid, 1)
    with JournalStore.open(db_path) as store:  # a write that reads the damaged state first
        with pytest.raises(pj.IntegrityError, match="stored JSON value is damaged"):
            store.canvas.apply_patch(cid, [{"op": "add", "path": "/m", "value": 1}])
        assert store.canvas.history(cid) == []
