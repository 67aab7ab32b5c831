"""A connection to a store's database behind the store's back, on either engine.

Tests that tamper with stored rows (as an attacker with write access would) or read them without
the library open ``raw_db.connect(db_path)``: ``sqlite3`` on a file path, psycopg on a
``postgresql://`` URL with the store's schema on the search path. Both take the same ``?`` SQL
(rewritten for psycopg by the engine's own rewriting) and ``execute``/``executemany`` return a
cursor. On PostgreSQL every statement commits at once (autocommit: a refused statement leaves the
connection usable, as a failed statement does in ``sqlite3``), so ``commit`` has nothing left to do.
The SQLite spellings the tamper tests use are rewritten for PostgreSQL here, once:
``DROP TRIGGER [IF EXISTS] name`` (PostgreSQL names the trigger's table too), ``zeroblob(n)``, and
``PRAGMA wal_checkpoint`` (nothing to do: a server has no WAL file to fold into the database).
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any


def is_url(target: Any) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class PgRaw:
    """A psycopg connection (one transaction until :meth:`commit`) with ``sqlite3``'s surface."""

    engine = "postgresql"

    def __init__(self, url: str, schema: str):
        import psycopg  # noqa: PLC0415

        from palyra_journal.engines.postgresql import pg_sql  # noqa: PLC0415

        self._sql = pg_sql
        self.raw = psycopg.connect(url, options=f"-c search_path={schema}", autocommit=True)

    def execute(self, sql: str, params: Any = ()) -> Any:
        if _WAL_CHECKPOINT.match(sql):  # a server has no WAL file to fold into the database
            return None
        drop = _DROP_TRIGGER.match(sql)
        if drop:
            drop_trigger(self, drop.group(1))
            return None
        return self.raw.execute(self._sql(_ZEROBLOB.sub(r"decode(repeat('00', \1), 'hex')", sql)), params)

    def executemany(self, sql: str, seq: Any) -> Any:
        cur = self.raw.cursor()
        cur.executemany(self._sql(sql), seq)
        return cur

    def commit(self) -> None:
        pass

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PgRaw:
        return self

    def __exit__(self, *_: Any) -> None:
        pass


_DROP_TRIGGER = re.compile(r"^\s*DROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?(\w+)\s*;?\s*$", re.IGNORECASE)
_WAL_CHECKPOINT = re.compile(r"^\s*PRAGMA\s+wal_checkpoint\b", re.IGNORECASE)
_ZEROBLOB = re.compile(r"\bzeroblob\((\d+)\)", re.IGNORECASE)


def connect(target: Any, schema: str = "palyra", *, autocommit: bool = False) -> Any:
    """``sqlite3.connect(path)`` (``autocommit``: ``isolation_level=None``), or its PostgreSQL
    twin for a URL (always autocommit)."""
    if is_url(target):
        return PgRaw(target, schema)
    if autocommit:
        return sqlite3.connect(os.fspath(target), isolation_level=None)
    return sqlite3.connect(os.fspath(target))


def engine_of(conn: Any) -> str:
    return getattr(conn, "engine", "sqlite")


def refused_error(conn: Any) -> type[BaseException]:
    """What the engine's driver raises when an append-only trigger refuses a statement."""
    if engine_of(conn) == "sqlite":
        return sqlite3.IntegrityError
    import psycopg  # noqa: PLC0415
    return psycopg.errors.RestrictViolation


