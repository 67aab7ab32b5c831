"""Ordered, numbered migrations, recorded in ``schema_migrations``.

Each migration is a file ``migrations/NNNN_name.sql`` shipped with the package; it runs once, in its
own ``BEGIN IMMEDIATE`` transaction, so two processes opening a fresh file at the same time apply
it exactly once (the second one re-reads the version inside its transaction and finds nothing to
do). A file whose recorded version is newer than the newest migration known here is refused: an
older library must not write into a schema it does not understand.

Before anything is written, :func:`identify` tells our files from other applications' SQLite
databases (which are only written with ``adopt=True``), and :func:`missing_guards` lists the
append-only triggers a migration created that are no longer in the file.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from importlib import resources

from .errors import SchemaTooNewError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: A guard: a trigger that refuses an UPDATE or DELETE (append-only tables, final decisions).
_GUARD = re.compile(r"CREATE\s+TRIGGER\s+(\w+)\s+BEFORE\s+(?:UPDATE|DELETE)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """Split the script into statements (triggers keep their inner semicolons)."""
        out, buf = [], ""
        for line in self.sql.splitlines(keepends=True):
            if not buf and (not line.strip() or line.lstrip().startswith("--")):
                continue
            buf += line
            if sqlite3.complete_statement(buf):
                out.append(buf.strip())
                buf = ""
        if buf.strip():
            raise ValueError(f"migration {self.version:04d}_{self.name}: incomplete statement at end")
        return out

    def guards(self) -> tuple[str, ...]:
        """The names of the BEFORE UPDATE/DELETE triggers this migration creates."""
        return tuple(_GUARD.findall(self.sql))


def _load() -> tuple[Migration, ...]:
    found = []
    for entry in resources.files("palyra_journal.migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = _load()
LATEST_VERSION = MIGRATIONS[-1].version if MIGRATIONS else 0
#: (migration version, trigger name) of every guard, found once at import.
_GUARDS = tuple((mig.version, name) for mig in MIGRATIONS for name in mig.guards())

_CREATE_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_unix_ms INTEGER NOT NULL
)"""


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
    ).fetchone()
    if row is None:
        return 0
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]


#: What :func:`identify` says of a file.
OURS, EMPTY, FOREIGN = "ours", "empty", "foreign"


def user_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables and views of the file, SQLite's internal ones left out."""
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]


def identify(conn: sqlite3.Connection) -> str:
    """:data:`OURS` when ``schema_migrations`` is palyra-journal's (its columns, and migration 1
    under our name), :data:`EMPTY` when the file holds no table, else :data:`FOREIGN` (another
    application's database, including one whose own ``schema_migrations`` is not ours)."""
    tables = user_tables(conn)
    if not tables:
        return EMPTY
    if "schema_migrations" not in tables or not MIGRATIONS:
        return FOREIGN
    columns = {r[1] for r in conn.execute("PRAGMA table_info(schema_migrations)")}
    if not {"version", "name", "applied_at_unix_ms"} <= columns:
        return FOREIGN
    row = conn.execute("SELECT name FROM schema_migrations WHERE version = ?",
                       (MIGRATIONS[0].version,)).fetchone()
    return OURS if row is not None and row[0] == MIGRATIONS[0].name else FOREIGN


def missing_guards(conn: sqlite3.Connection) -> list[str]:
    """The append-only triggers of the applied migrations that the file no longer has."""
    version = current_version(conn)
    want = [name for mig_version, name in _GUARDS if mig_version <= version]
    if not want:
        return []
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return [name for name in want if name not in have]


def check_not_newer(conn: sqlite3.Connection, path: str) -> int:
    version = current_version(conn)
    if version > LATEST_VERSION:
        raise SchemaTooNewError(
            f"{path}: schema version {version} is newer than this palyra-journal knows "
            f"({LATEST_VERSION}); upgrade palyra-journal to open it"
        )
    return version


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Apply every pending migration, each in its own transaction; returns the final version."""
    version = check_not_newer(conn, path)
    if version == LATEST_VERSION:
        return version
    for mig in MIGRATIONS:
        if mig.version <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_CREATE_TABLE)
            now = check_not_newer(conn, path)
            if now >= mig.version:  # another process applied it meanwhile
                conn.execute("COMMIT")
                version = now
                continue
            for stmt in mig.statements():
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at_unix_ms) VALUES (?, ?, ?)",
                (mig.version, mig.name, time.time_ns() // 1_000_000),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = mig.version
    return version
