"""Cron (docs/cron.md): jobs, atomic claiming of due runs, leases, retries.

Why it is built this way:

* :meth:`CronStore.claim_due` is the only way a run starts. It selects, decides and writes inside
  one ``BEGIN IMMEDIATE`` transaction, so when several worker processes poll the same file each
  slot is claimed by exactly one of them (SQLite serializes the writers; the selection is made
  after the lock is held).
* A job remembers the slot its schedule fires next (``next_slot_unix_ms``) apart from the moment
  it becomes due (``next_run_at_unix_ms`` = slot + jitter), so jitter never accumulates and
  ``Every`` series stay on their grid.
* Retries and queued runs wait in ``cron_pending`` until their time; the same ``claim_due`` call
  turns them into runs.
* Every state change writes its journal event (``cron.*``) in the same transaction, and every run
  transition is checked against the run state machine (:data:`TRANSITIONS`).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections import namedtuple
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

from .errors import (
    DuplicateIdError, InvalidPayloadError, InvalidScheduleError, InvalidStateError, NotFoundError,
)
from .fields import (
    MAX_SAFE_INT, MAX_TEXT_CHARS, check_bool, check_choice, check_int, check_text,
    redact_text,
)
from .ids import new_ulid
from .paging import page_query
from .schedule import At, Every, Schedule, coerce_schedule, schedule_from_dict, schedule_json

if TYPE_CHECKING:
    from .store import JournalStore

CONCURRENCY_POLICIES = ("forbid", "replace", "queue_one")
MISFIRE_POLICIES = ("skip", "catch_up")
RUN_STATUSES = ("accepted", "running", "succeeded", "failed", "skipped", "denied", "cancelled")
ACTIVE_STATUSES = ("accepted", "running")
FINAL_STATUSES = ("succeeded", "failed", "skipped", "denied", "cancelled")
#: Allowed run transitions: from -> statuses it may move to.
TRANSITIONS = {
    "accepted": ("running",) + FINAL_STATUSES,
    "running": FINAL_STATUSES,
}
#: ``catch_up`` runs at most this many missed slots per claim; the rest become one skipped run.
CATCH_UP_LIMIT = 3
MAX_JITTER_MS = 60_000
MAX_ATTEMPTS = 100
MAX_ERROR_CHARS = 2_000
_MAX_MS = MAX_SAFE_INT

_ACTIVE = "status IN ('accepted', 'running')"


# ---------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class CronJobRecord:
    """One cron job (docs/api.md). ``schedule`` is a CronSchedule, Every or At; ``queued_run`` is the
    slot (Unix ms) of the tick waiting for the active run to end under ``queue_one``, or None."""

    job_id: str
    name: str
    prompt: str
    owner_principal: str
    channel: str | None
    session_key: str | None
    session_label: str | None
    schedule: Schedule
    enabled: bool
    concurrency_policy: str
    misfire_policy: str
    max_attempts: int
    backoff_ms: int
    jitter_ms: int
    next_run_at_unix_ms: int | None
    last_run_at_unix_ms: int | None
    queued_run: int | None
    created_at_unix_ms: int
    updated_at_unix_ms: int

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["schedule"] = self.schedule.to_dict()
        return d


@dataclass(frozen=True)
class CronRunRecord:
    """One run of a job (docs/api.md); ``status`` is one of :data:`RUN_STATUSES`."""

    run_id: str
    job_id: str
    attempt: int
    status: str
    worker_id: str | None
    lease_expires_at_unix_ms: int | None
    scheduled_for_unix_ms: int
    started_at_unix_ms: int | None
    finished_at_unix_ms: int | None
    session_id: str | None
    orchestrator_run_id: str | None
    error_kind: str | None
    error_message: str | None
    model_tokens_in: int
    model_tokens_out: int
    tool_calls: int
    tool_denies: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class CronClaim:
    """A run this worker now owns (status ``accepted``) and its job as of the claim."""

    job: CronJobRecord
    run: CronRunRecord

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job.to_dict(), "run": self.run.to_dict()}


@lru_cache(maxsize=1024)
def _schedule_of(text: str) -> Schedule:
    """Parse a stored schedule once per distinct JSON text (schedules are immutable)."""
    return schedule_from_dict(text)


#: ``cron_jobs`` columns: the record's fields (the schedule stored as JSON) plus the slot the
#: schedule fires next (``next_run_at_unix_ms`` is that slot plus jitter).
JOB_COLUMNS = tuple("schedule_json" if f.name == "schedule" else f.name
                    for f in fields(CronJobRecord)) + ("next_slot_unix_ms",)
#: ``cron_runs`` columns read back: exactly the fields of :class:`CronRunRecord`.
RUN_COLUMNS = tuple(f.name for f in fields(CronRunRecord))
#: A ``cron_jobs`` row by column name (rows become named records at the SQL boundary).
JobRow: Any = namedtuple("JobRow", JOB_COLUMNS)  # type: ignore[misc]
_JOB_SELECT = f"SELECT {', '.join(JOB_COLUMNS)} FROM cron_jobs"
_RUN_SELECT = f"SELECT {', '.join(RUN_COLUMNS)} FROM cron_runs"
_RUN_INSERT = (f"INSERT INTO cron_runs ({', '.join(RUN_COLUMNS)}, claimed_at_unix_ms) "
               f"VALUES ({', '.join('?' * (len(RUN_COLUMNS) + 1))})")


def _job_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Any:
    """Row factory of ``cron_jobs`` queries: a :data:`JobRow`."""
    return JobRow._make(row)


def _run_record(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> CronRunRecord:
    """Row factory of ``cron_runs`` queries: the record itself (its fields are the columns)."""
    return CronRunRecord(*row)


def _jobs(conn: sqlite3.Connection, sql: str, params: Any = ()) -> sqlite3.Cursor:
    """Run a ``_JOB_SELECT`` query whose rows come back as :data:`JobRow`."""
    cur = conn.cursor()
    cur.row_factory = _job_row
    return cur.execute(sql, params)


def _runs(conn: sqlite3.Connection, sql: str, params: Any = ()) -> sqlite3.Cursor:
    """Run a ``_RUN_SELECT`` query whose rows come back as :class:`CronRunRecord`."""
    cur = conn.cursor()
    cur.row_factory = _run_record
    return cur.execute(sql, params)


def _job_from_row(row: Any) -> CronJobRecord:
    return CronJobRecord(
        job_id=row.job_id, name=row.name, prompt=row.prompt, owner_principal=row.owner_principal,
        channel=row.channel, session_key=row.session_key, session_label=row.session_label,
        schedule=_schedule_of(row.schedule_json), enabled=bool(row.enabled),
        concurrency_policy=row.concurrency_policy, misfire_policy=row.misfire_policy,
        max_attempts=row.max_attempts, backoff_ms=row.backoff_ms, jitter_ms=row.jitter_ms,
        next_run_at_unix_ms=row.next_run_at_unix_ms, last_run_at_unix_ms=row.last_run_at_unix_ms,
        queued_run=row.queued_run, created_at_unix_ms=row.created_at_unix_ms,
        updated_at_unix_ms=row.updated_at_unix_ms)


# ---------------------------------------------------------------------------------------- helpers
def jitter_delay(job_id: str, slot_ms: int, jitter_ms: int) -> int:
    """The spec's jitter for one slot: int(first 8 hex of SHA-256(job_id:slot)) mod (jitter+1)."""
    if jitter_ms <= 0:
        return 0
    digest = hashlib.sha256(f"{job_id}:{slot_ms}".encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % (jitter_ms + 1)


#: update_job keywords and their validators (value -> stored value).
_JOB_FIELDS: dict[str, Callable[[Any], Any]] = {
    "name": lambda v: check_text("name", v),
    "prompt": lambda v: check_text("prompt", v, empty_ok=True, max_chars=MAX_TEXT_CHARS),
    "owner_principal": lambda v: check_text("owner_principal", v),
    "channel": lambda v: check_text("channel", v, nullable=True),
    "session_key": lambda v: check_text("session_key", v, nullable=True),
    "session_label": lambda v: check_text("session_label", v, nullable=True),
    "schedule": coerce_schedule,
    "enabled": lambda v: check_bool("enabled", v),
    "concurrency_policy": lambda v: check_choice("concurrency_policy", v, CONCURRENCY_POLICIES,
                                                 error=InvalidScheduleError),
    "misfire_policy": lambda v: check_choice("misfire_policy", v, MISFIRE_POLICIES,
                                             error=InvalidScheduleError),
    "max_attempts": lambda v: check_int("max_attempts", v, lo=1, hi=MAX_ATTEMPTS),
    "backoff_ms": lambda v: check_int("backoff_ms", v, lo=0, hi=7 * 86_400_000),
    "jitter_ms": lambda v: check_int("jitter_ms", v, lo=0, hi=MAX_JITTER_MS, error=InvalidScheduleError),
}


@dataclass
class _Tick:
    """A run about to be created: a schedule slot, a due retry, or a released queued run."""

    slot: int
    attempt: int = 1
    origin: str = "slot"          # "slot" | "retry" | "queued" | "overflow"
    note: str | None = None


# ---------------------------------------------------------------------------------------- store
class _ClaimWrites:
    """The rows one ``claim_due`` batch writes, sent together (one ``executemany`` per statement)
    once every job of the batch was decided."""

    __slots__ = ("runs", "jobs")

    def __init__(self) -> None:
        self.runs: list[tuple[Any, ...]] = []             # _RUN_INSERT parameters
        self.jobs: dict[str, list[tuple[Any, ...]]] = {}  # job UPDATE statement -> parameters

    def flush(self, conn: sqlite3.Connection) -> None:
        if self.runs:
            conn.executemany(_RUN_INSERT, self.runs)
        for sql, params in self.jobs.items():
            conn.executemany(sql, params)


class CronStore:
    """``store.cron``: the cron facade of a JournalStore (docs/api.md "Cron")."""

    def __init__(self, store: "JournalStore") -> None:
        self.store = store

    # ------------------------------------------------------------------ events
    def _event(self, kind: str, job: CronJobRecord, payload: dict[str, Any], now: int) -> None:
        self.store.record_events([{"kind": kind, "payload": payload, "actor": "system",
                                   "principal": job.owner_principal, "channel": job.channel,
                                   "timestamp_unix_ms": now}])

    @staticmethod
    def _job_summary(job: CronJobRecord) -> dict[str, Any]:
        return {"job_id": job.job_id, "name": job.name, "schedule": job.schedule.to_dict(),
                "enabled": job.enabled, "concurrency_policy": job.concurrency_policy,
                "misfire_policy": job.misfire_policy, "max_attempts": job.max_attempts,
                "jitter_ms": job.jitter_ms, "next_run_at_unix_ms": job.next_run_at_unix_ms}

    def _run_event(self, kind: str, job: CronJobRecord, run: CronRunRecord, now: int) -> None:
        self.store.record_events([self._run_event_dict(kind, job, run, now)])

    @staticmethod
    def _run_event_dict(kind: str, job: CronJobRecord, run: CronRunRecord, now: int) -> dict[str, Any]:
        """One run event as a ``record_events`` dict (claim_due writes its events in one batch)."""
        payload = {"job_id": run.job_id, "run_id": run.run_id, "attempt": run.attempt,
                   "status": run.status, "scheduled_for_unix_ms": run.scheduled_for_unix_ms}
        if kind == "cron.run_claimed":
            payload.update(worker_id=run.worker_id,
                           lease_expires_at_unix_ms=run.lease_expires_at_unix_ms)
        elif kind == "cron.run_started":
            payload.update(session_id=run.session_id, orchestrator_run_id=run.orchestrator_run_id)
        else:
            # "usage" keys avoid the word "token", which redaction treats as a secret's key.
            payload.update(error_kind=run.error_kind, usage={
                "model_in": run.model_tokens_in, "model_out": run.model_tokens_out,
                "tool_calls": run.tool_calls, "tool_denies": run.tool_denies})
        return {"kind": kind, "payload": payload, "actor": "system", "run_id": run.run_id,
                "principal": job.owner_principal, "channel": job.channel,
                "timestamp_unix_ms": now}

    # ------------------------------------------------------------------ reads
    @staticmethod
    def _load_job(conn: sqlite3.Connection, job_id: str) -> CronJobRecord | None:
        row = _jobs(conn, _JOB_SELECT + " WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _job_from_row(row)

    @classmethod
    def _loaded_job(cls, conn: sqlite3.Connection, job_id: str) -> CronJobRecord:
        """The job just written in this transaction (NotFoundError if it vanished)."""
        job = cls._load_job(conn, job_id)
        if job is None:
            raise NotFoundError(f"cron job {job_id!r} not found")
        return job

    @staticmethod
    def _load_run(conn: sqlite3.Connection, run_id: str) -> CronRunRecord:
        run: CronRunRecord | None = _runs(conn, _RUN_SELECT + " WHERE run_id = ?",
                                          (run_id,)).fetchone()
        if run is None:
            raise NotFoundError(f"cron run {run_id!r} not found")
        return run

    def get_job(self, job_id: str) -> CronJobRecord | None:
        check_text("job_id", job_id)
        with self.store.read() as conn:
            return self._load_job(conn, job_id)

    def get_run(self, run_id: str) -> CronRunRecord | None:
        check_text("run_id", run_id)
        with self.store.read() as conn:
            run: CronRunRecord | None = _runs(conn, _RUN_SELECT + " WHERE run_id = ?",
                                              (run_id,)).fetchone()
        return run

    def list_jobs(self, *, after_job_id: str | None = None, limit: int = 100,
                  enabled: bool | None = None, owner_principal: str | None = None,
                  channel: str | None = None) -> list[CronJobRecord]:
        """Jobs ordered by job_id (ULIDs sort by creation), a page after ``after_job_id``."""
        check_bool("enabled", enabled, nullable=True)
        sql, args = page_query(_JOB_SELECT, (
            ("job_id > ?", check_text("after_job_id", after_job_id, nullable=True)),
            ("enabled = ?", None if enabled is None else int(enabled)),
            ("owner_principal = ?", check_text("owner_principal", owner_principal, nullable=True)),
            ("channel = ?", check_text("channel", channel, nullable=True)),
        ), order_by="job_id", limit=limit)
        with self.store.read() as conn:
            return [_job_from_row(r) for r in _jobs(conn, sql, args)]

    def list_runs(self, *, job_id: str | None = None, after_run_id: str | None = None,
                  limit: int = 100) -> list[CronRunRecord]:
        """Runs ordered by run_id (claim order), a page after ``after_run_id``."""
        sql, args = page_query(_RUN_SELECT, (
            ("job_id = ?", check_text("job_id", job_id, nullable=True)),
            ("run_id > ?", check_text("after_run_id", after_run_id, nullable=True)),
        ), order_by="run_id", limit=limit)
        with self.store.read() as conn:
            runs: list[CronRunRecord] = _runs(conn, sql, args).fetchall()
        return runs

    def next_due_at(self) -> int | None:
        """The earliest time anything becomes claimable (for a scheduler's sleep), or None."""
        with self.store.read() as conn:
            a = conn.execute("SELECT MIN(next_run_at_unix_ms) FROM cron_jobs WHERE enabled = 1"
                             ).fetchone()[0]
            b = conn.execute("SELECT MIN(p.due_at_unix_ms) FROM cron_pending p JOIN cron_jobs j "
                             "USING (job_id) WHERE j.enabled = 1").fetchone()[0]
        vals = [v for v in (a, b) if v is not None]
        return min(vals) if vals else None

    # ------------------------------------------------------------------ jobs
    def _first_due(self, job_id: str, schedule: Schedule, jitter_ms: int,
                   now: int) -> tuple[int | None, int | None]:
        slot = schedule.first_slot(now)
        if slot is None:
            return None, None
        return slot, slot + jitter_delay(job_id, slot, jitter_ms)

    def create_job(self, *, name: str, prompt: str, owner_principal: str, channel: str | None,
                   schedule: Any, job_id: str | None = None, enabled: bool = True,
                   concurrency_policy: str = "forbid", misfire_policy: str = "skip",
                   max_attempts: int = 1, backoff_ms: int = 1_000, jitter_ms: int = 0,
                   session_key: str | None = None, session_label: str | None = None
                   ) -> CronJobRecord:
        """Create a job; its first run is the schedule's first slot after now (plus jitter)."""
        v = {k: _JOB_FIELDS[k](val) for k, val in (
            ("name", name), ("prompt", prompt), ("owner_principal", owner_principal),
            ("channel", channel), ("schedule", schedule), ("enabled", enabled),
            ("concurrency_policy", concurrency_policy), ("misfire_policy", misfire_policy),
            ("max_attempts", max_attempts), ("backoff_ms", backoff_ms), ("jitter_ms", jitter_ms),
            ("session_key", session_key), ("session_label", session_label))}
        if job_id is not None:
            check_text("job_id", job_id)
        store = self.store
        with store.write() as conn:
            now = store.now_ms()
            sched: Schedule = v["schedule"]
            if isinstance(sched, At) and sched.at_unix_ms <= now:
                raise InvalidScheduleError(
                    f"At.at_unix_ms {sched.at_unix_ms} is not in the future (now is {now})")
            if job_id is None:
                job_id = new_ulid(now)
            elif conn.execute("SELECT 1 FROM cron_jobs WHERE job_id = ?", (job_id,)).fetchone():
                raise DuplicateIdError(f"cron job_id {job_id!r} already exists")
            slot, due = self._first_due(job_id, sched, v["jitter_ms"], now)
            if not v["enabled"]:
                slot = due = None
            conn.execute(
                "INSERT INTO cron_jobs (job_id, name, prompt, owner_principal, channel, "
                "session_key, session_label, schedule_json, enabled, concurrency_policy, "
                "misfire_policy, max_attempts, backoff_ms, jitter_ms, next_slot_unix_ms, "
                "next_run_at_unix_ms, last_run_at_unix_ms, queued_run, created_at_unix_ms, "
                "updated_at_unix_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,NULL,?,?)",
                (job_id, v["name"], v["prompt"], v["owner_principal"], v["channel"],
                 v["session_key"], v["session_label"], schedule_json(sched), int(v["enabled"]),
                 v["concurrency_policy"], v["misfire_policy"], v["max_attempts"],
                 v["backoff_ms"], v["jitter_ms"], slot, due, now, now))
            job = self._loaded_job(conn, job_id)
            self._event("cron.job_created", job, self._job_summary(job), now)
        return job

    def update_job(self, job_id: str, **changes: Any) -> CronJobRecord:
        """Change fields of a job; the next run is recomputed when schedule, enabled or jitter
        change. Unknown fields raise :class:`InvalidPayloadError` naming them."""
        check_text("job_id", job_id)
        unknown = sorted(set(changes) - set(_JOB_FIELDS))
        if unknown:
            raise InvalidPayloadError(
                f"update_job: unknown field(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(sorted(_JOB_FIELDS))}")
        values = {k: _JOB_FIELDS[k](val) for k, val in changes.items()}
        store = self.store
        with store.write() as conn:
            now = store.now_ms()
            old = self._load_job(conn, job_id)
            if old is None:
                raise NotFoundError(f"cron job {job_id!r} not found")
            sched = values.get("schedule", old.schedule)
            if "schedule" in values and isinstance(sched, At) and sched.at_unix_ms <= now:
                raise InvalidScheduleError(
                    f"At.at_unix_ms {sched.at_unix_ms} is not in the future (now is {now})")
            enabled = values.get("enabled", old.enabled)
            jitter = values.get("jitter_ms", old.jitter_ms)
            cols = {k: v for k, v in values.items() if k not in ("schedule", "enabled")}
            if "schedule" in values:
                cols["schedule_json"] = schedule_json(sched)
            if "enabled" in values:
                cols["enabled"] = int(enabled)
            if not enabled:
                cols["next_slot_unix_ms"] = cols["next_run_at_unix_ms"] = None
            elif "schedule" in values or ("enabled" in values and not old.enabled):
                slot, due = self._first_due(job_id, sched, jitter, now)
                cols["next_slot_unix_ms"], cols["next_run_at_unix_ms"] = slot, due
            elif "jitter_ms" in values:
                slot = conn.execute("SELECT next_slot_unix_ms FROM cron_jobs WHERE job_id = ?",
                                    (job_id,)).fetchone()[0]
                if slot is not None:
                    cols["next_run_at_unix_ms"] = slot + jitter_delay(job_id, slot, jitter)
            cols["updated_at_unix_ms"] = now
            sets = ", ".join(f"{k} = ?" for k in cols)
            conn.execute(f"UPDATE cron_jobs SET {sets} WHERE job_id = ?", (*cols.values(), job_id))
            job = self._loaded_job(conn, job_id)
            payload = self._job_summary(job)
            payload["changed"] = sorted(values)
            self._event("cron.job_updated", job, payload, now)
        return job

    def delete_job(self, job_id: str) -> bool:
        """Delete a job with its runs and pending retries; refused while a run is active."""
        check_text("job_id", job_id)
        store = self.store
        with store.write() as conn:
            now = store.now_ms()
            job = self._load_job(conn, job_id)
            if job is None:
                return False
            active = self._active_runs(conn, job_id, now)
            if active:
                raise InvalidStateError(
                    f"cron job {job_id!r} has an active run {active[0].run_id!r} "
                    f"({active[0].status}); finish or cancel it before deleting the job")
            conn.execute("DELETE FROM cron_jobs WHERE job_id = ?", (job_id,))
            self._event("cron.job_deleted", job, {"job_id": job_id, "name": job.name}, now)
        return True

    # ------------------------------------------------------------------ claiming
    def claim_due(self, *, worker_id: str, now_unix_ms: int | None = None, limit: int = 64,
                  lease_ms: int = 300_000) -> list[CronClaim]:
        """Atomically claim due runs (slots, retries, queued runs) of up to ``limit`` jobs."""
        check_text("worker_id", worker_id)
        check_int("limit", limit, lo=1, hi=100_000)
        check_int("lease_ms", lease_ms, lo=1, hi=_MAX_MS)
        if now_unix_ms is not None:
            check_int("now_unix_ms", now_unix_ms, lo=0, hi=_MAX_MS)
        store = self.store
        claims: list[CronClaim] = []
        events: list[dict[str, Any]] = []
        with store.write() as conn:
            now = store.now_ms() if now_unix_ms is None else now_unix_ms
            # (due time, job row) of due slots, then of due pending retries / queued runs
            due = [(r.next_run_at_unix_ms, r) for r in _jobs(
                conn, _JOB_SELECT + " WHERE enabled = 1 AND next_run_at_unix_ms <= ? "
                "ORDER BY next_run_at_unix_ms LIMIT ?" + store.dialect.claim_lock, (now, limit))]
            pending = conn.execute(
                "SELECT job_id, MIN(due_at_unix_ms) FROM cron_pending WHERE due_at_unix_ms <= ? "
                "GROUP BY job_id ORDER BY 2 LIMIT ?", (now, limit)).fetchall()
            pending_jobs = {j for j, _ in pending}
            if pending:
                have = {r.job_id for _, r in due}
                for job_id, at in pending:
                    if job_id not in have:
                        row = _jobs(conn, _JOB_SELECT + " WHERE job_id = ? AND enabled = 1",
                                    (job_id,)).fetchone()
                        if row is not None:
                            due.append((at, row))
                due.sort(key=lambda d: (d[0], d[1].job_id))
            chosen = [row for _, row in due[:limit]]
            # read and written once per batch, not per job: on a server each statement is a round
            # trip, and the batch runs while every other writer waits for the head row
            active = self._active_by_job(conn, [row.job_id for row in chosen], now)
            writes = _ClaimWrites()
            for row in chosen:
                if len(claims) >= limit:
                    break
                claims.extend(self._claim_job(conn, row, row.job_id in pending_jobs, worker_id, now,
                                              lease_ms, events, active.get(row.job_id, []), writes))
            writes.flush(conn)
            if events:
                store.record_events(events)
        return claims

    def _missed_ticks(self, job: CronJobRecord, slot: int, now: int) -> tuple[list[_Tick], int | None]:
        """Ticks for the due slot ``slot`` under the misfire policy, and the next slot after now."""
        sched = job.schedule
        nxt = sched.next_slot(slot, now)
        if job.misfire_policy == "skip":
            return [_Tick(self._latest_slot(sched, slot, now))], nxt
        ticks = [_Tick(slot)]
        s = slot
        while len(ticks) < CATCH_UP_LIMIT:
            following = sched.next_slot(s, s)
            if following is None or following > now:
                return ticks, nxt
            s = following
            ticks.append(_Tick(s))
        after = sched.next_slot(s, s)
        if after is not None and after <= now:
            latest = self._latest_slot(sched, after, now)
            ticks.append(_Tick(latest, origin="overflow", note=(
                f"missed slots from {after} to {latest} exceed the catch-up limit of "
                f"{CATCH_UP_LIMIT} and were skipped")))
        return ticks, nxt

    @staticmethod
    def _latest_slot(sched: Schedule, slot: int, now: int) -> int:
        """The latest slot at or before ``now`` of the series that contains ``slot`` (≤ now)."""
        if isinstance(sched, Every):
            return slot + ((now - slot) // sched.interval_ms) * sched.interval_ms
        if isinstance(sched, At):
            return slot
        s = slot
        for _ in range(64):  # the common case: a few slots late
            n = sched.next_slot(s, s)
            if n is None or n > now:
                return s
            s = n
        span = 1_000
        while True:  # far behind: look back from now in growing windows
            lo = now - span
            if lo <= s:
                lo = s
            c = sched.next_slot(s, lo) if lo > s else s
            if c is not None and c <= now:
                while True:
                    n = sched.next_slot(c, c)
                    if n is None or n > now:
                        return c
                    c = n
            span *= 4

    def _active_runs(self, conn: sqlite3.Connection, job_id: str, now: int) -> list[CronRunRecord]:
        return _runs(conn, _RUN_SELECT + f" WHERE job_id = ? AND {_ACTIVE} "
                     "AND lease_expires_at_unix_ms > ?", (job_id, now)).fetchall()

    def _active_by_job(self, conn: sqlite3.Connection, job_ids: list[str],
                       now: int) -> dict[str, list[CronRunRecord]]:
        """The active runs (:meth:`_active_runs`) of many jobs, by job."""
        out: dict[str, list[CronRunRecord]] = {}
        for start in range(0, len(job_ids), 500):
            chunk = job_ids[start:start + 500]
            for run in _runs(conn, _RUN_SELECT + f" WHERE job_id IN ({', '.join('?' * len(chunk))})"
                             f" AND {_ACTIVE} AND lease_expires_at_unix_ms > ?", (*chunk, now)):
                out.setdefault(run.job_id, []).append(run)
        return out

    def _claim_job(self, conn: sqlite3.Connection, row: Any, has_pending: bool, worker_id: str,
                   now: int, lease_ms: int, events: list[dict[str, Any]],
                   active: list[CronRunRecord], writes: "_ClaimWrites") -> list[CronClaim]:
        """Decide one due job (misfire, concurrency) given its ``active`` runs; its new runs and
        job update go to ``writes``, its events to ``events``."""
        job = _job_from_row(row)
        job_id = job.job_id
        next_slot = row.next_slot_unix_ms
        ticks: list[_Tick] = []
        job_cols: dict[str, Any] = {}
        pending = conn.execute(
            "SELECT pending_id, kind, scheduled_for_unix_ms, attempt FROM cron_pending "
            "WHERE job_id = ? AND due_at_unix_ms <= ? ORDER BY due_at_unix_ms, pending_id",
            (job_id, now)).fetchall() if has_pending else ()
        if pending:
            conn.executemany("DELETE FROM cron_pending WHERE pending_id = ?",
                             [(pending_id,) for pending_id, _, _, _ in pending])
            ticks.extend(_Tick(slot, attempt=attempt, origin=kind)
                         for _, kind, slot, attempt in pending)
        if (job.next_run_at_unix_ms is not None and job.next_run_at_unix_ms <= now
                and next_slot is not None):  # a due job always has its slot (set together)
            slot_ticks, nxt = self._missed_ticks(job, next_slot, now)
            ticks.extend(slot_ticks)
            job_cols["next_slot_unix_ms"] = nxt
            job_cols["next_run_at_unix_ms"] = (None if nxt is None
                                               else nxt + jitter_delay(job_id, nxt, job.jitter_ms))
        claims: list[CronRunRecord] = []     # accepted runs, claimed by this worker
        finished: list[CronRunRecord] = []   # runs created or moved straight to a final status

        def add_run(tick: _Tick, status: str, error_kind: str | None = None,
                    error_message: str | None = None) -> CronRunRecord:
            final = status != "accepted"
            run = CronRunRecord(
                run_id=new_ulid(now), job_id=job_id, attempt=tick.attempt, status=status,
                worker_id=worker_id, lease_expires_at_unix_ms=None if final else now + lease_ms,
                scheduled_for_unix_ms=tick.slot, started_at_unix_ms=None,
                finished_at_unix_ms=now if final else None, session_id=None,
                orchestrator_run_id=None, error_kind=error_kind, error_message=error_message,
                model_tokens_in=0, model_tokens_out=0, tool_calls=0, tool_denies=0)
            writes.runs.append((*(getattr(run, c) for c in RUN_COLUMNS), now))
            (finished if final else claims).append(run)
            return run

        runnable: list[_Tick] = []
        for tick in ticks:
            if tick.origin == "overflow":
                add_run(tick, "skipped", "misfire_limit", tick.note)
            else:
                runnable.append(tick)
        if active and runnable:
            policy = job.concurrency_policy
            if policy == "forbid":
                for tick in runnable:
                    add_run(tick, "skipped", "concurrency_forbid",
                            f"run {active[0].run_id} of this job is still {active[0].status}")
                runnable = []
            elif policy == "queue_one":
                if job.queued_run is None:
                    job_cols["queued_run"] = runnable[0].slot
                runnable = []   # later ticks coalesce into the one queued run
            else:  # replace
                for old in active:
                    conn.execute(
                        "UPDATE cron_runs SET status = 'cancelled', error_kind = 'replaced', "
                        "error_message = ?, finished_at_unix_ms = ?, lease_expires_at_unix_ms = NULL "
                        "WHERE run_id = ?",
                        (f"replaced by a newer run of slot {runnable[-1].slot}", now, old.run_id))
                    finished.append(self._load_run(conn, old.run_id))
        for tick in runnable:
            add_run(tick, "accepted")
        if claims:
            job_cols["last_run_at_unix_ms"] = now
        if job_cols:
            job_cols["updated_at_unix_ms"] = now
            sets = ", ".join(f"{k} = ?" for k in job_cols)
            writes.jobs.setdefault(f"UPDATE cron_jobs SET {sets} WHERE job_id = ?", []).append(
                (*job_cols.values(), job_id))
            job = replace(job, **{k: v for k, v in job_cols.items() if k != "next_slot_unix_ms"})
        for run in finished:
            events.append(self._run_event_dict("cron.run_finished", job, run, now))
        out = []
        for run in claims:
            events.append(self._run_event_dict("cron.run_claimed", job, run, now))
            out.append(CronClaim(job=job, run=run))
        return out

    # ------------------------------------------------------------------ running
    def _transition(self, conn: sqlite3.Connection, run_id: str, to: str) -> CronRunRecord:
        run = self._load_run(conn, run_id)
        if to not in TRANSITIONS.get(run.status, ()):
            raise InvalidStateError(
                f"cron run {run_id!r} cannot move from {run.status} to {to}")
        return run

    def _job_for(self, conn: sqlite3.Connection, run: CronRunRecord) -> CronJobRecord:
        job = self._load_job(conn, run.job_id)
        if job is None:  # runs are deleted with their job; this means the file was edited
            raise NotFoundError(f"cron job {run.job_id!r} of run {run.run_id!r} not found")
        return job

    def start_cron_run(self, run_id: str, *, session_id: str | None = None,
                       orchestrator_run_id: str | None = None) -> CronRunRecord:
        """accepted -> running."""
        check_text("run_id", run_id)
        check_text("session_id", session_id, nullable=True)
        check_text("orchestrator_run_id", orchestrator_run_id, nullable=True)
        store = self.store
        with store.write() as conn:
            now = store.now_ms()
            self._transition(conn, run_id, "running")
            conn.execute("UPDATE cron_runs SET status = 'running', started_at_unix_ms = ?, "
                         "session_id = ?, orchestrator_run_id = ? WHERE run_id = ?",
                         (now, session_id, orchestrator_run_id, run_id))
            run = self._load_run(conn, run_id)
            self._run_event("cron.run_started", self._job_for(conn, run), run, now)
        return run

    def heartbeat(self, run_id: str, *, lease_ms: int = 300_000) -> CronRunRecord:
        """Extend the lease of an active run to now + ``lease_ms``."""
        check_text("run_id", run_id)
        check_int("lease_ms", lease_ms, lo=1, hi=_MAX_MS)
        store = self.store
        with store.write() as conn:
            now = store.now_ms()
            run = self._load_run(conn, run_id)
            if run.status not in ACTIVE_STATUSES:
                raise InvalidStateError(
                    f"cron run {run_id!r} is {run.status}; only accepted or running runs take "
                    "a heartbeat")
            if run.lease_expires_at_unix_ms is not None and run.lease_expires_at_unix_ms <= now:
                raise InvalidStateError(
                    f"cron run {run_id!r}: its lease expired at {run.lease_expires_at_unix_ms} "
                    f"(now {now}); the run will be recovered as failed")
            conn.execute("UPDATE cron_runs SET lease_expires_at_unix_ms = ? WHERE run_id = ?",
                         (now + lease_ms, run_id))
            return self._load_run(conn, run_id)

    def _redact_message(self, message: str | None) -> str | None:
        """The stored error message: checked like any free text, redacted, capped at
        :data:`MAX_ERROR_CHARS` characters (the spec's length cap)."""
        if message is None:
            return None
        check_text("error_message", message, empty_ok=True, max_chars=MAX_TEXT_CHARS)
        message = redact_text(message, self.store.redaction)
        if len(message) > MAX_ERROR_CHARS:
            message = message[:MAX_ERROR_CHARS - 1] + "…"
        return message

    def finalize_cron_run(self, run_id: str, *, status: str, error_kind: str | None = None,
                          error_message: str | None = None, model_tokens_in: int = 0,
                          model_tokens_out: int = 0, tool_calls: int = 0,
                          tool_denies: int = 0) -> CronRunRecord:
        """running/accepted -> succeeded/failed/skipped/denied/cancelled; a failed run with
        attempts left schedules the next attempt after exponential backoff."""
        check_text("run_id", run_id)
        check_choice("status", status, FINAL_STATUSES)
        check_text("error_kind", error_kind, nullable=True)
        counters = [check_int(n, v, lo=0, hi=_MAX_MS) for n, v in (
            ("model_tokens_in", model_tokens_in), ("model_tokens_out", model_tokens_out),
            ("tool_calls", tool_calls), ("tool_denies", tool_denies))]
        message = self._redact_message(error_message)
        store = self.store
        with store.write() as conn:
            now = store.now_ms()
            self._transition(conn, run_id, status)
            conn.execute(
                "UPDATE cron_runs SET status = ?, error_kind = ?, error_message = ?, "
                "model_tokens_in = ?, model_tokens_out = ?, tool_calls = ?, tool_denies = ?, "
                "finished_at_unix_ms = ?, lease_expires_at_unix_ms = NULL WHERE run_id = ?",
                (status, error_kind, message, *counters, now, run_id))
            run = self._load_run(conn, run_id)
            job = self._job_for(conn, run)
            self._run_event("cron.run_finished", job, run, now)
            self._after_run_ended(conn, job, run, now)
        return run

    def _after_run_ended(self, conn: sqlite3.Connection, job: CronJobRecord, run: CronRunRecord,
                         now: int) -> None:
        """Retry rule, then release of a queued run once no run of the job is active."""
        if run.status == "failed" and run.attempt < job.max_attempts:
            due = now + job.backoff_ms * 2 ** (run.attempt - 1)
            conn.execute(
                "INSERT INTO cron_pending (job_id, kind, scheduled_for_unix_ms, attempt, "
                "due_at_unix_ms) VALUES (?, 'retry', ?, ?, ?)",
                (job.job_id, run.scheduled_for_unix_ms, run.attempt + 1, min(due, _MAX_MS)))
        if job.queued_run is not None and not self._active_runs(conn, job.job_id, now):
            conn.execute(
                "INSERT INTO cron_pending (job_id, kind, scheduled_for_unix_ms, attempt, "
                "due_at_unix_ms) VALUES (?, 'queued', ?, 1, ?)", (job.job_id, job.queued_run, now))
            conn.execute("UPDATE cron_jobs SET queued_run = NULL, updated_at_unix_ms = ? "
                         "WHERE job_id = ?", (now, job.job_id))

    def recover_expired_leases(self, *, now_unix_ms: int | None = None) -> int:
        """Active runs whose lease expired become ``failed`` (error_kind ``lease_expired``) and
        follow the retry rule; returns how many."""
        if now_unix_ms is not None:
            check_int("now_unix_ms", now_unix_ms, lo=0, hi=_MAX_MS)
        store = self.store
        with store.write() as conn:
            now = store.now_ms() if now_unix_ms is None else now_unix_ms
            ids = [r[0] for r in conn.execute(
                f"SELECT run_id FROM cron_runs WHERE {_ACTIVE} AND lease_expires_at_unix_ms <= ? "
                "ORDER BY lease_expires_at_unix_ms", (now,))]
            for run_id in ids:
                run = self._load_run(conn, run_id)
                conn.execute(
                    "UPDATE cron_runs SET status = 'failed', error_kind = 'lease_expired', "
                    "error_message = ?, finished_at_unix_ms = ?, lease_expires_at_unix_ms = NULL "
                    "WHERE run_id = ?",
                    (f"lease of worker {run.worker_id} expired at {run.lease_expires_at_unix_ms}",
                     now, run_id))
                run = self._load_run(conn, run_id)
                job = self._job_for(conn, run)
                self._run_event("cron.run_finished", job, run, now)
                self._after_run_ended(conn, job, run, now)
        return len(ids)

    # ------------------------------------------------------------------ the worker loop
    def run_scheduler(self, handler: Callable[[CronClaim], Any], *, worker_id: str,
                      poll_ms: int = 1_000, stop: Any = None, lease_ms: int = 300_000,
                      limit: int = 16, max_runs: int | None = None,
                      max_seconds: float | None = None) -> int:
        """The worker loop: recover expired leases, claim, start, call ``handler(claim)`` while a
        heartbeat thread extends the lease, finalize; then sleep until the next due time (at most
        ``poll_ms``). ``handler`` returns None (succeeded) or a dict of finalize_cron_run keywords
        (``status``, counters, ...); an exception finalizes the run as failed.

        Stops when ``stop`` (a threading.Event or a callable) says so, after ``max_runs`` handled
        runs, or after ``max_seconds``. Returns the number of runs handled.
        """
        check_text("worker_id", worker_id)
        check_int("poll_ms", poll_ms, lo=1, hi=86_400_000)
        if max_runs is not None:
            check_int("max_runs", max_runs, lo=0, hi=_MAX_MS)
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        stopped: Callable[[], bool]
        if stop is None:
            stopped = _never
        elif hasattr(stop, "is_set"):
            stopped = stop.is_set
        elif callable(stop):
            stopped = stop
        else:
            raise InvalidPayloadError(f"stop must be a threading.Event or a callable, got {stop!r}")
        handled = 0

        def done() -> bool:
            return (stopped() or (max_runs is not None and handled >= max_runs)
                    or (deadline is not None and time.monotonic() >= deadline))

        while not done():
            self.recover_expired_leases()
            room = limit if max_runs is None else min(limit, max_runs - handled)
            claims = self.claim_due(worker_id=worker_id, limit=room, lease_ms=lease_ms)
            for claim in claims:
                self._execute(handler, claim, lease_ms)
                handled += 1
            if claims:
                continue
            nxt = self.next_due_at()
            wait_ms: float = poll_ms if nxt is None else max(1, min(poll_ms, nxt - self.store.now_ms()))
            if deadline is not None:
                wait_ms = min(wait_ms, max(0.0, deadline - time.monotonic()) * 1000)
            _sleep(stop, wait_ms / 1000)
        return handled

    def _execute(self, handler: Callable[[CronClaim], Any], claim: CronClaim,
                 lease_ms: int) -> CronRunRecord | None:
        run_id = claim.run.run_id
        try:
            self.start_cron_run(run_id)
        except InvalidStateError:
            return None  # replaced or recovered meanwhile
        beat_stop = threading.Event()

        def beat() -> None:
            while not beat_stop.wait(max(lease_ms / 3000, 0.001)):
                try:
                    self.heartbeat(run_id, lease_ms=lease_ms)
                except Exception:  # noqa: BLE001 - the run was replaced/recovered; stop beating
                    return

        thread = threading.Thread(target=beat, name=f"cron-heartbeat-{run_id}", daemon=True)
        thread.start()
        try:
            result = handler(claim)
            outcome = dict(result) if isinstance(result, dict) else {}
            outcome.setdefault("status", "succeeded")
        except Exception as exc:  # noqa: BLE001 - any handler failure fails the run
            outcome = {"status": "failed", "error_kind": "exception",
                       "error_message": _printable(f"{type(exc).__name__}: {exc}")}
        finally:
            beat_stop.set()
            thread.join()
        try:
            return self.finalize_cron_run(run_id, **outcome)
        except InvalidStateError:
            return None  # the run was replaced or its lease recovered while the handler ran


def _never() -> bool:
    return False


def _printable(text: str) -> str:
    """An exception's text as an acceptable error_message: NULs and lone surrogates replaced,
    cut to the free-text limit (a handler's exception may carry anything)."""
    text = text[:MAX_TEXT_CHARS].replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def _sleep(stop: Any, seconds: float) -> None:
    if seconds <= 0:
        return
    if hasattr(stop, "wait"):
        stop.wait(seconds)
        return
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0 or (callable(stop) and stop()):
            return
        time.sleep(min(left, 0.05))


# ---------------------------------------------------------------------------------------- demo
def demo_step(store: "JournalStore", out: Any = None) -> dict[str, Any]:
    """Demo: two jobs (every 200 ms, and once 300 ms from now) claimed and run by the scheduler.

    ``out`` (a text stream or a callable taking a line) receives one line per run; returns a
    summary dict for the demo's table. The jobs are disabled afterwards.
    """
    emit: Callable[[str], Any] = ((lambda line: None) if out is None else out if callable(out)
                                  else (lambda line: out.write(line + "\n")))
    now = store.now_ms()
    jobs = [
        store.cron.create_job(name="demo-heartbeat", prompt="say hello", owner_principal="demo",
                              channel="demo", schedule=Every(200)),
        store.cron.create_job(name="demo-once", prompt="send the digest",
                              owner_principal="demo", channel="demo", schedule=At(now + 300)),
    ]
    seen: set[str] = set()

    def handler(claim: CronClaim) -> dict[str, Any]:
        seen.add(claim.job.job_id)
        emit(f"  cron: ran {claim.job.name} (slot {claim.run.scheduled_for_unix_ms}, "
             f"worker {claim.run.worker_id})")
        return {"status": "succeeded", "tool_calls": 1}

    t0 = time.perf_counter()
    store.cron.run_scheduler(handler, worker_id="demo-worker", poll_ms=50,
                             stop=lambda: len(seen) == len(jobs), max_seconds=5)
    elapsed = time.perf_counter() - t0
    for job in jobs:
        store.cron.update_job(job.job_id, enabled=False)
    runs = [r for job in jobs for r in store.cron.list_runs(job_id=job.job_id)]
    done = sum(r.status == "succeeded" for r in runs)
    emit(f"  cron: {len(jobs)} jobs, {done} runs succeeded")
    return {"jobs": len(jobs), "jobs_run": len(seen), "runs": len(runs), "succeeded": done,
            "scheduler_s": round(elapsed, 3)}


__all__ = ["CronStore", "CronJobRecord", "CronRunRecord", "CronClaim", "jitter_delay",
           "demo_step", "CONCURRENCY_POLICIES", "MISFIRE_POLICIES", "RUN_STATUSES"]
