"""benchmarks/README.md section 8: the store on PostgreSQL, against raw psycopg doing the same SQL.

Three ratios (docs/postgres.md quotes them):

- ``pg append_many``: ``store.append_many`` in batches of 1 000 events, against the floor "raw
  psycopg pipeline": the already-final rows (same columns, same bytes, hashes precomputed) inserted
  by ``executemany`` in pipeline mode, one transaction per batch, into the same table with the
  same indexes and append-only triggers. What we add: canonical JSON, redaction, hashing and the
  head-row lock. Target ≥ 0.80.
- ``pg writers``: 4 processes appending (batches of 100) at once against one process appending
  the same total: the total throughput must not collapse when writers queue on the head row.
  Target ≥ 0.90.
- ``pg claim_due``: 4 processes ``claim_due(limit=64)`` until every due job is claimed, against
  the floor "raw SKIP LOCKED": 4 processes claiming by hand (``SELECT ... FOR UPDATE SKIP LOCKED``,
  advance the job, insert the run row, no policies, no journal event). Target ≥ 0.5.

The server is the one named by ``PALYRA_TEST_POSTGRES_DSN`` or, from a checkout with PostgreSQL's
server binaries, a throwaway cluster (tests/pg_cluster.py: fsync off, as for the tests); without
either, or without psycopg, the section is skipped with the reason. Every round runs on a fresh
database. Quick: 5 000 appended, 4 × 1 000 by the writers, 1 000 jobs; PALYRA_BENCH_SCALE=full:
100 000, 4 × 25 000, 10 000. Run: ``python -m pytest benchmarks/bench_postgres.py --benchmark-only``.
"""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from .bench_cron import LIMIT, NOW, RAW_ADVANCE, RAW_DUE, RAW_RUN, T0, raw_claim_rows
from .bench_journal import make_events
from .common import describe, scaled
from palyra_journal import Every, JournalStore, kernels
from palyra_journal.events import COLUMNS

psycopg = pytest.importorskip("psycopg", reason='psycopg is not installed (pip install "palyra-journal[postgres]")')

SECTION = 8
SCHEMA = "palyra"
N_APPEND = scaled(5_000, 100_000)
BATCH = 1_000
PER_WRITER = scaled(1_000, 25_000)
WRITERS = 4
WRITER_BATCH = 100
N_JOBS = scaled(1_000, 10_000)
WORKERS = 4
ROUNDS = 3
INSERT = f"INSERT INTO journal_events ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"


@pytest.fixture(scope="module")
def databases():
    """Scratch databases on the benchmark's server (see the module docstring)."""
    try:
        from tests import pg_cluster  # a checkout: the cluster of the tests
    except ImportError:
        pg_cluster = None
    dsn = os.environ.get("PALYRA_TEST_POSTGRES_DSN")
    cluster = None
    if not dsn:
        if pg_cluster is None:
            pytest.skip("no PostgreSQL server: set PALYRA_TEST_POSTGRES_DSN (or run from a checkout)")
        try:
            cluster = pg_cluster.ThrowawayCluster.start(database="palyra_bench")
        except pg_cluster.ClusterUnavailable as exc:
            pytest.skip(str(exc))
        dsn = cluster.dsn
    if pg_cluster is None:
        pytest.skip("the PostgreSQL benchmarks need tests/pg_cluster.py (run from a checkout)")
    dbs = pg_cluster.ScratchDatabases(dsn, prefix="palyra_bench")
    try:
        yield dbs
    finally:
        dbs.close()
        if cluster is not None:
            cluster.stop()


def raw_connect(url: str):
    return psycopg.connect(url, options=f"-c search_path={SCHEMA}")


class Rounds:
    """Fresh migrated databases for the rounds of one benchmark, released after it."""

    def __init__(self, databases, template=None):
        self.databases, self.template, self.used = databases, template, []

    def fresh(self) -> str:
        scratch = self.databases.copy(self.template) if self.template else self.databases.acquire()
        self.used.append(scratch)
        if not self.template:
            JournalStore.open(scratch.url, schema=SCHEMA).close()  # create and migrate
        return scratch.url

    def release(self) -> None:
        for scratch in self.used:
            self.databases.release(scratch)


