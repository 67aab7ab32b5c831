"""The journal subcommands of ``palyra-journal``: output, --json, exit codes."""

from __future__ import annotations

import json
import re
import sqlite3


from palyra_journal.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_append_tail_verify_export(tmp_path, capsys, backend):
    db = tmp_path / "j.db"
    payload_file = tmp_path / "p.json"
    payload_file.write_text('{"from": "file", "password": "x"}')
    code, out, _ = run(capsys, "append", db, "tool.executed", '{"b":1,"a":2}', "--session-id", "s1",
                       "--actor", "agent", "--json")
    assert code == 0
    rec = json.loads(out)
    assert rec["seq"] == 1 and rec["payload_json"] == '{"a":2,"b":1}' and rec["actor"] == "agent"
    code, out, _ = run(capsys, "append", db, "note", f"@{payload_file}")
    assert code == 0 and "seq 2" in out and "redacted" in out
    code, out, _ = run(capsys, "tail", db, "-n", "5", "--json")
    assert [r["seq"] for r in json.loads(out)] == [1, 2]
    code, out, _ = run(capsys, "tail", db, "-n", "1")
    assert code == 0 and "note" in out and "<redacted>" in out and "tool.executed" not in out
    code, out, _ = run(capsys, "verify", db)
    assert code == 0 and out.startswith("OK: 2 events")
    head = out.split("head ")[1].strip()
    code, out, _ = run(capsys, "verify", db, "--expected-head", head, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = run(capsys, "export", db, tmp_path / "out.jsonl", "--json")
    assert code == 0 and json.loads(out)["exported"] == 2
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


def test_ingest_and_broken_chain_exit_code(tmp_path, capsys, backend):
    db = tmp_path / "j.db"
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"kind": "k", "payload": {"i": i}}) + "\n" for i in range(30)))
    code, out, _ = run(capsys, "ingest", db, src, "--json")
    assert code == 0 and json.loads(out)["ingested"] == 30
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER journal_events_no_update")
    conn.execute("UPDATE journal_events SET payload_json = '{\"i\":0}' WHERE seq = 12")
    conn.commit()
    conn.close()
    code, out, _ = run(capsys, "verify", db)
    assert code == 1 and "seq 12" in out and "hash_mismatch" in out
    code, out, _ = run(capsys, "verify", db, "--json")
    assert code == 1 and json.loads(out)["first_bad_seq"] == 12


def test_bad_usage_exits_2_and_names_the_value(tmp_path, capsys):
    db = tmp_path / "j.db"
    code, _, err = run(capsys, "append", db, "k", "{not json")
    assert code == 2 and "payload" in err
    code, _, err = run(capsys, "verify", tmp_path / "missing.db")
    assert code == 2 and "no database" in err
    run(capsys, "append", db, "k")
    code, out, _ = run(capsys, "verify", db, "--expected-head", "nonsense", "--json")
    assert code == 2 and "expected-head" in json.loads(out)["error"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "k"}\n{"kind": ""}\n')
    code, _, err = run(capsys, "ingest", db, bad)
    assert code == 2 and "line 2" in err


def test_checkpoint_and_vacuum(tmp_path, capsys):
    db = tmp_path / "j.db"
    run(capsys, "append", db, "k")
    code, out, _ = run(capsys, "checkpoint", db, "--mode", "truncate", "--json")
    assert code == 0 and json.loads(out)["mode"] == "truncate"
    code, out, _ = run(capsys, "vacuum", db, "--json")
    assert code == 0 and json.loads(out)["bytes_after"] > 0


def test_demo_redacts_secrets_and_verifies(tmp_path, capsys, backend):
    db = tmp_path / "demo.db"
    code, out, _ = run(capsys, "demo", db, "--events", "600", "--json")
    assert code == 0
    summary = json.loads(out)
    journal = summary["steps"]["journal"]
    assert journal["ingested"] == 600 and journal["chain_ok"] is True
    assert journal["redacted_events"] > 0 and journal["secrets_on_disk"] == 0
    raw = db.read_bytes() + (db.with_name(db.name + "-wal").read_bytes()
                             if db.with_name(db.name + "-wal").exists() else b"")
    assert b"hunter2" not in raw and b"sk-live" not in raw
    code, out, _ = run(capsys, "demo", "--events", "50")
    assert code == 0 and "verify    OK: 50 events" in out  # other steps add their own events
    assert re.search(r"^  head      \d+:[0-9a-f]{64}$", out, re.M)
