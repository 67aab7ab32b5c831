"""``palyra-journal demo``: the main job on a realistic synthetic sample, in a few seconds.

The demo is a list of step functions (:data:`STEPS`), each taking the shared :class:`DemoContext`
and returning a small dict for the summary, so each domain adds its own step as one function
(journal ingest + verify now; memory recall, cron, canvas and approvals append theirs).
The workload is deterministic (seeded), so two runs show the same shape.

The sample holds secrets on purpose, so the demo writes nothing but the database: the JSON lines
are ingested from memory, and without a DB argument the database lives in a private temporary
directory that is removed when the demo ends, Ctrl-C included.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .approvals import demo_step as approvals_step
from .canvas import demo_step as canvas_step
from .cron import demo_step as cron_step
from .memory.demo import demo_step as memory_step
from .store import JournalStore

TOOLS = ("web.search", "fs.read", "fs.write", "shell.exec", "http.fetch", "calendar.list",
         "mail.send", "browser.open")
WORDS = ("plan the release", "summarize the meeting", "fix the failing test", "draft a reply",
         "book a table for four", "compare two offers", "résumé für Zoë", "日程を確認する",
         "translate the notes", "check the budget", "a basic plan", "token count: 5",
         "the cookie jar")
#: Secrets mixed into the sample; none of them may reach the file.
SECRETS = ("sk-live-4f9a8b7c6d5e4f3a2b1c", "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
           "postgres://app:hunter2@db.internal:5432/prod", "password=correct-horse")


@dataclass
class DemoContext:
    """What the steps share: the open store, a seeded RNG, the results."""

    store: JournalStore
    rng: random.Random
    events: int
    results: dict[str, Any] = field(default_factory=dict)


def synthetic_events(rng: random.Random, count: int, start_ms: int) -> list[dict]:
    """Sessions of runs of tool calls, with user messages, model replies and a few secrets."""
    out: list[dict] = []
    t = start_ms
    session = 0
    while len(out) < count:
        session += 1
        sid = f"sess-{session:05d}"
        principal = f"user:{rng.choice(('ada', 'grace', 'linus', 'zoë'))}"
        channel = rng.choice(("cli", "slack", "web"))
        for run in range(rng.randint(1, 4)):
            rid = f"{sid}-run-{run}"
            t += rng.randint(500, 5_000)
            base = {"session_id": sid, "run_id": rid, "principal": principal, "channel": channel}
            out.append({**base, "kind": "message.user", "actor": "user", "timestamp_unix_ms": t,
                        "payload": {"text": rng.choice(WORDS), "chars": rng.randint(5, 400)}})
            for _ in range(rng.randint(1, 6)):
                t += rng.randint(20, 2_000)
                tool = rng.choice(TOOLS)
                args: dict[str, Any] = {"query": rng.choice(WORDS), "limit": rng.randint(1, 50)}
                if rng.random() < 0.08:
                    args["api_key"] = rng.choice(SECRETS)
                if rng.random() < 0.05:
                    args["headers"] = {"Authorization": rng.choice(SECRETS), "Accept": "text/html"}
                if rng.random() < 0.04:
                    args["env"] = rng.choice(SECRETS)
                out.append({**base, "kind": "tool.executed", "actor": "agent",
                            "timestamp_unix_ms": t,
                            "payload": {"tool": tool, "args": args, "ok": rng.random() > 0.1,
                                        "duration_ms": round(rng.uniform(0.5, 900.0), 3),
                                        "output": {"items": rng.randint(0, 20),
                                                   "bytes": rng.randint(0, 1 << 20)}}})
            t += rng.randint(100, 3_000)
            out.append({**base, "kind": "message.agent", "actor": "agent", "timestamp_unix_ms": t,
                        "payload": {"text": rng.choice(WORDS), "model": "demo-1",
                                    "tokens": {"in": rng.randint(50, 4000),
                                               "out": rng.randint(10, 800)}}})
    return out[:count]


def step_journal(ctx: DemoContext) -> dict[str, Any]:
    """Ingest the sample as JSON lines (from memory: its secrets never touch the disk in clear),
    verify the chain, check no secret is stored."""
    sample = synthetic_events(ctx.rng, ctx.events, 1_700_000_000_000)
    src = io.BytesIO("".join(json.dumps(ev, ensure_ascii=False) + "\n"
                             for ev in sample).encode("utf-8"))
    store = ctx.store
    t0 = time.perf_counter()
    written = store.ingest_jsonl(src, progress=True)
    t1 = time.perf_counter()
    report = store.verify(progress=True)
    t2 = time.perf_counter()
    with store.read() as conn:
        redacted = conn.execute("SELECT COUNT(*) FROM journal_events WHERE redacted <> 0"
                                ).fetchone()[0]
        # searched here, not by SQL: both engines, one rule (SQLite's instr, PostgreSQL's strpos)
        stored = [r[0] for r in conn.execute("SELECT payload_json FROM journal_events")]
        leaked = sum(s in text for s in SECRETS for text in stored)
        sessions = conn.execute("SELECT COUNT(DISTINCT session_id) FROM journal_events").fetchone()[0]
    return {
        "ingested": written, "ingest_per_s": round(written / max(t1 - t0, 1e-9)),
        "verified": report.checked, "verify_per_s": round(report.checked / max(t2 - t1, 1e-9)),
        "chain_ok": report.ok, "redacted_events": redacted, "secrets_on_disk": leaked,
        "sessions": sessions, "head": None if report.head is None else report.head.to_dict(),
    }


def step_audit(ctx: DemoContext) -> dict[str, Any]:
    """Verify the whole chain again: it now holds the memory, canvas, cron and approval events."""
    t0 = time.perf_counter()
    report = ctx.store.verify()
    kinds: dict[str, int] = {}
    with ctx.store.read() as conn:  # grouped by domain here: the SQL both engines run
        for kind, count in conn.execute("SELECT kind, COUNT(*) FROM journal_events GROUP BY kind"):
            domain = kind.partition(".")[0]
            if domain in ("memory", "canvas", "cron", "approval"):
                kinds[domain] = kinds.get(domain, 0) + count
    return {"chain_ok": report.ok, "checked": report.checked,
            "domain_events": kinds, "ms": round((time.perf_counter() - t0) * 1e3, 1)}


def step_tlog(ctx: DemoContext) -> dict[str, Any]:
    """Sign a checkpoint of the journal's Merkle tree, then prove one event is in it and check
    the proof with the checkpoint and the event alone, as an auditor without the file would."""
    from . import tlog
    store = ctx.store
    signer, verifier = tlog.generate_key("demo.example/journal-key")
    note = store.sign_checkpoint(signer, "demo.example/agent-journal")
    checkpoint = tlog.open_checkpoint(note, verifier)
    seq = ctx.rng.randint(1, checkpoint.size)
    proof = store.inclusion_proof(seq, checkpoint.size)
    event = store.events(after_seq=seq - 1, limit=1)[0]
    tlog.verify_inclusion(tlog.leaf_hash(event), seq - 1, checkpoint.size, proof.hashes,
                          checkpoint.root)
    return {"checkpoint_size": checkpoint.size, "root": checkpoint.root.hex()[:16] + "…",
            "proved_seq": seq, "proof_hashes": len(proof.hashes), "proof_ok": True}


#: The demo's steps in order: (name, function taking the context, returning the summary dict).
STEPS: list[tuple[str, Callable[[DemoContext], dict[str, Any]]]] = [
    ("journal", step_journal),
    ("memory", lambda ctx: memory_step(ctx.store, None)),
    ("canvas", lambda ctx: canvas_step(ctx.store, None)),
    ("cron", lambda ctx: cron_step(ctx.store)),
    ("approvals", lambda ctx: approvals_step(ctx.store, None)),
    ("audit", step_audit),
    ("tlog", step_tlog),
]


def run_demo(path: str | os.PathLike[str] | None = None, *, events: int = 5_000,
             seed: int = 7, **open_options: Any) -> dict[str, Any]:
    """Run every step on ``path`` (a file or a ``postgresql://`` URL, opened with
    ``open_options``); returns the summary. Without ``path`` the database is made in a new
    private temporary directory, removed on the way out (``"kept": False``)."""
    workdir = tempfile.mkdtemp(prefix="palyra-journal-demo-") if path is None else ""
    try:
        db: str | os.PathLike[str] = Path(workdir) / "demo.db" if path is None else path
        t0 = time.perf_counter()
        with JournalStore.open(db, **open_options) as store:
            summary: dict[str, Any] = {"database": store.path, "kept": not workdir}
            ctx = DemoContext(store=store, rng=random.Random(seed), events=events)
            from . import kernels
            summary["backend"] = kernels.backend_name()
            for name, step in STEPS:
                ctx.results[name] = step(ctx)
            head = store.head()
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    summary["steps"] = ctx.results
    summary["head"] = None if head is None else head.to_dict()
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    kept = summary.get("kept", True)
    lines = [f"palyra-journal demo  ({summary['backend']} backend, {summary['seconds']} s)",
             f"  database  {summary['database']}" if kept else
             "  database  a temporary file, removed now (give DB to keep it)"]
    j = summary["steps"].get("journal")
    if j:
        lines += [
            f"  journal   {j['ingested']} events ingested ({j['ingest_per_s']:,}/s) in "
            f"{j['sessions']} sessions; {j['redacted_events']} redacted, "
            f"{j['secrets_on_disk']} secrets on disk",
            f"  verify    {'OK' if j['chain_ok'] else 'BROKEN'}: {j['verified']} events "
            f"({j['verify_per_s']:,}/s)",
        ]
    for name, result in summary["steps"].items():
        if name not in ("journal", "audit", "tlog"):
            lines.append(f"  {name:<9} " + ", ".join(f"{k}={v}" for k, v in result.items()))
    audit = summary["steps"].get("audit")
    if audit:
        domains = ", ".join(f"{n} {k}" for k, n in sorted(audit["domain_events"].items()))
        lines.append(f"  audit     {'OK' if audit['chain_ok'] else 'BROKEN'}: the whole chain "
                     f"({audit['checked']} events, including {domains}) verifies")
    tl = summary["steps"].get("tlog")
    if tl:
        lines.append(f"  tlog      checkpoint of {tl['checkpoint_size']} events signed (Ed25519, C2SP); "
                     f"event {tl['proved_seq']} proved in it with {tl['proof_hashes']} hashes")
    head = summary["head"]
    if head:
        lines.append(f"  head      {head['seq']}:{head['hash']}")
    return "\n".join(lines)
