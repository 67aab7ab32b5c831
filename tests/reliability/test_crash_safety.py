"""Crash safety: a worker is SIGKILLed at random moments while it writes; after every kill the file
opens, the chain verifies (also against the checkpoint taken after the previous round), the Merkle
tiles agree with the leaves, every batch the worker reported as committed is there, and no batch is
there in part.

Twenty kill rounds per domain and backend; batches are small so that a round costs milliseconds.
The kill lands at a random time after a random number of committed batches, so it hits the middle
of transactions, commits and checkpoints alike.
"""

from __future__ import annotations

import io
import json
import random
from collections import defaultdict

import pytest
import raw_db

from palyra_journal import JournalStore
from palyra_journal.tlog import tiles as tlog_tiles

from .harness import fork_child, raw_connection, report

ROUNDS = 20
BASE_MS = 1_700_000_000_000


def _kill_round(rng: random.Random, body, *args) -> list[dict]:
    child = fork_child(body, *args)
    child.wait_lines(rng.randint(0, 4))
    # a short random delay, in a range where the worker is busy in a transaction most of the time
    import time
    time.sleep(rng.uniform(0.0, 0.03))
    lines = child.kill()
    assert not child.failed, f"worker died by itself (status {child.status}) before the kill"
    return [json.loads(line) for line in lines]


# ---------------------------------------------------------------------------- the journal
def _journal_worker(out, db, first_batch, seed, synchronous):
    rng = random.Random(seed)
    store = JournalStore.open(db, synchronous=synchronous)
    batch = first_batch
    while True:
        n = rng.randint(1, 6)
        events = [{"kind": "crash.batch", "session_id": f"b{batch}",
                   "payload": {"batch": batch, "i": i, "n": n, "pad": "x" * rng.randint(0, 3000)}}
                  for i in range(n)]
        if batch % 2:  # the JSON-lines fast path, one transaction for the whole batch
            text = "".join(json.dumps(e) + "\n" for e in events).encode()
            written = store.ingest_jsonl(io.BytesIO(text), batch_size=n)
            assert written == n
            last = store.head().seq
        else:
            last = store.append_many(events)[-1].seq
        report(out, {"batch": batch, "last_seq": last, "n": n})
        batch += 1


def test_journal_survives_sigkill(db_path, backend, capsys):
    rng = random.Random(8101)
    with JournalStore.open(db_path) as store:
        store.append("crash.start", {"backend": backend})
    checkpoint = None
    next_batch, total_checked, reported_total = 0, 0, 0
    for rnd in range(ROUNDS):
        sync = "full" if rnd % 2 else "normal"
        reported = _kill_round(rng, _journal_worker, db_path, next_batch, rng.random(), sync)
        reported_total += len(reported)
        with JournalStore.open(db_path) as store:
            rep = store.verify()  # also rebuilds every stored Merkle tile from the leaves
            assert rep.ok, f"round {rnd}: verify failed: {rep}"
            assert tlog_tiles.tiles_lag(store) == 0, f"round {rnd}: a completed tile is missing"
            with store.read() as conn:  # exactly the completed tiles: none torn, none extra
                assert tlog_tiles.built_tiles(conn) == rep.checked // 256
            if checkpoint is not None:
                again = store.verify(expected_head=checkpoint)
                assert again.ok, f"round {rnd}: the previous round's head is gone: {again}"
            total_checked += rep.checked
            batches = defaultdict(list)
            by_seq = {}
            for ev in store.iter_events():
                by_seq[ev.seq] = ev
                if ev.kind == "crash.batch":
                    batches[ev.payload["batch"]].append(ev)
            assert rep.checked == len(by_seq)
            for b, evs in batches.items():
                n = evs[0].payload["n"]
                assert sorted(e.payload["i"] for e in evs) == list(range(n)), \
                    f"round {rnd}: batch {b} is partial: {len(evs)} of {n} events"
                seqs = sorted(e.seq for e in evs)
                assert seqs == list(range(seqs[0], seqs[0] + n)), f"batch {b} not contiguous"
            for r in reported:
                ev = by_seq.get(r["last_seq"])
                assert ev is not None, f"round {rnd}: reported batch {r['batch']} lost"
                assert ev.payload["batch"] == r["batch"] and ev.payload["i"] == r["n"] - 1
            checkpoint = store.head()
            next_batch = max(batches, default=-1) + 1 + 1000  # never reuse a batch number
    with capsys.disabled():
        print(f"\n[crash/journal/{backend}] {ROUNDS} kill rounds, {reported_total} batches "
              f"reported, {total_checked} events verified in total, {len(by_seq)} events at the end")


