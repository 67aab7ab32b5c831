"""``palyra-journal cron add|list|due|runs|scheduler`` with --json and exit codes."""

from __future__ import annotations

import json

import pytest

from palyra_journal.cli import main


def run_json(capsys, *argv) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cron_cli_round_trip(db_path, backend, capsys):
    db = str(db_path)
    job = run_json(capsys, "cron", "add", db, "--name", "tick", "--owner", "me", "--every", "1",
                   "--job-id", "tick")
    assert job["schedule"] == {"type": "every", "interval_ms": 1} and job["enabled"] is True
    nightly = run_json(capsys, "cron", "add", db, "--name", "nightly", "--owner", "me",
                       "--cron", "30 2 * * *", "--tz", "Europe/Prague")
    assert nightly["schedule"]["timezone"] == "Europe/Prague"
    assert sorted(j["name"] for j in run_json(capsys, "cron", "list", db)) == ["nightly", "tick"]
    assert [j["job_id"] for j in run_json(capsys, "cron", "due", db, "--within", "1")] == ["tick"]
    assert main(["cron", "scheduler", db, "--max-runs", "2", "--poll-ms", "5", "--for", "20",
                 "--json", "--worker-id", "cli-w"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["event"] for x in lines] == ["run", "run", "stopped"] and lines[-1]["runs"] == 2
    runs = run_json(capsys, "cron", "runs", db, "--job", "tick")
    assert len(runs) == 2 and {r["status"] for r in runs} == {"succeeded"}
    assert {r["worker_id"] for r in runs} == {"cli-w"}
    claims = run_json(capsys, "cron", "due", db, "--within", "1", "--claim", "w9")
    assert all(c["run"]["worker_id"] == "w9" for c in claims)
    assert main(["cron", "list", db]) == 0 and "nightly" in capsys.readouterr().out


def test_cron_cli_bad_input_exits_2(db_path, backend, capsys):
    assert main(["cron", "add", str(db_path), "--name", "x", "--owner", "me", "--cron",
                 "99 * * * *", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["type"] == "InvalidScheduleError" and "99 * * * *" in err["error"]
    with pytest.raises(SystemExit) as info:  # argparse: two schedules given
        main(["cron", "add", str(db_path), "--name", "x", "--owner", "me", "--every", "5",
              "--cron", "* * * * *"])
    assert info.value.code == 2
