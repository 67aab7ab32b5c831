"""The memory step of ``palyra-journal demo``: ingest a few dozen memories, then recall.

Shows the parts users care about on a sample they can read: scoping by principal, redaction of a
secret pasted into a note, non-ASCII words, and a hybrid recall with its score split and timing.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

NOTES = (
    "Deploy checklist: run the migrations, then restart the API workers one by one",
    "The staging database is rebuilt every night at 02:00 UTC",
    "Ada prefers short status updates in the #release channel",
    "Release train leaves on Thursdays; freeze starts Wednesday noon",
    "Rollback plan: redeploy the previous image tag and replay the queue",
    "Zoë asked for the résumé template in German: Lebenslauf Vorlage",
    "日程を確認する before booking the offsite",
    "Budget review moved to the first Monday of the month",
    "The flaky integration test depends on the clock; freeze time in fixtures",
    "On-call handover happens at 09:00 with a written summary",
    "API rate limit is 600 requests per minute per token bucket",
    "Customer Příliš žluťoučký kůň reported slow exports on large files",
    "Use feature flags for the new search ranking before full rollout",
    "Backups are verified weekly by restoring into a scratch instance",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.demo.signature",
    "Grace owns the deploy pipeline; ask her before changing the CI runners",
    "Meeting notes: agreed to deprecate the v1 endpoints by the end of the quarter",
    "The canvas editor autosaves every 32 patches as a snapshot",
)


def demo_step(store, out: TextIO | None = None) -> dict[str, Any]:
    """Ingest ~three dozen memories for two principals and run one hybrid recall."""
    items = []
    for i, note in enumerate(NOTES):
        items.append({"content": note, "principal": "user:ada", "channel": "cli",
                      "session_id": f"demo-{i % 4}", "tags": ["demo"] if i % 3 else ["demo", "ops"],
                      "source": "manual" if i % 2 else "summary"})
        items.append({"content": note, "principal": "user:grace", "channel": "web",
                      "source": "import"})
    t0 = time.perf_counter()
    stored = store.memory.ingest_many(items)
    t1 = time.perf_counter()
    query = "how do we deploy and roll back?"
    hits = store.memory.search(query, principal="user:ada", top_k=3)
    t2 = time.perf_counter()
    redacted = sum(1 for it in stored if it.content == "<redacted>")
    if out is not None:
        out.write(f"memory: {len(stored)} memories in {1000 * (t1 - t0):.1f} ms; "
                  f"recall {query!r} in {1000 * (t2 - t1):.1f} ms\n")
        for h in hits:
            out.write(f"  {h.score:.3f} (L {h.lexical_score:.2f} V {h.vector_score:.2f} "
                      f"R {h.recency_score:.2f})  {h.snippet}\n")
    return {
        "memories": len(stored), "redacted": redacted, "query": query,
        "top": hits[0].snippet if hits else None,
        "top_score": round(hits[0].score, 3) if hits else None,
        "search_ms": round(1000 * (t2 - t1), 2),
    }
