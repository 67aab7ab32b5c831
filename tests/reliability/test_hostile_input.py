"""Hostile input: each case is refused with a specific JournalError subclass and writes nothing.

"Nothing written" is checked by comparing every row of every table (read on a separate connection)
before and after the failing call; for files the store must refuse to open, the file's bytes.
Every case runs on both kernel backends.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import raw_db

import palyra_journal as pj
from palyra_journal import (
    CorruptVectorError, InvalidPathError, InvalidPayloadError, JournalError, JournalStore,
    NotADatabaseError, PayloadTooLargeError, ReadOnlyError, SchemaTooNewError, StorageFullError,
)

from .harness import raw_connection, table_snapshot

SQL_META = "x'); DROP TABLE journal_events; -- \" ; /* */ % _ \\ \x00 ` [ ] OR 1=1"
FTS_QUERIES = [
    '"', '""', '"unterminated', "AND", "OR", "NOT", "a AND", "NEAR(a b", "NEAR(a b, 2)", "a*", "*",
    "^start", "col:value", "content:x", "{content}: x", "(a OR b", ")", "a -b", "+", "-", "a + b",
    "'; DROP TABLE memory_items; --", "\x00", "%", "_", "a\"b'c", "deploy* OR \"check", "::",
]

# ------------------------------------------------------------------------------ the table
# name -> (call(store), expected exception type)
_DEEP_TEXT = "[" * 10_000 + "]" * 10_000
_DEEP_OBJ_TEXT = '{"a":' * 10_000 + "1" + "}" * 10_000


def _deep_value(depth: int):
    v: object = 1
    for _ in range(depth):
        v = [v]
    return v


def _dict_with_surrogate_key():
    return {"ok": 1, "\udcff": 2}


#: Cases that fail today because the landed code is wrong: strict, so a fix turns them red until
#: the mark is removed.
KNOWN_FINDINGS = {
}


def _job(s, **kw):
    args = dict(name="n", prompt="p", owner_principal="o", channel="c", schedule=pj.Every(1000))
    args.update(kw)
    return s.cron.create_job(**args)


def _approval(s, **kw):
    args = dict(subject_type="tool", subject_id="x", request_summary="r", principal="p")
    args.update(kw)
    return s.approvals.create(**args)

CASES = {
    "nested_json_text_10000_levels": (lambda s: s.append("k", _DEEP_TEXT), InvalidPayloadError),
    "nested_object_text_10000_levels": (lambda s: s.append("k", _DEEP_OBJ_TEXT), InvalidPayloadError),
    "nested_python_value_10000_levels": (lambda s: s.append("k", _deep_value(10_000)),
                                         InvalidPayloadError),
    "nesting_129_levels": (lambda s: s.append("k", _deep_value(129)), InvalidPayloadError),
    "payload_100_mb_text": (lambda s: s.append("k", '{"blob":"' + "x" * 100_000_000 + '"}'),
                            PayloadTooLargeError),
    "payload_20_mb_value": (lambda s: s.append("k", {"blob": "x" * 20_000_000}),
                            PayloadTooLargeError),
    "invalid_utf8_bytes": (lambda s: s.append("k", b'{"a":"\xff\xfe"}'), InvalidPayloadError),
    "overlong_utf8_bytes": (lambda s: s.append("k", b'{"a":"\xc0\xaf"}'), InvalidPayloadError),
    "utf8_encoded_surrogate_bytes": (lambda s: s.append("k", b'{"a":"\xed\xa0\x80"}'),
                                     InvalidPayloadError),
    "lone_surrogate_escape_in_text": (lambda s: s.append("k", '{"a":"\\ud800"}'),
                                      InvalidPayloadError),
    "lone_low_surrogate_escape_in_text": (lambda s: s.append("k", '["\\udc00x"]'),
                                          InvalidPayloadError),
    "lone_surrogate_in_value": (lambda s: s.append("k", {"a": "\ud800"}), InvalidPayloadError),
    "lone_surrogate_in_key": (lambda s: s.append("k", _dict_with_surrogate_key()),
                              InvalidPayloadError),
    "lone_surrogate_in_kind": (lambda s: s.append("kind\ud800", {}), InvalidPayloadError),
    "lone_surrogate_in_session_id": (lambda s: s.append("k", {}, session_id="\udfff"),
                                     InvalidPayloadError),
    "nan_value": (lambda s: s.append("k", {"x": float("nan")}), InvalidPayloadError),
    "infinity_value": (lambda s: s.append("k", [float("-inf")]), InvalidPayloadError),
    "nan_literal_in_text": (lambda s: s.append("k", '{"x":NaN}'), InvalidPayloadError),
    "infinity_literal_in_text": (lambda s: s.append("k", "[Infinity]"), InvalidPayloadError),
    "number_overflowing_to_infinity": (lambda s: s.append("k", "[1e400]"), InvalidPayloadError),
    "huge_integer_value": (lambda s: s.append("k", {"n": 2**53}), InvalidPayloadError),
    "huge_negative_integer_value": (lambda s: s.append("k", {"n": -(2**53)}), InvalidPayloadError),
    "huge_integer_10_pow_400_value": (lambda s: s.append("k", [10**400]), InvalidPayloadError),
    "huge_integer_in_text": (lambda s: s.append("k", '{"n":9007199254740992}'),
                             InvalidPayloadError),
    "huge_integer_400_digits_in_text": (lambda s: s.append("k", "[" + "9" * 400 + "]"),
                                        InvalidPayloadError),
    "duplicate_keys_in_text": (lambda s: s.append("k", '{"a":1,"a":2}'), InvalidPayloadError),
    "duplicate_keys_after_escape_in_text": (lambda s: s.append("k", '{"a":1,"\\u0061":2}'),
                                            InvalidPayloadError),
    "trailing_data_in_text": (lambda s: s.append("k", '{"a":1} {"b":2}'), InvalidPayloadError),
    "non_string_key": (lambda s: s.append("k", {1: "x"}), InvalidPayloadError),
    "set_value": (lambda s: s.append("k", {"s": {1, 2}}), InvalidPayloadError),
    "bytes_inside_value": (lambda s: s.append("k", {"b": b"raw"}), InvalidPayloadError),
    "object_value": (lambda s: s.append("k", {"o": object()}), InvalidPayloadError),
    "empty_kind": (lambda s: s.append("", {}), InvalidPayloadError),
    "append_many_one_bad_event_in_the_middle": (
        lambda s: s.append_many([{"kind": "ok", "payload": {"i": i}} for i in range(5)]
                                + [{"kind": "bad", "payload": {"x": float("nan")}}]
                                + [{"kind": "ok", "payload": {}}]), InvalidPayloadError),
    "ingest_jsonl_one_bad_line": (
        lambda s: s.ingest_jsonl(__import__("io").BytesIO(
            b'{"kind":"ok","payload":{}}\n{"kind":"bad","payload":{"a":1,"a":2}}\n'),
            batch_size=100), InvalidPayloadError),
    "duplicate_event_id": (lambda s: s.append("k", {}, event_id="existing-event"),
                           pj.DuplicateIdError),
    "memory_content_1_mb": (lambda s: s.memory.ingest("word " * 200_000, principal="p"),
                            InvalidPayloadError),
    "memory_content_only_controls": (lambda s: s.memory.ingest("\x00\x01\x02 \t\n", principal="p"),
                                     InvalidPayloadError),
    "memory_content_lone_surrogate": (lambda s: s.memory.ingest("note \ud800", principal="p"),
                                      InvalidPayloadError),
    "memory_embedding_wrong_dims": (lambda s: s.memory.ingest("note", principal="p",
                                                              embedding=[1.0, 2.0, 3.0]),
                                    InvalidPayloadError),
    "memory_embedding_nan": (lambda s: s.memory.ingest("note", principal="p",
                                                       embedding=[math.nan] * 64),
                             InvalidPayloadError),
    "memory_duplicate_id": (lambda s: s.memory.ingest("again", principal="p",
                                                      memory_id="existing-memory"),
                            pj.DuplicateIdError),
    "canvas_invalid_pointer_escape": (
        lambda s: s.canvas.apply_patch("existing-canvas", [{"op": "add", "path": "/a/~2", "value": 1}]),
        pj.InvalidPatchError),
    "canvas_patch_second_op_fails": (
        lambda s: s.canvas.apply_patch("existing-canvas", [{"op": "add", "path": "/b", "value": 1},
                                                           {"op": "remove", "path": "/nope"}]),
        pj.InvalidPatchError),
    "canvas_stale_expected_version": (
        lambda s: s.canvas.apply_patch("existing-canvas", [{"op": "add", "path": "/b", "value": 1}],
                                       expected_version=7), pj.VersionConflictError),
    "canvas_state_nested_10000_levels": (
        lambda s: s.canvas.create(_deep_value(10_000), session_id="s", principal="p"),
        InvalidPayloadError),
    "canvas_patch_value_nested_10000_levels": (
        lambda s: s.canvas.apply_patch("existing-canvas", [{"op": "add", "path": "/b",
                                                            "value": _deep_value(10_000)}]),
        InvalidPayloadError),
    "canvas_state_too_large": (lambda s: s.canvas.replace_state("existing-canvas", {"x": "y" * 300_000}),
                               PayloadTooLargeError),
    "canvas_state_nan": (lambda s: s.canvas.replace_state("existing-canvas", {"x": math.nan}),
                         InvalidPayloadError),
    "canvas_lone_surrogate_in_session_id": (
        lambda s: s.canvas.create({"a": 1}, session_id="\udc00", principal="p"), InvalidPayloadError),
    "cron_invalid_expression": (lambda s: _job(s, schedule=pj.CronSchedule("61 * * * *")),
                                pj.InvalidScheduleError),
    "cron_timezone_path": (lambda s: _job(s, schedule=pj.CronSchedule("* * * * *",
                                                                      timezone="../../etc/passwd")),
                           pj.InvalidScheduleError),
    "cron_every_zero": (lambda s: _job(s, schedule=pj.Every(0)), pj.InvalidScheduleError),
    "cron_jitter_too_large": (lambda s: _job(s, jitter_ms=10**9), pj.InvalidScheduleError),
    "cron_sql_in_policy": (lambda s: _job(s, concurrency_policy="forbid'; DROP TABLE cron_jobs;--"),
                           pj.InvalidScheduleError),
    "cron_lone_surrogate_in_name": (lambda s: _job(s, name="\ud800"), InvalidPayloadError),
    "approval_resolved_twice": (lambda s: s.approvals.resolve("existing-approval", decision="deny"),
                                pj.AlreadyResolvedError),
    "approval_unknown_subject_type": (lambda s: _approval(s, subject_type="bogus"),
                                      InvalidPayloadError),
    "approval_timeboxed_without_ttl": (
        lambda s: s.approvals.resolve("pending-approval", decision="allow", scope="timeboxed"),
        InvalidPayloadError),
    "approval_lone_surrogate_in_subject_id": (lambda s: _approval(s, subject_id="\ud800"),
                                              InvalidPayloadError),
    "memory_search_nan_embedding": (
        lambda s: s.memory.search("x", principal="p", query_embedding=[math.nan] * 64),
        InvalidPayloadError),
    "memory_search_top_k_huge": (lambda s: s.memory.search("x", principal="p", top_k=10**9),
                                 InvalidPayloadError),
    "memory_ingest_many_one_bad_item": (
        lambda s: s.memory.ingest_many([{"content": f"fine {i}", "principal": "p"}
                                        for i in range(3)] + [{"content": "", "principal": "p"}]),
        InvalidPayloadError),
}


def _seed(store: JournalStore) -> None:
    store.append("seed", {"hello": "world"}, event_id="existing-event")
    store.memory.ingest("existing memory about deploy checklists", principal="p",
                        memory_id="existing-memory")
    store.canvas.create({"a": [1]}, session_id="s", principal="p", canvas_id="existing-canvas")
    _approval(store, approval_id="existing-approval")
    store.approvals.resolve("existing-approval", decision="allow")
    _approval(store, approval_id="pending-approval")


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FINDINGS[c],
                                            raises=(UnicodeEncodeError, pytest.fail.Exception)))
    if c in KNOWN_FINDINGS else c for c in sorted(CASES)])
def test_hostile_input_is_refused_and_writes_nothing(case, db_path, backend):
    call, expected = CASES[case]
    with JournalStore.open(db_path) as store:
        _seed(store)
        before = table_snapshot(db_path)
        with pytest.raises(expected) as info:
            call(store)
        assert str(info.value), f"{case}: the error has no message"
        assert len(str(info.value)) < 2_000, f"{case}: the message echoes the whole input"
        assert table_snapshot(db_path) == before, f"{case}: the failed call wrote something"
        store.append("after", {"still": "usable"})
        assert store.verify().ok


# ------------------------------------------------------------------------------ kernel level
@pytest.mark.parametrize("text", [
    _DEEP_TEXT, _DEEP_OBJ_TEXT, b'"\xff"', '"\\ud800"', "NaN", "-Infinity", "1e400",
    "9007199254740992", '{"a":1,"a":2}', "[1,]", "{", "", " ", "[1] x", "\x00", '"\x01"', "01",
    "1.", ".5", "+1", "[1e]", '{"a" 1}', "'a'", "tru", "[" * 200 + "]" * 200,
])
def test_kernel_parser_refuses_hostile_text(kernel, text):
    with pytest.raises(InvalidPayloadError):
        kernel.canonicalize_text(text)


def test_kernel_refuses_deep_python_value(kernel):
    with pytest.raises(InvalidPayloadError):
        kernel.canonicalize(_deep_value(10_000))


# ------------------------------------------------------------------------------ SQL and FTS text
def test_sql_metacharacters_in_every_string_field_are_stored_verbatim(db_path, backend):
    meta = SQL_META.replace("\x00", "")  # NUL is a valid str but not every column keeps it
    with JournalStore.open(db_path) as store:
        rec = store.append(meta, {meta: meta}, event_id=meta, session_id=meta, run_id=meta,
                           actor=meta, principal=meta, device_id=meta, channel=meta)
        got = store.events(session_id=meta)
        assert [e.event_id for e in got] == [meta]
        e = got[0]
        assert (e.kind, e.actor, e.session_id, e.run_id, e.principal, e.device_id, e.channel) == \
            (meta,) * 7
        assert e.payload == {meta: meta} and rec.hash == e.hash
        assert store.events(kind=meta)[0].seq == rec.seq
        item = store.memory.ingest(f"note {meta}", principal=meta, channel=meta, session_id=meta,
                                   memory_id=meta)
        assert store.memory.get(meta).content == item.content
        assert [i.memory_id for i in store.memory.list(principal=meta, channel=meta)] == [meta]
        hits = store.memory.search(meta, principal=meta, channel=meta, session_id=meta)
        assert [h.item.memory_id for h in hits] == [meta]
        assert store.memory.delete(meta, principal=meta, channel=meta)
        job = store.cron.create_job(name=meta, prompt=meta, owner_principal=meta, channel=meta,
                                    schedule=pj.Every(60_000), job_id=meta, session_key=meta,
                                    session_label=meta)
        assert store.cron.get_job(meta).name == meta == job.job_id
        appr = store.approvals.create(subject_type="tool", subject_id=meta, request_summary="ok",
                                      principal=meta, session_id=meta, run_id=meta,
                                      device_id=meta, channel=meta, approval_id=meta)
        assert store.approvals.get(meta).subject_id == meta == appr.approval_id
        snap = store.canvas.create({meta: [meta]}, session_id=meta, principal=meta, canvas_id=meta)
        assert store.canvas.get(meta).state == {meta: [meta]} == snap.state
        assert store.verify().ok
    conn = raw_connection(db_path)
    try:
        assert {"journal_events", "memory_items", "cron_jobs", "approvals"} <= set(raw_db.table_rows(db_path))
        assert raw_db.integrity_check(conn) == "ok"
    finally:
        conn.close()


def test_fts_operators_and_quotes_in_queries_never_fail(db_path, backend):
    with JournalStore.open(db_path) as store:
        store.memory.ingest("deploy checklist for the start of the week", principal="p")
        store.memory.ingest('a "quoted" NEAR value with AND OR NOT words', principal="p")
        before = table_snapshot(db_path)
        for query in FTS_QUERIES:
            for mode in ("hybrid", "lexical", "vector"):
                hits = store.memory.search(query, principal="p", mode=mode)
                assert isinstance(hits, list), (query, mode)
        assert [h.item.content for h in store.memory.search('"quoted" NEAR(', principal="p",
                                                            mode="lexical")] == \
            ['a "quoted" NEAR value with AND OR NOT words']
        assert table_snapshot(db_path) == before


# ------------------------------------------------------------------------------ files
def _bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("path", ["a/../journal.db", "../journal.db", "a/b/../../journal.db",
                                  "x/..", ".."])
def test_path_with_dotdot_component_is_refused(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidPathError, match=r"\.\."):
        JournalStore.open(path)
    with pytest.raises(InvalidPathError):
        JournalStore.open(tmp_path / path)
    assert sorted(os.listdir(tmp_path)) == [], "a refused path created something"


@pytest.mark.sqlite_only  # a file that is not SQLite
def test_file_that_is_not_sqlite_is_refused_untouched(db_path):
    junk = b"this is not a database\n" * 400 + bytes(range(256)) * 8
    db_path.write_bytes(junk)
    with pytest.raises(NotADatabaseError, match="not a SQLite database"):
        JournalStore.open(db_path)
    assert _bytes(db_path) == junk
    assert not os.path.exists(str(db_path) + "-wal")


def _damage(data: bytes, how: str) -> bytes:
    page = 4096
    if how == "truncated_half":
        return data[:len(data) // 2]
    if how == "header_only":
        return data[:100]
    if how == "zeroed_page_2":
        return data[:page] + bytes(page) + data[2 * page:]
    return data[:2 * page] + bytes((i * 131 + 7) % 256 for i in range(page)) + data[3 * page:]


@pytest.mark.parametrize("how", ["truncated_half", "header_only", "zeroed_page_2", "garbage_page_3"])
@pytest.mark.sqlite_only  # damaged SQLite file bytes
def test_damaged_sqlite_file_is_refused_untouched(db_path, how):
    with JournalStore.open(db_path) as store:
        store.append_many([{"kind": "k", "payload": {"i": i, "pad": "x" * 500}} for i in range(400)])
        store.checkpoint("truncate")
    damaged = _damage(_bytes(db_path), how)
    db_path.write_bytes(damaged)
    with pytest.raises(JournalError):
        with JournalStore.open(db_path) as store:
            store.verify()
    assert _bytes(db_path) == damaged


def test_database_from_a_newer_schema_is_refused_untouched(db_path):
    with JournalStore.open(db_path) as store:
        store.append("k", {})
    conn = raw_connection(db_path)
    conn.execute("INSERT INTO schema_migrations(version, name, applied_at_unix_ms) "
                 "VALUES (9999, 'from_the_future', 0)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = raw_db.contents(db_path)
    for ro in (False, True):
        with pytest.raises(SchemaTooNewError, match="9999"):
            JournalStore.open(db_path, read_only=ro)
    assert raw_db.contents(db_path) == before


def test_read_only_store_refuses_writes(db_path, backend):
    with JournalStore.open(db_path) as store:
        store.append("k", {"a": 1})
        store.memory.ingest("existing note", principal="p")
    before = table_snapshot(db_path)
    with JournalStore.open(db_path, read_only=True) as ro:
        assert ro.verify().ok and [e.kind for e in ro.recent()] == ["memory.ingested", "k"]
        assert ro.memory.search("note", principal="p")
        with pytest.raises(ReadOnlyError):
            ro.append("k", {"b": 2})
        with pytest.raises(ReadOnlyError):
            ro.memory.ingest("new note", principal="p")
    assert table_snapshot(db_path) == before


def _open_and_append_as(out, uid, path):
    """In a forked child: drop to ``uid`` (when root), then try to write; report what happened."""
    from .harness import report
    if os.geteuid() == 0:
        os.setgid(uid)
        os.setuid(uid)
    try:
        with JournalStore.open(path) as store:
            store.append("k", {"b": 2})
    except JournalError as exc:
        report(out, {"error": type(exc).__name__, "message": str(exc)})
    except Exception as exc:  # noqa: BLE001 - reported as the finding it would be
        report(out, {"escaped": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"})
    else:
        report(out, {"written": True})


@pytest.fixture
def world_dir():
    """A directory every user can traverse (pytest's own tmp dirs are 0700 to root)."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="pj-ro-")
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        for root, dirs, _files in os.walk(d):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(d)


def _attempt_as_nobody(path) -> dict:
    import json
    from .harness import fork_child
    child = fork_child(_open_and_append_as, 65534, path)
    lines = child.join(timeout=30)
    assert not child.failed and len(lines) == 1, lines
    return json.loads(lines[0])


def test_read_only_file_by_permissions(world_dir):
    """chmod 0444 on the file and 0555 on its directory; as root the attempt runs as nobody."""
    d = os.path.join(world_dir, "db")
    path = os.path.join(d, "journal.db")
    with JournalStore.open(path) as store:
        store.append("k", {})
        store.checkpoint("truncate")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    os.chmod(d, 0o755)
    os.chmod(path, 0o444)
    os.chmod(d, 0o555)
    before = _bytes(path)
    outcome = _attempt_as_nobody(path)
    assert outcome.get("error") in ("ReadOnlyError", "InvalidPathError"), outcome
    assert _bytes(path) == before


def test_directory_that_cannot_be_entered(world_dir):
    """A path under a directory the user may not traverse: a JournalError, not a PermissionError."""
    locked = os.path.join(world_dir, "locked")
    os.mkdir(locked, 0o700)
    outcome = _attempt_as_nobody(os.path.join(locked, "sub", "journal.db"))
    assert outcome.get("error") in ("ReadOnlyError", "InvalidPathError"), outcome
    assert os.listdir(locked) == []


@pytest.mark.sqlite_only  # SQLite max_page_count fills the file
def test_full_disk_raises_storage_full_and_writes_nothing(db_path, backend):
    with JournalStore.open(db_path) as store:
        _seed(store)
        with store.read() as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")
        before = table_snapshot(db_path)
        big = {"blob": "y" * 200_000}
        with pytest.raises(StorageFullError):
            store.append("big", big)
        with pytest.raises(StorageFullError):
            store.append_many([{"kind": "big", "payload": big} for _ in range(3)])
        with pytest.raises(StorageFullError):
            store.memory.ingest_many([{"content": f"note {i} " + "z " * 8000, "principal": "p"}
                                      for i in range(20)])
        assert table_snapshot(db_path) == before
        with store.read() as conn:
            conn.execute("PRAGMA max_page_count = 1073741823")
        store.append("big", big)
        assert store.verify().ok


def test_vector_blob_of_wrong_length_is_an_error_not_zeros(db_path, backend):
    with JournalStore.open(db_path) as store:
        store.memory.ingest("deploy checklist for monday", principal="p", memory_id="m1")
        store.memory.ingest("release notes for friday", principal="p", memory_id="m2")
    conn = raw_connection(db_path)
    conn.execute("UPDATE memory_vectors SET vector = ? WHERE memory_id = 'm2'",
                 (np.ones(63, dtype="<f4").tobytes(),))
    conn.close()
    before = table_snapshot(db_path)
    with JournalStore.open(db_path) as store:
        with pytest.raises(CorruptVectorError, match="m2|63|252"):
            store.memory.search("release notes", principal="p", mode="vector")
    assert table_snapshot(db_path) == before


# ------------------------------------------------------------------------------ modes
def test_new_directories_are_0700_and_files_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "a" / "b" / "c" / "journal.db"
        with JournalStore.open(path) as store:
            store.append("k", {"x": 1})
            store.memory.ingest("note", principal="p")
            for d in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
                assert oct(os.stat(d).st_mode & 0o777) == oct(0o700), d
            for suffix in ("", "-wal", "-shm"):
                p = str(path) + suffix
                assert os.path.exists(p), p
                mode = os.stat(p).st_mode & 0o777
                assert mode & ~0o600 == 0, f"{suffix or 'db'} has mode {oct(mode)}"
    finally:
        os.umask(old)


@pytest.mark.sqlite_only  # file modes
def test_existing_wide_file_is_narrowed_to_0600(db_path):
    JournalStore.open(db_path).close()
    os.chmod(db_path, 0o666)
    with JournalStore.open(db_path) as store:
        store.append("k", {})
        assert os.stat(db_path).st_mode & 0o777 == 0o600
