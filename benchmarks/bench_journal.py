"""benchmarks/README.md sections 1 and 2: appending and verifying, against the raw-SQLite floor and peers.

Every workload runs on a fresh file per round with the store's pragmas (WAL, synchronous=NORMAL)
and the real schema (indexes and triggers), so the floor pays what we pay in SQLite:

- floor "raw sqlite3": the already-final rows (same columns, same bytes, precomputed hashes)
  inserted with the standard module: executemany per batch, or insert+commit per event;
  for verify, one bare single-threaded SELECT of the same columns (fetchall);
- peers: json.dumps + hashlib + sqlite3, orjson + hashlib + sqlite3 (no redaction: a lower bound
  on their work), a Python hashlib loop that recomputes the chain from the columns, and our
  verify() held to one connection (what verifying in ranges on both cores adds).

Scaled for a shared 2-core machine: 5 000 events appended in batches (1 000 one transaction
each) and 30 000 verified with --quick; PALYRA_BENCH_SCALE=full runs benchmarks/README.md's 100 000 and
1 000 000. Run: ``python -m pytest benchmarks/bench_journal.py --benchmark-only``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from itertools import islice
from pathlib import Path

import pytest

from .common import describe, scaled
from palyra_journal import JournalStore, kernels, verify
from palyra_journal.events import COLUMNS

N_BATCH = scaled(5_000, 100_000)
N_SINGLE = scaled(1_000, 20_000)
N_VERIFY = scaled(30_000, 1_000_000)
BATCH = 1_000
INGEST_BATCH = 10_000
GENESIS = "0" * 64
INSERT = f"INSERT INTO journal_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 15)})"
ROUNDS = 3

try:
    import orjson
except ImportError:  # pragma: no cover - reported as a missing peer
    orjson = None


def make_events(n: int, seed: int = 1) -> list[dict]:
    """~8 keys with one nested object, ~330 bytes canonical, 10 % non-ASCII, a few secrets."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = rng.choice(("plan the release and check the budget twice",
                           "summarize the meeting notes for the team"))
        if i % 10 == 0:
            text = "résumé für Zoë — 日程を確認する"
        args = {"query": text, "limit": rng.randint(1, 50), "offset": i}
        if i % 50 == 0:
            args["api_key"] = "sk-test-123456"
        out.append({"kind": "tool.executed", "actor": "agent", "session_id": f"s{i // 40}",
                    "run_id": f"r{i // 8}", "principal": "user:ada", "channel": "cli",
                    "payload": {"tool": "web.search", "args": args, "ok": True,
                                "duration_ms": round(rng.uniform(1, 900), 3),
                                "step": i, "attempt": 1, "model": "demo-1",
                                "output": {"items": rng.randint(0, 20),
                                           "bytes": rng.randint(0, 1 << 20)}}})
    return out


_counter = [0]


def fresh_path(workdir: Path) -> Path:
    _counter[0] += 1
    path = workdir / f"db{_counter[0]}.db"
    JournalStore.open(path).close()  # schema, WAL
    return path


def raw_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    return conn


@pytest.fixture(scope="module")
def events_batch():
    return make_events(N_BATCH)


@pytest.fixture(scope="module")
def final_rows(workdir, events_batch):
    """The rows our store writes for the workload, to insert raw as the floor."""
    path = fresh_path(workdir)
    with JournalStore.open(path) as store:
        store.append_many(events_batch)
        with store.read() as conn:
            return conn.execute(f"SELECT {', '.join(COLUMNS)} FROM journal_events "
                                "ORDER BY seq").fetchall()


