"""The journal API of docs/api.md "Events": append, append_many, ingest_jsonl, queries, export, verify."""

from __future__ import annotations

import hashlib
import io
import json
import pickle

import pytest
import raw_db
import rfc8785

import palyra_journal as pj
from palyra_journal import JournalStore
from palyra_journal.events import ChainHead, EventRecord, VerifyReport

GENESIS = "0" * 64


def independent_hashes(path) -> list[tuple[int, str, str]]:
    """Recompute every hash with only sqlite3, hashlib and rfc8785: (seq, stored, recomputed)."""
    conn = raw_db.connect(path)
    out = []
    prev = GENESIS
    for row in conn.execute(
            "SELECT seq, event_id, kind, actor, session_id, run_id, principal, device_id, channel,"
            " timestamp_unix_ms, payload_json, hash FROM journal_events ORDER BY seq"):
        (seq, event_id, kind, actor, session_id, run_id, principal, device_id, channel, ts,
         payload_json, stored) = row
        envelope = {"actor": actor, "channel": channel, "device_id": device_id,
                    "event_id": event_id, "kind": kind, "payload": json.loads(payload_json),
                    "principal": principal, "run_id": run_id, "seq": seq,
                    "session_id": session_id, "timestamp_unix_ms": ts}
        digest = hashlib.sha256(prev.encode("ascii") + b"\n" + rfc8785.dumps(envelope)).hexdigest()
        out.append((seq, stored, digest))
        prev = stored
    conn.close()
    return out


def count(store) -> int:
    with store.read() as conn:
        return conn.execute("SELECT COUNT(*) FROM journal_events").fetchone()[0]


# ------------------------------------------------------------------------------- append
def test_append_stores_the_envelope_and_chains_from_genesis(db_path, backend):
    with JournalStore.open(db_path, clock=lambda: 1_700_000_000_000) as store:
        rec = store.append("tool.executed", {"b": 1, "a": [1, 2.5, "é"]}, session_id="s1",
                           run_id="r1", actor="agent", principal="u1", device_id="d1",
                           channel="cli", event_id="ev-1")
        assert isinstance(rec, EventRecord)
        assert (rec.seq, rec.event_id, rec.kind, rec.actor) == (1, "ev-1", "tool.executed", "agent")
        assert (rec.session_id, rec.run_id, rec.principal, rec.device_id, rec.channel) == (
            "s1", "r1", "u1", "d1", "cli")
        assert rec.timestamp_unix_ms == rec.created_at_unix_ms == 1_700_000_000_000
        assert rec.payload_json == '{"a":[1,2.5,"é"],"b":1}'
        assert rec.payload == {"a": [1, 2.5, "é"], "b": 1}
        assert rec.redacted is False
        assert rec.prev_hash == GENESIS
        second = store.append("x", timestamp_unix_ms=5)
        assert second.seq == 2 and second.prev_hash == rec.hash and second.timestamp_unix_ms == 5
        assert second.actor == "system" and second.payload == {} and len(second.event_id) == 26
        assert store.recent(1)[0] == second
    assert [(s, a) for s, a, _ in independent_hashes(db_path)] == [(1, rec.hash), (2, second.hash)]
    assert all(stored == recomputed for _, stored, recomputed in independent_hashes(db_path))


def test_record_events_joins_the_enclosing_transaction(store):
    assert store.in_transaction is False
    with store.write():
        assert store.in_transaction is True
        recs = store.record_events([{"kind": "canvas.created", "payload": {"canvas_id": "c1"},
                                     "session_id": "s"}])
        assert [r.seq for r in recs] == [1] and recs[0].session_id == "s"
        assert count(store) == 1
    assert store.in_transaction is False
    assert store.head().seq == 1
    with pytest.raises(RuntimeError):
        with store.write():
            store.record_events([{"kind": "canvas.patched", "payload": {"canvas_id": "c1"}}])
            raise RuntimeError("state change failed")
    assert count(store) == 1  # rolled back with the state change
    with pytest.raises(pj.JournalError, match="inside store.write"):
        store.record_events([{"kind": "x"}])


