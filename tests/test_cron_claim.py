"""Atomic claiming: 4 processes polling one file claim every (job, slot) exactly once.

500 jobs run every second on a simulated clock shared by all processes; the parent advances the
clock one second at a time once everything due has been claimed, for several seconds.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
import time

import pytest

import palyra_journal as pj
from palyra_journal import Every

T0 = 1_700_000_000_000
JOBS = 500
STEPS = 4
WORKERS = 4


def _worker(path: str, clock, stop, worker_id: str, claimed, ready) -> None:
    store = pj.JournalStore.open(path, clock=lambda: clock.value)
    with ready.get_lock():
        ready.value += 1
    n = 0
    try:
        while not stop.value:
            # lease shorter than a slot: the previous slot's run is no longer active at the next
            # one, so the forbid policy never turns a slot into a skipped run here
            got = store.cron.claim_due(worker_id=worker_id, limit=32, lease_ms=500)
            n += len(got)
            # a worker hands its claims to an executor before polling again; without that pause
            # the one holding the lock re-takes it at once (SQLite's busy handler is not fair)
            time.sleep(0.002)
    finally:
        claimed[int(worker_id[1:])] = n
        store.close()


def test_four_processes_claim_each_slot_exactly_once(db_path, backend):
    ctx = mp.get_context("fork")
    clock = ctx.Value("q", T0, lock=False)
    stop = ctx.Value("b", 0, lock=False)
    claimed = ctx.Array("q", WORKERS, lock=False)
    ready = ctx.Value("i", 0)
    with pj.JournalStore.open(db_path, clock=lambda: clock.value) as store:
        for i in range(JOBS):
            store.cron.create_job(name=f"job{i}", prompt="p", owner_principal="o", channel=None,
                                  schedule=Every(1_000), job_id=f"job{i:04d}")
    procs = [ctx.Process(target=_worker, args=(str(db_path), clock, stop, f"w{i}", claimed, ready))
             for i in range(WORKERS)]
    for p in procs:
        p.start()
    try:
        deadline = time.monotonic() + 60
        while ready.value < WORKERS:  # every worker polls before the first slot falls due
            assert time.monotonic() < deadline, f"only {ready.value} workers started"
            time.sleep(0.005)
        with pj.JournalStore.open(db_path, clock=lambda: clock.value) as store:
            for step in range(1, STEPS + 1):
                clock.value = T0 + step * 1_000
                deadline = time.monotonic() + 60
                while True:
                    with store.read() as conn:
                        left = conn.execute(
                            "SELECT COUNT(*) FROM cron_jobs WHERE next_run_at_unix_ms <= ?",
                            (clock.value,)).fetchone()[0]
                    if not left:
                        break
                    assert time.monotonic() < deadline, f"{left} jobs still due at step {step}"
                    time.sleep(0.005)
    finally:
        stop.value = 1
        for p in procs:
            p.join(30)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    with pj.JournalStore.open(db_path) as store, store.read() as conn:
        runs = conn.execute("SELECT job_id, scheduled_for_unix_ms, status FROM cron_runs").fetchall()
        workers = conn.execute("SELECT COUNT(DISTINCT worker_id) FROM cron_runs").fetchone()[0]
        claimed_events = conn.execute(
            "SELECT COUNT(*) FROM journal_events WHERE kind = 'cron.run_claimed'").fetchone()[0]
        assert store.verify().ok
    expected = {(f"job{i:04d}", T0 + s * 1_000) for i in range(JOBS) for s in range(1, STEPS + 1)}
    per_slot = Counter((r[0], r[1]) for r in runs)
    assert set(per_slot) == expected                         # no slot lost
    assert set(per_slot.values()) == {1}                     # none claimed twice
    assert {r[2] for r in runs} == {"accepted"}
    assert sum(claimed) == JOBS * STEPS == claimed_events
    assert workers >= 2


@pytest.mark.parametrize("policy", ["skip", "catch_up"])
def test_claims_from_two_stores_on_one_file_never_overlap(db_path, backend, policy):
    """The same guarantee without processes: two connections interleaving claims."""
    clock = [T0]
    a = pj.JournalStore.open(db_path, clock=lambda: clock[0])
    b = pj.JournalStore.open(db_path, clock=lambda: clock[0])
    try:
        for i in range(20):
            a.cron.create_job(name=f"j{i}", prompt="p", owner_principal="o", channel=None,
                              schedule=Every(1_000), misfire_policy=policy)
        seen = []
        for step in range(1, 4):
            clock[0] = T0 + step * 1_000
            while True:
                got = a.cron.claim_due(worker_id="a", limit=3, lease_ms=100)
                got += b.cron.claim_due(worker_id="b", limit=3, lease_ms=100)
                if not got:
                    break
                seen += [(c.job.job_id, c.run.scheduled_for_unix_ms) for c in got]
        assert len(seen) == len(set(seen)) == 60
    finally:
        a.close()
        b.close()
