"""Several processes appending into one file never fork the chain: BEGIN IMMEDIATE serializes the
writers and each reads the chain head inside its own write transaction."""

from __future__ import annotations

import multiprocessing as mp
import os

from palyra_journal import JournalStore

PROCESSES = 4
PER_PROCESS = 2_000


def _writer(path: str, backend: str, worker: int, start) -> None:
    os.environ["PALYRA_JOURNAL_BACKEND"] = backend
    from palyra_journal import kernels
    kernels.set_backend(backend)
    with JournalStore.open(path, busy_timeout_ms=60_000) as store:
        start.wait()
        done = 0
        i = 0
        while done < PER_PROCESS:  # alternate single appends and small batches to interleave
            if i % 2:
                store.append("worker.tick", {"worker": worker, "n": done}, actor=f"w{worker}")
                done += 1
            else:
                k = min(25, PER_PROCESS - done)
                store.append_many([{"kind": "worker.batch", "payload": {"worker": worker, "n": done + j},
                                    "actor": f"w{worker}"} for j in range(k)])
                done += k
            i += 1


def test_four_processes_append_into_one_chain(db_path, backend):
    JournalStore.open(db_path).close()  # create and migrate once
    ctx = mp.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(db_path), backend, w, start))
             for w in range(PROCESSES)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with JournalStore.open(db_path) as store:
        with store.read() as conn:
            n, lo, hi = conn.execute(
                "SELECT COUNT(*), MIN(seq), MAX(seq) FROM journal_events").fetchone()
            per_actor = dict(conn.execute(
                "SELECT actor, COUNT(*) FROM journal_events GROUP BY actor").fetchall())
        assert (n, lo, hi) == (PROCESSES * PER_PROCESS, 1, PROCESSES * PER_PROCESS)
        assert per_actor == {f"w{w}": PER_PROCESS for w in range(PROCESSES)}
        report = store.verify()
        assert report.ok and report.checked == PROCESSES * PER_PROCESS
