"""A connection to a store's database behind the store's back, on either engine.

Tests that tamper with stored rows (as an attacker with write access would) or read them without
the library open ``raw_db.connect(db_path)``: ``sqlite3`` on a file path, psycopg on a
``postgresql://`` URL with the store's schema on the search path. Both take the same ``?`` SQL
(rewritten for psycopg by the engine's own rewriting), ``execute``/``executemany`` return a
cursor, and ``with conn:`` commits (or rolls back on an error) like ``sqlite3``'s.
What differs between the engines' DDL is a function here (:func:`drop_trigger`), not an ``if`` in
a test.
"""

from __future__ import annotations

import os
import re
import sqlite3
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
        self.raw = psycopg.connect(url, options=f"-c search_path={schema}")

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.raw.execute(self._sql(sql), params)

    def executemany(self, sql: str, seq: Any) -> Any:
        cur = self.raw.cursor()
        cur.executemany(self._sql(sql), seq)
        return cur

    def commit(self) -> None:
        self.raw.commit()

    def rollback(self) -> None:
        self.raw.rollback()

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PgRaw:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()


def connect(target: Any, schema: str = "palyra") -> Any:
    """``sqlite3.connect(path)``, or its PostgreSQL twin for a URL."""
    if is_url(target):
        return PgRaw(target, schema)
    return sqlite3.connect(os.fspath(target))


def engine_of(conn: Any) -> str:
    return getattr(conn, "engine", "sqlite")


def drop_trigger(conn: Any, name: str) -> None:
    """``DROP TRIGGER IF EXISTS name`` (PostgreSQL names the trigger's table too)."""
    if engine_of(conn) == "sqlite":
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    for (table,) in conn.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE t.tgname = ? AND n.nspname = current_schema()", (name,)).fetchall():
        conn.execute(f'DROP TRIGGER IF EXISTS {name} ON "{table}"')


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
