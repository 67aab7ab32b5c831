"""The roles and grants of docs/postgres.md ("Roles and grants") work as written: an owner role
creates and migrates the schema, a writer role with only the documented grants appends, ingests
memory, claims cron slots and resolves approvals, a reader role verifies and exports, and the
writer cannot undo the journal's append-only triggers.

Roles belong to the whole server, not to the test's database: each test creates its own, with
names of its own, and drops them after.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

import palyra_journal as pj
from palyra_journal import Every

pytestmark = pytest.mark.postgresql
psycopg = pytest.importorskip("psycopg")

T0 = 1_700_000_000_000


def _as(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:pw@{host}"))


@pytest.fixture
def roles(postgres_url):
    """(owner, writer, reader) URLs of three new login roles, granted as docs/postgres.md says."""
    suffix = uuid.uuid4().hex[:8]
    names = {k: f"palyra_{k}_{suffix}" for k in ("owner", "writer", "reader")}
    database = urlsplit(postgres_url).path.lstrip("/")
    admin = psycopg.connect(postgres_url, autocommit=True)
    for name in names.values():
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw'")
    admin.execute(f'GRANT CREATE ON DATABASE "{database}" TO {names["owner"]}')
    try:
        yield {k: _as(postgres_url, v) for k, v in names.items()}, names, admin
    finally:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE usename = ANY(%s)", (list(names.values()),))
        for name in names.values():
            admin.execute(f"DROP OWNED BY {name} CASCADE")
            admin.execute(f"DROP ROLE {name}")
        admin.close()


def _grant(admin, names) -> None:
    """The grants of docs/postgres.md, after the owner's first open."""
    w, r = names["writer"], names["reader"]
    admin.execute(f"GRANT USAGE ON SCHEMA palyra TO {w}")
    admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA palyra TO {w}")
    admin.execute(f"GRANT USAGE ON SCHEMA palyra TO {r}")
    admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA palyra TO {r}")


def test_the_documented_grants_are_enough_for_each_role(roles, tmp_path, backend):
    urls, names, admin = roles
    with pj.JournalStore.open(urls["owner"]) as owner:  # creates and migrates the schema
        owner.append("store.created")
    _grant(admin, names)
    with pj.JournalStore.open(urls["writer"], clock=lambda: T0) as w:
        w.append("tool.executed", {"tool": "search", "api_key": "sk-1"})
        w.append_many([{"kind": "step.done", "payload": {"i": i}} for i in range(10)])
        w.memory.ingest("rollback: redeploy the previous tag", principal="ops")
        assert w.memory.search("rollback tag", principal="ops")
        snap = w.canvas.create({"tasks": []}, session_id="s", principal="ops")
        w.canvas.apply_patch(snap.canvas_id, [{"op": "add", "path": "/tasks/-", "value": "x"}])
        w.cron.create_job(name="digest", prompt="p", owner_principal="ops", channel=None,
                          schedule=Every(1_000))
        req = w.approvals.create(subject_type="tool", subject_id="shell.exec",
                                 request_summary="run", principal="ops")
        w.approvals.resolve(req.approval_id, decision="allow")
    with pj.JournalStore.open(urls["writer"], clock=lambda: T0 + 1_000) as w:
        assert len(w.cron.claim_due(worker_id="w1")) == 1
    with pj.JournalStore.open(urls["reader"], read_only=True) as r:
        report = r.verify()
        assert report.ok and report.checked == r.head().seq
        assert r.export_jsonl(tmp_path / "out.jsonl") == report.checked
        with pytest.raises(pj.ReadOnlyError):
            r.append("k")


def test_the_writer_role_cannot_remove_the_append_only_triggers(roles):
    urls, names, admin = roles
    pj.JournalStore.open(urls["owner"]).close()
    _grant(admin, names)
    with pj.JournalStore.open(urls["writer"]) as w:
        w.append("k")
    with psycopg.connect(urls["writer"], options="-c search_path=palyra", autocommit=True) as raw:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute("DROP TRIGGER journal_events_no_update ON journal_events")
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            raw.execute("UPDATE journal_events SET kind = 'x'")
    with pj.JournalStore.open(urls["writer"]) as w:
        assert w.verify().ok
