"""The repository stands on its own: its code, tests and docs cite its own docs/, never a
specification file outside it, and read no data from beside the checkout (a clone has nothing
there)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE_DOCS = re.compile(r"\b(API|JOURNAL|MEMORY|PERFORMANCE|ARCHITECTURE|CANVAS_CRON_APPROVALS|"
                          r"VERIFIABLE|POSTGRES|STYLE)\.md\b|\.\./shared|shared/(data|spec)")


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    keep = (".py", ".md", ".c", ".h", ".cdef", ".sql", ".toml", ".cfg", ".supp", "")
    return [ROOT / f for f in out if f and not f.startswith("tests/data/")
            and Path(f).suffix in keep and (ROOT / f).is_file()]


def test_no_file_cites_a_document_outside_the_repository():
    found = []
    for path in _tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_DOCS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert found == []
