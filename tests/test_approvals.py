"""Approvals: create, redaction, resolve-once, expiry, standing decisions, pagination, events."""

from __future__ import annotations

import pytest
import raw_db

from palyra_journal import JournalStore
from palyra_journal.approvals import ApprovalRecord
from palyra_journal.errors import (
    AlreadyResolvedError, DuplicateIdError, InvalidPayloadError, NotFoundError,
    PayloadTooLargeError,
)

RECORD_FIELDS = [
    "approval_id", "subject_type", "subject_id", "request_summary", "principal", "session_id",
    "run_id", "device_id", "channel", "policy_snapshot", "prompt", "requested_at_unix_ms",
    "expires_at_unix_ms", "decision", "scope", "reason", "scope_ttl_ms", "resolved_by",
    "resolved_at_unix_ms",
]


class Clock:
    def __init__(self, now: int = 1_700_000_000_000):
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def clocked(db_path, backend, clock):
    with JournalStore.open(db_path, clock=clock) as s:
        yield s


def _ask(store, **kw):
    args = dict(subject_type="tool", subject_id="shell.exec", request_summary="run ls",
                principal="user:ada", session_id="s1")
    args.update(kw)
    return store.approvals.create(**args)


def _count(store, table="approvals"):
    with store.read() as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_create_returns_a_pending_record_with_the_api_fields(store):
    rec = _ask(store, run_id="r1", device_id="d1", channel="cli", policy_snapshot={"rule": 1},
               prompt={"text": "ok?"}, expires_at_unix_ms=2**40)
    assert isinstance(rec, ApprovalRecord) and list(rec.to_dict()) == RECORD_FIELDS
    assert rec.decision is None and rec.scope is None and rec.resolved_at_unix_ms is None
    assert (rec.run_id, rec.device_id, rec.channel) == ("r1", "d1", "cli")
    assert rec.policy_snapshot == {"rule": 1} and rec.prompt == {"text": "ok?"}
    assert len(rec.approval_id) == 26
    assert store.approvals.get(rec.approval_id) == rec
    assert store.approvals.get("nope") is None


def test_sensitive_fields_are_redacted_before_storing(store, db_path):
    rec = _ask(store, request_summary="refresh with oauth_refresh_token=abc123",
               prompt={"details": {"cookie": "sessionid=s3cr3t"}, "q": "allow?"},
               policy_snapshot={"rule": "ask", "api_key": "sk-live-123"})
    assert rec.request_summary == "refresh with oauth_refresh_token=<redacted>"  # masked in place
    assert rec.prompt == {"details": {"cookie": "<redacted>"}, "q": "allow?"}
    assert rec.policy_snapshot == {"api_key": "<redacted>", "rule": "ask"}
    done = store.approvals.resolve(rec.approval_id, decision="deny",
                                   reason="leaked Authorization: Bearer xyz")
    assert done.reason == "leaked Authorization: <redacted>"
    text_prompt = _ask(store, prompt={"details": '{"cookie":"sessionid=9","a":1}'})
    assert text_prompt.prompt == {"details": '{"a":1,"cookie":"<redacted>"}'}
    dump = repr(raw_db.table_rows(db_path))  # every stored row, on either engine
    for secret in ("abc123", "s3cr3t", "sk-live-123", "Bearer xyz", "sessionid=9"):
        assert secret not in dump
    assert store.approvals.get(rec.approval_id).prompt["details"]["cookie"] == "<redacted>"


def test_ordinary_prose_survives_redaction(store):
    rec = _ask(store, request_summary="a basic plan; token count: 5; the cookie jar")
    assert rec.request_summary == "a basic plan; token count: 5; the cookie jar"


def test_resolve_once_and_decisions_never_change(clocked, clock, db_path):
    store = clocked
    rec = _ask(store)
    clock.now += 500
    done = store.approvals.resolve(rec.approval_id, decision="allow", scope="session",
                                   reason="fine", resolved_by="user:ada")
    assert (done.decision, done.scope, done.reason, done.resolved_by) == \
        ("allow", "session", "fine", "user:ada")
    assert done.resolved_at_unix_ms == clock.now
    assert store.approvals.get(rec.approval_id) == done
    events = _count(store, "journal_events")
    with pytest.raises(AlreadyResolvedError, match=rec.approval_id):
        store.approvals.resolve(rec.approval_id, decision="deny")
    assert store.approvals.get(rec.approval_id) == done
    assert _count(store, "journal_events") == events
    conn = raw_db.connect(db_path)  # even raw SQL cannot rewrite a decision
    with pytest.raises(raw_db.refused_error(conn), match="never changes"):
        conn.execute("UPDATE approvals SET decision = 'deny'")
    with pytest.raises(raw_db.refused_error(conn), match="never deleted"):
        conn.execute("DELETE FROM approvals")
    conn.close()


