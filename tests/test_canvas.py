"""Canvas: versions, patches, snapshots, time travel, replay, restore, close, journal events."""

from __future__ import annotations

import json
import random

import pytest
import raw_db

from palyra_journal import JournalStore
from palyra_journal.canvas import CanvasPatchRecord, CanvasSnapshot
from palyra_journal.errors import (
    CanvasClosedError, DuplicateIdError, IntegrityError, InvalidPatchError, InvalidPayloadError,
    NotFoundError, PayloadTooLargeError, VersionConflictError,
)

SNAPSHOT_FIELDS = ["canvas_id", "session_id", "principal", "version", "schema_version", "state",
                   "closed", "close_reason", "created_at_unix_ms", "updated_at_unix_ms"]
PATCH_FIELDS = ["canvas_id", "version", "base_version", "patch", "actor_principal",
                "actor_device_id", "applied_at_unix_ms"]


def _new(store, state=None, **kw):
    kw.setdefault("session_id", "s1")
    kw.setdefault("principal", "user:ada")
    return store.canvas.create({"title": "t", "items": []} if state is None else state, **kw)


def _counts(store, canvas_id):
    with store.read() as conn:
        return (conn.execute("SELECT version, state_json FROM canvas_state WHERE canvas_id = ?",
                             (canvas_id,)).fetchone(),
                conn.execute("SELECT COUNT(*) FROM canvas_patches").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM canvas_snapshots").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM journal_events").fetchone()[0])


def test_records_have_the_api_fields(store):
    snap = _new(store, actor_principal="agent:a")
    assert list(snap.to_dict()) == SNAPSHOT_FIELDS
    store.canvas.apply_patch(snap.canvas_id, [{"op": "add", "path": "/x", "value": 1}],
                             actor_principal="agent:a", actor_device_id="dev-1")
    (rec,) = store.canvas.history(snap.canvas_id)
    assert isinstance(rec, CanvasPatchRecord) and list(rec.to_dict()) == PATCH_FIELDS
    assert (rec.version, rec.base_version, rec.actor_principal, rec.actor_device_id) == \
        (2, 1, "agent:a", "dev-1")
    assert rec.patch == [{"op": "add", "path": "/x", "value": 1}]
    with pytest.raises(AttributeError):
        snap.version = 5  # frozen


def test_create_get_and_versions_grow_by_one(store):
    snap = _new(store, canvas_id="board-1", schema_version=3)
    assert isinstance(snap, CanvasSnapshot)
    assert (snap.canvas_id, snap.version, snap.schema_version, snap.closed) == \
        ("board-1", 1, 3, False)
    assert store.canvas.get("board-1") == snap
    s2 = store.canvas.apply_patch("board-1", {"v": 1, "ops": [
        {"op": "add", "path": "/items/-", "value": "a"}]})
    s3 = store.canvas.replace_state("board-1", {"fresh": True}, expected_version=2)
    assert (s2.version, s3.version) == (2, 3)
    assert store.canvas.get("board-1").state == {"fresh": True}
    assert store.canvas.state_at("board-1", 2) == {"title": "t", "items": ["a"]}
    assert [r.version for r in store.canvas.history("board-1")] == [2, 3]
    assert store.canvas.history("board-1", after_version=2, limit=5)[0].patch == \
        [{"op": "replace", "path": "", "value": {"fresh": True}}]
    assert store.canvas.get("nope") is None


def test_generated_ids_are_ulids_and_duplicates_are_refused(store):
    a, b = _new(store), _new(store)
    assert len(a.canvas_id) == 26 and a.canvas_id != b.canvas_id
    before = _counts(store, a.canvas_id)
    with pytest.raises(DuplicateIdError, match=a.canvas_id):
        _new(store, canvas_id=a.canvas_id)
    assert _counts(store, a.canvas_id) == before


