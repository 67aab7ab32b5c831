"""The native boundary (docs/native.md): the extension claims no stable ABI it does not keep, and
the kernels that take buffers compile without the Python headers (no Python API behind them)."""

from __future__ import annotations

import importlib.machinery
import shlex
import subprocess
import sysconfig
from pathlib import Path

import pytest

pytest.importorskip("palyra_journal._native")

CSRC = Path(__file__).resolve().parent.parent / "csrc"
# Kernels whose boundary is buffers, lengths, ints and status codes only.
BUFFER_KERNELS = ["chain.c", "cpu.c", "merkle.c", "pool.c", "sha256.c", "ulid.c", "vector.c"]


def test_the_extension_is_built_for_this_interpreter_not_as_abi3():
    from palyra_journal import _native
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so
    assert _native.__file__.endswith(suffix), _native.__file__
    assert ".abi3." not in Path(_native.__file__).name


@pytest.mark.parametrize("source", BUFFER_KERNELS)
def test_buffer_kernels_compile_without_the_python_headers(source):
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")[0]
    result = subprocess.run([cc, "-std=c11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                             "-I" + str(CSRC), str(CSRC / source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Python.h" not in (CSRC / source).read_text()
