"""The journal end to end with the numbers rule and redaction rules v2: both backends, same bytes."""

from __future__ import annotations

import io
import json
import sqlite3
import struct
import subprocess
import sys

import pytest

import palyra_journal as pj
from benchmarks import agent_events
from palyra_journal import kernels, rules_log


def _vectors(test_vectors):
    for line in (test_vectors / "jcs" / "es6-numbers-20k.txt").read_text().split():
        hexbits, expected = line.split(",")
        yield struct.unpack(">d", bytes.fromhex(hexbits.zfill(16)))[0], expected


def _stored(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT seq, payload_json, redacted, hash FROM journal_events ORDER BY seq").fetchall()


def test_es6_vectors_through_append_many_on_both_backends(tmp_path, test_vectors):
    """All 20 000 doubles are accepted, written as ECMAScript writes them, hashed identically."""
    vectors = list(_vectors(test_vectors))
    events = [{"kind": "num", "event_id": f"e{i}", "timestamp_unix_ms": 1, "payload": {"x": x}}
              for i, (x, _) in enumerate(vectors)]
    previous = kernels.backend_name()
    stored = {}
    try:
        for backend in ("python", "native"):
            kernels.set_backend(backend)
            path = tmp_path / f"{backend}.db"
            with pj.JournalStore.open(path) as store:
                records = store.append_many(events)
                assert [r.payload["x"] for r in records] == [x for x, _ in vectors]
                assert store.verify().ok
            stored[backend] = _stored(path)
    finally:
        kernels.set_backend(previous)
    assert stored["python"] == stored["native"]
    assert [row[1] for row in stored["native"]] == ['{"x":' + text + "}" for _, text in vectors]


@pytest.mark.parametrize("x", [1e20, 1.5e16, 2.0**53, -2.5e18])
def test_large_doubles_append_read_back_and_append_again(store, x):
    first = store.append("m", {"n": x, "bytes": [x]})
    assert first.payload == {"n": x, "bytes": [x]} and type(first.payload["n"]) is float
    again = store.append("m", store.recent(1)[0].payload)
    assert again.payload_json == first.payload_json
    assert store.verify().ok


def test_integer_literals_beyond_the_range_are_still_refused(store):
    with pytest.raises(pj.InvalidPayloadError, match="byte 6: integer 100000000000000000000 is outside"):
        store.append("m", '{"n": 100000000000000000000}')
    with pytest.raises(pj.InvalidPayloadError, match=r"payload\.n: integer 9007199254740992"):
        store.append("m", {"n": 2**53})
    assert store.recent(1) == []


def test_realistic_ingest_keeps_every_usage_number(tmp_path, backend):
    """The phase-1 field case in small: agent usage figures survive, secrets in text are masked."""
    n = 2000
    with pj.JournalStore.open(tmp_path / "j.db") as store:
        assert store.ingest_jsonl(io.BytesIO(agent_events.jsonl(n))) == n
        records = list(store.iter_events())
    originals = list(agent_events.events(n))
    agent = [(r, o) for r, o in zip(records, originals) if r.kind == "message.agent"]
    assert len(agent) == n // 4
    for rec, orig in agent:
        assert rec.redacted is False
        assert rec.payload == orig["payload"]
    outputs = [r for r in records if r.kind == "tool.output"]
    masked = [r for r in outputs if r.redacted]
    assert masked and all("token=<redacted>" in r.payload["stdout"] for r in masked)
    assert all(r.payload["stdout"].startswith("2026-01-01T") for r in outputs)
    for r in records:
        if r.kind == "http.request":
            assert r.redacted and r.payload["headers"]["Authorization"] == "<redacted>"
            assert r.payload["headers"]["Content-Type"] == "application/json"


def test_rules_version_recorded_per_seq_range(db_path, backend):
    with pj.JournalStore.open(db_path) as store:
        store.append("a", {})
    with pj.JournalStore.open(db_path, redaction=pj.RedactionRules(extra_key_fragments=("ssn",))) as store:
        store.append_many([{"kind": "b"}, {"kind": "b"}])
    with pj.JournalStore.open(db_path) as store:
        store.append("c", {})
        store.append("c", {})
        with store.read() as conn:
            ranges = rules_log.ranges(conn)
    assert ranges == [(1, 1, "2"), (2, 3, "2+custom"), (4, None, "2")]


def test_rules_ranges_of_interleaved_writers_and_a_rolled_back_append(db_path, backend):
    """``append`` skips reading the rules log only while the head is the one it committed: two
    stores with different rules writing in turn, and an append rolled back with its caller's
    transaction, still leave one range per change."""
    custom = pj.RedactionRules(extra_key_fragments=("ssn",))
    with pj.JournalStore.open(db_path) as a, pj.JournalStore.open(db_path, redaction=custom) as b:
        a.append("a", {})
        a.append("a", {})
        b.append("b", {})
        a.append("a", {})
        b.append_many([{"kind": "b"}, {"kind": "b"}])
        b.append("b", {})
        a.append_many([{"kind": "a"}])
        with pytest.raises(RuntimeError), b.write():
            b.append("b", {})
            raise RuntimeError("the caller's transaction fails")
        a.append("a", {})
        b.append("b", {})
        with a.read() as conn:
            ranges = rules_log.ranges(conn)
        assert a.verify().ok
    assert ranges == [(1, 2, "2"), (3, 3, "2+custom"), (4, 4, "2"), (5, 7, "2+custom"),
                      (8, 9, "2"), (10, None, "2+custom")]


@pytest.mark.sqlite_only  # journals from before rules v2 exist only as SQLite files
def test_journal_written_before_rules_v2_is_recorded_as_v1(db_path):
    with pj.JournalStore.open(db_path) as store:
        store.append_many([{"kind": "old"}] * 3)
        hashes = [r.hash for r in store.iter_events()]
    with sqlite3.connect(db_path) as conn:  # the state of a phase-1 file: no rules table yet
        conn.execute("DROP TABLE journal_redaction_rules")
        conn.execute("DELETE FROM schema_migrations WHERE name = 'redaction_rules'")
    with pj.JournalStore.open(db_path) as store:
        store.append("new", {"token": "x"})
        assert [r.hash for r in store.iter_events()][:3] == hashes
        assert store.verify().ok
        with store.read() as conn:
            assert rules_log.ranges(conn) == [(1, 3, "1"), (4, None, "2")]


def test_doctor_shows_the_rules_version(db_path):
    with pj.JournalStore.open(db_path) as store:
        store.append("a", {})
    cmd = [sys.executable, "-m", "palyra_journal.cli", "doctor", str(db_path)]
    human = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert "rules v2" in human.stdout and "seq 1..newest by rules v2" in human.stdout
    data = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, text=True).stdout)
    assert data["redaction_rules"] == "2"
    assert data["database"]["redaction_rules_by_seq"] == [
        {"from_seq": 1, "to_seq": None, "version": "2"}]


def test_canvas_state_with_large_doubles_survives_every_operation(store):
    """Canvas re-reads its stored canonical text (patches, replace, restore, replay)."""
    c = store.canvas.create({"n": 1e20, "x": 1}, principal="p", session_id="s")
    store.canvas.apply_patch(c.canvas_id, [{"op": "replace", "path": "/x", "value": 2}])
    store.canvas.replace_state(c.canvas_id, {"n": -1.5e16, "x": 3})
    store.canvas.restore(c.canvas_id, 1)
    assert store.canvas.replay(c.canvas_id).state == {"n": 1e20, "x": 1}
    assert store.canvas.state_at(c.canvas_id, 3) == {"n": -1.5e16, "x": 3}
    assert store.verify().ok