def test_on_commit_runs_after_the_outermost_commit_only(store):
    ran = []
    with store.write():
        with store.write():
            store.on_commit(lambda: ran.append(store.in_transaction))
        assert ran == []
    assert ran == [False]
    with pytest.raises(RuntimeError):
        with store.write():
            store.on_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("state change failed")
    assert ran == [False]
    with pytest.raises(pj.JournalError, match="inside store.write"):
        store.on_commit(lambda: None)


@pytest.mark.parametrize("payload,expected", [
    (None, "{}"),
    ('{"b": 2, "a": 1}', '{"a":1,"b":2}'),
    (b'[1, "x"]', '[1,"x"]'),
    ([3, {"z": None, "y": True}], '[3,{"y":true,"z":null}]'),
    (7, "7"),
    ("\"text\"", '"text"'),
])
def test_payload_forms(store, payload, expected):
    assert store.append("k", payload).payload_json == expected


@pytest.mark.parametrize("payload,expected", [
    ({"token": "x", "nested": {"password": "1"}, "safe": "ok"},
     '{"nested":{"password":"<redacted>"},"safe":"ok","token":"<redacted>"}'),
    ({"note": "Authorization: Bearer abc"}, '{"note":"Authorization: <redacted>"}'),
    ({"details": "{\"cookie\":\"sid=1\",\"a\":1}"},
     '{"details":"{\\"a\\":1,\\"cookie\\":\\"<redacted>\\"}"}'),
    ({"token_count": "5"}, '{"token_count":"<redacted>"}'),
])
def test_payloads_are_redacted_before_storage_and_hashing(db_path, backend, payload, expected):
    with JournalStore.open(db_path) as store:
        rec = store.append("k", payload)
        assert rec.payload_json == expected and rec.redacted is True
        with store.read() as conn:
            stored, red = conn.execute("SELECT payload_json, redacted FROM journal_events").fetchone()
        assert (stored, red) == (expected, 1)
    assert all(s == r for _, s, r in independent_hashes(db_path))


def test_custom_redaction_rules_apply(db_path, backend):
    rules = pj.RedactionRules(extra_key_fragments=("ssn",), extra_value_markers=("internal:",))
    with JournalStore.open(db_path, redaction=rules) as store:
        rec = store.append("k", {"user_ssn": "1", "n": "INTERNAL: x", "ok": "fine"})
    assert rec.payload == {"user_ssn": "<redacted>", "n": "<redacted>", "ok": "fine"}


@pytest.mark.parametrize("payload,fragment", [
    ({"x": float("nan")}, "payload"),
    ({"items": [1, {"when": object()}]}, "when"),
    ({"big": 2**53}, "big"),
    ({"f": [2**60]}, r"payload\.f\[0\]: integer 1152921504606846976 is outside"),
    ('{"f": 10000000000000000}', "payload: byte 6: integer 10000000000000000 is outside"),
    ({1: "non-string key"}, "payload"),
    ("{\"a\": NaN}", "payload"),
    (b"\xff\xfe", "payload"),
    ("[1] trailing", "payload"),
])
def test_invalid_payloads_are_refused_and_nothing_is_written(store, payload, fragment):
    with pytest.raises(pj.InvalidPayloadError, match=fragment):
        store.append("k", payload)
    assert count(store) == 0


