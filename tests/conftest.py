"""Shared fixtures: both kernel backends, a fresh store, and the spec's test vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from palyra_journal import kernels

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
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
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"test vectors not found next to the checkout: {SHARED_DATA}"
    return SHARED_DATA


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
