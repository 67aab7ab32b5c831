"""Cron jobs and runs: records, validation, jitter, each misfire and concurrency policy row of the
spec, retries with backoff, leases, the run state machine, journal events, the scheduler loop."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import threading

import pytest

import palyra_journal as pj
from palyra_journal import (
    At, CronSchedule, DuplicateIdError, Every, InvalidPayloadError, InvalidScheduleError,
    InvalidStateError, NotFoundError,
)
from palyra_journal.cron import CronClaim, CronJobRecord, CronRunRecord, demo_step, jitter_delay

T0 = 1_700_000_000_000


class Clock:
    """A simulated store clock (Unix ms)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cs(db_path, backend, clock):
    s = pj.JournalStore.open(db_path, clock=clock)
    try:
        yield s
    finally:
        s.close()


def make(store, **kw) -> CronJobRecord:
    args = dict(name="job", prompt="do it", owner_principal="alice", channel="cli",
                schedule=Every(1_000))
    args.update(kw)
    return store.cron.create_job(**args)


def counts(store) -> tuple[int, int, int]:
    with store.read() as conn:
        return tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                     for t in ("cron_jobs", "cron_runs", "journal_events"))


def claim(store, clock, **kw) -> list[CronClaim]:
    return store.cron.claim_due(worker_id=kw.pop("worker_id", "w1"), **kw)