def test_every_accepted_float_survives_export_and_ingest(tmp_path, backend):
    """Floats near the I-JSON edge: what the store accepts, an export of it ingests again."""
    values = [2.0**53 - 1, 1e21, -1e21, 1e300, 0.1, 1e-7, 123.0, 5e-324]
    src, dst = tmp_path / "a.db", tmp_path / "b.db"
    with JournalStore.open(src) as store:
        store.append_many([{"kind": "k", "payload": {"x": x}} for x in values])
        with pytest.raises(pj.InvalidPayloadError, match=r"^events\[1\]\.payload(: payload)?\.x: integer"):
            store.append_many([{"kind": "k", "payload": {"x": 1.0}}, {"kind": "k", "payload": {"x": 2**53}}])
        buf = io.BytesIO()
        store.export_jsonl(buf)
        head = store.head()
    buf.seek(0)
    with JournalStore.open(dst) as store:
        assert store.ingest_jsonl(buf) == len(values)
        assert store.head() == head
        assert [e.payload["x"] for e in store.events()] == values


def test_payload_too_large_names_both_numbers(db_path, backend):
    with JournalStore.open(db_path, max_payload_bytes=100) as store:
        store.append("k", {"s": "é" * 40})  # 88 bytes
        with pytest.raises(pj.PayloadTooLargeError, match=r"\b102 bytes.*\b100\b") as info:
            store.append("k", {"s": "é" * 47})
        assert (info.value.size, info.value.limit) == (102, 100)
        assert count(store) == 1


@pytest.mark.parametrize("kwargs,fragment", [
    ({"kind": ""}, "kind"),
    ({"kind": 3}, "kind"),
    ({"actor": None}, "actor"),
    ({"session_id": 5}, "session_id"),
    ({"channel": "x" * 1025}, "channel"),
    ({"run_id": "bad\ud800"}, "run_id"),
    ({"timestamp_unix_ms": True}, "timestamp_unix_ms"),
    ({"timestamp_unix_ms": 1.5}, "timestamp_unix_ms"),
    ({"timestamp_unix_ms": 2**53}, "timestamp_unix_ms"),
    ({"event_id": ""}, "event_id"),
])
def test_invalid_envelope_fields_name_the_field(store, kwargs, fragment):
    args = {"kind": "k", **kwargs}
    kind = args.pop("kind")
    with pytest.raises(pj.InvalidPayloadError, match=fragment):
        store.append(kind, {}, **args)
    assert count(store) == 0


def test_nul_characters_are_allowed_in_payloads_not_in_envelope_fields(store):
    rec = store.append("k", {"a\x00": "b\x00"})
    assert rec.payload == {"a\x00": "b\x00"}
    assert store.verify().ok
    with pytest.raises(pj.InvalidPayloadError, match="kind holds a NUL character at index 1"):
        store.append("k\x00x", {})
    with pytest.raises(pj.InvalidPayloadError, match=r"events\[1\]\.channel holds a NUL"):
        store.append_many([{"kind": "k"}, {"kind": "k", "channel": "c\x00"}])
    assert count(store) == 1


def test_duplicate_event_id_is_refused(store):
    store.append("k", event_id="same")
    with pytest.raises(pj.DuplicateIdError, match="'same'"):
        store.append("k", event_id="same")
    assert count(store) == 1


# ------------------------------------------------------------------------------- append_many
def test_append_many_writes_one_chained_batch(db_path, backend):
    with JournalStore.open(db_path) as store:
        store.append("first")
        recs = store.append_many([{"kind": "k", "payload": {"i": i}, "session_id": f"s{i % 3}"}
                                  for i in range(50)] + [{"kind": "t"}])
        assert [r.seq for r in recs] == list(range(2, 53))
        assert recs[0].prev_hash == store.events(limit=1)[0].hash
        assert all(b.prev_hash == a.hash for a, b in zip(recs, recs[1:]))
        assert store.events(after_seq=1, limit=1000) == recs
        assert store.append_many([]) == []
    assert all(s == r for _, s, r in independent_hashes(db_path))