def trigger_sql(conn: Any) -> list[str]:
    """The ``CREATE TRIGGER`` statement of every trigger of the store, as the engine keeps it."""
    if engine_of(conn) == "sqlite":
        return [sql for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'")]
    return [sql for (sql,) in conn.execute(
        "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND NOT t.tgisinternal ORDER BY t.tgname")]


def drop_trigger(conn: Any, name: str) -> None:
    """``DROP TRIGGER IF EXISTS name`` (PostgreSQL names the trigger's table too)."""
    if engine_of(conn) == "sqlite":
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    for (table,) in conn.raw.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE t.tgname = %s AND n.nspname = current_schema()", (name,)).fetchall():
        conn.raw.execute(f'DROP TRIGGER IF EXISTS {name} ON "{table}"')


def drop_append_only_triggers(conn: Any, table: str) -> None:
    """What an attacker with write access does first: the triggers refusing UPDATE/DELETE (and,
    on PostgreSQL, TRUNCATE) of ``table`` are gone."""
    for kind in ("update", "delete", "truncate"):
        drop_trigger(conn, f"{table}_no_{kind}")


def trigger_statements(conn: Any, table: str) -> list[str]:
    """The engine's own ``CREATE TRIGGER`` statements for ``table`` (from its first migrations),
    to put back what :func:`drop_append_only_triggers` removed."""
    from palyra_journal import schema  # noqa: PLC0415

    if engine_of(conn) == "sqlite":
        statements = [st for m in schema.MIGRATIONS for st in m.statements()]
    else:  # PL/pgSQL bodies are not split by sqlite3.complete_statement: a trigger is one line-ended statement
        from palyra_journal.engines.postgresql import POSTGRESQL  # noqa: PLC0415
        statements = [m.group() for mig in POSTGRESQL.migrations()
                      for m in re.finditer(r"^CREATE TRIGGER\b.*?;[ \t]*$", mig.sql, re.DOTALL | re.MULTILINE)]
    return [st for st in statements
            if " ".join(st.split()).upper().startswith("CREATE TRIGGER")
            and f" ON {table.upper()} " in " ".join(st.split()).upper()]


def integrity_check(conn: Any) -> str:
    """``"ok"`` when the store's storage is sound: SQLite's ``PRAGMA integrity_check`` on a file;
    on PostgreSQL the server owns the pages, so reading every row of every table is the check."""
    if engine_of(conn) == "sqlite":
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    for (table,) in conn.raw.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON "
                                     "n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                                     "AND c.relkind = 'r'").fetchall():
        conn.raw.execute(f'SELECT * FROM "{table}"').fetchall()
    return "ok"


def table_rows(target: Any, schema: str = "palyra") -> dict[str, list[tuple]]:
    """Every row of every table, sorted, read on a separate connection (read-only on a file;
    FTS5 shadow tables included, the virtual table itself left out)."""
    if is_url(target):
        conn = PgRaw(target, schema)
        try:
            tables = [t for (t,) in conn.raw.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname", (schema,))]
            return {t: sorted(conn.raw.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                    for t in tables}
        finally:
            conn.close()
    uri = Path(os.path.abspath(target)).as_uri() + "?mode=ro"
    lite = sqlite3.connect(uri, uri=True)
    try:
        names = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {name: sorted(lite.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
                for name in names if not (name.endswith("_fts") and not name.startswith("sqlite_"))}
    finally:
        lite.close()


def contents(target: Any, schema: str = "palyra") -> Any:
    """Everything the store holds, to prove a refused call left it untouched: a file's bytes, or
    every row of every table of the schema and its triggers."""
    if not is_url(target):
        return Path(target).read_bytes()
    conn = PgRaw(target, schema)
    try:
        triggers = trigger_sql(conn)
    finally:
        conn.close()
    return table_rows(target, schema), triggers


def fts_check(conn: Any) -> None:
    """FTS5's own integrity check of the memory full-text table (raises when it is out of step).
    On PostgreSQL the index is a generated ``tsvector`` column of the row itself, which cannot
    drift from the content; there is nothing separate to check."""
    if engine_of(conn) == "sqlite":
        conn.execute("INSERT INTO memory_items_fts(memory_items_fts) VALUES ('integrity-check')")


def fts_rowids(conn: Any, token: str) -> list[tuple]:
    """The ``rowid`` of every memory item the full-text index finds for one plain token."""
    if engine_of(conn) == "sqlite":
        return conn.execute("SELECT rowid FROM memory_items_fts WHERE memory_items_fts MATCH ?",
                            (token,)).fetchall()
    return conn.execute("SELECT rowid FROM memory_items WHERE content_tsv @@ to_tsquery('simple', ?)",
                        (token,)).fetchall()


def hold_write_lock(conn: Any) -> None:
    """Open a transaction holding the lock every writer of the store takes first (SQLite: the
    file's write lock, ``BEGIN IMMEDIATE``; PostgreSQL: the journal head row, ``FOR UPDATE``),
    until ``conn.execute("ROLLBACK")``."""
    if engine_of(conn) == "sqlite":
        conn.execute("BEGIN IMMEDIATE")
        return
    conn.execute("BEGIN")
    conn.execute("SELECT 1 FROM journal_head WHERE id = 1 FOR UPDATE")
