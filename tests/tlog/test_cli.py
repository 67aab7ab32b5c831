"""``palyra-journal tlog ...``: each subcommand with --json, its --help, and the exit codes
(0 ok, 1 a checkpoint that fails, 2 bad input)."""

from __future__ import annotations

import base64
import json

import pytest

import palyra_journal as pj
from palyra_journal.cli import main

SUBCOMMANDS = ("head", "prove", "consistency", "sign", "verify-note", "keygen", "export-tiles",
               "build")


def _json(capsys, argv) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def journal(tmp_path, backend):
    db = tmp_path / "j.db"
    with pj.JournalStore.open(db) as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(600)])
    return db


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_explains_itself(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tlog", sub, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--json" in out and len(out) > 200


def test_head_prove_consistency(journal, capsys):
    code, head = _json(capsys, ["tlog", "head", str(journal)])
    assert code == 0 and head["size"] == 600
    root = base64.b64decode(head["root"])
    code, proof = _json(capsys, ["tlog", "prove", str(journal), "42"])
    assert code == 0 and proof["root"] == head["root"]
    pj.tlog.verify_inclusion(base64.b64decode(proof["leaf_hash"]), proof["leaf_index"],
                             proof["tree_size"], [base64.b64decode(h) for h in proof["hashes"]],
                             root)
    code, cons = _json(capsys, ["tlog", "consistency", str(journal), "100", "--size", "500"])
    assert code == 0
    pj.tlog.verify_consistency(100, 500, base64.b64decode(cons["old_root"]),
                               base64.b64decode(cons["new_root"]),
                               [base64.b64decode(h) for h in cons["hashes"]])
    code, err = _json(capsys, ["tlog", "prove", str(journal), "601"])
    assert code == 2 and err["type"] == "ProofError" and "601" in err["error"]


def test_keygen_sign_verify_note_and_a_rewrite(journal, tmp_path, capsys):
    prefix = str(tmp_path / "k")
    code, keys = _json(capsys, ["tlog", "keygen", "example.com/key", "--out", prefix])
    assert code == 0 and (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    note_path = tmp_path / "cp.note"
    code, signed = _json(capsys, ["tlog", "sign", str(journal), "--key-file", prefix + ".key",
                                  "--origin", "example.com/j", "--out", str(note_path)])
    assert code == 0 and signed["size"] == 600 and note_path.read_text() == signed["note"]
    argv = ["tlog", "verify-note", str(note_path), "--verifier-key", "@" + prefix + ".pub",
            "--db", str(journal)]
    code, res = _json(capsys, argv)
    assert code == 0 and res["ok"] and res["verify"]["checked"] == 600
    note_path.write_text(signed["note"].replace("\n600\n", "\n601\n"))
    code, res = _json(capsys, argv)
    assert code == 1 and not res["ok"] and "does not verify" in res["error"]


def test_export_tiles_and_build(journal, tmp_path, capsys):
    code, res = _json(capsys, ["tlog", "export-tiles", str(journal), str(tmp_path / "t")])
    assert code == 0 and res["size"] == 600
    assert (tmp_path / "t" / "tile" / "0" / "001").stat().st_size == 256 * 32
    assert (tmp_path / "t" / "tile" / "0" / "002.p" / "88").stat().st_size == 88 * 32
    code, res = _json(capsys, ["tlog", "build", str(journal)])
    assert code == 0 and res == {"events": 0}
    code, res = _json(capsys, ["tlog", "head", str(tmp_path / "missing.db")])
    assert code == 2 and "no database" in res["error"]