@pytest.mark.parametrize("kwargs,field", [
    (dict(decision="maybe"), "decision"),
    (dict(decision="allow", scope="forever"), "scope"),
    (dict(decision="allow", scope="timeboxed"), "scope_ttl_ms"),
    (dict(decision="allow", scope="timeboxed", scope_ttl_ms=0), "scope_ttl_ms"),
    (dict(decision="allow", scope="once", scope_ttl_ms=10), "scope_ttl_ms"),
    (dict(decision="allow", resolved_by=""), "resolved_by"),
    (dict(decision="allow", reason=5), "reason"),
])
def test_invalid_resolutions_name_the_value_and_write_nothing(store, kwargs, field):
    rec = _ask(store)
    events = _count(store, "journal_events")
    with pytest.raises(InvalidPayloadError, match=field) as info:
        store.approvals.resolve(rec.approval_id, **kwargs)
    bad = [v for k, v in kwargs.items() if k == field]
    if bad and isinstance(bad[0], str) and bad[0]:
        assert repr(bad[0]) in str(info.value)
    assert store.approvals.get(rec.approval_id).decision is None
    assert _count(store, "journal_events") == events


def test_invalid_requests_are_refused(store):
    with pytest.raises(InvalidPayloadError, match="'robot'"):
        _ask(store, subject_type="robot")
    with pytest.raises(InvalidPayloadError, match="subject_id"):
        _ask(store, subject_id="")
    with pytest.raises(InvalidPayloadError, match="request_summary"):
        _ask(store, request_summary=None)
    with pytest.raises(InvalidPayloadError, match="expires_at_unix_ms"):
        _ask(store, expires_at_unix_ms="soon")
    with pytest.raises(InvalidPayloadError):
        _ask(store, prompt={"x": float("inf")})
    with pytest.raises(NotFoundError, match="'nope'"):
        store.approvals.resolve("nope", decision="allow")
    rec = _ask(store, approval_id="fixed-1")
    with pytest.raises(DuplicateIdError, match="fixed-1"):
        _ask(store, approval_id=rec.approval_id)
    assert _count(store) == 1


def test_fields_are_limited_by_max_payload_bytes(db_path, backend):
    with JournalStore.open(db_path, max_payload_bytes=100) as store:
        with pytest.raises(PayloadTooLargeError, match="prompt"):
            _ask(store, prompt={"text": "x" * 200})
        assert _count(store) == 0


def test_every_subject_type_and_decision_is_accepted(store):
    for st in ("tool", "channel_send", "secret_access", "browser_action", "node_capability",
               "device_pairing"):
        _ask(store, subject_type=st, subject_id=st)
    for i, decision in enumerate(("allow", "deny", "timeout", "error")):
        rec = _ask(store, subject_id=f"x{i}")
        assert store.approvals.resolve(rec.approval_id, decision=decision).decision == decision


def test_expire_overdue_times_out_pending_requests_past_their_deadline(clocked, clock):
    store = clocked
    t0 = clock.now
    soon = _ask(store, expires_at_unix_ms=t0 + 1_000)
    later = _ask(store, expires_at_unix_ms=t0 + 10_000)
    never = _ask(store)
    decided = _ask(store, expires_at_unix_ms=t0 + 1_000)
    store.approvals.resolve(decided.approval_id, decision="allow")
    assert store.approvals.expire_overdue(now_unix_ms=t0 + 999) == 0
    assert store.approvals.expire_overdue(now_unix_ms=t0 + 1_000) == 1
    rec = store.approvals.get(soon.approval_id)
    assert (rec.decision, rec.resolved_at_unix_ms) == ("timeout", t0 + 1_000)
    clock.now = t0 + 20_000
    assert store.approvals.expire_overdue() == 1
    assert store.approvals.get(later.approval_id).decision == "timeout"
    assert store.approvals.get(never.approval_id).decision is None
    assert store.approvals.get(decided.approval_id).decision == "allow"
    with pytest.raises(AlreadyResolvedError):
        store.approvals.resolve(soon.approval_id, decision="allow")


