"""Every CLI subcommand over the database paths a user gets wrong: missing, empty, another
application's SQLite file, a directory, a read-only journal, a damaged file.

Each run asserts exit status 2, a one-line ``palyra-journal: error:`` message and no traceback,
and that nothing was created or changed (a byte-and-mode snapshot of the whole directory). The
only successes are the documented ones: a *create* command (append, ingest, memory add, cron add,
demo) makes a new database at a missing path or in an empty file, and a *read* command reads a
read-only journal. The table of commands is checked against the parser, so a new subcommand
without a row here fails the test.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import tempfile

import pytest

from palyra_journal import JournalStore, schema, tlog
from palyra_journal.cli import build_parser, main
from palyra_journal.commands import CREATE, READ, WRITE
from palyra_journal.schedule import Every

NOBODY = 65534

# Subcommand -> its arguments after DB. "{canvas}", "{approval}", "{memory}" and "{src}" are
# filled in with ids of the sample journal and a JSON-lines file outside the snapshot.
ARGS = {
    ("doctor",): [],
    ("demo",): ["--events", "20"],
    ("append",): ["k", "[1, 2]"],
    ("ingest",): ["{src}"],
    ("verify",): [],
    ("tail",): ["-n", "2"],
    ("export",): ["{out}"],
    ("checkpoint",): [],
    ("vacuum",): [],
    ("memory", "add"): ["a note", "--principal", "p"],
    ("memory", "search"): ["note", "--principal", "p"],
    ("memory", "list"): ["--principal", "p"],
    ("memory", "delete"): ["{memory}", "--principal", "p"],
    ("memory", "maintain"): [],
    ("memory", "reembed"): [],
    ("canvas", "show"): ["{canvas}"],
    ("canvas", "history"): ["{canvas}"],
    ("canvas", "replay"): ["{canvas}"],
    ("cron", "add"): ["--name", "n", "--owner", "o", "--every", "60000"],
    ("cron", "list"): [],
    ("cron", "due"): [],
    ("cron", "runs"): [],
    ("cron", "scheduler"): ["--max-runs", "1", "--for", "0.05", "--poll-ms", "10"],
    ("approvals", "list"): [],
    ("approvals", "resolve"): ["{approval}", "--decision", "allow"],
    ("approvals", "expire"): [],
    ("tlog", "head"): [],
    ("tlog", "prove"): ["1"],
    ("tlog", "consistency"): ["1"],
    ("tlog", "sign"): ["--key-file", "{key}", "--origin", "example.com/log"],
    ("tlog", "export-tiles"): ["{tiles}"],
    ("tlog", "build"): [],
}
NO_DATABASE = {("bench",), ("tlog", "keygen"), ("tlog", "verify-note")}


def subcommands():
    """(path, db_mode) of every subcommand the parser knows, found by walking it."""
    found = []

    def walk(parser, prefix):
        for action in parser._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, sub in action.choices.items():
                    walk(sub, prefix + (name,))
                return
        found.append((prefix, parser.get_default("db_mode")))

    walk(build_parser(), ())
    return found


def test_every_subcommand_has_a_row_and_opens_its_database_through_one_rule():
    cmds = subcommands()
    assert {path for path, _ in cmds} == set(ARGS) | NO_DATABASE
    for path, mode in cmds:
        assert (mode is None) == (path in NO_DATABASE), path
        assert mode in (None, READ, WRITE, CREATE)


def snapshot(root) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = (stat.S_IMODE(st.st_mode), st.st_size, digest)
    return out


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def sample_journal(path) -> dict:
    """A journal holding one of everything the commands address; returns their ids."""
    with JournalStore.open(path) as store:
        store.append("k", {"a": 1})
        ids = {
            "memory": store.memory.ingest("a note", principal="p").memory_id,
            "canvas": store.canvas.create({"n": 0}, session_id="s", principal="p").canvas_id,
            "approval": store.approvals.create(subject_type="tool", subject_id="x",
                                               request_summary="r", principal="p").approval_id,
        }
        store.cron.create_job(name="j", prompt="", owner_principal="o", channel=None,
                              schedule=Every(60_000))
        if store.engine == "sqlite":  # a server checkpoints its own WAL
            store.checkpoint("truncate")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.remove(str(path) + suffix)
    return ids


def make_bad(kind: str, root: str) -> str:
    """The database path of one bad case, created inside ``root``."""
    if kind == "missing":
        return os.path.join(root, "nodir", "a.db")
    path = os.path.join(root, "a.db")
    if kind == "empty":
        open(path, "wb").close()
    elif kind == "foreign":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
        conn.commit()
        conn.close()
    elif kind == "directory":
        os.mkdir(path)
    elif kind == "corrupt":
        sample_journal(path)
        with open(path, "r+b") as f:
            f.seek(4096)
            f.write(bytes((i * 131 + 7) % 256 for i in range(4096)))
    return path


def argv_for(path, db, root, ids, src):
    fill = {"src": src, "out": os.path.join(root, "out.jsonl"), "tiles": os.path.join(root, "tiles"),
            "key": os.path.join(os.path.dirname(src), "signer.key"), **ids}
    return [*path, db, *(a.format(**fill) for a in ARGS[path])]


def assert_refused(code, out, err, argv):
    assert code == 2, (argv, code, out, err)
    assert "Traceback" not in err + out, (argv, err)
    assert err.startswith("palyra-journal: error: ") and err.count("\n") == 1, (argv, err)


@pytest.fixture
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    p = d / "events.jsonl"
    p.write_text('{"kind": "k", "payload": {"i": 1}}\n')
    (d / "signer.key").write_text(tlog.generate_key("example.com/key")[0])  # for tlog sign
    return str(p)


@pytest.mark.parametrize("kind", ["missing", "empty", "foreign", "directory", "corrupt"])
def test_every_subcommand_refuses_a_bad_path_and_changes_nothing(kind, tmp_path, src):
    ids = {"memory": "m1", "canvas": "c1", "approval": "a1"}
    for path, mode in subcommands():
        if path in NO_DATABASE:
            continue
        root = tmp_path / ("-".join(path))
        root.mkdir()
        db = make_bad(kind, str(root))
        before = snapshot(root)
        argv = argv_for(path, db, str(root), ids, src)
        code, out, err = run_cli(argv)
        creates = mode == CREATE and kind in ("missing", "empty")
        if not creates:
            assert_refused(code, out, err, argv)
            assert snapshot(root) == before, argv
            if kind in ("empty", "foreign", "corrupt"):
                assert ("not a palyra-journal" in err or "not a SQLite database" in err
                        or "empty file" in err), (argv, err)
            if kind == "missing":
                assert f"no database at {db!r}" in err, (argv, err)
            continue
        # the documented exception: a create command makes the database (docs/api.md "Opening")
        assert code == 0, (argv, out, err)
        with JournalStore.open(db, read_only=True) as store:
            assert store.verify().ok


def test_foreign_file_is_adopted_only_with_adopt(tmp_path):
    db = make_bad("foreign", str(tmp_path))
    before = snapshot(tmp_path)
    code, _, err = run_cli(["append", db, "k", "{}"])
    assert code == 2 and "--adopt" in err and snapshot(tmp_path) == before
    code, _, err = run_cli(["append", db, "k", "{}", "--adopt"])
    assert code == 0, err
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]  # their data stays
    conn.close()
    code, out, _ = run_cli(["verify", db, "--json"])
    assert code == 0 and json.loads(out)["checked"] == 1


def _as_nobody(jobs, out_fd):
    """In a forked child: drop to nobody and run each argv; one JSON line per result."""
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    with os.fdopen(out_fd, "w") as out:
        for argv in jobs:
            try:
                code, o, e = run_cli(argv)
                out.write(json.dumps({"argv": argv, "code": code, "out": o, "err": e}) + "\n")
            except BaseException as exc:  # noqa: BLE001 - reported as the finding it would be
                out.write(json.dumps({"argv": argv, "escaped": repr(exc)}) + "\n")
            out.flush()


@pytest.mark.skipif(os.geteuid() != 0 and os.access("/", os.W_OK), reason="needs a non-root "
                    "user or root (which drops to nobody) to make a file read-only")
def test_read_only_journal_is_read_and_never_written(src):
    """A journal file 0444 in a directory 0555: read commands read it (exit 0), every command
    that writes exits 2 and nothing changes. Root runs the commands as nobody."""
    # preload what the commands import lazily: nobody cannot read the interpreter's home
    import palyra_journal.approvals, palyra_journal.canvas, palyra_journal.cron  # noqa: F401,E401
    import palyra_journal.demo, palyra_journal.memory.embeddings  # noqa: F401,E401
    base = tempfile.mkdtemp(prefix="pj-ro-")
    try:
        os.chmod(base, 0o755)
        root = os.path.join(base, "db")
        os.mkdir(root)
        db = os.path.join(root, "a.db")
        ids = sample_journal(db)
        shutil.copy(src, os.path.join(base, "events.jsonl"))
        os.chmod(os.path.join(base, "events.jsonl"), 0o644)
        os.chmod(db, 0o444)
        os.chmod(root, 0o555)
        before = snapshot(root)
        jobs, modes = [], []
        for path, mode in subcommands():
            if path in NO_DATABASE:
                continue
            jobs.append(argv_for(path, db, root, ids, os.path.join(base, "events.jsonl")))
            modes.append(mode)
        if os.geteuid() == 0:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                os.close(r)
                try:
                    _as_nobody(jobs, w)
                finally:
                    os._exit(0)
            os.close(w)
            with os.fdopen(r) as f:
                results = [json.loads(line) for line in f]
            os.waitpid(pid, 0)
        else:
            results = [dict(zip(("code", "out", "err"), run_cli(a)), argv=a) for a in jobs]
        assert len(results) == len(jobs)
        for res, mode in zip(results, modes):
            argv = res["argv"]
            assert "escaped" not in res, res
            if mode == READ and argv[0] != "export":  # export writes its output: refused here
                assert res["code"] == 0, res
                assert "Traceback" not in res["err"]
            else:
                assert_refused(res["code"], res["out"], res["err"], argv)
        assert snapshot(root) == before
    finally:
        for dirpath, dirnames, _ in os.walk(base):
            for name in dirnames:
                os.chmod(os.path.join(dirpath, name), 0o700)
        shutil.rmtree(base)


def test_read_command_leaves_no_wal_files_behind(tmp_path):
    db = str(tmp_path / "j.db")
    sample_journal(db)
    before = snapshot(tmp_path)
    for argv in (["verify", db], ["tail", db], ["cron", "list", db], ["memory", "list", db,
                                                                       "--principal", "p"]):
        code, _, err = run_cli(argv)
        assert code == 0, err
        assert snapshot(tmp_path) == before, argv


def test_schema_guards_are_the_triggers_the_migrations_create():
    guards = [g for m in schema.MIGRATIONS for g in m.guards()]
    assert "journal_events_no_update" in guards and "journal_events_no_delete" in guards
    assert len(guards) == len(set(guards))