# ---------------------------------------------------------------------------- memory
def _memory_worker(out, db, first_batch, seed):
    rng = random.Random(seed)
    store = JournalStore.open(db)
    batch = first_batch
    while True:
        n = rng.randint(1, 5)
        items = [{"content": f"crash memory entry uniqb{batch}i{i} about topic{rng.randint(0, 9)} "
                             + "filler " * rng.randint(0, 200),
                  "principal": "crash", "tags": [f"batch:{batch}"],
                  "memory_id": f"m{batch:06d}-{i}"} for i in range(n)]
        store.memory.ingest_many(items)
        report(out, {"batch": batch, "n": n})
        batch += 1


def test_memory_ingest_many_survives_sigkill(db_path, backend, capsys):
    rng = random.Random(8102)
    JournalStore.open(db_path).close()
    next_batch, reported_total = 0, 0
    for rnd in range(ROUNDS):
        reported = _kill_round(rng, _memory_worker, db_path, next_batch, rng.random())
        reported_total += len(reported)
        with JournalStore.open(db_path) as store:
            assert store.verify().ok
            dims = store.embedding_provider.dimensions
        conn = raw_connection(db_path)
        try:
            items = conn.execute(
                "SELECT rowid, memory_id, content, tags_json FROM memory_items").fetchall()
            batches = defaultdict(set)
            for _, mid, _, tags in items:
                b, i = mid[1:].split("-")
                batches[int(b)].add(int(i))
                assert json.loads(tags) == [f"batch:{int(b)}"]
            for r in reported:
                assert batches.get(r["batch"]) == set(range(r["n"])), \
                    f"round {rnd}: reported memory batch {r['batch']} missing or partial"
            for b, members in batches.items():  # unreported batches: complete as well
                assert members == set(range(max(members) + 1)), f"batch {b} partial"
            raw_db.fts_check(conn)
            for rowid, mid, _, _ in items:  # FTS finds every item by its unique token, and only it
                b, i = mid[1:].split("-")
                hits = raw_db.fts_rowids(conn, f"uniqb{int(b)}i{i}")
                assert hits == [(rowid,)], f"round {rnd}: FTS out of step for {mid}: {hits}"
            vec = dict(conn.execute("SELECT memory_id, length(vector) FROM memory_vectors"))
            assert set(vec) == {mid for _, mid, _, _ in items}, f"round {rnd}: vectors out of step"
            assert set(vec.values()) <= {dims * 4}
        finally:
            conn.close()
        next_batch = max(batches, default=-1) + 1 + 1000
    with JournalStore.open(db_path) as store:  # the recall path works on what survived
        some = sorted(batches)[len(batches) // 2]
        hits = store.memory.search(f"uniqb{some}i0", principal="crash", top_k=3)
        assert hits and hits[0].item.memory_id == f"m{some:06d}-0"
    with capsys.disabled():
        print(f"\n[crash/memory/{backend}] {ROUNDS} kill rounds, {reported_total} batches reported, "
              f"{len(items)} items checked against FTS and vectors at the end")


# ---------------------------------------------------------------------------- cron claims
def _cron_worker(out, db, seed):
    rng = random.Random(seed)
    now = [0]
    store = JournalStore.open(db, clock=lambda: now[0])
    conn = raw_connection(db)
    latest = conn.execute("SELECT MAX(next_run_at_unix_ms) FROM cron_jobs").fetchone()[0]
    conn.close()
    now[0] = latest
    while True:
        now[0] += 1000
        claims = store.cron.claim_due(worker_id=f"w{seed:.6f}", limit=64, lease_ms=60_000)
        report(out, {"claimed": [c.run.run_id for c in claims], "now": now[0]})
        for c in claims:
            if rng.random() < 0.5:
                store.cron.start_cron_run(c.run.run_id)
            store.cron.finalize_cron_run(c.run.run_id, status="succeeded")
            report(out, {"done": c.run.run_id})


def test_cron_claim_due_survives_sigkill(db_path, backend, capsys):
    import palyra_journal as pj
    rng = random.Random(8103)
    with JournalStore.open(db_path, clock=lambda: BASE_MS) as store:
        for j in range(6):
            store.cron.create_job(name=f"job{j}", prompt="p", owner_principal="crash",
                                  channel="c", schedule=pj.Every(1000))
    claimed_total = 0
    for rnd in range(ROUNDS):
        reported = _kill_round(rng, _cron_worker, db_path, rng.random())
        claimed = [rid for r in reported for rid in r.get("claimed", [])]
        done = [r["done"] for r in reported if "done" in r]
        claimed_total += len(claimed)
        with JournalStore.open(db_path) as store:
            assert store.verify().ok, f"round {rnd}"
            run_events = [e for e in store.iter_events() if e.kind.startswith("cron.run_")]
        conn = raw_connection(db_path)
        try:
            runs = {r[0]: r for r in conn.execute(
                "SELECT run_id, job_id, scheduled_for_unix_ms, status FROM cron_runs")}
            for rid in claimed:
                assert rid in runs, f"round {rnd}: reported claim {rid} lost"
            for rid in done:
                assert runs[rid][3] == "succeeded", f"round {rnd}: finalized run {rid} rolled back"
            slots = [(r[1], r[2]) for r in runs.values() if r[3] != "skipped"]
            assert len(slots) == len(set(slots)), f"round {rnd}: a slot was claimed twice"
            for job_id, next_run in conn.execute("SELECT job_id, next_run_at_unix_ms FROM cron_jobs"):
                latest = max((s for j, s in slots if j == job_id), default=None)
                assert latest is None or next_run > latest, \
                    f"round {rnd}: job {job_id} next_run {next_run} not after its last run {latest}"
            claimed_ids = {e.run_id for e in run_events if e.kind == "cron.run_claimed"}
            audited = {e.run_id for e in run_events}
            for rid, (_, _, _, status) in runs.items():  # audit events share the transaction
                if status != "skipped":  # a skipped tick is recorded finished, never claimed
                    assert rid in claimed_ids, f"round {rnd}: run {rid} has no cron.run_claimed event"
                assert rid in audited, f"round {rnd}: run {rid} has no audit event"
        finally:
            conn.close()
    with capsys.disabled():
        print(f"\n[crash/cron/{backend}] {ROUNDS} kill rounds, {claimed_total} claims reported, "
              f"{len(runs)} runs checked at the end")


@pytest.mark.parametrize("level, pragma", [("normal", 1), ("full", 2), ("FULL", 2)])
@pytest.mark.sqlite_only  # PRAGMA synchronous of the file
def test_synchronous_option_sets_the_durability_level(db_path, level, pragma):
    """The crash rounds alternate both levels; this pins that the option reaches SQLite."""
    with JournalStore.open(db_path, synchronous=level) as store:
        with store.read() as conn:
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == pragma
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.sqlite_only  # no file is created
def test_unknown_synchronous_level_is_refused(db_path):
    from palyra_journal import JournalError
    with pytest.raises(JournalError, match="synchronous"):
        JournalStore.open(db_path, synchronous="sometimes")
    assert not db_path.exists()
