"""``palyra-journal approvals list|resolve|expire`` with --json and exit codes."""

from __future__ import annotations

import json

from palyra_journal import JournalStore
from palyra_journal.cli import main


def run_json(capsys, *argv) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _requests(db_path) -> list[str]:
    with JournalStore.open(db_path) as store:
        return [store.approvals.create(subject_type="tool", subject_id=f"tool-{i}",
                                       request_summary=f"run tool {i}", principal="user:ada",
                                       session_id="s1").approval_id for i in range(3)]


def test_approvals_list_and_resolve(db_path, backend, capsys):
    ids = _requests(db_path)
    db = str(db_path)
    listed = run_json(capsys, "approvals", "list", db, "--pending")
    assert sorted(r["approval_id"] for r in listed) == sorted(ids)
    done = run_json(capsys, "approvals", "resolve", db, ids[0], "--decision", "allow",
                    "--scope", "timeboxed", "--ttl-ms", "60000", "--reason", "ok", "--by", "me")
    assert (done["decision"], done["scope"], done["scope_ttl_ms"], done["resolved_by"]) == \
        ("allow", "timeboxed", 60000, "me")
    assert [r["approval_id"] for r in run_json(capsys, "approvals", "list", db, "--resolved")] \
        == [ids[0]]
    assert len(run_json(capsys, "approvals", "list", db, "--pending")) == 2
    page = run_json(capsys, "approvals", "list", db, "--limit", "2")
    rest = run_json(capsys, "approvals", "list", db, "--after", page[-1]["approval_id"])
    assert len(page) + len(rest) == 3
    assert main(["approvals", "list", db, "--subject-id", "tool-1"]) == 0
    out = capsys.readouterr().out
    assert "PENDING" in out and "tool:tool-1" in out and "tool-2" not in out
    assert run_json(capsys, "approvals", "expire", db) == {"expired": 0}


def test_approvals_resolve_twice_or_bad_input_exits_2(db_path, backend, capsys):
    ids = _requests(db_path)
    db = str(db_path)
    assert main(["approvals", "resolve", db, ids[1], "--decision", "deny"]) == 0
    capsys.readouterr()
    assert main(["approvals", "resolve", db, ids[1], "--decision", "allow", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["type"] == "AlreadyResolvedError" and ids[1] in err["error"]
    assert main(["approvals", "resolve", db, ids[2], "--decision", "allow", "--scope",
                 "timeboxed"]) == 2
    assert "scope_ttl_ms" in capsys.readouterr().err
    assert main(["approvals", "resolve", db, "nope", "--decision", "allow"]) == 2
