"""The phase-1 field case at full size: ingest 200 000 realistic agent events, count what survives.

``python -m benchmarks.ingest_agent_events [N]`` writes N events (default 200 000; the shapes of
benchmarks/agent_events.py, a quarter of them ``message.agent``) as JSON lines, ingests them into a
fresh store on the active backend, and reports the rate, how many agent messages were flagged as
redacted (phase 1: all of them) and how many usage numbers were kept.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import palyra_journal as pj
from palyra_journal import kernels

from .agent_events import USAGE_KEYS, events, jsonl


def main(n: int = 200_000) -> dict:
    data = jsonl(n)
    with tempfile.TemporaryDirectory() as tmp:
        with pj.JournalStore.open(Path(tmp) / "j.db") as store:
            t0 = time.perf_counter()
            store.ingest_jsonl(io.BytesIO(data))
            seconds = time.perf_counter() - t0
            agent = flagged = kept = expected = 0
            for rec, orig in zip(store.iter_events(), events(n)):
                if rec.kind != "message.agent":
                    continue
                agent += 1
                flagged += rec.redacted
                want = orig["payload"]["usage"]
                got = rec.payload.get("usage", {})
                expected += len(USAGE_KEYS) + 2
                kept += sum(got.get(k) == want[k] for k in USAGE_KEYS)
                kept += rec.payload.get("tokens") == orig["payload"]["tokens"]
                kept += rec.payload.get("max_tokens") == orig["payload"]["max_tokens"]
    return {"backend": kernels.backend_name(), "events": n, "seconds": round(seconds, 3),
            "events_per_s": round(n / seconds), "agent_messages": agent,
            "agent_messages_flagged_redacted": flagged, "usage_figures_kept": kept,
            "usage_figures_expected": expected}


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