@pytest.fixture
def rounds(databases):
    made = []

    def make(template=None) -> Rounds:
        made.append(Rounds(databases, template))
        return made[-1]
    yield make
    for r in made:
        r.release()


@pytest.fixture
def native():
    if not kernels.native_available():
        pytest.skip("native backend not built")
    previous = kernels.backend_name()
    kernels.set_backend("native")
    yield "palyra native"
    kernels.set_backend(previous)


def _count(url: str, table: str) -> int:
    with raw_connect(url) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# ---------------------------------------------------------------- append_many vs raw pipeline
@pytest.fixture(scope="module")
def final_rows(databases):
    """The rows ``append_many`` writes for the benchmark's events, read back as stored."""
    scratch = databases.acquire()
    try:
        with JournalStore.open(scratch.url, schema=SCHEMA) as store:
            events = make_events(N_APPEND)
            for i in range(0, N_APPEND, BATCH):
                store.append_many(events[i:i + BATCH])
        with raw_connect(scratch.url) as conn:
            rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM journal_events ORDER BY seq").fetchall()
    finally:
        databases.release(scratch)
    return events, rows


def test_append_many_ours(benchmark, rounds, final_rows, native):
    events, _ = final_rows
    describe(benchmark, section=SECTION, workload="pg append_many", impl=native, role="ours", items=N_APPEND)
    r = rounds()

    def run(url):
        with JournalStore.open(url, schema=SCHEMA) as store:
            for i in range(0, N_APPEND, BATCH):
                store.append_many(events[i:i + BATCH])
    benchmark.pedantic(run, setup=lambda: ((r.fresh(),), {}), rounds=ROUNDS, iterations=1)
    assert all(_count(s.url, "journal_events") == N_APPEND for s in r.used)


def test_append_many_raw_pipeline_floor(benchmark, rounds, final_rows):
    _, rows = final_rows
    describe(benchmark, section=SECTION, workload="pg append_many", impl="raw psycopg pipeline",
             role="floor", items=N_APPEND)
    r = rounds()

    def run(url):
        with raw_connect(url) as conn:
            for i in range(0, N_APPEND, BATCH):
                with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
                    cur.executemany(INSERT, rows[i:i + BATCH])
    benchmark.pedantic(run, setup=lambda: ((r.fresh(),), {}), rounds=ROUNDS, iterations=1)
    assert all(_count(s.url, "journal_events") == N_APPEND for s in r.used)


# ---------------------------------------------------------------- 4 writers vs 1
def _writer(url: str, worker: int, per_writer: int, ready, start) -> None:
    kernels.set_backend("native")
    events = make_events(per_writer, seed=worker + 1)
    with JournalStore.open(url, schema=SCHEMA) as store:
        store.head()  # connected, before the clock starts
        ready.release()
        start.wait()
        for i in range(0, per_writer, WRITER_BATCH):
            store.append_many(events[i:i + WRITER_BATCH])