@pytest.mark.parametrize("events,error,fragment", [
    ([{"kind": "k"}, {"kind": "k", "bogus": 1}], pj.InvalidPayloadError, r"events\[1\].*'bogus'"),
    ([{"kind": "k"}, {"payload": {}}], pj.InvalidPayloadError, r"events\[1\]\.kind"),
    ([{"kind": "k"}] * 3 + [{"kind": "k", "payload": {"x": float("inf")}}],
     pj.InvalidPayloadError, r"events\[3\]\.payload"),
    ([{"kind": "k", "event_id": "a"}, {"kind": "k", "event_id": "a"}], pj.DuplicateIdError,
     r"events\[1\]\.event_id 'a'"),
    ([{"kind": "k", "event_id": "x"}, {"kind": "k", "event_id": "taken"}], pj.DuplicateIdError,
     r"events\[1\]\.event_id 'taken' already exists"),
    ([{"kind": "k", "timestamp_unix_ms": False}], pj.InvalidPayloadError,
     r"events\[0\]\.timestamp_unix_ms"),
    ([{"kind": "k"}, "not a dict"], pj.InvalidPayloadError, r"events\[1\]"),
])
def test_append_many_is_all_or_nothing(store, events, error, fragment):
    store.append("k", event_id="taken")
    with pytest.raises(error, match=fragment):
        store.append_many(events)
    assert count(store) == 1
    assert store.verify().ok


def test_append_many_failure_inside_an_outer_transaction_leaves_the_outer_work(store):
    with store.write():
        store.record_events([{"kind": "outer"}])
        with pytest.raises(pj.DuplicateIdError):
            store.append_many([{"kind": "k", "event_id": "a"}, {"kind": "k"},
                               {"kind": "k", "event_id": "a"}])
        store.append("k", event_id="dup")
        with pytest.raises(pj.DuplicateIdError):  # fails inside SQLite: savepoint rolled back
            store.append_many([{"kind": "k", "event_id": "fresh"}, {"kind": "k", "event_id": "dup"}])
    assert [r.kind for r in store.events()] == ["outer", "k"]
    assert store.verify().ok


# ------------------------------------------------------------------------------- ingest
def _jsonl(events) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def test_ingest_jsonl_from_a_path_and_a_stream(tmp_path, store):
    src = tmp_path / "in.jsonl"
    src.write_bytes(_jsonl({"kind": "k", "payload": {"i": i, "password": "p"}, "actor": "agent"}
                           for i in range(25)) + b"\n   \n")
    assert store.ingest_jsonl(src, batch_size=10) == 25
    assert store.ingest_jsonl(io.BytesIO(_jsonl([{"kind": "z"}])), batch_size=10) == 1
    recs = store.events()
    assert len(recs) == 26 and recs[3].payload == {"i": 3, "password": "<redacted>"}
    assert recs[3].redacted and recs[-1].kind == "z"
    assert store.verify().ok


def test_ingest_error_names_the_line_and_keeps_earlier_batches(tmp_path, store):
    lines = [{"kind": "k", "payload": {"i": i}} for i in range(12)]
    data = _jsonl(lines[:7]) + b'{"kind": "k", "payload": {"x": NaN}}\n' + _jsonl(lines[7:])
    src = tmp_path / "bad.jsonl"
    src.write_bytes(data)
    with pytest.raises(pj.InvalidPayloadError,
                       match=r"^line 8, byte 31: invalid JSON: NaN .*from line 6 on.*\(5 events\)"
                             r".*start_line=6$") as exc:
        store.ingest_jsonl(src, batch_size=5)
    assert exc.value.resume_line == 6
    assert count(store) == 5  # the first batch; the failing batch wrote nothing
    for bad, fragment in ((b"[1]\n", "line 1: expected a JSON object"),
                          (b'{"kind": "k"}\n\xff\n', "line 2, byte 0: invalid UTF-8"),
                          (b'{"kind": "k", "what": 1}\n', "line 1.*'what'")):
        with pytest.raises(pj.InvalidPayloadError, match=fragment):
            store.ingest_jsonl(io.BytesIO(bad))
    assert count(store) == 5