@pytest.fixture(scope="module")
def jsonl_file(workdir, events_batch):
    path = workdir / "events.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for ev in events_batch:
            f.write(json.dumps(ev, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(params=["native", "python"])
def ours(request):
    """Run our store on each kernel backend; a backend that is not built is skipped."""
    name = request.param
    if name == "native":
        try:
            available = kernels.native_available()
        except Exception as exc:  # a half-built extension
            pytest.skip(f"native backend unusable: {exc}")
        if not available:
            pytest.skip("native backend not built")
    previous = kernels.backend_name()
    kernels.set_backend(name)
    yield f"palyra {name}"
    kernels.set_backend(previous)


def floor_batches(rows, size):
    """The floor: the already-final ``rows`` inserted with plain sqlite3, ``size`` per transaction."""
    def job(path):
        conn = raw_connect(path)
        for part in chunks(rows, size):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT, part)
            conn.execute("COMMIT")
        conn.close()
    return job


def chunks(seq, size):
    it = iter(seq)
    while True:
        part = list(islice(it, size))
        if not part:
            return
        yield part


def run_fresh(benchmark, workdir, fn):
    """Time ``fn(path)`` on a fresh database each round."""
    benchmark.pedantic(fn, setup=lambda: ((fresh_path(workdir),), {}), rounds=ROUNDS,
                       iterations=1)


# ---------------------------------------------------------------------------- peers' own pipelines
def _s(v):
    return "null" if v is None else json.dumps(v, ensure_ascii=False)


def peer_rows(events, first_seq, prev, now, dumps):
    """Canonical-ish payload with ``dumps``, chain v1 envelope, hashlib: the peers' whole job."""
    rows = []
    seq = first_seq
    for ev in events:
        payload = dumps(ev.get("payload") or {})
        env = ('{"actor":%s,"channel":%s,"device_id":%s,"event_id":%s,"kind":%s,"payload":%s,'
               '"principal":%s,"run_id":%s,"seq":%d,"session_id":%s,"timestamp_unix_ms":%d}') % (
            _s(ev.get("actor", "system")), _s(ev.get("channel")), _s(ev.get("device_id")),
            _s(f"ev-{seq}"), _s(ev["kind"]), payload, _s(ev.get("principal")),
            _s(ev.get("run_id")), seq, _s(ev.get("session_id")), now)
        h = hashlib.sha256(prev.encode() + b"\n" + env.encode()).hexdigest()
        rows.append((seq, f"ev-{seq}", ev["kind"], ev.get("actor", "system"), ev.get("session_id"),
                     ev.get("run_id"), ev.get("principal"), ev.get("device_id"), ev.get("channel"),
                     now, payload, 0, h, prev, now))
        prev = h
        seq += 1
    return rows


def json_dumps(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def orjson_dumps(v):
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


PEERS = [("json+hashlib+sqlite3", json_dumps), ("orjson+hashlib+sqlite3", orjson_dumps)]


def peer_batches(path, events, dumps, batch):
    conn = raw_connect(path)
    prev = GENESIS
    seq = 1
    for part in chunks(events, batch):
        conn.execute("BEGIN IMMEDIATE")
        rows = peer_rows(part, seq, prev, 1_700_000_000_000, dumps)
        conn.executemany(INSERT, rows)
        conn.execute("COMMIT")
        prev = rows[-1][12]
        seq += len(rows)
    conn.close()


# ---------------------------------------------------------------------------- 1. append_many
def test_append_many_ours(benchmark, workdir, events_batch, ours):
    def job(path):
        with JournalStore.open(path) as store:
            for part in chunks(events_batch, BATCH):
                store.append_many(part)
    describe(benchmark, section=1, workload="append_many", impl=ours, role="ours", items=N_BATCH)
    run_fresh(benchmark, workdir, job)


def test_append_many_floor(benchmark, workdir, final_rows):
    job = floor_batches(final_rows, BATCH)
    describe(benchmark, section=1, workload="append_many", impl="raw sqlite3", role="floor",
             items=N_BATCH)
    run_fresh(benchmark, workdir, job)


@pytest.mark.parametrize("peer", PEERS, ids=[p[0] for p in PEERS])
def test_append_many_peer(benchmark, workdir, events_batch, peer):
    name, dumps = peer
    if name.startswith("orjson") and orjson is None:
        pytest.skip("orjson is not installed")
    describe(benchmark, section=1, workload="append_many", impl=name, role="peer", items=N_BATCH)
    run_fresh(benchmark, workdir, lambda path: peer_batches(path, events_batch, dumps, BATCH))


# ---------------------------------------------------------------------------- 1. append
def test_append_ours(benchmark, workdir, events_batch, ours):
    evs = events_batch[:N_SINGLE]

    def job(path):
        with JournalStore.open(path) as store:
            append = store.append
            for ev in evs:
                append(ev["kind"], ev["payload"], actor=ev["actor"], session_id=ev["session_id"],
                       run_id=ev["run_id"], principal=ev["principal"], channel=ev["channel"])
    describe(benchmark, section=1, workload="append", impl=ours, role="ours", items=N_SINGLE)
    run_fresh(benchmark, workdir, job)


def test_append_floor(benchmark, workdir, final_rows):
    rows = final_rows[:N_SINGLE]

    def job(path):
        conn = raw_connect(path)
        for row in rows:
            conn.execute(INSERT, row)  # autocommit: insert + commit
        conn.close()
    describe(benchmark, section=1, workload="append", impl="raw sqlite3", role="floor",
             items=N_SINGLE)
    run_fresh(benchmark, workdir, job)


def test_append_peer_json(benchmark, workdir, events_batch):
    evs = events_batch[:N_SINGLE]
    describe(benchmark, section=1, workload="append", impl="json+hashlib+sqlite3", role="peer",
             items=N_SINGLE)

    def job(path):
        conn = raw_connect(path)
        for ev in evs:
            conn.execute("BEGIN IMMEDIATE")
            last = conn.execute("SELECT seq, hash FROM journal_events ORDER BY seq DESC "
                                "LIMIT 1").fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            conn.execute(INSERT, peer_rows([ev], seq, prev, 1_700_000_000_000, json_dumps)[0])
            conn.execute("COMMIT")
        conn.close()
    run_fresh(benchmark, workdir, job)


# ---------------------------------------------------------------------------- 1. ingest_jsonl
def test_ingest_jsonl_ours(benchmark, workdir, jsonl_file, ours):
    def job(path):
        with JournalStore.open(path) as store:
            store.ingest_jsonl(jsonl_file, batch_size=INGEST_BATCH)
    describe(benchmark, section=1, workload="ingest_jsonl", impl=ours, role="ours", items=N_BATCH)
    run_fresh(benchmark, workdir, job)


def test_ingest_jsonl_floor(benchmark, workdir, final_rows):
    job = floor_batches(final_rows, INGEST_BATCH)
    describe(benchmark, section=1, workload="ingest_jsonl", impl="raw sqlite3", role="floor",
             items=N_BATCH)
    run_fresh(benchmark, workdir, job)


@pytest.mark.parametrize("peer", PEERS, ids=[p[0] for p in PEERS])
def test_ingest_jsonl_peer(benchmark, workdir, jsonl_file, peer):
    name, dumps = peer
    if name.startswith("orjson") and orjson is None:
        pytest.skip("orjson is not installed")
    loads = orjson.loads if name.startswith("orjson") else json.loads

    def job(path):
        with open(jsonl_file, "rb") as f:
            events = [loads(line) for line in f]
        peer_batches(path, events, dumps, INGEST_BATCH)
    describe(benchmark, section=1, workload="ingest_jsonl", impl=name, role="peer", items=N_BATCH)
    run_fresh(benchmark, workdir, job)


# ---------------------------------------------------------------------------- 2. verify
@pytest.fixture(scope="module")
def verify_db(workdir):
    path = fresh_path(workdir)
    base = make_events(1_000, seed=2)
    with JournalStore.open(path) as store:
        for start in range(0, N_VERIFY, 10_000):
            store.append_many([base[(start + i) % 1_000] for i in range(10_000)])
    return path


def test_verify_ours(benchmark, verify_db, ours):
    store = JournalStore.open(verify_db, read_only=True)
    describe(benchmark, section=2, workload="verify", impl=ours, role="ours", items=N_VERIFY)
    report = benchmark.pedantic(store.verify, rounds=ROUNDS, iterations=1)
    store.close()
    assert report.ok and report.checked == N_VERIFY


def test_verify_one_connection(benchmark, verify_db, ours, monkeypatch):
    """Our verify() held to the one-connection pass (rows streamed, one thread): what the ranges
    on both cores (palyra_journal/verify.py) add. Native only: the pure pass is the loop above."""
    if ours != "palyra native":
        pytest.skip("the one-connection comparison is made on the native backend")
    monkeypatch.setattr(verify, "PARALLEL_MIN_ROWS", N_VERIFY + 1)
    store = JournalStore.open(verify_db, read_only=True)
    describe(benchmark, section=2, workload="verify", impl=f"{ours} one connection",
             role="peer", items=N_VERIFY)
    report = benchmark.pedantic(store.verify, rounds=ROUNDS, iterations=1)
    store.close()
    assert report.ok and report.checked == N_VERIFY


def test_verify_floor(benchmark, verify_db):
    """The floor: one bare single-threaded SELECT of the same columns, every row fetched."""
    conn = sqlite3.connect(f"file:{verify_db}?mode=ro", uri=True)
    sql = (f"SELECT {', '.join(kernels.VERIFY_FIELDS)} FROM journal_events WHERE seq >= ? "
           "AND seq <= ? ORDER BY seq")

    def job():
        return len(conn.execute(sql, (1, N_VERIFY)).fetchall())
    describe(benchmark, section=2, workload="verify", impl="raw sqlite3", role="floor",
             items=N_VERIFY)
    assert benchmark.pedantic(job, rounds=ROUNDS, iterations=1) == N_VERIFY
    conn.close()


def test_verify_peer_python_loop(benchmark, verify_db):
    conn = sqlite3.connect(f"file:{verify_db}?mode=ro", uri=True)
    sql = f"SELECT {', '.join(kernels.VERIFY_FIELDS)} FROM journal_events ORDER BY seq"
    env = ('{"actor":%s,"channel":%s,"device_id":%s,"event_id":%s,"kind":%s,"payload":%s,'
           '"principal":%s,"run_id":%s,"seq":%d,"session_id":%s,"timestamp_unix_ms":%d}')
    sha = hashlib.sha256

    def job():
        prev = GENESIS
        n = 0
        for (seq, eid, kind, actor, sess, run, princ, dev, chan, ts, payload, h, p) in \
                conn.execute(sql):
            text = env % (_s(actor), _s(chan), _s(dev), _s(eid), _s(kind), payload, _s(princ),
                          _s(run), seq, _s(sess), ts)
            if p != prev or sha((prev + "\n" + text).encode()).hexdigest() != h:
                raise AssertionError(f"bad row {seq}")
            prev = h
            n += 1
        return n
    describe(benchmark, section=2, workload="verify", impl="python hashlib loop", role="peer",
             items=N_VERIFY)
    assert benchmark.pedantic(job, rounds=ROUNDS, iterations=1) == N_VERIFY
    conn.close()


# ---------------------------------------------------------------------------- 1. batch-size sweep
SWEEP_EVENTS = scaled(4_000, 20_000)
SWEEP_BATCHES = (1, 10, 100, 1_000)


@pytest.mark.parametrize("batch", SWEEP_BATCHES)
def test_append_many_batch_sweep_ours(benchmark, workdir, events_batch, batch):
    """Throughput vs events per transaction (the report's plot), native backend."""
    evs = events_batch[:SWEEP_EVENTS]

    def job(path):
        with JournalStore.open(path) as store:
            for part in chunks(evs, batch):
                store.append_many(part)
    describe(benchmark, section=1, workload=f"append_many batch {batch}",
             impl=f"palyra {kernels.backend_name()}", role="ours", items=len(evs), x=batch)
    run_fresh(benchmark, workdir, job)


@pytest.mark.parametrize("batch", SWEEP_BATCHES)
def test_append_many_batch_sweep_floor(benchmark, workdir, final_rows, batch):
    rows = final_rows[:SWEEP_EVENTS]

    job = floor_batches(rows, batch)
    describe(benchmark, section=1, workload=f"append_many batch {batch}", impl="raw sqlite3",
             role="floor", items=len(rows), x=batch)
    run_fresh(benchmark, workdir, job)
