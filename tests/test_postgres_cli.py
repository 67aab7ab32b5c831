"""Every CLI subcommand that takes a DB on a ``postgresql://`` URL, and ``--schema``.

The subcommands and their arguments are the table of tests/test_cli_bad_paths.py (checked there
against the parser), run here on a sample store in a database of the test's own.
"""

from __future__ import annotations

import json

import pytest

from palyra_journal import JournalStore
from palyra_journal.cli import main
import test_cli_bad_paths as bad_paths
from test_cli_bad_paths import ARGS, argv_for, run_cli, sample_journal

src = bad_paths.src  # the JSON-lines file and signer key the table's arguments name

#: The one subcommand a server store refuses: there is no WAL file of ours to checkpoint.
SQLITE_FILE_ONLY = {("checkpoint",)}


def test_every_subcommand_runs_on_a_url(postgres_url, src, tmp_path):
    ids = sample_journal(postgres_url)
    ran = []
    for path in ARGS:
        argv = argv_for(path, postgres_url, str(tmp_path), ids, src)
        if path == ("demo",):
            argv += ["--schema", "demo"]  # a store of its own beside the sample
        code, out, err = run_cli(argv + ["--json"])
        assert "Traceback" not in out + err, (argv, err)
        if path in SQLITE_FILE_ONLY:
            assert code == 2 and "PostgreSQL server checkpoints its own WAL" in out, (argv, out)
            continue
        assert code == 0, (argv, code, out, err)
        json.loads(out.splitlines()[-1] if path == ("cron", "scheduler") else out)
        ran.append(path)
    assert len(ran) == len(ARGS) - len(SQLITE_FILE_ONLY)
    code, out, _ = run_cli(["verify", postgres_url, "--json"])
    assert code == 0 and json.loads(out)["ok"] is True
    with JournalStore.open(postgres_url, schema="demo", read_only=True) as demo:
        assert demo.head() is not None  # the demo wrote into --schema, not into the sample


def test_schema_names_the_store_a_command_opens(postgres_url, capsys):
    code, out, _ = run_cli(["append", postgres_url, "--schema", "team_a", "k", "--json"])
    assert code == 0 and json.loads(out)["seq"] == 1
    run_cli(["append", postgres_url, "--schema", "team_a", "k"])
    code, out, _ = run_cli(["tail", postgres_url, "--schema", "team_a", "--json"])
    assert code == 0 and [r["seq"] for r in json.loads(out)] == [1, 2]
    # the default schema holds no store: a read command refuses it and creates nothing
    code, _, err = run_cli(["tail", postgres_url])
    assert code == 2 and "no such schema" in err
    code, _, err = run_cli(["tail", postgres_url, "--schema", "Team-A"])
    assert code == 2 and "'Team-A'" in err


def test_schema_with_a_file_is_refused(tmp_path):
    db = tmp_path / "j.db"
    code, _, err = run_cli(["append", str(db), "--schema", "team_a", "k"])
    assert code == 2 and "--schema 'team_a'" in err and "not a postgresql:// URL" in err
    assert not db.exists()


def test_vacuum_on_a_url_reports_the_store_bytes(postgres_url):
    with JournalStore.open(postgres_url) as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(200)])
        expected = store.stored_bytes()
    code, out, err = run_cli(["vacuum", postgres_url, "--json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["bytes_before"] == expected and report["bytes_after"] > 0
    code, out, _ = run_cli(["vacuum", postgres_url])
    assert code == 0 and "vacuumed postgresql://" in out


@pytest.mark.parametrize("command", ["append", "tail"])
def test_help_names_the_url_and_schema(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "postgresql:// URL" in out and "--schema NAME" in out


def test_a_failed_ingest_names_the_resume_command_with_its_schema(postgres_url, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"kind": "k"}\n{"kind": "k"}\n{"kind": ""}\n')
    code, _, err = run_cli(["ingest", postgres_url, str(src), "--schema", "team_a",
                            "--batch-size", "2"])
    assert code == 2 and "line 3" in err
    assert f"palyra-journal ingest {postgres_url} {src} --start-line 3 --schema team_a" in err


def test_verify_note_checks_a_store_in_its_schema(postgres_url, tmp_path):
    from palyra_journal import tlog
    signer, verifier = tlog.generate_key("example.com/key")
    key = tmp_path / "signer.key"
    key.write_text(signer)
    with JournalStore.open(postgres_url, schema="team_a") as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(5)])
    note = tmp_path / "note"
    code, _, err = run_cli(["tlog", "sign", postgres_url, "--schema", "team_a", "--key-file",
                            str(key), "--origin", "example.com/log", "--out", str(note)])
    assert code == 0, err
    code, out, err = run_cli(["tlog", "verify-note", str(note), "--verifier-key", verifier,
                              "--db", postgres_url, "--schema", "team_a", "--json"])
    assert code == 0 and json.loads(out)["verify"]["checked"] == 5, (out, err)