def test_stale_expected_version_raises_and_writes_nothing(store):
    cid = _new(store).canvas_id
    store.canvas.apply_patch(cid, [{"op": "add", "path": "/a", "value": 1}], expected_version=1)
    before = _counts(store, cid)
    with pytest.raises(VersionConflictError) as info:
        store.canvas.apply_patch(cid, [{"op": "add", "path": "/b", "value": 1}],
                                 expected_version=1)
    assert (info.value.expected, info.value.current) == (1, 2)
    with pytest.raises(VersionConflictError):
        store.canvas.replace_state(cid, {}, expected_version=3)
    with pytest.raises(VersionConflictError):
        store.canvas.restore(cid, 1, expected_version=1)
    assert _counts(store, cid) == before


def test_invalid_patch_names_op_and_path_and_writes_nothing(store):
    cid = _new(store).canvas_id
    before = _counts(store, cid)
    with pytest.raises(InvalidPatchError) as info:
        store.canvas.apply_patch(cid, {"v": 1, "ops": [
            {"op": "add", "path": "/items/-", "value": 1},
            {"op": "replace", "path": "/items/5", "value": 2}]})
    assert "op 1" in str(info.value) and "'/items/5'" in str(info.value)
    with pytest.raises(InvalidPatchError, match="root"):
        store.canvas.apply_patch(cid, [{"op": "remove", "path": ""}])
    with pytest.raises(InvalidPayloadError):  # not JSON: a set inside a value
        store.canvas.apply_patch(cid, [{"op": "add", "path": "/s", "value": {1, 2}}])
    assert _counts(store, cid) == before
    assert store.canvas.get(cid).state == {"title": "t", "items": []}


def test_bad_arguments_are_refused_naming_the_field(store):
    with pytest.raises(InvalidPayloadError, match="session_id"):
        store.canvas.create({}, session_id="", principal="p")
    with pytest.raises(InvalidPayloadError, match="principal"):
        store.canvas.create({}, session_id="s", principal=None)
    with pytest.raises(InvalidPayloadError, match="schema_version"):
        store.canvas.create({}, session_id="s", principal="p", schema_version=0)
    with pytest.raises(InvalidPayloadError):
        store.canvas.create({"x": float("nan")}, session_id="s", principal="p")
    cid = _new(store).canvas_id
    with pytest.raises(InvalidPayloadError, match="expected_version"):
        store.canvas.apply_patch(cid, [], expected_version=True)
    with pytest.raises(InvalidPayloadError, match="version"):
        store.canvas.state_at(cid, 0)
    with pytest.raises(NotFoundError, match="no version 2"):
        store.canvas.state_at(cid, 2)


def test_unknown_ids_raise_not_found(store):
    for call in (lambda: store.canvas.apply_patch("nope", []),
                 lambda: store.canvas.replace_state("nope", {}),
                 lambda: store.canvas.state_at("nope", 1),
                 lambda: store.canvas.history("nope"),
                 lambda: store.canvas.replay("nope"),
                 lambda: store.canvas.restore("nope", 1),
                 lambda: store.canvas.close("nope")):
        with pytest.raises(NotFoundError, match="'nope'"):
            call()


def test_a_closed_canvas_refuses_changes_but_stays_readable(store):
    cid = _new(store).canvas_id
    store.canvas.apply_patch(cid, [{"op": "add", "path": "/a", "value": 1}])
    closed = store.canvas.close(cid, reason="done")
    assert (closed.closed, closed.close_reason, closed.version) == (True, "done", 2)
    before = _counts(store, cid)
    for call in (lambda: store.canvas.apply_patch(cid, [{"op": "add", "path": "/b", "value": 1}]),
                 lambda: store.canvas.replace_state(cid, {}),
                 lambda: store.canvas.restore(cid, 1),
                 lambda: store.canvas.close(cid)):
        with pytest.raises(CanvasClosedError, match=cid):
            call()
    assert _counts(store, cid) == before
    assert store.canvas.get(cid).closed is True
    assert store.canvas.state_at(cid, 1) == {"title": "t", "items": []}
    assert store.canvas.replay(cid).state == {"title": "t", "items": [], "a": 1}