def test_export_then_ingest_reproduces_the_chain(tmp_path, db_path, backend):
    with JournalStore.open(db_path) as store:
        store.append_many([{"kind": "k", "payload": {"i": i, "t": "ü\n"}, "run_id": "r"}
                           for i in range(30)])
        out = tmp_path / "export.jsonl"
        assert store.export_jsonl(out) == 30
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        buf = io.StringIO()
        assert store.export_jsonl(buf, after_seq=28) == 2
        assert [json.loads(line)["seq"] for line in buf.getvalue().splitlines()] == [29, 30]
        with JournalStore.open(tmp_path / "copy.db") as copy:
            assert copy.ingest_jsonl(out) == 30
            assert copy.head() == store.head()
        first = json.loads(out.read_text().splitlines()[0])
        assert first["payload"] == {"i": 0, "t": "ü\n"} and first["redacted"] is False


# ------------------------------------------------------------------------------- queries
def test_queries(store):
    assert store.head() is None and store.recent() == [] and store.events() == []
    store.append_many([{"kind": "a" if i % 2 else "b", "session_id": f"s{i % 3}",
                        "run_id": "r1" if i < 5 else None} for i in range(2500)])
    assert store.head() == ChainHead(2500, store.recent(1)[0].hash)
    assert [r.seq for r in store.recent(3)] == [2500, 2499, 2498]
    assert len(store.recent(5000)) == 1000 and len(store.recent(0)) == 1
    assert [r.seq for r in store.events(after_seq=10, limit=3)] == [11, 12, 13]
    assert all(r.kind == "a" for r in store.events(kind="a"))
    assert [r.seq for r in store.events(session_id="s1", run_id="r1")] == [2, 5]
    assert [r.seq for r in store.iter_events(after_seq=2490)] == list(range(2491, 2501))
    assert sum(1 for _ in store.iter_events()) == 2500
    with pytest.raises(pj.InvalidPayloadError, match="limit"):
        store.recent("10")


def test_records_are_frozen_picklable_and_convert_to_dicts(store):
    rec = store.append("k", {"a": 1})
    with pytest.raises(AttributeError):
        rec.kind = "other"
    assert pickle.loads(pickle.dumps(rec)) == rec
    d = rec.to_dict()
    assert d["payload"] == {"a": 1} and d["payload_json"] == '{"a":1}' and d["redacted"] is False
    assert set(d) == {"seq", "event_id", "kind", "actor", "session_id", "run_id", "principal",
                      "device_id", "channel", "timestamp_unix_ms", "payload", "payload_json",
                      "redacted", "hash", "prev_hash", "created_at_unix_ms"}
    report = store.verify()
    assert isinstance(report, VerifyReport)
    assert report.to_dict() == {"ok": True, "checked": 1, "first_bad_seq": None, "reason": None,
                                "head": {"seq": 1, "hash": rec.hash}, "missing_triggers": [],
                                "expected_hash": None, "actual_hash": None}


# ------------------------------------------------------------------------------- verify
def test_verify_ranges_and_checkpoints(store):
    store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(100)])
    head = store.head()
    assert store.verify() == VerifyReport(True, 100, None, None, head)
    assert store.verify(from_seq=40).checked == 61
    part = store.verify(from_seq=10, to_seq=20)
    assert part.ok and part.checked == 11 and part.head.seq == 20
    assert store.verify(expected_head=head).ok
    assert store.verify(expected_head=(50, store.events(after_seq=49, limit=1)[0].hash)).ok
    bad = store.verify(expected_head=(50, "f" * 64))
    assert (bad.ok, bad.first_bad_seq, bad.reason) == (False, 50, "head_mismatch")
    gone = store.verify(expected_head=(101, head.hash))
    assert (gone.first_bad_seq, gone.reason) == (101, "head_mismatch")
    for kwargs in ({"from_seq": 0}, {"to_seq": -1}, {"expected_head": "x"},
                   {"expected_head": (True, "x")}):
        with pytest.raises(pj.InvalidPayloadError):
            store.verify(**kwargs)