def _writers(benchmark, r: Rounds, writers: int) -> None:
    ctx = mp.get_context("fork")
    running: list = []

    def setup():
        url = r.fresh()
        ready, start = ctx.Semaphore(0), ctx.Event()
        procs = [ctx.Process(target=_writer, args=(url, w, WRITERS * PER_WRITER // writers, ready, start))
                 for w in range(writers)]
        for p in procs:
            p.start()
        for _ in procs:  # every writer is connected and has its events ready: time only the appends
            assert ready.acquire(timeout=120)
        running[:] = procs
        return (start,), {}

    def run(start):
        start.set()
        for p in running:
            p.join()
    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    assert [p.exitcode for p in running] == [0] * writers
    for s in r.used:
        with JournalStore.open(s.url, schema=SCHEMA, read_only=True) as store:
            assert store.verify().checked == WRITERS * PER_WRITER


def test_writers_four_ours(benchmark, rounds, native):
    describe(benchmark, section=SECTION, workload="pg writers", impl=native, role="ours",
             items=WRITERS * PER_WRITER, x=WRITERS)
    _writers(benchmark, rounds(), WRITERS)


def test_writers_one_floor(benchmark, rounds, native):
    describe(benchmark, section=SECTION, workload="pg writers", impl="palyra native, 1 writer",
             role="floor", items=WRITERS * PER_WRITER, x=1)
    _writers(benchmark, rounds(), 1)


# ---------------------------------------------------------------- claim_due vs raw SKIP LOCKED
@pytest.fixture(scope="module")
def jobs_template(databases):
    """A database holding N_JOBS jobs, all due at NOW (copied for each round)."""
    scratch = databases.acquire()
    with JournalStore.open(scratch.url, schema=SCHEMA, clock=lambda: T0) as store, store.write():
        for i in range(N_JOBS):
            store.cron.create_job(name=f"job{i}", prompt="p", owner_principal="bench", channel=None,
                                  schedule=Every(3_600_000))
    yield scratch
    databases.release(scratch)


def claim_all(url: str, worker_id: str) -> int:
    kernels.set_backend("native")
    n = 0
    with JournalStore.open(url, schema=SCHEMA, clock=lambda: NOW) as store:
        while got := store.cron.claim_due(worker_id=worker_id, limit=LIMIT):
            n += len(got)
    return n


def _pg(sql: str) -> str:
    """A statement of bench_cron.py's raw claim with psycopg's placeholders."""
    return sql.replace("?", "%s")


def raw_claim_all(url: str, worker_id: str) -> int:
    """The claim by hand: lock due jobs others have not locked, advance them, insert the runs."""
    n = 0
    with raw_connect(url) as conn:
        while True:
            with conn.transaction():
                rows = conn.execute(_pg(RAW_DUE) + " FOR UPDATE SKIP LOCKED",
                                    (NOW, LIMIT)).fetchall()
                advance, runs = raw_claim_rows(rows, worker_id)
                with conn.cursor() as cur:
                    cur.executemany(_pg(RAW_ADVANCE), advance)
                    cur.executemany(_pg(RAW_RUN), runs)
            if not rows:
                return n
            n += len(rows)


def _child(fn, url: str, worker_id: str, out, index: int) -> None:
    out[index] = fn(url, worker_id)


def _claims(benchmark, r: Rounds, fn) -> None:
    ctx = mp.get_context("fork")
    totals: list[int] = []

    def run(url):
        out = ctx.Array("q", WORKERS, lock=False)
        procs = [ctx.Process(target=_child, args=(fn, url, f"w{i}", out, i)) for i in range(WORKERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert [p.exitcode for p in procs] == [0] * WORKERS
        totals.append(sum(out))
    benchmark.pedantic(run, setup=lambda: ((r.fresh(),), {}), rounds=ROUNDS, iterations=1)
    assert totals == [N_JOBS] * ROUNDS
    for s in r.used:  # each (job, slot) exactly once
        with raw_connect(s.url) as conn:
            runs, distinct = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT (job_id, scheduled_for_unix_ms)) FROM cron_runs").fetchone()
        assert runs == distinct == N_JOBS, (runs, distinct)


def test_claim_due_four_workers_ours(benchmark, rounds, jobs_template, native):
    describe(benchmark, section=SECTION, workload="pg claim_due", impl=native, role="ours",
             items=N_JOBS, x=WORKERS)
    _claims(benchmark, rounds(jobs_template), claim_all)


def test_claim_due_four_workers_raw_skip_locked_floor(benchmark, rounds, jobs_template):
    describe(benchmark, section=SECTION, workload="pg claim_due", impl="raw SKIP LOCKED", role="floor",
             items=N_JOBS, x=WORKERS)
    _claims(benchmark, rounds(jobs_template), raw_claim_all)
