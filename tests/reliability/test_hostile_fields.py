"""The hostile-field table: every public text field of every domain, the same hostile values, the
same refusal (docs/fields.md).

Each field gets a NUL, a lone surrogate, 10 MB of text and the empty string. Each must be refused
with an InvalidPayloadError (PayloadTooLargeError is one) whose message names the field, and the
failed call must write nothing (every row of every table compared before and after). Fields the
table in docs/fields.md marks otherwise are the documented exceptions: free text that may be empty
(a cron prompt, an error message) and memory content and queries, whose normalization (docs/memory.md)
removes control characters, NUL included, before any check.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

import palyra_journal as pj
from palyra_journal import InvalidPayloadError, JournalStore

from .harness import table_snapshot

NUL = "bad\x00value"
SURROGATE = "bad\ud800value"
HUGE = "x" * 10_000_000
EMPTY = ""
HOSTILE = {"nul": NUL, "lone_surrogate": SURROGATE, "10_mb": HUGE, "empty": EMPTY}


def _approval(s: JournalStore, **kw: Any) -> Any:
    args = dict(subject_type="tool", subject_id="x", request_summary="r", principal="p")
    args.update(kw)
    return s.approvals.create(**args)


def _job(s: JournalStore, **kw: Any) -> Any:
    args = dict(name="n", prompt="p", owner_principal="o", channel="c", schedule=pj.Every(1000))
    args.update(kw)
    return s.cron.create_job(**args)


def _run_id(s: JournalStore) -> str:
    return s.cron.list_runs(job_id="job")[0].run_id


def _seed(s: JournalStore) -> None:
    s.memory.ingest("a note about deploys", principal="p", memory_id="mem")
    s.canvas.create({"a": 1}, session_id="s", principal="p", canvas_id="cv")
    _approval(s, approval_id="ap")
    _job(s, job_id="job")
    s.cron.claim_due(worker_id="w", now_unix_ms=s.now_ms() + 2_000)


#: (domain, field, call(store, value)); the field name must appear in the error message.
Call = Callable[[JournalStore, str], Any]


def _keywords(domain: str, call: Callable[..., Any], *names: str) -> list[tuple[str, str, Call]]:
    """One row per keyword argument ``name`` of ``call(store, **{name: value})``."""
    return [(domain, name, lambda s, v, name=name: call(s, **{name: v})) for name in names]


FIELDS: list[tuple[str, str, Call]] = [
    # the journal
    ("journal", "kind", lambda s, v: s.append(v)),
    *_keywords("journal", lambda s, **kw: s.append("k", **kw), "actor", "event_id", "session_id",
               "run_id", "principal", "device_id", "channel"),
    ("journal", "channel", lambda s, v: s.append_many([{"kind": "k"}, {"kind": "k", "channel": v}])),
    ("journal", "kind", lambda s, v: s.events(kind=v)),
    ("journal", "session_id", lambda s, v: s.events(session_id=v)),
    ("journal", "run_id", lambda s, v: s.events(run_id=v)),
    # memory
    ("memory", "content", lambda s, v: s.memory.ingest(v, principal="p")),
    *_keywords("memory", lambda s, **kw: s.memory.ingest("note", **{"principal": "p", **kw}),
               "principal", "channel", "session_id", "memory_id"),
    ("memory", "tag", lambda s, v: s.memory.ingest("note", principal="p", tags=[v])),
    ("memory", "principal", lambda s, v: s.memory.ingest_many([{"content": "n", "principal": v}])),
    ("memory", "query", lambda s, v: s.memory.search(v, principal="p")),
    ("memory", "principal", lambda s, v: s.memory.search("note", principal=v)),
    ("memory", "channel", lambda s, v: s.memory.search("note", principal="p", channel=v)),
    ("memory", "session_id", lambda s, v: s.memory.search("note", principal="p", session_id=v)),
    ("memory", "memory_id", lambda s, v: s.memory.get(v)),
    ("memory", "principal", lambda s, v: s.memory.list(principal=v)),
    ("memory", "after_id", lambda s, v: s.memory.list(principal="p", after_id=v)),
    ("memory", "memory_id", lambda s, v: s.memory.update(v, principal="p", confidence=0.5)),
    ("memory", "principal", lambda s, v: s.memory.update("mem", principal=v, confidence=0.5)),
    ("memory", "memory_id", lambda s, v: s.memory.delete(v, principal="p")),
    ("memory", "channel", lambda s, v: s.memory.delete("mem", principal="p", channel=v)),
    ("memory", "principal", lambda s, v: s.memory.purge(principal=v)),
    ("memory", "session_id", lambda s, v: s.memory.purge(principal="p", session_id=v)),
    # canvas
    ("canvas", "session_id", lambda s, v: s.canvas.create({}, session_id=v, principal="p")),
    ("canvas", "principal", lambda s, v: s.canvas.create({}, session_id="s", principal=v)),
    ("canvas", "canvas_id", lambda s, v: s.canvas.create({}, session_id="s", principal="p",
                                                         canvas_id=v)),
    ("canvas", "actor_principal", lambda s, v: s.canvas.create({}, session_id="s", principal="p",
                                                               actor_principal=v)),
    ("canvas", "actor_device_id", lambda s, v: s.canvas.replace_state("cv", {}, actor_device_id=v)),
    ("canvas", "actor_principal", lambda s, v: s.canvas.apply_patch(
        "cv", [{"op": "add", "path": "/b", "value": 1}], actor_principal=v)),
    ("canvas", "canvas_id", lambda s, v: s.canvas.apply_patch(
        v, [{"op": "add", "path": "/b", "value": 1}])),
    ("canvas", "canvas_id", lambda s, v: s.canvas.get(v)),
    ("canvas", "canvas_id", lambda s, v: s.canvas.state_at(v, 1)),
    ("canvas", "canvas_id", lambda s, v: s.canvas.history(v)),
    ("canvas", "canvas_id", lambda s, v: s.canvas.restore(v, 1)),
    ("canvas", "reason", lambda s, v: s.canvas.close("cv", reason=v)),
    # cron
    *_keywords("cron", _job, "name", "prompt", "owner_principal", "channel", "job_id",
               "session_key", "session_label"),
    ("cron", "name", lambda s, v: s.cron.update_job("job", name=v)),
    ("cron", "job_id", lambda s, v: s.cron.update_job(v, enabled=False)),
    ("cron", "job_id", lambda s, v: s.cron.delete_job(v)),
    ("cron", "job_id", lambda s, v: s.cron.get_job(v)),
    ("cron", "run_id", lambda s, v: s.cron.get_run(v)),
    ("cron", "after_job_id", lambda s, v: s.cron.list_jobs(after_job_id=v)),
    ("cron", "owner_principal", lambda s, v: s.cron.list_jobs(owner_principal=v)),
    ("cron", "after_run_id", lambda s, v: s.cron.list_runs(after_run_id=v)),
    ("cron", "worker_id", lambda s, v: s.cron.claim_due(worker_id=v)),
    ("cron", "run_id", lambda s, v: s.cron.start_cron_run(v)),
    ("cron", "session_id", lambda s, v: s.cron.start_cron_run(_run_id(s), session_id=v)),
    ("cron", "orchestrator_run_id", lambda s, v: s.cron.start_cron_run(
        _run_id(s), orchestrator_run_id=v)),
    ("cron", "run_id", lambda s, v: s.cron.heartbeat(v)),
    ("cron", "error_kind", lambda s, v: s.cron.finalize_cron_run(
        _run_id(s), status="failed", error_kind=v)),
    ("cron", "error_message", lambda s, v: s.cron.finalize_cron_run(
        _run_id(s), status="failed", error_message=v)),
    ("cron", "worker_id", lambda s, v: s.cron.run_scheduler(lambda c: None, worker_id=v)),
    # approvals
    *_keywords("approvals", _approval, "subject_id", "request_summary", "principal", "session_id",
               "run_id", "device_id", "channel", "approval_id"),
    ("approvals", "approval_id", lambda s, v: s.approvals.resolve(v, decision="allow")),
    ("approvals", "reason", lambda s, v: s.approvals.resolve("ap", decision="allow", reason=v)),
    ("approvals", "resolved_by", lambda s, v: s.approvals.resolve("ap", decision="allow",
                                                                  resolved_by=v)),
    ("approvals", "approval_id", lambda s, v: s.approvals.get(v)),
    ("approvals", "after_id", lambda s, v: s.approvals.list(after_id=v)),
    ("approvals", "principal", lambda s, v: s.approvals.list(principal=v)),
    ("approvals", "subject_id", lambda s, v: s.approvals.list(subject_id=v)),
    ("approvals", "principal", lambda s, v: s.approvals.standing_decision(principal=v,
                                                                          subject_id="x")),
    ("approvals", "subject_id", lambda s, v: s.approvals.standing_decision(principal="p",
                                                                           subject_id=v)),
    ("approvals", "session_id", lambda s, v: s.approvals.standing_decision(
        principal="p", subject_id="x", session_id=v)),
]

#: The documented exceptions (docs/fields.md): (field, hostile value) -> what happens instead.
#: "accepted": the value is valid for this field; the call succeeds.
EXCEPTIONS = {
    ("cron", "prompt", "empty"): "accepted",
    ("cron", "error_message", "empty"): "accepted",
    ("memory", "content", "nul"): "accepted",     # normalization removes control characters
    ("memory", "query", "nul"): "accepted",
    ("memory", "query", "empty"): "accepted",     # an empty query finds nothing (docs/memory.md)
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One seeded database file, copied for each case (seeding per case would dominate)."""
    path = tmp_path_factory.mktemp("hostile") / "seed.db"
    with JournalStore.open(path) as s:
        _seed(s)
        s.checkpoint("truncate")
    return path