def test_unchained_store_stores_null_hashes_and_checks_seq_only(db_path, backend):
    with JournalStore.open(db_path, hash_chain=False) as store:
        recs = store.append_many([{"kind": "k"}] * 3)
        single = store.append("k")
        assert all(r.hash is None and r.prev_hash is None for r in recs + [single])
        report = store.verify()
        assert report.ok and report.checked == 4 and report.head == ChainHead(4, None)
    with JournalStore.open(db_path) as chained:  # reopened as chained: the rows are unchained
        report = chained.verify()
        assert (report.ok, report.first_bad_seq, report.reason) == (False, 1, "unchained_row")


def test_append_only_triggers(store, db_path):
    store.append("k")
    conn = raw_db.connect(db_path)  # another program's connection, not the store's
    for sql in ("UPDATE journal_events SET kind = 'x'", "DELETE FROM journal_events"):
        with pytest.raises(raw_db.refused_error(conn), match="append-only"):
            conn.execute(sql)
    conn.close()
    assert store.verify().ok


# ------------------------------------------------------------------- native line parser
def _native_kernels():
    from palyra_journal.kernels import native
    return native


PLAIN_LINES = [
    b'{"kind":"k","payload":{"b":1,"a":[1,2.5,"\\u00e9"]},"timestamp_unix_ms":-0}\n',
    b' {"actor":"a","run_id":null,"payload":"[2, {\\"token\\": \\"x\\"}]", "seq": 9, "hash": "x"}\r\n',
    b'{"kind":"k","event_id":"e1","session_id":"s","principal":"p","device_id":"d","channel":"c",'
    b'"timestamp_unix_ms":1700000000000,"payload":null,"redacted":true,"prev_hash":null,'
    b'"created_at_unix_ms":5}',
    b'{}',
    '{"kind":"ké","payload":{"Authorization":"Bearer x","n":"sk-1","u":"https://a:b@h"}}'.encode(),
]


def test_event_lines_columns_match_the_reference_decoding():
    cols = _native_kernels().event_lines(PLAIN_LINES)
    assert cols is not None
    evs = [json.loads(line) for line in PLAIN_LINES]
    names = ("kind", "actor", "event_id", "session_id", "run_id", "principal", "device_id",
             "channel", "timestamp_unix_ms")
    for k, name in enumerate(names):
        default = "system" if name == "actor" else None
        assert cols[k] == [ev.get(name, default) for ev in evs], name
    texts, flags = pj.kernels.pure.canonicalize_many([ev.get("payload") for ev in evs],
                                                      payloads=True)
    assert (cols[9], cols[10]) == (texts, flags)
    packed = _native_kernels().event_lines(PLAIN_LINES, pack=True)
    assert packed[:11] == cols and packed[11] == b"".join(t.encode() + b"\0" for t in texts)
    assert pj.kernels.pure.event_lines(PLAIN_LINES) is None  # the reference has no fast path


@pytest.mark.parametrize("line", [
    b'{"kind":"k","kind":"j"}', b'{"kind":"k","bogus":1}', b'{"payload":{"a":10000000000000000}}',
    b'{"timestamp_unix_ms":1.5}', b'{"timestamp_unix_ms":01}', b'{"kind":5}', b'[1]',
    b'{"payload":{"a":1,"a":2}}', b'{"kind":"\\ud800"}', b'{"kind":"k"} x', b'{"seq":NaN}',
    b'\xef\xbb\xbf{}', b'{"kind":"\xff"}', b'{"payload":"\\ufeff[]"}', b'{"kind":"k",}',
    b'{"timestamp_unix_ms":12345678901234567}', b'{"payload":{"s":"' + b"x" * 300 + b'"}}',
])
def test_event_lines_leave_anything_unusual_to_the_reference(line):
    assert _native_kernels().event_lines([b"{}", line], max_bytes=100) is None


