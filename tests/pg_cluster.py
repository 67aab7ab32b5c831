"""A throwaway PostgreSQL cluster for the tests, the benchmarks and CI (docs/postgres.md).

``with ThrowawayCluster.start() as cluster: cluster.dsn`` runs ``initdb`` in a temporary directory
(as the ``postgres`` user when we are root: the server refuses to run as root), starts the server on
a free port of the loopback interface with its unix socket inside that directory, creates one
database, and on exit stops the server and removes the directory, also after a failure or Ctrl-C
(and, as a last resort, at interpreter exit). Nothing outside the temporary directory is touched:
no system cluster, no service, no port that was not free.

Durability is switched off (``fsync=off``, ``synchronous_commit=off``, ``full_page_writes=off``):
the cluster lives for one run and is deleted after it, so a crash loses nothing anyone needs, and
the suite's thousands of small transactions do not wait for the disk. Never use these settings on
a server whose data matters.

``python tests/pg_cluster.py -- COMMAND...`` runs COMMAND with ``PALYRA_TEST_POSTGRES_DSN`` set to
a fresh cluster and removes the cluster after it (exit status: COMMAND's);
``python tests/pg_cluster.py --bindir`` prints where the server binaries are (exit 1: nowhere).
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DSN_VARIABLE = "PALYRA_TEST_POSTGRES_DSN"
DATABASE = "palyra_test"
SUPERUSER = "postgres"

# Only for a cluster that is deleted after the run (see the module docstring).
THROWAWAY_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",  # 4-process tests, pools, and a database per test being dropped
    "shared_buffers": "32MB",
}


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (the message says where we looked)."""


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    ``pg_config --bindir`` first (the installation the headers belong to), then Debian's
    ``/usr/lib/postgresql/<major>/bin``, the newest major first; Debian puts neither ``initdb``
    nor ``pg_ctl`` on PATH.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.CalledProcessError):
            pass
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in debian), key=lambda p: _major(p.parent.name), reverse=True)
    for name in ("initdb",):
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise ClusterUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found via pg_config --bindir, "
        "/usr/lib/postgresql/*/bin or PATH: install them (Debian: apt-get install postgresql) "
        f"or set {DSN_VARIABLE} to a server")


def _major(name: str) -> float:
    try:
        return float(name)
    except ValueError:
        return -1.0


