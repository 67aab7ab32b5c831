"""Ordered, numbered migrations, recorded in ``schema_migrations``.

Each migration is a file ``migrations/NNNN_name.sql`` shipped with the package (its PostgreSQL twin
in ``migrations/postgresql/``); it runs once, in its own transaction, exclusive among processes
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so two processes opening a fresh store
at the same time apply it exactly once (the second one re-reads the version inside its transaction and finds nothing to
do). A file whose recorded version is newer than the newest migration known here is refused: an
older library must not write into a schema it does not understand.

Before anything is written, :func:`identify` tells our files from other applications' SQLite
databases (which are only written with ``adopt=True``), and :func:`missing_guards` lists the
append-only triggers a migration created that are no longer in the file.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from .engines import dialect_of
from .errors import IntegrityError, NotAJournalError, SchemaTooNewError
from .migrations import Migration, load

MIGRATIONS: tuple[Migration, ...] = load()
LATEST_VERSION = MIGRATIONS[-1].version if MIGRATIONS else 0
#: (migration version, trigger name) of every guard, found once at import.
_GUARDS = tuple((mig.version, name) for mig in MIGRATIONS for name in mig.guards())



def current_version(conn: sqlite3.Connection) -> int:
    if "schema_migrations" not in dialect_of(conn).user_tables(conn):
        return 0
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]


#: What :func:`identify` says of a file.
OURS, EMPTY, FOREIGN = "ours", "empty", "foreign"


def user_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables and views of the store, the engine's internal ones left out."""
    return dialect_of(conn).user_tables(conn)


def identify(conn: sqlite3.Connection) -> str:
    """:data:`OURS` when ``schema_migrations`` is palyra-journal's (its columns, and migration 1
    under our name), :data:`EMPTY` when the file holds no table, else :data:`FOREIGN` (another
    application's database, including one whose own ``schema_migrations`` is not ours)."""
    tables = user_tables(conn)
    if not tables:
        return EMPTY
    if "schema_migrations" not in tables or not MIGRATIONS:
        return FOREIGN
    columns = dialect_of(conn).table_columns(conn, "schema_migrations")
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
    have = dialect_of(conn).trigger_names(conn)
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
    dialect = dialect_of(conn)
    for mig in dialect.migrations():
        if mig.version <= version:
            continue
        dialect.begin_migration(conn)
        try:
            conn.execute(dialect.migrations_table)
            now = check_not_newer(conn, path)
            if now >= mig.version:  # another process applied it meanwhile
                dialect.commit(conn)
                version = now
                continue
            dialect.run_migration(conn, mig)
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at_unix_ms) VALUES (?, ?, ?)",
                (mig.version, mig.name, time.time_ns() // 1_000_000),
            )
            dialect.commit(conn)
        except BaseException:
            dialect.rollback(conn)
            raise
        version = mig.version
    return version


def check_identity(conn: Any, text: str, *, read_only: bool, adopt: bool) -> None:
    """Refuse, before anything is written, a file that is not ours (see :func:`identify`)."""
    kind = identify(conn)
    if kind == OURS:
        return
    if kind == EMPTY:
        if read_only:
            raise NotAJournalError(f"{text!r} is an empty database, not a palyra-journal one "
                                   "(nothing to read)")
        return  # a new or empty file is initialized
    tables = user_tables(conn)
    other = ("a SQLite database" if dialect_of(conn).name == "sqlite"
             else "a PostgreSQL schema")
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    if read_only:
        raise NotAJournalError(f"{text!r} is {other} of another application (tables "
                               f"{shown}), not a palyra-journal one")
    if not adopt:
        raise NotAJournalError(
            f"{text!r} is {other} of another application (tables {shown}), not a "
            "palyra-journal one; it was left untouched. To add the journal's tables to it, open "
            "it with adopt=True (CLI: --adopt)")


def refuse_unguarded(conn: Any, where: str) -> None:
    """Refuse to write a store whose append-only triggers were dropped."""
    missing = missing_guards(conn)
    if missing:
        raise IntegrityError(
            f"{where!r}: the append-only triggers {', '.join(missing)} are missing "
            "(dropped outside palyra-journal), so stored rows could be rewritten; "
            "refusing to write. Open it read-only to verify or export it, and restore "
            "the file from a backup")


def prepare(conn: Any, where: str, *, read_only: bool) -> None:
    """After :func:`check_identity`: refuse a newer schema (read-only), or migrate and refuse a
    store whose append-only triggers were dropped (writing)."""
    if read_only:
        check_not_newer(conn, where)
    else:
        migrate(conn, where)
        refuse_unguarded(conn, where)