INGEST_CASES = [
    b'{"kind":"k","payload":{"a":1,"a":2}}\n',  # the reference lets the last one win
    b'{"kind":"k","payload":{"a":1e16}}\n',
    b'{"kind":"k","timestamp_unix_ms":1.5}\n',
    b'{"kind":"k","bogus":1}\n',
    b'{"kind":""}\n',
    b'{"kind":"k","payload":"[1,"}\n',
    b'{"kind":"k","seq":1e999,"hash":"\\ud800"}\n',  # export-only keys are ignored
    b'{"kind":"k","event_id":"dup"}\n{"kind":"k","event_id":"dup"}\n',
    b'{"kind":"k","payload":{"s":"' + "é".encode() * 60 + b'"}}\n',
]


@pytest.mark.parametrize("case", INGEST_CASES)
def test_ingest_outcome_is_the_same_on_both_backends(tmp_path, case):
    """Rows or error message: the native fast path and its fallback agree with the reference."""
    data = b'{"kind":"first","event_id":"e0"}\n' + case
    outcomes = []
    previous = pj.kernels.backend_name()
    for name in ("python", "native"):
        pj.kernels.set_backend(name)
        try:
            with JournalStore.open(tmp_path / f"{name}.db", clock=lambda: 1_000,
                                   max_payload_bytes=100) as store:
                try:
                    store.ingest_jsonl(io.BytesIO(data))
                    outcome = "ok"
                except pj.JournalError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with store.read() as conn:
                    rows = conn.execute("SELECT seq, event_id, kind, payload_json, redacted, hash "
                                        "FROM journal_events WHERE event_id = 'e0' OR event_id "
                                        "= 'dup' OR kind != 'k' ORDER BY seq").fetchall()
                    n = conn.execute("SELECT COUNT(*) FROM journal_events").fetchone()[0]
                outcomes.append((outcome, rows, n))
        finally:
            pj.kernels.set_backend(previous)
    assert outcomes[0] == outcomes[1]


def test_ingest_generated_lines_same_rows_on_both_backends(tmp_path):
    """A varied workload through the native fast path stores exactly the reference's rows."""
    import random
    rng = random.Random(7)
    lines = []
    for i in range(300):
        ev = {"kind": rng.choice(["a", "b.c", "ü"]), "event_id": f"e{i}",
              "payload": {"n": rng.randint(-10**15, 10**15), "f": rng.uniform(-1e6, 1e6),
                          "s": rng.choice(["x", "é\n\"", "Bearer t", '{"token":"v"}']),
                          "l": [None, True, 1e-7], rng.choice(["token", "k", "pinCode"]): "v"}}
        for name in ("actor", "session_id", "run_id", "principal", "device_id", "channel"):
            if rng.random() < 0.5:
                ev[name] = rng.choice([None, "x", "日本"]) if name != "actor" else "agent"
        if rng.random() < 0.5:
            ev["timestamp_unix_ms"] = rng.randint(-2**53 + 1, 2**53 - 1)
        if rng.random() < 0.2:
            ev["payload"] = json.dumps(ev["payload"], ensure_ascii=rng.random() < 0.5)
        lines.append(json.dumps(ev, ensure_ascii=rng.random() < 0.5, indent=None))
    data = ("\n".join(lines) + "\n").encode()
    assert _native_kernels().event_lines(data.splitlines()) is not None
    tables = []
    previous = pj.kernels.backend_name()
    for name in ("python", "native"):
        pj.kernels.set_backend(name)
        try:
            with JournalStore.open(tmp_path / f"{name}.db", clock=lambda: 1_000) as store:
                assert store.ingest_jsonl(io.BytesIO(data), batch_size=128) == 300
                with store.read() as conn:
                    tables.append(conn.execute("SELECT * FROM journal_events ORDER BY seq").fetchall())
        finally:
            pj.kernels.set_backend(previous)
    assert tables[0] == tables[1]