def free_loopback_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user() -> list[str]:
    """The prefix that runs a server binary as a non-root user (``postgres`` refuses root)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterUnavailable("running as root without runuser: cannot start postgres as a non-root user")
    return [runuser, "-u", SUPERUSER, "--"]


def _unwind_on_sigterm() -> None:
    """SIGTERM (CI cancelling a job, ``kill``) unwinds like Ctrl-C, so that the ``finally`` and
    ``atexit`` cleanups stop the server; by default it would end Python without running them and
    leave the server behind. Only where nobody set a handler of their own, from the main thread."""
    import threading  # noqa: PLC0415

    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _server_user_ids() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    import pwd  # noqa: PLC0415 - POSIX only, and only needed as root

    try:
        entry = pwd.getpwnam(SUPERUSER)
    except KeyError as exc:
        raise ClusterUnavailable(
            f"running as root but there is no {SUPERUSER!r} user to run the server as "
            "(the Debian postgresql package creates it)") from exc
    return entry.pw_uid, entry.pw_gid


@dataclass
class ThrowawayCluster:
    """A running cluster; :meth:`stop` (or leaving the ``with`` block) deletes it."""

    bindir: Path
    root: Path
    port: int
    database: str = DATABASE
    _stopped: bool = field(default=False, repr=False)

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str | None = None) -> str:
        """A ``postgresql://`` URL of ``database`` (default: the one created at start), over TCP."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database or self.database}"

    @property
    def dsn(self) -> str:
        return self.url()

    @classmethod
    def start(cls, database: str = DATABASE, attempts: int = 3) -> ThrowawayCluster:
        bindir = find_bindir()
        ids = _server_user_ids()
        _unwind_on_sigterm()
        root = Path(tempfile.mkdtemp(prefix="palyra-pg-"))
        cluster = cls(bindir=bindir, root=root, port=0, database=database)
        atexit.register(cluster.stop)
        try:
            cluster._initdb(ids)
            for attempt in range(attempts):
                cluster.port = free_loopback_port()
                if cluster._start_server():
                    break
                if attempt == attempts - 1:
                    raise RuntimeError(f"postgres did not start; its log:\n{cluster._log_tail()}")
            cluster._createdb(database)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _initdb(self, ids: tuple[int, int] | None) -> None:
        self.socket_dir.mkdir()
        if ids is not None:
            os.chmod(self.root, 0o700)
            for path in (self.root, self.socket_dir):
                os.chown(path, *ids)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                   "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                  as_server=True)

    def _start_server(self) -> bool:
        options = [f"-p {self.port}", f"-k {self.socket_dir}", "-c listen_addresses=127.0.0.1"]
        options += [f"-c {k}={v}" for k, v in THROWAWAY_SETTINGS.items()]
        proc = subprocess.run(
            [*_as_server_user(), str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60",
             "-D", str(self.data_dir), "-l", str(self.log_file), "-o", " ".join(options)],
            capture_output=True, text=True)
        return proc.returncode == 0

    def _createdb(self, database: str) -> None:
        self._run([str(self.bindir / "createdb"), "-h", str(self.socket_dir), "-p", str(self.port),
                   "-U", SUPERUSER, database], as_server=False)

    def _run(self, cmd: list[str], as_server: bool) -> None:
        prefix = _as_server_user() if as_server else []
        proc = subprocess.run([*prefix, *cmd], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and delete the directory."""
        if self._stopped:
            return
        self._stopped = True
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run([*_as_server_user(), str(self.bindir / "pg_ctl"), "stop", "-m", "immediate",
                            "-w", "-D", str(self.data_dir)], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def url_of(dsn: str, database: str) -> str:
    """``dsn`` (a ``postgresql://`` URL) with its database replaced by ``database``."""
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415

    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"{DSN_VARIABLE} must be a postgresql:// URL, got {dsn!r}")
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass
class Scratch:
    """One scratch database: its URL, and the session :class:`ScratchDatabases` resets it with."""

    name: str
    url: str
    conn: object


class ScratchDatabases:
    """Isolated databases on one server, one per test, reset and reused by the next test.

    A test gets a database of its own holding nothing but an empty ``public`` schema, as a fresh
    ``CREATE DATABASE`` would give. When the test ends the database is reset rather than dropped:
    the test's leftover connections are terminated and every schema it created is dropped, which
    costs a few milliseconds where ``CREATE DATABASE`` + ``DROP DATABASE`` cost about 70-100 ms
    (docs/postgres.md, "How the tests run"). The databases are dropped when the pool closes.
    """

    _RESET = """
        DO $$ DECLARE s text; BEGIN
          FOR s IN SELECT nspname FROM pg_namespace
                   WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public')
                     AND nspname NOT LIKE 'pg\\_%' LOOP
            EXECUTE format('DROP SCHEMA %I CASCADE', s);
          END LOOP;
          IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public')
             OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname = 'public')
             OR EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                        WHERE n.nspname = 'public') THEN
            DROP SCHEMA public CASCADE;
            CREATE SCHEMA public;
            GRANT USAGE ON SCHEMA public TO PUBLIC;
          END IF;
        END $$"""
    _TERMINATE = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = %s AND pid <> pg_backend_pid()")

    def __init__(self, admin_dsn: str, prefix: str = "palyra_t") -> None:
        import psycopg  # noqa: PLC0415 - only the PostgreSQL half of the tests needs the driver

        self._psycopg = psycopg
        self._admin_dsn = admin_dsn
        self._admin = psycopg.connect(admin_dsn, autocommit=True)
        self._prefix = f"{prefix}_{os.getpid()}"
        self._free: list[Scratch] = []
        self._created: list[str] = []
        self._count = 0

    def _create(self, template: str | None = None) -> Scratch:
        name = f"{self._prefix}_{self._count}"
        self._count += 1
        self._admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self._created.append(name)
        url = url_of(self._admin_dsn, name)
        return Scratch(name, url, self._psycopg.connect(url, autocommit=True))

    def acquire(self) -> Scratch:
        """A clean database (``.url``); give it back to :meth:`release`."""
        return self._free.pop() if self._free else self._create()

    def copy(self, source: Scratch) -> Scratch:
        """A new database holding what ``source`` holds now (``CREATE DATABASE ... TEMPLATE``);
        every session on ``source`` is ended first, as the server requires."""
        source.conn.close()  # type: ignore[attr-defined]
        self._admin.execute(self._TERMINATE, (source.name,))
        try:
            return self._create(template=source.name)
        finally:
            source.conn = self._psycopg.connect(source.url, autocommit=True)

    def release(self, scratch: Scratch) -> None:
        conn = scratch.conn
        try:
            conn.execute(self._TERMINATE, (scratch.name,))  # type: ignore[attr-defined]
            conn.execute(self._RESET)  # type: ignore[attr-defined]
        except self._psycopg.Error:
            # A database the reset cannot clean is dropped instead (the next test creates another).
            conn.close()  # type: ignore[attr-defined]
            self._admin.execute(f'DROP DATABASE IF EXISTS "{scratch.name}" WITH (FORCE)')
            self._created.remove(scratch.name)
            return
        self._free.append(scratch)

    def close(self) -> None:
        for scratch in self._free:
            scratch.conn.close()  # type: ignore[attr-defined]
        for name in self._created:
            self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin.close()


def main(argv: list[str]) -> int:
    if argv == ["--bindir"]:  # .ci/run: are the server binaries here? (exit 1 when not)
        try:
            print(find_bindir())
        except ClusterUnavailable as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(f"usage: python {Path(__file__).name} -- COMMAND [ARG...]\n\n{__doc__}", file=sys.stderr)
        return 2
    started = time.monotonic()
    with ThrowawayCluster.start() as cluster:
        print(f"pg_cluster: PostgreSQL at {cluster.dsn} ({cluster.bindir}, "
              f"started in {time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)
        return subprocess.run(argv, env={**os.environ, DSN_VARIABLE: cluster.dsn}).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
