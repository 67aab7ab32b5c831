"""Quick ratios for benchmarks/README.md section 1: ours against the raw-SQLite floor, same process.

Each workload runs ``ROUNDS`` alternating rounds (ours, floor, kernels, ours, ...) on fresh files,
and the ratio of the median rates is printed (1.0 = as fast as the floor). The floor is the one of
``bench_journal.py``: the already-final rows inserted with the standard ``sqlite3`` module.

"kernels" times, in the same rounds, only the kernel calls the workload cannot skip on the same
events (canonical JSON with redaction, the chain and tile-leaf hashes; for ``ingest_jsonl`` the
line parser too), with no SQL and no validation: ``floor / (floor + kernels)`` bounds the ratio any
Python around them could reach, since the floor already pays the whole SQLite part.
``append`` is also timed event by event, interleaved with the floor's insert+commit of the same
row on another file ("append, interleaved"): under a shared machine's load this keeps the two
sides in the same moments, and the difference is our per-event cost beyond SQLite's.
Run: ``python -m benchmarks.measure_append [N] [ROUNDS] [WORKLOADS]`` (defaults 20 000 events,
5 rounds, every workload; WORKLOADS e.g. ``append,ingest_jsonl``).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from palyra_journal import JournalStore, kernels
from palyra_journal.events import COLUMNS

from .bench_journal import (BATCH, INGEST_BATCH, INSERT, chunks, floor_batches, make_events,
                            raw_connect)

N_SINGLE_SHARE = 4  # append (one transaction per event) runs on N / 4 events


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    events = make_events(n)
    single = events[: n // N_SINGLE_SHARE]
    with tempfile.TemporaryDirectory(prefix="pj-measure-") as d:
        work = Path(d)
        counter = [0]

        def fresh() -> Path:
            counter[0] += 1
            path = work / f"db{counter[0]}.db"
            JournalStore.open(path).close()
            return path

        with JournalStore.open(fresh()) as store:
            store.append_many(events)
            with store.read() as conn:
                rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM journal_events "
                                    "ORDER BY seq").fetchall()
        jsonl = work / "events.jsonl"
        jsonl.write_text("".join(json.dumps(ev, ensure_ascii=False) + "\n" for ev in events),
                         encoding="utf-8")

        def ours_append(path):
            with JournalStore.open(path) as store:
                append = store.append
                for ev in single:
                    append(ev["kind"], ev["payload"], actor=ev["actor"],
                           session_id=ev["session_id"], run_id=ev["run_id"],
                           principal=ev["principal"], channel=ev["channel"])

        def floor_append(path):
            conn = raw_connect(path)
            for row in rows[: len(single)]:
                conn.execute(INSERT, row)
            conn.close()

        def ours_many(path):
            with JournalStore.open(path) as store:
                for part in chunks(events, BATCH):
                    store.append_many(part)


        def ours_ingest(path):
            with JournalStore.open(path) as store:
                store.ingest_jsonl(jsonl, batch_size=INGEST_BATCH)

        def kernels_append(path) -> float:
            """canonicalize + chain_row per event (append's two kernel calls), timed alone."""
            prev = kernels.GENESIS_HASH
            t0 = time.perf_counter()
            for ev, row in zip(single, rows):
                kernels.canonicalize(ev["payload"])
                prev = kernels.chain_row(prev, row[:11])[0]
            return time.perf_counter() - t0

        def kernels_batches(size, parse):
            """Per batch, canonicalize_many (or event_lines on the lines) with the packed payload
            column, then chain_columns with the tile leaves: only those calls are timed."""
            def job(path) -> float:
                spent = 0.0
                for start in range(0, len(rows), size):
                    part = rows[start:start + size]
                    columns = [list(c) for c in zip(*part)][1:11]
                    t0 = time.perf_counter()
                    if parse:
                        packed = kernels.event_lines(lines[start:start + size], pack=True)[11]
                    else:
                        packed = kernels.canonicalize_many(
                            [ev["payload"] for ev in events[start:start + size]], payloads=True,
                            pack=True)[2]
                    kernels.chain_columns(part[0][13], part[0][0], columns, len(part), packed)
                    spent += time.perf_counter() - t0
                return spent
            return job

        lines = jsonl.read_bytes().splitlines(keepends=True)
        workloads = [("append", ours_append, floor_append, kernels_append),
                     ("append_many", ours_many, floor_batches(rows, BATCH),
                      kernels_batches(BATCH, False)),
                     ("ingest_jsonl", ours_ingest, floor_batches(rows, INGEST_BATCH),
                      kernels_batches(INGEST_BATCH, True))]

        def interleaved(ours_path, floor_path):
            """append and the floor's insert+commit, alternating event by event."""
            conn = raw_connect(floor_path)
            t_ours = t_floor = 0.0
            clock = time.perf_counter
            with JournalStore.open(ours_path) as store:
                append = store.append
                for ev, row in zip(single, rows):
                    t0 = clock()
                    conn.execute(INSERT, row)
                    t1 = clock()
                    append(ev["kind"], ev["payload"], actor=ev["actor"],
                           session_id=ev["session_id"], run_id=ev["run_id"],
                           principal=ev["principal"], channel=ev["channel"])
                    t_floor += t1 - t0
                    t_ours += clock() - t1
            conn.close()
            k = len(single)
            print(f"{'  interleaved':13s} ours {t_ours / k * 1e6:6.1f} us/event  floor "
                  f"{t_floor / k * 1e6:6.1f} us/event  ratio {t_floor / t_ours:.2f}  |  ours - floor "
                  f"{(t_ours - t_floor) / k * 1e6:.1f} us/event")

        only = sys.argv[3].split(",") if len(sys.argv) > 3 else None
        print(f"backend {kernels.backend_name()}, {n} events, {rounds} rounds")
        for name, ours, floor, kern in workloads:
            if only and name not in only:
                continue
            t_ours, t_floor, t_kern = [], [], []
            for _ in range(rounds):
                for fn, acc in ((ours, t_ours), (floor, t_floor), (kern, t_kern)):
                    path = fresh()
                    t0 = time.perf_counter()
                    own = fn(path)  # the kernels' job times its own calls
                    acc.append(time.perf_counter() - t0 if own is None else own)
            mo, mf, mk = (statistics.median(t) for t in (t_ours, t_floor, t_kern))
            print(f"{name:13s} ours {mo * 1e3:8.1f} ms  floor {mf * 1e3:8.1f} ms  "
                  f"ratio {mf / mo:.2f}  |  kernels alone {mk * 1e3:7.1f} ms = "
                  f"{mk / mf:.2f} x floor, bound floor/(floor+kernels) {mf / (mf + mk):.2f}")
            if name == "append":
                interleaved(fresh(), fresh())


if __name__ == "__main__":
    main()