def test_standing_decision_scopes(clocked, clock):
    store = clocked
    ap = store.approvals
    t0 = clock.now
    kw = dict(principal="user:ada", subject_id="shell.exec")
    assert ap.standing_decision(**kw, session_id="s1") is None
    once = _ask(store)
    ap.resolve(once.approval_id, decision="allow", scope="once")
    assert ap.standing_decision(**kw, session_id="s1") is None  # once never applies again
    clock.now += 10
    sess = _ask(store)
    ap.resolve(sess.approval_id, decision="allow", scope="session")
    assert ap.standing_decision(**kw, session_id="s1").approval_id == sess.approval_id
    assert ap.standing_decision(**kw, session_id="s2") is None
    assert ap.standing_decision(**kw) is None
    assert ap.standing_decision(principal="user:bob", subject_id="shell.exec",
                                session_id="s1") is None
    assert ap.standing_decision(principal="user:ada", subject_id="fs.write",
                                session_id="s1") is None
    clock.now += 10
    tb = _ask(store, session_id="s9")
    ap.resolve(tb.approval_id, decision="deny", scope="timeboxed", scope_ttl_ms=1_000)
    resolved_at = clock.now
    # timeboxed applies in any session until its TTL runs out; the latest applicable wins
    assert ap.standing_decision(**kw, session_id="s2").decision == "deny"
    assert ap.standing_decision(**kw, session_id="s1").approval_id == tb.approval_id
    assert ap.standing_decision(**kw, now_unix_ms=resolved_at + 999).approval_id == tb.approval_id
    assert ap.standing_decision(**kw, now_unix_ms=resolved_at + 1_000) is None
    late = ap.standing_decision(**kw, session_id="s1", now_unix_ms=resolved_at + 5_000)
    assert late.approval_id == sess.approval_id
    # timeouts and errors are not standing decisions
    clock.now += 10
    t = _ask(store)
    ap.resolve(t.approval_id, decision="error", scope="session")
    assert ap.standing_decision(**kw, session_id="s1",
                                now_unix_ms=resolved_at + 5_000).approval_id == sess.approval_id
    assert clock.now > t0


def test_standing_decision_survives_a_restart(db_path, backend, clock):
    with JournalStore.open(db_path, clock=clock) as store:
        rec = _ask(store)
        store.approvals.resolve(rec.approval_id, decision="allow", scope="session")
    with JournalStore.open(db_path, clock=clock) as store:
        found = store.approvals.standing_decision(principal="user:ada", subject_id="shell.exec",
                                                  session_id="s1")
        assert found is not None and found.approval_id == rec.approval_id


def test_list_pages_501_records_as_500_and_1(store):
    # ids generated within one millisecond are not ordered among themselves, but paging by id
    # still visits every record exactly once
    ids = sorted(_ask(store, subject_id=f"t{i % 3}").approval_id for i in range(501))
    page1 = store.approvals.list(limit=500)
    page2 = store.approvals.list(after_id=page1[-1].approval_id, limit=500)
    assert (len(page1), len(page2)) == (500, 1)
    assert [r.approval_id for r in page1 + page2] == ids
    assert store.approvals.list(after_id=page2[-1].approval_id, limit=500) == []
    assert len(store.approvals.list()) == 100
    assert len(store.approvals.list(limit=5000)) == 501  # clamped to 1000


def test_list_filters(clocked, clock):
    store = clocked
    t0 = clock.now
    a = _ask(store, subject_type="tool", subject_id="x", principal="p1")
    clock.now += 100
    b = _ask(store, subject_type="secret_access", subject_id="y", principal="p2")
    clock.now += 100
    c = _ask(store, subject_type="tool", subject_id="y", principal="p1")
    store.approvals.resolve(b.approval_id, decision="deny")
    ap = store.approvals

    def ids(**kw):
        return [r.approval_id for r in ap.list(**kw)]

    assert ids(pending=True) == [a.approval_id, c.approval_id]
    assert ids(pending=False) == [b.approval_id]
    assert ids(principal="p1") == [a.approval_id, c.approval_id]
    assert ids(subject_id="y") == [b.approval_id, c.approval_id]
    assert ids(subject_type="secret_access") == [b.approval_id]
    assert ids(decision="deny") == [b.approval_id]
    assert ids(since_unix_ms=t0 + 100) == [b.approval_id, c.approval_id]
    assert ids(until_unix_ms=t0 + 100) == [a.approval_id]
    assert ids(principal="p1", subject_id="y", pending=True) == [c.approval_id]
    with pytest.raises(InvalidPayloadError, match="'maybe'"):
        ap.list(decision="maybe")
    with pytest.raises(InvalidPayloadError, match="subject_type"):
        ap.list(subject_type="robot")


def test_events_are_written_with_each_change_and_the_chain_verifies(clocked, clock):
    store = clocked
    a = _ask(store, run_id="r1", channel="slack", request_summary="password=hunter2 please",
             expires_at_unix_ms=clock.now + 5)
    b = _ask(store)
    store.approvals.resolve(b.approval_id, decision="allow", scope="timeboxed",
                            scope_ttl_ms=60_000, resolved_by="user:ada")
    store.approvals.expire_overdue(now_unix_ms=clock.now + 10)
    evs = [e for e in store.events() if e.kind.startswith("approval.")]
    assert [(e.kind, e.payload["approval_id"]) for e in evs] == [
        ("approval.requested", a.approval_id), ("approval.requested", b.approval_id),
        ("approval.resolved", b.approval_id), ("approval.resolved", a.approval_id)]
    assert evs[0].run_id == "r1" and evs[0].channel == "slack" and evs[0].principal == "user:ada"
    assert "hunter2" not in evs[0].payload_json
    assert evs[2].payload["decision"] == "allow" and evs[2].payload["scope_ttl_ms"] == 60_000
    assert evs[3].payload["decision"] == "timeout"
    assert store.verify().ok