def test_state_size_is_limited_and_a_refused_change_writes_nothing(db_path, backend):
    with JournalStore.open(db_path, max_payload_bytes=200) as store:
        with pytest.raises(PayloadTooLargeError, match="max_payload_bytes 200"):
            _new(store, {"big": "x" * 300})
        cid = _new(store, {"big": "x" * 100}).canvas_id
        before = _counts(store, cid)
        with pytest.raises(PayloadTooLargeError) as info:
            store.canvas.apply_patch(cid, [{"op": "add", "path": "/more", "value": "y" * 90}])
        assert info.value.size > 200 and info.value.limit == 200
        assert _counts(store, cid) == before


def _random_patch(rng: random.Random, state: dict) -> list:
    items = state["items"]
    choice = rng.random()
    if choice < 0.35 or not items:
        return [{"op": "add", "path": f"/items/{rng.randint(0, len(items))}",
                 "value": {"n": rng.randint(0, 999), "tags": ["x"] * rng.randint(0, 2)}}]
    i = rng.randrange(len(items))
    if choice < 0.55:
        return {"v": 1, "ops": [{"op": "replace", "path": f"/items/{i}/n", "value": rng.random()}]}
    if choice < 0.7:
        return [{"op": "remove", "path": f"/items/{i}"}]
    if choice < 0.8:
        return [{"op": "move", "from": f"/items/{i}", "path": "/items/0"},
                {"op": "test", "path": "/title", "value": "t"}]
    if choice < 0.9:
        return [{"op": "copy", "from": f"/items/{i}", "path": "/items/-"},
                {"op": "add", "path": "/meta~1count", "value": len(items) + 1}]
    return {"v": 1, "ops": [{"op": "add", "path": "/items/-", "value": {"n": None}},
                            {"op": "replace", "path": "/title", "value": "t"}]}


def test_state_at_every_version_of_a_300_version_canvas(db_path, backend):
    rng = random.Random(5)
    with JournalStore.open(db_path, canvas_snapshot_interval=16) as store:
        snap = _new(store)
        cid = snap.canvas_id
        recorded = {1: snap.state}
        for v in range(2, 301):
            if v % 97 == 0:
                snap = store.canvas.restore(cid, rng.randint(1, v - 1), expected_version=v - 1)
            elif v % 41 == 0:
                snap = store.canvas.replace_state(cid, {"title": "t", "items": [{"n": v}]})
            else:
                snap = store.canvas.apply_patch(cid, _random_patch(rng, snap.state),
                                                expected_version=v - 1)
            assert snap.version == v
            recorded[v] = snap.state
        for v in range(1, 301):
            assert store.canvas.state_at(cid, v) == recorded[v], v
        assert store.canvas.replay(cid).state == recorded[300]
        with store.read() as conn:
            snaps = [v for (v,) in conn.execute(
                "SELECT version FROM canvas_snapshots WHERE canvas_id = ? ORDER BY version",
                (cid,))]
        assert snaps == sorted({1, *range(16, 301, 16), 97, 194, 291})


def test_storage_grows_with_the_patches_not_versions_times_state(db_path, backend):
    with JournalStore.open(db_path, canvas_snapshot_interval=32) as store:
        doc = {"rows": [{"id": i, "text": "lorem ipsum " * 4} for i in range(100)]}
        cid = _new(store, doc).canvas_id
        for v in range(2, 201):
            store.canvas.apply_patch(cid, [{"op": "replace", "path": f"/rows/{v % 100}/id",
                                            "value": v}])
        with store.read() as conn:
            stored = conn.execute(
                "SELECT (SELECT SUM(LENGTH(patch_json)) FROM canvas_patches) + "
                "(SELECT SUM(LENGTH(state_json)) FROM canvas_snapshots)").fetchone()[0]
        state_size = len(json.dumps(store.canvas.get(cid).state, separators=(",", ":")))
        assert stored < 200 * state_size / 10  # 7 snapshots + 199 small patches


