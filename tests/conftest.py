"""Shared fixtures: both kernel backends, a fresh store, and the vendored test vectors.

Where the native extension is not built (an install without a C compiler), everything that needs
it is skipped with one reason, :data:`NATIVE_MISSING`, here and nowhere else: the native case of
the ``backend`` and ``kernel`` fixtures, the ``native_backend`` fixture, the modules that import
the extension itself, and a differential test that reaches for it (the extension's absence,
and only that, turns into the skip). The pure-Python reference runs everything else, so the
README's test command passes either way.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from palyra_journal import kernels
from palyra_journal.errors import BackendUnavailableError

# Files the tests write are their owner's only (the journal's own files are 0600 anyway).
os.umask(0o077)

NATIVE = kernels.native_available()
NATIVE_MISSING = ("native backend not built (no C compiler at install time): "
                  "runs on the pure-Python reference only")

# RFC 8785 and ES6 number vectors (json-canonicalization, Apache-2.0) and Merkle proof vectors
# (transparency-dev/merkle, Apache-2.0), each folder with its LICENSE.
TEST_VECTORS = Path(__file__).resolve().parent / "data"
BACKENDS = ("python", "native")


def needs_native() -> None:
    """Skip the calling test when the native extension is not built."""
    if not NATIVE:
        pytest.skip(NATIVE_MISSING)


def pytest_report_header(config):
    return f"palyra-journal kernels: {'native and python' if NATIVE else NATIVE_MISSING}"


def _native_missing(exc: BaseException | None) -> bool:
    """True when ``exc`` is the extension's absence (and the extension is indeed not built)."""
    if NATIVE or not isinstance(exc, ImportError):
        return False
    return isinstance(exc, BackendUnavailableError) or (exc.name or "").startswith(
        "palyra_journal._native")


class _NativeAwareModule(pytest.Module):
    """A test module that imports the extension itself is skipped, not an error, without it."""

    def _getobj(self):
        try:
            return super()._getobj()
        except self.CollectError as exc:
            if _native_missing(exc.__cause__):
                pytest.skip(NATIVE_MISSING, allow_module_level=True)
            raise


def _skip_when_native_missing():
    try:
        return (yield)
    except ImportError as exc:
        if _native_missing(exc):
            pytest.skip(NATIVE_MISSING)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """A fixture that imports the extension (``from palyra_journal._native import lib``)."""
    return (yield from _skip_when_native_missing())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _skip_when_native_missing())


def pytest_pycollect_makemodule(module_path, parent):
    if module_path.name.startswith("test_"):
        return _NativeAwareModule.from_parent(parent, path=module_path)
    return None


@pytest.fixture
def native_backend():
    """For a test of the native extension alone (no pure twin to run): skipped without it."""
    needs_native()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once per kernel backend (every store call goes through ``kernels``)."""
    if request.param == "native":
        needs_native()
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
        needs_native()
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
