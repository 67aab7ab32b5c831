"""Shared fixtures: both kernel backends, both storage engines, a fresh store, and the vendored
test vectors.

Where the native extension is not built (an install without a C compiler), everything that needs
it is skipped with one reason, :data:`NATIVE_MISSING`, here and nowhere else: the native case of
the ``backend`` and ``kernel`` fixtures, the ``native_backend`` fixture, the modules that import
the extension itself, and a differential test that reaches for it (the extension's absence,
and only that, turns into the skip). The pure-Python reference runs everything else, so the
README's test command passes either way.

Every test that takes ``db_path`` or ``store`` runs once per storage engine (the ``engine``
fixture): on ``sqlite`` ``db_path`` is a file path in the test's temporary directory, on
``postgresql`` it is a ``postgresql://`` URL of a database of the test's own on a throwaway
cluster the session starts (tests/pg_cluster.py), or on the server named by
``PALYRA_TEST_POSTGRES_DSN``. Tests about SQLite files (paths, modes, WAL, sidecars, corrupt files)
carry ``@pytest.mark.sqlite_only``. Where no PostgreSQL server binaries (or no psycopg) exist, the
PostgreSQL half is skipped with one reason, :data:`postgres_missing`; with
``PALYRA_TEST_REQUIRE_POSTGRES=1`` (CI) that is a failure instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pg_cluster
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


# PALYRA_TEST_ENGINES=sqlite runs the SQLite half alone (.ci/run: the sanitizer and no-compiler
# runs, whose subject is the C extension and the pure fallback, not the engine).
ENGINES = tuple(os.environ.get("PALYRA_TEST_ENGINES", "sqlite,postgresql").replace(" ", "").split(","))
if not set(ENGINES) <= {"sqlite", "postgresql"} or "sqlite" not in ENGINES:
    raise pytest.UsageError(f"PALYRA_TEST_ENGINES must be sqlite or sqlite,postgresql, got {ENGINES!r}")
REQUIRE_POSTGRES = os.environ.get("PALYRA_TEST_REQUIRE_POSTGRES") == "1"
# A test of the engine runs on one kernel backend: the native one where it is built (else the
# pure one). The engine code is the same Python on either backend, the two backends are proven
# byte-identical on SQLite and, across engines, by tests/test_cross_engine.py (both backends), and
# the PostgreSQL half on both would double its time (docs/postgres.md, "How the tests run").
# PALYRA_TEST_POSTGRES_ALL_BACKENDS=1 runs it on both.
POSTGRES_BACKEND = "native" if NATIVE else "python"
POSTGRES_ALL_BACKENDS = os.environ.get("PALYRA_TEST_POSTGRES_ALL_BACKENDS") == "1"


def postgres_missing() -> str | None:
    """Why the PostgreSQL half cannot run here (None: it can)."""
    try:
        import psycopg  # noqa: F401, PLC0415
    except ImportError:
        return 'psycopg is not installed (pip install "palyra-journal[postgres]")'
    if os.environ.get(pg_cluster.DSN_VARIABLE):
        return None
    try:
        pg_cluster.find_bindir()
    except pg_cluster.ClusterUnavailable as exc:
        return str(exc)
    return None


def _deselected(item) -> bool:
    if item.get_closest_marker("postgresql") is None:
        return False
    if "postgresql" not in ENGINES:  # the cross-engine tests go too
        return True
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    return (params.get("engine") == "postgresql" and not POSTGRES_ALL_BACKENDS
            and params.get("backend", POSTGRES_BACKEND) != POSTGRES_BACKEND)


@pytest.hookimpl(tryfirst=True)  # before -m reads the marks
def pytest_collection_modifyitems(config, items):
    """The PostgreSQL half runs on one kernel backend (see :data:`POSTGRES_BACKEND`); the test
    modules about the engine itself (``test_postgres_*.py``) belong to that half (``-m postgresql``)."""
    for item in items:
        if item.path.name.startswith("test_postgres_"):
            item.add_marker(pytest.mark.postgresql)
    dropped = [i for i in items if _deselected(i)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if not _deselected(i)]


def pytest_report_header(config):
    if "postgresql" not in ENGINES:
        return [f"palyra-journal kernels: {'native and python' if NATIVE else NATIVE_MISSING}",
                "palyra-journal engines: sqlite only (PALYRA_TEST_ENGINES=sqlite)"]
    missing = postgres_missing()
    if missing is None:
        from palyra_journal.engines.postgresql import redact_url  # noqa: PLC0415 - no password shown
        dsn = os.environ.get(pg_cluster.DSN_VARIABLE)
        where = redact_url(dsn) if dsn else f"a throwaway cluster ({pg_cluster.find_bindir()})"
        backends = "both kernel backends" if POSTGRES_ALL_BACKENDS else f"the {POSTGRES_BACKEND} backend"
        engines = f"sqlite, and postgresql on {where} with {backends}"
    else:
        engines = f"sqlite only: {missing}" + (" (PALYRA_TEST_REQUIRE_POSTGRES=1: a failure)"
                                                 if REQUIRE_POSTGRES else "")
    return [f"palyra-journal kernels: {'native and python' if NATIVE else NATIVE_MISSING}",
            f"palyra-journal engines: {engines}"]


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: about SQLite files (paths, modes, WAL, sidecars, "
                                       "corrupt files): runs on the sqlite engine only")
    config.addinivalue_line("markers", "postgresql: the case of a test on the PostgreSQL engine "
                                       "(set by the engine fixture; select with -m postgresql)")


def pytest_generate_tests(metafunc):
    """One case per engine for every test that reaches the ``engine`` fixture (via ``db_path``)."""
    if "engine" not in metafunc.fixturenames:
        return
    cases = [pytest.param("sqlite", id="sqlite")]
    if "postgresql" in ENGINES and metafunc.definition.get_closest_marker("sqlite_only") is None:
        cases.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql))
    metafunc.parametrize("engine", cases, indirect=True)


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


@pytest.fixture(scope="session")
def postgres_databases():
    """Scratch databases on the PostgreSQL server of this session (started on first use)."""
    missing = postgres_missing()
    if missing is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PALYRA_TEST_REQUIRE_POSTGRES=1 but {missing}", pytrace=False)
        pytest.skip(missing)
    dsn = os.environ.get(pg_cluster.DSN_VARIABLE)
    cluster = None if dsn else pg_cluster.ThrowawayCluster.start()
    databases = pg_cluster.ScratchDatabases(dsn or cluster.dsn)
    try:
        yield databases
    finally:
        databases.close()
        if cluster is not None:
            cluster.stop()


@pytest.fixture
def postgres_url(postgres_databases):
    """A ``postgresql://`` URL of an empty database of this test's own."""
    scratch = postgres_databases.acquire()
    try:
        yield scratch.url
    finally:
        postgres_databases.release(scratch)


@pytest.fixture
def engine(request) -> str:
    """``sqlite`` or ``postgresql`` (parametrized by :func:`pytest_generate_tests`)."""
    return request.param


@pytest.fixture
def db_path(engine, tmp_path, request) -> Path | str:
    """Where the test's store lives: a file path (sqlite) or a database URL (postgresql)."""
    if engine == "postgresql":
        return request.getfixturevalue("postgres_url")
    return tmp_path / "journal.db"


@pytest.fixture
def db_factory(engine, tmp_path, request):
    """More stores for one test, on its engine: each call gives a new empty file or database."""
    made = []

    def make() -> Path | str:
        if engine == "sqlite":
            made.append(tmp_path / f"journal-{len(made) + 1}.db")
            return made[-1]
        databases = request.getfixturevalue("postgres_databases")
        made.append(databases.acquire())
        request.addfinalizer(lambda scratch=made[-1]: databases.release(scratch))
        return made[-1].url
    return make


@pytest.fixture
def store(db_path, backend):
    from palyra_journal import JournalStore
    s = JournalStore.open(db_path)
    try:
        yield s
    finally:
        s.close()
