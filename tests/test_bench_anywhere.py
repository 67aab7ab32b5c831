"""`palyra-journal bench` runs its suite from an installed copy, from any directory: the suite
gives pytest its own collection rules instead of reading a pyproject.toml, which an installed copy
does not have (and which a project around it could override)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.skipif(importlib.util.find_spec("pytest_benchmark") is None,
                    reason="pytest-benchmark is not installed (the bench extra)")
def test_suite_collects_from_a_copy_inside_a_foreign_project(tmp_path, monkeypatch,
                                                             native_backend):
    """(The suite benchmarks the native kernels, so it needs the extension.)"""
    # A copy laid out like an install (a package holding the suite, no pyproject.toml of ours),
    # inside a project whose own pytest config would collect nothing.
    project = tmp_path / "project"
    (project / "site" / "suitepkg").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\npython_files = check_*.py\naddopts = -x\n")
    suite = project / "site" / "suitepkg" / "benchsuite"
    shutil.copytree(BENCHMARKS, suite, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "site" / "suitepkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(project / "site"))
    monkeypatch.chdir(project)
    from suitepkg.benchsuite import report  # noqa: PLC0415 - the copy, imported as installed
    assert report.HERE == suite
    (tmp_path / "out").mkdir()
    result, _ = report.run_suite(tmp_path / "out", "quick", "canonicalize and text")
    names = [b["name"] for b in json.loads(result.read_text())["benchmarks"]]
    assert names and all("canonicalize" in n and "text" in n for n in names)
    for name in [m for m in sys.modules if m == "suitepkg" or m.startswith("suitepkg.")]:
        del sys.modules[name]
