"""benchmarks/README.md section 5: ``claim_due`` claims per second with 1 and 4 worker processes.

Workload: one file holding N jobs that are all due (10 000 with PALYRA_BENCH_SCALE=full, 2 000
quick); workers call ``claim_due(limit=64)`` until nothing is left. Every round starts from a copy
of the same prepared file and checks afterwards that every (job, slot) was claimed exactly once.

Floor "raw sqlite3": the same claim done by hand with the standard module in one
``BEGIN IMMEDIATE`` per batch (select due jobs, advance ``next_run_at``, insert the run rows)
without policies or journal events: what the SQLite part of a claim costs.

Run: ``python -m pytest benchmarks/bench_cron.py --benchmark-only``.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest

from .common import describe, scaled
from palyra_journal import Every, JournalStore, kernels
from palyra_journal.ids import new_ulid

N_JOBS = scaled(2_000, 10_000)
T0 = 1_700_000_000_000
NOW = T0 + 3_600_000
LIMIT = 64
ROUNDS = 3


@pytest.fixture(scope="module")
def template():
    """A file with N_JOBS jobs, all due at NOW (made once, copied for each round)."""
    with tempfile.TemporaryDirectory(prefix="pj-bench-cron-") as d:
        path = Path(d) / "template.db"
        with JournalStore.open(path, clock=lambda: T0) as store, store.write():
            for i in range(N_JOBS):
                store.cron.create_job(name=f"job{i}", prompt="p", owner_principal="bench",
                                      channel=None, schedule=Every(3_600_000))
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        yield Path(d), path


_counter = [0]


def fresh_copy(tpl) -> Path:
    workdir, path = tpl
    _counter[0] += 1
    out = workdir / f"round{_counter[0]}.db"
    shutil.copyfile(path, out)
    return out


def claim_all(path: str, worker_id: str) -> int:
    n = 0
    with JournalStore.open(path, clock=lambda: NOW) as store:
        while True:
            got = store.cron.claim_due(worker_id=worker_id, limit=LIMIT)
            if not got:
                return n
            n += len(got)


#: The claim by hand, the floor of both engines' claim benchmarks (bench_postgres.py runs these
#: with ``%s`` placeholders and ``FOR UPDATE SKIP LOCKED``): the due jobs, each advanced an hour,
#: and a run row each.
RAW_DUE = ("SELECT job_id, next_slot_unix_ms FROM cron_jobs WHERE enabled = 1 AND "
           "next_run_at_unix_ms <= ? ORDER BY next_run_at_unix_ms LIMIT ?")
RAW_ADVANCE = ("UPDATE cron_jobs SET next_slot_unix_ms = ?, next_run_at_unix_ms = ?, "
               "last_run_at_unix_ms = ? WHERE job_id = ?")
RAW_RUN = ("INSERT INTO cron_runs (run_id, job_id, attempt, status, worker_id, "
           "lease_expires_at_unix_ms, scheduled_for_unix_ms, claimed_at_unix_ms) "
           "VALUES (?, ?, 1, 'accepted', ?, ?, ?, ?)")


def raw_claim_rows(due: list, worker_id: str) -> tuple[list, list]:
    """The parameters of ``RAW_ADVANCE`` and ``RAW_RUN`` for the claimed ``(job_id, slot)`` rows."""
    return ([(s + 3_600_000, s + 3_600_000, NOW, j) for j, s in due],
            [(new_ulid(NOW), j, worker_id, NOW + 300_000, s, NOW) for j, s in due])


def raw_claim_all(path: str, worker_id: str) -> int:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous = NORMAL")
    n = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(RAW_DUE, (NOW, LIMIT)).fetchall()
        advance, runs = raw_claim_rows(rows, worker_id)
        conn.executemany(RAW_ADVANCE, advance)
        conn.executemany(RAW_RUN, runs)
        conn.execute("COMMIT")
        if not rows:
            conn.close()
            return n
        n += len(rows)


def _child(fn, path: str, worker_id: str, out, index: int) -> None:
    out[index] = fn(path, worker_id)


def in_processes(fn, path: Path, workers: int) -> int:
    if workers == 1:
        return fn(str(path), "w0")
    ctx = mp.get_context("fork")
    out = ctx.Array("q", workers, lock=False)
    procs = [ctx.Process(target=_child, args=(fn, str(path), f"w{i}", out, i))
             for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * workers
    return sum(out)


def check_exactly_once(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        runs, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT job_id || ':' || scheduled_for_unix_ms) "
            "FROM cron_runs").fetchone()
    assert runs == distinct == N_JOBS, (runs, distinct)


@pytest.fixture(params=["native", "python"])
def ours(request):
    name = request.param
    if name == "native" and not kernels.native_available():
        pytest.skip("native backend not built")
    previous = kernels.backend_name()
    kernels.set_backend(name)
    yield f"palyra {name}"
    kernels.set_backend(previous)


def _bench(benchmark, template, fn, workers: int) -> None:
    paths: list[Path] = []

    def setup():
        paths.append(fresh_copy(template))
        return (paths[-1],), {}

    benchmark.pedantic(lambda p: in_processes(fn, p, workers), setup=setup, rounds=ROUNDS,
                       iterations=1)
    for p in paths:
        check_exactly_once(p)


@pytest.mark.parametrize("workers", [1, 4])
def test_claim_due_ours(benchmark, template, ours, workers):
    describe(benchmark, section=5, workload=f"claim_due {N_JOBS} jobs, {workers} process(es)",
             impl=ours, role="ours", items=N_JOBS, x=workers)
    _bench(benchmark, template, claim_all, workers)


@pytest.mark.parametrize("workers", [1, 4])
def test_claim_due_raw_floor(benchmark, template, workers):
    describe(benchmark, section=5, workload=f"claim_due {N_JOBS} jobs, {workers} process(es)",
             impl="raw sqlite3", role="floor", items=N_JOBS, x=workers)
    _bench(benchmark, template, raw_claim_all, workers)