def test_snapshot_interval_bounds_the_patches_applied(db_path, backend, monkeypatch):
    with JournalStore.open(db_path, canvas_snapshot_interval=8) as store:
        cid = _new(store, {"n": 0}).canvas_id
        for i in range(1, 40):
            store.canvas.apply_patch(cid, [{"op": "replace", "path": "/n", "value": i}])
        import palyra_journal.canvas as canvas_mod
        calls = []
        real = canvas_mod.apply_stored_all
        monkeypatch.setattr(canvas_mod, "apply_stored_all",
                            lambda doc, patches: calls.extend(patches) or real(doc, patches))
        counts = []
        for v in range(1, 41):
            calls.clear()
            assert store.canvas.state_at(cid, v) == {"n": v - 1}
            counts.append(len(calls))
        # snapshots at 1, 8, 16, 24, 32; version 40 is read from the state row
        assert counts[:9] == [0, 1, 2, 3, 4, 5, 6, 0, 1] and max(counts) == 7


def test_state_at_reports_a_stored_patch_that_no_longer_applies(db_path, backend):
    with JournalStore.open(db_path) as store:
        cid = _new(store, {"n": 0}).canvas_id
        for i in range(1, 6):
            store.canvas.apply_patch(cid, [{"op": "replace", "path": "/n", "value": i}])
    raw = raw_db.connect(db_path)
    raw_db.drop_trigger(raw, "canvas_patches_no_update")
    raw.execute("UPDATE canvas_patches SET patch_json = '[{\"op\":\"remove\",\"path\":\"/gone\"}]' "
                "WHERE canvas_id = ? AND version = 4", (cid,))
    raw.commit()
    raw.close()
    with JournalStore.open(db_path, read_only=True) as store:  # a trigger is gone: read only
        assert store.canvas.state_at(cid, 3) == {"n": 2}
        with pytest.raises(IntegrityError, match="version 4"):
            store.canvas.state_at(cid, 5)
        with pytest.raises(IntegrityError, match="version 4"):
            store.canvas.replay(cid)


def test_restore_appends_a_new_version_with_the_old_state(store):
    cid = _new(store, {"n": 0}).canvas_id
    for i in range(1, 5):
        store.canvas.apply_patch(cid, [{"op": "replace", "path": "/n", "value": i}])
    snap = store.canvas.restore(cid, 2, actor_principal="user:ada")
    assert (snap.version, snap.state) == (6, {"n": 1})
    assert store.canvas.state_at(cid, 5) == {"n": 4}  # history is never rewound
    with store.read() as conn:
        assert conn.execute("SELECT 1 FROM canvas_snapshots WHERE canvas_id = ? AND version = 6",
                            (cid,)).fetchone()
    (ev,) = store.events(kind="canvas.restored")
    assert ev.payload["restored_from"] == 2 and ev.payload["version"] == 6
    with pytest.raises(NotFoundError):
        store.canvas.restore(cid, 7)


def test_replay_detects_a_snapshot_edited_behind_the_stores_back(db_path, backend):
    with JournalStore.open(db_path, canvas_snapshot_interval=4) as store:
        cid = _new(store, {"n": 0}).canvas_id
        for i in range(1, 10):
            store.canvas.apply_patch(cid, [{"op": "replace", "path": "/n", "value": i}])
        assert store.canvas.replay(cid).state == {"n": 9}
    raw = raw_db.connect(db_path)
    raw_db.drop_trigger(raw, "canvas_snapshots_no_update")
    raw.execute("UPDATE canvas_snapshots SET state_json = '{\"n\":99}' "
                "WHERE canvas_id = ? AND version = 8", (cid,))
    raw.commit()
    raw.close()
    with JournalStore.open(db_path, read_only=True) as store:  # a trigger is gone: read only
        with pytest.raises(IntegrityError, match="version 8"):
            store.canvas.replay(cid)


