"""``palyra-journal canvas show|history|replay`` with --json, time travel and exit codes."""

from __future__ import annotations

import json

import raw_db

from palyra_journal import JournalStore
from palyra_journal.cli import main


def run_json(capsys, *argv) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _board(db_path) -> str:
    with JournalStore.open(db_path, canvas_snapshot_interval=2) as store:
        cid = store.canvas.create({"tasks": []}, session_id="s", principal="p",
                                  canvas_id="board").canvas_id
        for name in ("a", "b", "c"):
            store.canvas.apply_patch(cid, {"v": 1, "ops": [
                {"op": "add", "path": "/tasks/-", "value": name}]}, actor_principal="agent:x")
    return cid


def test_canvas_show_latest_and_at_version(db_path, backend, capsys):
    cid = _board(db_path)
    db = str(db_path)
    latest = run_json(capsys, "canvas", "show", db, cid)
    assert latest["version"] == 4 and latest["state"] == {"tasks": ["a", "b", "c"]}
    old = run_json(capsys, "canvas", "show", db, cid, "--at-version", "2")
    assert old["version"] == 2 and old["current_version"] == 4 and old["state"] == {"tasks": ["a"]}
    assert main(["canvas", "show", db, cid, "--at-version", "3"]) == 0
    out = capsys.readouterr().out
    assert "version 3 of 4" in out and '"b"' in out and '"c"' not in out


def test_canvas_history_and_replay(db_path, backend, capsys):
    cid = _board(db_path)
    db = str(db_path)
    hist = run_json(capsys, "canvas", "history", db, cid)
    assert [h["version"] for h in hist] == [2, 3, 4]
    assert hist[0]["patch"] == {"v": 1, "ops": [{"op": "add", "path": "/tasks/-", "value": "a"}]}
    assert [h["version"] for h in run_json(capsys, "canvas", "history", db, cid, "--after", "3")] \
        == [4]
    assert main(["canvas", "history", db, cid]) == 0
    assert "add /tasks/-" in capsys.readouterr().out
    assert run_json(capsys, "canvas", "replay", db, cid) == {"ok": True, "canvas_id": cid,
                                                              "version": 4}
    raw = raw_db.connect(db_path)
    raw_db.drop_trigger(raw, "canvas_snapshots_no_update")
    raw.execute("UPDATE canvas_snapshots SET state_json = '{\"tasks\":[]}' WHERE version = 2")
    raw.commit()
    raw.close()
    assert main(["canvas", "replay", db, cid, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and "version 2" in report["error"]


def test_canvas_cli_errors_exit_2(db_path, backend, capsys):
    cid = _board(db_path)
    db = str(db_path)
    assert main(["canvas", "show", db, "missing", "--json"]) == 2
    assert "missing" in json.loads(capsys.readouterr().out)["error"]
    assert main(["canvas", "show", db, cid, "--at-version", "9"]) == 2
    assert "no version 9" in capsys.readouterr().err