def _cases() -> list[Any]:
    out = []
    for n, (domain, field, call) in enumerate(FIELDS):
        for label in HOSTILE:
            out.append(pytest.param(domain, field, call, label, id=f"{domain}.{field}#{n}-{label}"))
    return out


@pytest.mark.parametrize("domain,field,call,label", _cases())
def test_every_text_field_refuses_the_same_hostile_values(seeded, tmp_path, domain, field, call,
                                                          label):
    path = tmp_path / "journal.db"
    path.write_bytes(seeded.read_bytes())
    value = HOSTILE[label]
    with JournalStore.open(path) as s:
        before = table_snapshot(path)
        if EXCEPTIONS.get((domain, field, label)) == "accepted":
            call(s, value)
            return
        with pytest.raises(InvalidPayloadError) as info:
            call(s, value)
        message = str(info.value)
        assert field in message, f"{domain}.{field}: the message does not name it: {message}"
        assert len(message) < 2_000, "the message echoes the whole input"
        assert table_snapshot(path) == before, f"{domain}.{field}: the failed call wrote"


def test_the_table_covers_every_documented_text_field() -> None:
    """docs/fields.md lists the same (domain, field) pairs that this table tries."""
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[2] / "docs" / "fields.md").read_text("utf-8")
    for domain, field, _ in FIELDS:
        assert f"| {domain} | `{field}` |" in doc, f"{domain}.{field} is missing from docs/fields.md"
