"""Shared fixtures: both kernel backends, a fresh store, and the vendored test vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from palyra_journal import kernels

# RFC 8785 and ES6 number vectors (json-canonicalization, Apache-2.0) and Merkle proof vectors
# (transparency-dev/merkle, Apache-2.0), each folder with its LICENSE.
TEST_VECTORS = Path(__file__).resolve().parent / "data"
BACKENDS = ("python", "native")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once per kernel backend (every store call goes through ``kernels``)."""
    previous = kernels.backend_name()
    kernels.set_backend(request.param)
    try:
        yield request.param
    finally:
        kernels.set_backend(previous)


@pytest.fixture(params=BACKENDS)
def kernel(request):
    """The backend module itself, for kernel-level tests: ``kernel.canonicalize(...)``."""
    if request.param == "native":
        from palyra_journal.kernels import native as mod
    else:
        from palyra_journal.kernels import pure as mod
    return mod


@pytest.fixture
def test_vectors() -> Path:
    return TEST_VECTORS


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def store(db_path, backend):
    from palyra_journal import JournalStore
    s = JournalStore.open(db_path)
    try:
        yield s
    finally:
        s.close()
