"""Concurrency: four processes share one file, mixing journal appends, memory ingests and searches
and cron claims. Lock contention must never escape as a crash: a call either waits for the lock or
raises ConcurrencyError (and then wrote nothing); one of the four workers uses a 1 ms busy timeout so
that the second path is taken too. Afterwards the chain verifies and the counts add
up: every append and ingest a worker saw succeed is there, and no cron slot was claimed twice.

CI runs 3 seconds; the ``slow`` variant runs 20.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import pytest
import raw_db

import palyra_journal as pj
from palyra_journal import ConcurrencyError, JournalStore

from .harness import fork_child, raw_connection, report

WORKERS = 4


def _worker(out, db, wid, seconds, seed):
    rng = random.Random(seed)
    ok, busy, other = Counter(), Counter(), []
    appended, ingested, claimed, finalized = [], [], [], []
    deadline = time.monotonic() + seconds
    store = None
    while store is None:  # opening may meet the lock too (WAL switch, migration check)
        try:
            # the last worker barely waits for the lock, so ConcurrencyError really happens
            store = JournalStore.open(db, busy_timeout_ms=1 if wid == WORKERS - 1 else 2_000)
        except ConcurrencyError:
            busy["open"] += 1
        except Exception as exc:  # noqa: BLE001
            other.append(f"open: {type(exc).__module__}.{type(exc).__name__}: {exc}")
            report(out, {"wid": wid, "ok": ok, "busy": busy, "other": other, "appended": [],
                         "ingested": [], "claimed": [], "finalized": []})
            return
    i = 0
    while time.monotonic() < deadline:
        i += 1
        op = rng.choice(("append", "append", "append_many", "ingest", "search", "claim"))
        try:
            if op == "append":
                rec = store.append("conc.append", {"w": wid, "i": i}, session_id=f"w{wid}")
                appended.append(rec.event_id)
            elif op == "append_many":
                recs = store.append_many([{"kind": "conc.append", "payload": {"w": wid, "i": i, "j": j},
                                           "session_id": f"w{wid}"} for j in range(5)])
                appended.extend(r.event_id for r in recs)
            elif op == "ingest":
                item = store.memory.ingest(f"worker {wid} note {i} on subject{rng.randint(0, 20)}",
                                           principal="conc", tags=[f"w{wid}"])
                ingested.append(item.memory_id)
            elif op == "search":
                store.memory.search(f"subject{rng.randint(0, 20)} note", principal="conc", top_k=5)
            else:
                claims = store.cron.claim_due(worker_id=f"w{wid}", limit=8)
                claimed.extend(c.run.run_id for c in claims)
                for c in claims:  # a ConcurrencyError here leaves the rest accepted: allowed
                    store.cron.finalize_cron_run(c.run.run_id, status="succeeded")
                    finalized.append(c.run.run_id)
            ok[op] += 1
        except ConcurrencyError:
            busy[op] += 1
        except Exception as exc:  # noqa: BLE001 - anything else is the finding
            other.append(f"{op}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
    try:
        store.close()
    except Exception as exc:  # noqa: BLE001
        other.append(f"close: {type(exc).__module__}.{type(exc).__name__}: {exc}")
    report(out, {"wid": wid, "ok": ok, "busy": busy, "other": other, "appended": appended,
                 "ingested": ingested, "claimed": claimed, "finalized": finalized})


def _run(db_path, seconds, capsys, label):
    with JournalStore.open(db_path) as store:
        for j in range(4):
            store.cron.create_job(name=f"tick{j}", prompt="p", owner_principal="conc", channel="c",
                                  schedule=pj.Every(50 + 25 * j), concurrency_policy="forbid")
    children = [fork_child(_worker, db_path, w, seconds, 9000 + w) for w in range(WORKERS)]
    results = []
    for child in children:
        lines = child.join(timeout=seconds + 60)
        assert not child.failed, f"worker {child.pid} crashed (status {child.status})"
        assert len(lines) == 1, f"worker {child.pid} reported {lines!r}"
        results.append(json.loads(lines[0]))
    other = [o for r in results for o in r["other"]]
    assert not other, "errors other than ConcurrencyError escaped:\n" + "\n".join(other[:20])

    appended = [e for r in results for e in r["appended"]]
    ingested = [m for r in results for m in r["ingested"]]
    claimed = [c for r in results for c in r["claimed"]]
    finalized = [c for r in results for c in r["finalized"]]
    with JournalStore.open(db_path) as store:
        rep = store.verify()
        assert rep.ok, rep
        stored = [e.event_id for e in store.iter_events() if e.kind == "conc.append"]
    assert sorted(stored) == sorted(appended), "journal appends do not add up"
    conn = raw_connection(db_path)
    try:
        items = {r[0] for r in conn.execute("SELECT memory_id FROM memory_items")}
        vectors = {r[0] for r in conn.execute("SELECT memory_id FROM memory_vectors")}
        runs = conn.execute("SELECT run_id, job_id, scheduled_for_unix_ms, status, worker_id "
                            "FROM cron_runs").fetchall()
    finally:
        conn.close()
    assert items == set(ingested) == vectors, "memory ingests do not add up"
    assert len(claimed) == len(set(claimed)), "one run was handed to two workers"
    live = [(r[1], r[2]) for r in runs if r[3] != "skipped"]
    assert len(live) == len(set(live)), "a cron slot was claimed twice"
    succeeded = {r[0] for r in runs if r[3] == "succeeded"}
    assert set(finalized) <= succeeded and set(claimed) <= {r[0] for r in runs}
    ok = sum((Counter(r["ok"]) for r in results), Counter())
    busy = sum((Counter(r["busy"]) for r in results), Counter())
    with capsys.disabled():
        print(f"\n[concurrency/{label}] {WORKERS} processes x {seconds}s: ok={dict(ok)} "
              f"ConcurrencyError={dict(busy)}; {rep.checked} events verified, "
              f"{len(items)} memory items, {len(claimed)} claims, {len(runs)} run rows")


def test_four_processes_three_seconds(db_path, backend, capsys):
    _run(db_path, 3, capsys, f"ci/{backend}")


@pytest.mark.slow
def test_four_processes_twenty_seconds(db_path, backend, capsys):
    _run(db_path, 20, capsys, f"slow/{backend}")


def test_lock_timeout_raises_concurrency_error_and_writes_nothing(db_path, backend):
    """A writer that cannot get the lock within busy_timeout gets ConcurrencyError, not the
    driver's error; the store works again once the lock is free."""
    from .harness import raw_connection, table_snapshot
    with JournalStore.open(db_path, busy_timeout_ms=50) as store:
        store.append("before", {})
        blocker = raw_connection(db_path)
        raw_db.hold_write_lock(blocker)
        try:
            before = table_snapshot(db_path)
            with pytest.raises(ConcurrencyError, match="busy_timeout|lock"):
                store.append("blocked", {"x": 1})
            with pytest.raises(ConcurrencyError):
                store.memory.ingest("blocked note", principal="p")
            assert table_snapshot(db_path) == before
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        store.append("after", {})
        assert [e.kind for e in store.iter_events()] == ["before", "after"]
        assert store.verify().ok