def test_replay_detects_an_edited_first_snapshot_and_latest_state(db_path, backend):
    with JournalStore.open(db_path) as store:
        a = _new(store, {"n": 0}).canvas_id
        b = _new(store, {"n": 0}).canvas_id
        for cid in (a, b):
            store.canvas.apply_patch(cid, [{"op": "replace", "path": "/n", "value": 1}])
    raw = raw_db.connect(db_path)
    raw_db.drop_trigger(raw, "canvas_snapshots_no_update")
    raw.execute("UPDATE canvas_snapshots SET state_json = '{\"n\":5}' WHERE canvas_id = ?", (a,))
    raw.execute("UPDATE canvas_state SET state_json = '{\"n\":7}' WHERE canvas_id = ?", (b,))
    raw.commit()
    raw.close()
    with JournalStore.open(db_path, read_only=True) as store:  # a trigger is gone: read only
        with pytest.raises(IntegrityError, match="version-1 snapshot"):
            store.canvas.replay(a)
        with pytest.raises(IntegrityError, match="latest state"):
            store.canvas.replay(b)


def test_patches_and_snapshots_are_append_only(store, db_path):
    cid = _new(store).canvas_id
    store.canvas.apply_patch(cid, [{"op": "add", "path": "/a", "value": 1}])
    conn = raw_db.connect(db_path)  # another program's connection, not the store's
    for sql in ("UPDATE canvas_patches SET patch_json = '[]'",
                "DELETE FROM canvas_patches",
                "UPDATE canvas_snapshots SET state_json = '{}'",
                "DELETE FROM canvas_snapshots"):
        with pytest.raises(raw_db.refused_error(conn), match="append-only"):
            conn.execute(sql)
    conn.close()


def test_every_change_writes_its_journal_event_and_the_chain_verifies(store):
    cid = _new(store, actor_principal="agent:a", actor_device_id="dev").canvas_id
    store.canvas.apply_patch(cid, {"v": 1, "ops": [{"op": "add", "path": "/k", "value": 1}]})
    store.canvas.replace_state(cid, {"password": "hunter2"})
    store.canvas.restore(cid, 1)
    store.canvas.close(cid)
    kinds = [e.kind for e in store.events() if e.kind.startswith("canvas.")]
    assert kinds == ["canvas.created", "canvas.patched", "canvas.patched", "canvas.restored",
                     "canvas.closed"]
    for ev in store.events():
        assert ev.payload["canvas_id"] == cid and ev.session_id == "s1"
        assert ev.principal == "user:ada"
        assert "hunter2" not in ev.payload_json  # events carry digests, never the document
    created = store.events(kind="canvas.created")[0]
    assert created.device_id == "dev" and created.payload["actor_principal"] == "agent:a"
    assert len(created.payload["state_sha256"]) == 64
    # the document itself is a user document: stored as given, not redacted
    assert store.canvas.state_at(cid, 3) == {"password": "hunter2"}
    assert store.verify().ok


def test_history_pages_and_limits(store):
    cid = _new(store, {"n": 0}).canvas_id
    for i in range(1, 11):
        store.canvas.apply_patch(cid, [{"op": "replace", "path": "/n", "value": i}])
    first = store.canvas.history(cid, limit=4)
    assert [r.version for r in first] == [2, 3, 4, 5]
    rest = store.canvas.history(cid, after_version=first[-1].version)
    assert [r.version for r in rest] == list(range(6, 12))
    assert len(store.canvas.history(cid, limit=0)) == 1  # clamped to [1, 1000]


def test_two_writers_on_one_file_conflict_on_the_same_expected_version(db_path, backend):
    with JournalStore.open(db_path) as a, JournalStore.open(db_path) as b:
        cid = _new(a, {"n": 0}).canvas_id
        seen_by_b = b.canvas.get(cid).version
        a.canvas.apply_patch(cid, [{"op": "replace", "path": "/n", "value": 1}],
                             expected_version=seen_by_b)
        with pytest.raises(VersionConflictError) as info:
            b.canvas.apply_patch(cid, [{"op": "replace", "path": "/n", "value": 2}],
                                 expected_version=seen_by_b)
        assert (info.value.expected, info.value.current) == (1, 2)
        assert b.canvas.get(cid).state == {"n": 1}
        assert b.verify().ok
