"""The README's "Use" example runs as written in an empty directory, and every command-line flag
its sections name exists."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from palyra_journal.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def use_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use\n"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_use_example_runs_verbatim_in_an_empty_directory(tmp_path, monkeypatch, backend):
    monkeypatch.chdir(tmp_path)
    exec(compile(use_example(), str(README), "exec"), {"__name__": "readme"})
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith("agent.db-")) == \
        ["agent.db", "events.jsonl"]


@pytest.mark.parametrize("argv", [
    ["ingest", "DB", "F", "--start-line", "3", "--skip-existing", "--max-payload-bytes", "9"],
    ["append", "DB", "K", "--max-payload-bytes", "9", "--adopt"],
    ["checkpoint", "DB", "--mode", "truncate"],
    ["verify", "DB", "--expected-head", "1:" + "0" * 64],
    ["doctor", "DB"],
])
def test_flags_the_readme_names_exist(argv):
    build_parser().parse_args(argv)
