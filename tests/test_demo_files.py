"""The demo writes only the database it was given, or a private temporary directory that it
removes when it ends, Ctrl-C included: its sample's secrets never sit on disk in clear."""

from __future__ import annotations

import glob
import os
import stat
import tempfile

import pytest

from palyra_journal import demo


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point tempfile (and so the demo) at an empty directory of this test."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def test_with_a_database_the_demo_writes_that_file_only(tmp_path, private_tmp):
    db = tmp_path / "out" / "demo.db"
    summary = demo.run_demo(db, events=200)
    assert summary["kept"] and summary["steps"]["journal"]["secrets_on_disk"] == 0
    # the database and its vector snapshot (docs/recall.md), a rebuildable sidecar like -wal
    files = sorted(os.listdir(db.parent))
    assert files in (["demo.db"], ["demo.db", "demo.db-vectors"])
    assert os.listdir(private_tmp) == []
    for name in files:
        path = db.parent / name
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, name
        data = path.read_bytes()
        assert all(secret.encode() not in data for secret in demo.SECRETS), name


def test_without_a_database_the_temporary_directory_is_removed(private_tmp):
    summary = demo.run_demo(None, events=200)
    assert not summary["kept"] and summary["steps"]["audit"]["chain_ok"]
    tlog = summary["steps"]["tlog"]  # a signed checkpoint and an inclusion proof checked against it
    assert tlog["proof_ok"] and tlog["checkpoint_size"] == summary["head"]["seq"]
    assert os.listdir(private_tmp) == []
    assert "removed" in demo.format_summary(summary)


def test_ctrl_c_removes_the_temporary_directory(private_tmp, monkeypatch):
    seen = []

    def interrupted(ctx):  # the user presses Ctrl-C after the journal step
        (db,) = glob.glob(str(private_tmp / "palyra-journal-demo-*" / "demo.db"))
        seen.append((stat.S_IMODE(os.stat(os.path.dirname(db)).st_mode),
                     stat.S_IMODE(os.stat(db).st_mode)))
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "STEPS", [demo.STEPS[0], ("interrupt", interrupted)])
    with pytest.raises(KeyboardInterrupt):
        demo.run_demo(None, events=50)
    assert seen == [(0o700, 0o600)]  # private while it existed
    assert os.listdir(private_tmp) == []