# --------------------------------------------------------------------------------- records / jobs
def test_records_have_exactly_the_api_attributes(cs, clock):
    job = make(cs)
    assert [f.name for f in dataclasses.fields(CronJobRecord)] == [
        "job_id", "name", "prompt", "owner_principal", "channel", "session_key", "session_label",
        "schedule", "enabled", "concurrency_policy", "misfire_policy", "max_attempts",
        "backoff_ms", "jitter_ms", "next_run_at_unix_ms", "last_run_at_unix_ms", "queued_run",
        "created_at_unix_ms", "updated_at_unix_ms"]
    assert [f.name for f in dataclasses.fields(CronRunRecord)] == [
        "run_id", "job_id", "attempt", "status", "worker_id", "lease_expires_at_unix_ms",
        "scheduled_for_unix_ms", "started_at_unix_ms", "finished_at_unix_ms", "session_id",
        "orchestrator_run_id", "error_kind", "error_message", "model_tokens_in",
        "model_tokens_out", "tool_calls", "tool_denies"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.name = "x"  # type: ignore[misc]
    d = job.to_dict()
    assert d["schedule"] == {"type": "every", "interval_ms": 1_000}
    assert d["next_run_at_unix_ms"] == T0 + 1_000 and d["created_at_unix_ms"] == T0
    assert cs.cron.get_job(job.job_id) == job
    assert cs.cron.get_job("nope") is None
    clock.advance(1_000)
    (c,) = claim(cs, clock)
    assert set(c.to_dict()) == {"job", "run"} and c.run.status == "accepted"


def test_create_defaults_and_schedule_forms(cs):
    job = make(cs, schedule=CronSchedule("*/5 * * * *", timezone="Europe/Prague"),
               session_key="k", session_label="daily")
    assert (job.concurrency_policy, job.misfire_policy, job.max_attempts, job.backoff_ms,
            job.jitter_ms, job.enabled) == ("forbid", "skip", 1, 1_000, 0, True)
    assert job.schedule == CronSchedule("*/5 * * * *", timezone="Europe/Prague")
    assert job.next_run_at_unix_ms == T0 + 100_000  # T0 is 22:13:20 UTC; next is 22:15:00
    assert make(cs, schedule=At(T0 + 5)).next_run_at_unix_ms == T0 + 5


@pytest.mark.parametrize("kw, error, fragment", [
    ({"concurrency_policy": "parallel"}, InvalidScheduleError, "concurrency_policy"),
    ({"misfire_policy": "all"}, InvalidScheduleError, "misfire_policy"),
    ({"jitter_ms": 60_001}, InvalidScheduleError, "jitter_ms"),
    ({"schedule": At(T0)}, InvalidScheduleError, "not in the future"),
    ({"schedule": "every day"}, InvalidScheduleError, "every day"),
    ({"max_attempts": 0}, InvalidPayloadError, "max_attempts"),
    ({"backoff_ms": -1}, InvalidPayloadError, "backoff_ms"),
    ({"name": ""}, InvalidPayloadError, "name"),
    ({"owner_principal": None}, InvalidPayloadError, "owner_principal"),
    ({"enabled": 1}, InvalidPayloadError, "enabled"),
])
def test_invalid_create_names_the_field_and_writes_nothing(cs, kw, error, fragment):
    before = counts(cs)
    with pytest.raises(error) as info:
        make(cs, **kw)
    assert fragment in str(info.value)
    assert counts(cs) == before


def test_duplicate_job_id(cs):
    make(cs, job_id="nightly")
    before = counts(cs)
    with pytest.raises(DuplicateIdError, match="nightly"):
        make(cs, job_id="nightly")
    assert counts(cs) == before


def test_list_jobs_pages_and_filters(cs):
    ids = [make(cs, job_id=f"j{i}", owner_principal="bob" if i % 2 else "alice",
                enabled=i != 3).job_id for i in range(6)]
    assert [j.job_id for j in cs.cron.list_jobs()] == ids
    assert [j.job_id for j in cs.cron.list_jobs(after_job_id="j1", limit=2)] == ["j2", "j3"]
    assert [j.job_id for j in cs.cron.list_jobs(owner_principal="bob")] == ["j1", "j3", "j5"]
    assert [j.job_id for j in cs.cron.list_jobs(enabled=False)] == ["j3"]
    assert cs.cron.list_jobs(channel="other") == []


def test_update_recomputes_next_run_and_refuses_unknown_fields(cs, clock):
    job = make(cs)
    clock.advance(250)
    job2 = cs.cron.update_job(job.job_id, schedule=Every(10_000), name="renamed")
    assert job2.name == "renamed" and job2.next_run_at_unix_ms == T0 + 250 + 10_000
    assert job2.updated_at_unix_ms == T0 + 250
    off = cs.cron.update_job(job.job_id, enabled=False)
    assert off.next_run_at_unix_ms is None
    clock.advance(60_000)
    assert claim(cs, clock) == []
    on = cs.cron.update_job(job.job_id, enabled=True)
    assert on.next_run_at_unix_ms == clock.now + 10_000
    before = counts(cs)
    with pytest.raises(InvalidPayloadError, match="colour"):
        cs.cron.update_job(job.job_id, colour="red")
    with pytest.raises(InvalidScheduleError, match="jitter_ms"):
        cs.cron.update_job(job.job_id, jitter_ms=70_000)
    with pytest.raises(NotFoundError, match="missing"):
        cs.cron.update_job("missing", name="x")
    assert counts(cs) == before


def test_delete_refuses_while_a_run_is_active(cs, clock):
    job = make(cs)
    clock.advance(1_000)
    (c,) = claim(cs, clock)
    before = counts(cs)
    with pytest.raises(InvalidStateError, match=c.run.run_id):
        cs.cron.delete_job(job.job_id)
    assert counts(cs) == before
    cs.cron.finalize_cron_run(c.run.run_id, status="succeeded")
    assert cs.cron.delete_job(job.job_id) is True
    assert cs.cron.get_job(job.job_id) is None and cs.cron.list_runs(job_id=job.job_id) == []
    assert cs.cron.delete_job(job.job_id) is False


# --------------------------------------------------------------------------------- jitter
def test_jitter_is_the_spec_formula_per_slot_without_accumulating(cs, clock):
    job = make(cs, job_id="jittery", schedule=Every(60_000), jitter_ms=30_000)
    slot1 = T0 + 60_000
    expect = int(hashlib.sha256(f"jittery:{slot1}".encode()).hexdigest()[:8], 16) % 30_001
    assert jitter_delay("jittery", slot1, 30_000) == expect
    assert job.next_run_at_unix_ms == slot1 + expect
    clock.now = slot1 + expect - 1
    assert claim(cs, clock) == []
    clock.now = slot1 + expect
    (c,) = claim(cs, clock)
    assert c.run.scheduled_for_unix_ms == slot1
    slot2 = slot1 + 60_000
    assert c.job.next_run_at_unix_ms == slot2 + jitter_delay("jittery", slot2, 30_000)
    assert jitter_delay("x", 5, 0) == 0


# --------------------------------------------------------------------------------- misfire
def test_misfire_skip_runs_only_the_latest_missed_slot(cs, clock):
    job = make(cs, schedule=Every(1_000), misfire_policy="skip")
    clock.now = T0 + 5_500  # slots T0+1000 .. T0+5000 were missed
    (c,) = claim(cs, clock)
    assert c.run.scheduled_for_unix_ms == T0 + 5_000
    assert cs.cron.get_job(job.job_id).next_run_at_unix_ms == T0 + 6_000
    assert len(cs.cron.list_runs(job_id=job.job_id)) == 1


def test_misfire_catch_up_runs_three_oldest_and_skips_the_rest(cs, clock):
    job = make(cs, schedule=Every(1_000), misfire_policy="catch_up", concurrency_policy="forbid")
    clock.now = T0 + 6_200  # 6 missed slots
    claims = claim(cs, clock)
    assert [c.run.scheduled_for_unix_ms for c in claims] == [T0 + 1_000, T0 + 2_000, T0 + 3_000]
    runs = cs.cron.list_runs(job_id=job.job_id)
    skipped = [r for r in runs if r.status == "skipped"]
    assert len(runs) == 4 and len(skipped) == 1
    assert skipped[0].error_kind == "misfire_limit"
    assert skipped[0].scheduled_for_unix_ms == T0 + 6_000
    assert str(T0 + 4_000) in skipped[0].error_message
    assert cs.cron.get_job(job.job_id).next_run_at_unix_ms == T0 + 7_000


def test_misfire_catch_up_within_the_limit_runs_each_slot(cs, clock):
    make(cs, schedule=Every(1_000), misfire_policy="catch_up")
    clock.now = T0 + 2_000
    claims = claim(cs, clock)
    assert [c.run.scheduled_for_unix_ms for c in claims] == [T0 + 1_000, T0 + 2_000]
    assert all(c.run.status == "accepted" for c in claims)


def test_misfire_skip_on_a_cron_schedule_far_behind(cs, clock):
    job = make(cs, schedule=CronSchedule("* * * * * *"))  # every second
    clock.advance(3 * 86_400_000 + 500)
    (c,) = claim(cs, clock)
    assert c.run.scheduled_for_unix_ms == clock.now - 500
    assert cs.cron.get_job(job.job_id).next_run_at_unix_ms == clock.now + 500


# --------------------------------------------------------------------------------- concurrency
def test_concurrency_forbid_records_a_skipped_run(cs, clock):
    job = make(cs, concurrency_policy="forbid")
    clock.advance(1_000)
    (first,) = claim(cs, clock)
    clock.advance(1_000)
    assert claim(cs, clock) == []
    runs = cs.cron.list_runs(job_id=job.job_id)
    assert [(r.status, r.error_kind) for r in runs] == [("accepted", None),
                                                        ("skipped", "concurrency_forbid")]
    assert runs[1].scheduled_for_unix_ms == T0 + 2_000 and first.run.run_id in runs[1].error_message
    cs.cron.finalize_cron_run(first.run.run_id, status="succeeded")
    clock.advance(1_000)
    (third,) = claim(cs, clock)
    assert third.run.scheduled_for_unix_ms == T0 + 3_000


def test_a_run_with_an_expired_lease_is_not_active(cs, clock):
    make(cs, concurrency_policy="forbid")
    clock.advance(1_000)
    claim(cs, clock, lease_ms=500)
    clock.advance(1_000)
    (c,) = claim(cs, clock)
    assert c.run.status == "accepted"


def test_concurrency_queue_one_coalesces_and_starts_when_the_active_run_ends(cs, clock):
    job = make(cs, concurrency_policy="queue_one")
    clock.advance(1_000)
    (first,) = claim(cs, clock)
    clock.advance(1_000)
    assert claim(cs, clock) == []
    assert cs.cron.get_job(job.job_id).queued_run == T0 + 2_000
    clock.advance(1_000)
    assert claim(cs, clock) == []  # a second queued tick is coalesced into the first
    assert cs.cron.get_job(job.job_id).queued_run == T0 + 2_000
    assert len(cs.cron.list_runs(job_id=job.job_id)) == 1
    cs.cron.start_cron_run(first.run.run_id)
    cs.cron.finalize_cron_run(first.run.run_id, status="succeeded")
    (queued,) = claim(cs, clock)
    assert queued.run.scheduled_for_unix_ms == T0 + 2_000 and queued.job.queued_run is None


def test_concurrency_replace_cancels_the_active_run(cs, clock):
    job = make(cs, concurrency_policy="replace")
    clock.advance(1_000)
    (first,) = claim(cs, clock)
    cs.cron.start_cron_run(first.run.run_id)
    clock.advance(1_000)
    (second,) = claim(cs, clock)
    old = [r for r in cs.cron.list_runs(job_id=job.job_id) if r.run_id == first.run.run_id][0]
    assert (old.status, old.error_kind, old.finished_at_unix_ms) == ("cancelled", "replaced",
                                                                     clock.now)
    assert second.run.status == "accepted" and second.run.scheduled_for_unix_ms == T0 + 2_000
    with pytest.raises(InvalidStateError, match="cancelled"):
        cs.cron.finalize_cron_run(first.run.run_id, status="succeeded")
    with pytest.raises(InvalidStateError):
        cs.cron.heartbeat(first.run.run_id)


# --------------------------------------------------------------------------------- retries, leases
def test_failed_runs_retry_with_exponential_backoff(cs, clock):
    job = make(cs, max_attempts=3, backoff_ms=1_000, schedule=Every(3_600_000))
    clock.now = T0 + 3_600_000
    (c1,) = claim(cs, clock)
    cs.cron.finalize_cron_run(c1.run.run_id, status="failed", error_kind="model_error")
    clock.advance(999)
    assert claim(cs, clock) == []
    clock.advance(1)
    (c2,) = claim(cs, clock)
    assert (c2.run.attempt, c2.run.scheduled_for_unix_ms) == (2, c1.run.scheduled_for_unix_ms)
    cs.cron.finalize_cron_run(c2.run.run_id, status="failed")
    clock.advance(1_999)
    assert claim(cs, clock) == []
    clock.advance(1)
    (c3,) = claim(cs, clock)
    assert c3.run.attempt == 3
    cs.cron.finalize_cron_run(c3.run.run_id, status="failed")
    clock.advance(100_000)
    assert claim(cs, clock) == []  # max_attempts reached
    assert [r.attempt for r in cs.cron.list_runs(job_id=job.job_id)] == [1, 2, 3]


def test_denied_runs_are_never_retried(cs, clock):
    make(cs, max_attempts=5, backoff_ms=10, schedule=Every(3_600_000))
    clock.now = T0 + 3_600_000
    (c,) = claim(cs, clock)
    cs.cron.finalize_cron_run(c.run.run_id, status="denied", error_kind="policy")
    clock.advance(1_000)
    assert claim(cs, clock) == []


def test_heartbeat_extends_and_expired_leases_are_recovered_as_failed(cs, clock):
    make(cs, max_attempts=2, backoff_ms=100, schedule=Every(3_600_000))
    clock.now = T0 + 3_600_000
    (c,) = claim(cs, clock, lease_ms=1_000)
    assert c.run.lease_expires_at_unix_ms == clock.now + 1_000
    clock.advance(900)
    assert cs.cron.heartbeat(c.run.run_id, lease_ms=1_000).lease_expires_at_unix_ms == clock.now + 1_000
    clock.advance(900)
    assert cs.cron.recover_expired_leases() == 0
    clock.advance(100)
    with pytest.raises(InvalidStateError, match="lease expired"):
        cs.cron.heartbeat(c.run.run_id)
    assert cs.cron.recover_expired_leases() == 1
    run = cs.cron.get_run(c.run.run_id)
    assert (run.status, run.error_kind) == ("failed", "lease_expired")
    clock.advance(100)
    (retry,) = claim(cs, clock)
    assert retry.run.attempt == 2


# --------------------------------------------------------------------------------- state machine
def test_finalize_checks_every_transition(cs, clock):
    make(cs)
    clock.advance(1_000)
    (c,) = claim(cs, clock)
    rid = c.run.run_id
    started = cs.cron.start_cron_run(rid, session_id="s1", orchestrator_run_id="o1")
    assert (started.status, started.started_at_unix_ms, started.session_id) == ("running",
                                                                                 clock.now, "s1")
    with pytest.raises(InvalidStateError, match="from running to running"):
        cs.cron.start_cron_run(rid)
    done = cs.cron.finalize_cron_run(rid, status="succeeded", model_tokens_in=10,
                                     model_tokens_out=20, tool_calls=3, tool_denies=1)
    assert (done.model_tokens_in, done.model_tokens_out, done.tool_calls,
            done.tool_denies) == (10, 20, 3, 1)
    before = counts(cs)
    with pytest.raises(InvalidStateError) as info:
        cs.cron.finalize_cron_run(rid, status="failed")
    assert "succeeded" in str(info.value) and "failed" in str(info.value)
    with pytest.raises(InvalidPayloadError, match="status"):
        cs.cron.finalize_cron_run(rid, status="running")
    with pytest.raises(InvalidPayloadError, match="tool_calls"):
        cs.cron.finalize_cron_run(rid, status="failed", tool_calls=-1)
    with pytest.raises(NotFoundError, match="nope"):
        cs.cron.finalize_cron_run("nope", status="failed")
    assert counts(cs) == before


def test_accepted_runs_can_be_finalized_directly(cs, clock):
    make(cs)
    clock.advance(1_000)
    (c,) = claim(cs, clock)
    assert cs.cron.finalize_cron_run(c.run.run_id, status="skipped").status == "skipped"


def test_error_messages_are_redacted_and_capped(cs, clock):
    make(cs, schedule=Every(10))
    clock.advance(10)
    (a,) = claim(cs, clock)
    run = cs.cron.finalize_cron_run(a.run.run_id, status="failed",
                                    error_message="call failed: Authorization: Bearer abc")
    assert run.error_message == "call failed: Authorization: <redacted>"  # masked in place
    clock.advance(10)
    (b,) = claim(cs, clock)
    run = cs.cron.finalize_cron_run(b.run.run_id, status="failed", error_message="x" * 50_000)
    assert len(run.error_message) <= 2_000 and run.error_message.endswith("…")


# --------------------------------------------------------------------------------- journal events
def test_each_change_writes_its_journal_event(cs, clock):
    job = make(cs, concurrency_policy="forbid")
    clock.advance(1_000)
    (c,) = claim(cs, clock)
    cs.cron.start_cron_run(c.run.run_id)
    clock.advance(1_000)
    claim(cs, clock)  # forbid: a skipped run, finished at once
    cs.cron.finalize_cron_run(c.run.run_id, status="succeeded", model_tokens_in=7)
    cs.cron.update_job(job.job_id, name="n2")
    cs.cron.delete_job(job.job_id)
    events = cs.events()
    assert [e.kind for e in events] == [
        "cron.job_created", "cron.run_claimed", "cron.run_started", "cron.run_finished",
        "cron.run_finished", "cron.job_updated", "cron.job_deleted"]
    assert events[1].run_id == c.run.run_id and events[1].principal == "alice"
    assert events[1].payload["worker_id"] == "w1"
    assert events[3].payload["error_kind"] == "concurrency_forbid"
    assert events[4].payload["status"] == "succeeded"
    assert events[4].payload["usage"]["model_in"] == 7
    assert events[4].timestamp_unix_ms == clock.now
    assert cs.verify().ok


# --------------------------------------------------------------------------------- claiming
def test_claim_takes_oldest_first_up_to_limit(cs, clock):
    late = make(cs, job_id="late", schedule=Every(5_000))
    early = make(cs, job_id="early", schedule=Every(2_000))
    clock.advance(6_000)
    (c,) = claim(cs, clock, limit=1)
    assert c.job.job_id == early.job_id
    (c,) = claim(cs, clock, limit=1)
    assert c.job.job_id == late.job_id
    with pytest.raises(InvalidPayloadError, match="worker_id"):
        cs.cron.claim_due(worker_id="")


def test_claim_due_accepts_an_explicit_now(cs):
    make(cs)
    assert cs.cron.claim_due(worker_id="w", now_unix_ms=T0 + 999) == []
    (c,) = cs.cron.claim_due(worker_id="w", now_unix_ms=T0 + 1_000, lease_ms=5)
    assert c.run.lease_expires_at_unix_ms == T0 + 1_005


def test_at_job_runs_once(cs, clock):
    job = make(cs, schedule=At(T0 + 50))
    clock.advance(50)
    assert len(claim(cs, clock)) == 1
    assert cs.cron.get_job(job.job_id).next_run_at_unix_ms is None
    clock.advance(10_000)
    assert claim(cs, clock) == []


def test_list_runs_pages(cs, clock):
    job = make(cs, schedule=Every(10), concurrency_policy="replace")
    ids = []
    for _ in range(5):
        clock.advance(10)
        ids += [c.run.run_id for c in claim(cs, clock)]
    runs = cs.cron.list_runs(job_id=job.job_id)
    assert sorted(ids) == [r.run_id for r in runs]
    page = cs.cron.list_runs(job_id=job.job_id, after_run_id=runs[1].run_id, limit=2)
    assert page == runs[2:4]


# --------------------------------------------------------------------------------- scheduler
def test_run_scheduler_runs_the_handler_and_finalizes(db_path, backend):
    store = pj.JournalStore.open(db_path)
    try:
        ok = make(store, name="ok", schedule=Every(20))
        bad = make(store, name="bad", schedule=Every(20), max_attempts=1)
        seen = []

        def handler(c: CronClaim):
            seen.append(c.job.name)
            if c.job.name == "bad":
                raise RuntimeError("boom password=hunter2")
            return {"tool_calls": 2}

        n = store.cron.run_scheduler(handler, worker_id="sched", poll_ms=10, max_runs=4,
                                     max_seconds=20)
        assert n == 4 and {"ok", "bad"} <= set(seen)
        runs = store.cron.list_runs()
        by_job = {j: [r for r in runs if r.job_id == j] for j in (ok.job_id, bad.job_id)}
        assert all(r.status == "succeeded" and r.tool_calls == 2 for r in by_job[ok.job_id])
        failed = by_job[bad.job_id]
        assert all(r.status == "failed" and r.error_kind == "exception" for r in failed)
        assert all(r.error_message == "RuntimeError: boom password=<redacted>"  # masked in place
                   for r in failed)
        assert all(r.started_at_unix_ms is not None for r in runs)
    finally:
        store.close()


def test_run_scheduler_stops_on_event(db_path, backend):
    store = pj.JournalStore.open(db_path)
    try:
        stop = threading.Event()
        make(store, schedule=Every(10))
        n = store.cron.run_scheduler(lambda c: stop.set(), worker_id="w", poll_ms=5, stop=stop,
                                     max_seconds=20)
        assert n >= 1 and stop.is_set()
    finally:
        store.close()


def test_demo_step_runs_two_jobs(db_path, backend):
    store = pj.JournalStore.open(db_path)
    try:
        out = io.StringIO()
        summary = demo_step(store, out)
        assert summary["jobs"] == summary["jobs_run"] == 2
        assert summary["runs"] == summary["succeeded"] >= 2
        assert all(not j.enabled for j in store.cron.list_jobs())
        assert "demo-once" in out.getvalue() and "demo-heartbeat" in out.getvalue()
    finally:
        store.close()
