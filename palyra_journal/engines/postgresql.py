"""The PostgreSQL engine: the store in one schema of a PostgreSQL database, through psycopg 3.

The domains' SQL is written once, with ``?`` placeholders; :class:`PgConnection` gives a psycopg
connection the ``sqlite3`` surface they use and rewrites each SQL text once (cached) to psycopg's
``%s`` style. Writers are serialized across processes and hosts by the journal head row
(``journal_head``, locked ``FOR UPDATE`` first in every write transaction): the same
one-writer-at-a-time that SQLite's ``BEGIN IMMEDIATE`` gives, so every policy the domains write as
read-check-write in one transaction holds unchanged, and the journal's ``seq`` stays one gapless
chain. Schema creation and migrations run under ``pg_advisory_xact_lock``, so many processes can
open a fresh database at once (docs/postgres.md).

One connection per store, in autocommit mode with explicit ``BEGIN``/``COMMIT`` (a read is one
statement, a write one transaction); the store's lock serializes its threads on it, as on SQLite.
A connection found broken between transactions is replaced before the next one; one lost inside
a transaction raises :class:`ConcurrencyError` (the server rolled the transaction back).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

from .. import migrations
from ..errors import EngineUnavailableError, InvalidPayloadError, JournalError, NotAJournalError
from ..postgres_errors import duplicate_value, is_unique_violation, translate_postgres_error
from .base import Dialect

if TYPE_CHECKING:
    from ..migrations import Migration

#: A schema name we create and put on the search path (an unquoted SQL identifier).
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_LOCK_HEAD = "SELECT 1 FROM journal_head WHERE id = 1 FOR UPDATE"
#: ``?`` and ``:name`` placeholders and ``%`` outside string literals, quoted identifiers and
#: comments (``::`` is PostgreSQL's cast, not a placeholder).
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?|%|::|:[A-Za-z_]\w*")
_PG_SQL: dict[str, str] = {}
_PG_SQL_MAX = 4096
#: A plain ``INSERT INTO t (cols) VALUES (?, ...)``: a batch of it can be sent as one COPY.
_PLAIN_INSERT = re.compile(r"\s*INSERT\s+INTO\s+(\w+)\s*\(([\w\s,]+)\)\s*VALUES\s*"
                           r"\(\s*\?(?:\s*,\s*\?)*\s*\)\s*", re.IGNORECASE)
_COPY_SQL: dict[str, str | None] = {}
#: From this many rows on, ``executemany`` of a plain INSERT is a COPY (measured: 2-3x faster than
#: pipelined INSERTs for 20 000 journal rows; below, COPY's setup costs more than it saves).
COPY_MIN_ROWS = 64


def copy_sql(sql: str) -> str | None:
    """``COPY t (cols) FROM STDIN`` for a plain INSERT of placeholders, else None (cached)."""
    if sql in _COPY_SQL:
        return _COPY_SQL[sql]
    m = _PLAIN_INSERT.fullmatch(sql)
    out = None
    if m is not None and m.group(0).count("?") == len(m.group(2).split(",")):
        out = f"COPY {m.group(1)} ({m.group(2).strip()}) FROM STDIN"
    if len(_COPY_SQL) >= _PG_SQL_MAX:
        _COPY_SQL.clear()
    _COPY_SQL[sql] = out
    return out


def _driver() -> Any:
    """psycopg, or :class:`EngineUnavailableError` naming the extra that installs it."""
    try:
        import psycopg
    except ImportError as exc:
        raise EngineUnavailableError(
            "opening a postgresql:// URL needs the PostgreSQL driver, which is not installed "
            f"({exc}): pip install 'palyra-journal[postgres]'") from None
    return psycopg


def _token(m: "re.Match[str]") -> str:
    t = m.group()
    if t == "?":
        return "%s"
    if t == "%":
        return "%%"
    if t[0] == ":" and t != "::":
        return f"%({t[1:]})s"
    return t.replace("%", "%%")  # psycopg reads % everywhere, in literals and comments too


def pg_sql(sql: str) -> str:
    """``sql`` with ``?`` placeholders as ``%s``, ``:name`` as ``%(name)s`` and literal ``%``
    doubled (cached per text)."""
    out = _PG_SQL.get(sql)
    if out is None:
        out = _TOKENS.sub(_token, sql)
        if len(_PG_SQL) >= _PG_SQL_MAX:
            _PG_SQL.clear()
        _PG_SQL[sql] = out
    return out


def advisory_key(schema: str) -> int:
    """The advisory lock of one schema's creation and migrations (a signed 64-bit int)."""
    digest = hashlib.sha256(f"palyra_journal.migrate.{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and ``store.path``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


# ---------------------------------------------------------------------------------------- dialect
class PostgresDialect(Dialect):
    name = "postgresql"
    migrations_table = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_unix_ms BIGINT NOT NULL
)"""

    @property
    def error_types(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        return (_driver().Error,)

    def translate_error(self, exc: BaseException, where: str = "") -> BaseException:
        return translate_postgres_error(exc, where)

    def duplicate_value(self, exc: BaseException) -> str | None:
        return duplicate_value(exc)

    def begin_write(self, conn: Any) -> None:
        conn.begin(f"BEGIN; {_LOCK_HEAD}")

    def begin_read(self, conn: Any) -> None:
        conn.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def commit(self, conn: Any) -> None:
        conn.end("COMMIT")

    def rollback(self, conn: Any) -> None:
        conn.end("ROLLBACK")

    def migrations(self) -> "tuple[Migration, ...]":
        return _MIGRATIONS

    def begin_migration(self, conn: Any) -> None:
        conn.begin(f"BEGIN; SELECT pg_advisory_xact_lock({advisory_key(conn.schema)})")

    def run_migration(self, conn: Any, migration: "Migration") -> None:
        conn.raw.execute(migration.sql)  # a script: no parameters, several statements

    def user_tables(self, conn: Any) -> list[str]:
        return self._tables(conn, "'r', 'v', 'p', 'm', 'f'")

    def _tables(self, conn: Any, kinds: str) -> list[str]:
        """The names of the schema's relations of the ``pg_class.relkind`` values ``kinds``."""
        return [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE n.nspname = ? AND c.relkind IN ({kinds}) "
            "ORDER BY c.relname COLLATE \"C\"", (conn.schema,))]

    def table_columns(self, conn: Any, table: str) -> set[str]:
        return {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?", (conn.schema, table))}

    def trigger_names(self, conn: Any) -> set[str]:
        return {r[0] for r in conn.execute(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ? AND NOT t.tgisinternal", (conn.schema,))}

    # the due jobs a claim takes are locked, and rows another claimer holds are passed over
    claim_lock = " FOR UPDATE SKIP LOCKED"

    def wal_checkpoint(self, conn: Any, mode: str) -> tuple[int, int, int]:
        raise JournalError("checkpoint copies a SQLite file's WAL into it; a PostgreSQL server "
                           "checkpoints its own WAL (nothing to do for this store)")

    def vacuum(self, conn: Any) -> None:
        # the store's own tables only (a bare VACUUM would take every table of the database);
        # plain VACUUM makes their dead rows' space reusable without locking out the writers
        tables = self._tables(conn, "'r'")
        if tables:
            conn.execute("VACUUM " + ", ".join(f'"{conn.schema}"."{t}"' for t in tables))

    def stored_bytes(self, conn: Any) -> int:
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ? AND c.relkind IN ('r', 'm')", (conn.schema,)).fetchone()
        return int(row[0])

    def json_field_equals(self, column: str, key: str, value: Any) -> tuple[str, tuple[Any, ...]]:
        return f"({column}::jsonb -> ?) = ?::jsonb", (key, json.dumps(value))

    def text_bytes(self, expr: str) -> str:
        return f"octet_length({expr})"

    def json_array_has(self, column: str) -> str:
        return f"({column}::jsonb @> jsonb_build_array(?::text))"

    def fts_match(self, terms: list[str]) -> str | None:
        # Terms hold only letters, digits and marks (memory/fts.py): quoted, they can never be
        # tsquery syntax. A quoted term the parser splits becomes a phrase of its parts.
        # lowercased here, by Unicode's rules, as the indexed text is (migration 0002): the
        # server's own lowercasing follows the database's LC_CTYPE
        return " | ".join(f"'{t.lower()}'" for t in terms) if terms else None

    def lexical_sql(self, where: str) -> str:
        # the tsvector column of memory_items (GIN, 'simple' configuration), ranked by ts_rank
        return ("SELECT i.memory_id, ts_rank(i.content_tsv, q) AS s, i.created_at_unix_ms "
                "FROM memory_items i, to_tsquery('simple', ?) q "
                f"WHERE i.content_tsv @@ q AND {where} "
                "ORDER BY s DESC, i.memory_id LIMIT ?")


POSTGRESQL = PostgresDialect()
_MIGRATIONS = migrations.load("palyra_journal.migrations.postgresql")


# ---------------------------------------------------------------------------------------- adapter
class PgCursor:
    """A psycopg cursor with the ``sqlite3`` surface: ``?`` SQL, a settable ``row_factory``
    called as ``row_factory(cursor, row)``."""

    __slots__ = ("_cur", "row_factory")

    def __init__(self, cur: Any):
        self._cur = cur
        self.row_factory: Callable[[Any, tuple], Any] | None = None

    def execute(self, sql: str, params: Any = ()) -> "PgCursor":
        self._cur.execute(pg_sql(sql), params)
        return self

    def executemany(self, sql: str, seq: Iterable[Any]) -> "PgCursor":
        self._cur.executemany(pg_sql(sql), seq)
        return self

    def _made(self, row: Any) -> Any:
        rf = self.row_factory
        return row if rf is None or row is None else rf(self, row)

    def fetchone(self) -> Any:
        return self._made(self._cur.fetchone())

    def fetchmany(self, size: int = 1) -> list[Any]:
        rows = self._cur.fetchmany(size)
        rf = self.row_factory
        return rows if rf is None else [rf(self, r) for r in rows]

    def fetchall(self) -> list[Any]:
        rows = self._cur.fetchall()
        rf = self.row_factory
        return rows if rf is None else [rf(self, r) for r in rows]

    def __iter__(self) -> Iterator[Any]:
        rf = self.row_factory
        if rf is None:
            return iter(self._cur)
        return (rf(self, r) for r in self._cur)

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def description(self) -> Any:
        return self._cur.description

    def close(self) -> None:
        self._cur.close()


class PgConnection:
    """One psycopg connection (autocommit, explicit transactions) with the ``sqlite3`` surface
    the domains use; ``dialect`` names the engine's differences."""

    dialect = POSTGRESQL

    def __init__(self, url: str, schema: str, *, read_only: bool, busy_timeout_ms: int):
        self.url = url
        self.schema = schema
        self.read_only = read_only
        self.busy_timeout_ms = busy_timeout_ms
        self._tx = False
        self.raw = self._connect()

    def _connect(self) -> Any:
        psycopg = _driver()
        raw = psycopg.connect(self.url, autocommit=True, application_name="palyra-journal")
        try:
            _configure(raw)
            settings = [f'SET search_path TO "{self.schema}"',
                        f"SET lock_timeout = {int(self.busy_timeout_ms)}"]
            if self.read_only:
                settings.append("SET default_transaction_read_only = on")
            raw.execute("; ".join(settings))
        except BaseException:
            raw.close()
            raise
        return raw

    def _live(self) -> Any:
        """The connection; one found broken between transactions is replaced first."""
        raw = self.raw
        if (raw.broken or raw.closed) and not self._tx:
            raw.close()
            self.raw = raw = self._connect()
        return raw

    # ------------------------------------------------------------------ transactions
    def begin(self, sql: str) -> None:
        """Open a transaction with ``sql``; a connection that died while idle is replaced and
        the BEGIN retried once (nothing was done on it yet)."""
        psycopg = _driver()
        raw = self._live()
        try:
            try:
                raw.execute(sql)
            except psycopg.OperationalError:
                if not raw.broken:
                    raise
                raw.close()
                self.raw = raw = self._connect()
                raw.execute(sql)
        except BaseException:
            self._abandon()  # e.g. BEGIN ran and the head lock timed out: end that transaction
            raise
        self._tx = True

    def _abandon(self) -> None:
        """Roll back a transaction a failed :meth:`begin` left open (nothing was written in it)."""
        raw = self.raw
        if raw.broken or raw.closed:
            return
        if raw.info.transaction_status != _driver().pq.TransactionStatus.IDLE:
            raw.execute("ROLLBACK")

    def end(self, sql: str) -> None:
        """COMMIT or ROLLBACK; a ROLLBACK on a lost connection has nothing left to undo."""
        self._tx = False
        raw = self.raw
        if sql == "ROLLBACK" and (raw.broken or raw.closed):
            return
        raw.execute(sql)

    @property
    def in_transaction(self) -> bool:
        return self._tx

    # ------------------------------------------------------------------ the sqlite3 surface
    def execute(self, sql: str, params: Any = ()) -> PgCursor:
        return PgCursor(self._live().cursor()).execute(sql, params)

    def executemany(self, sql: str, seq: Iterable[Any]) -> PgCursor:
        """Many rows of one statement; a large batch of a plain INSERT is sent as one COPY (the
        same rows, triggers and constraint errors, a fraction of the round trips and parsing)."""
        cur = PgCursor(self._live().cursor())
        copy = copy_sql(sql)
        if copy is not None:
            rows = seq if isinstance(seq, list) else list(seq)
            if len(rows) >= COPY_MIN_ROWS:
                with cur._cur.copy(copy) as out:
                    write = out.write_row
                    for row in rows:
                        write(row)
                return cur
            seq = rows
        return cur.executemany(sql, seq)

    def cursor(self) -> PgCursor:
        return PgCursor(self._live().cursor())

    def close(self) -> None:
        self.raw.close()


def _configure(raw: Any) -> None:
    """Values as the domains read and write them on SQLite: a bool parameter is stored as the
    integer 0/1, and a ``numeric`` result (``SUM`` of ``BIGINT``) comes back as an int."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.postgres import types

    class BoolAsInt(Dumper):
        oid = types["int2"].oid

        def dump(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

    class NumericAsNumber(Loader):
        def load(self, data: Any) -> Any:
            text = bytes(data)
            return float(text) if b"." in text or b"N" in text else int(text)

    raw.adapters.register_dumper(bool, BoolAsInt)
    raw.adapters.register_loader("numeric", NumericAsNumber)


# ---------------------------------------------------------------------------------------- opening
def open_url(url: str, *, schema: str, read_only: bool, busy_timeout_ms: int,
             check: Callable[[Any, str], None],
             prepare: Callable[[Any, str], None]) -> tuple[PgConnection, str, Callable[[], None]]:
    """Connect, create the schema (when writing) and migrate: ``(connection, where, close)``.
    ``check`` and ``prepare`` are the engine-neutral identity check and migration of
    :mod:`palyra_journal.schema`."""
    psycopg = _driver()
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise InvalidPayloadError(f"schema must be a lowercase SQL identifier "
                                  f"([a-z_][a-z0-9_]*, at most 63 characters), got {schema!r}")
    where = f"{redact_url(url)} (schema {schema})"
    try:
        conn = PgConnection(url, schema, read_only=read_only, busy_timeout_ms=busy_timeout_ms)
    except psycopg.Error as exc:
        raise translate_postgres_error(exc, where) from None
    try:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?",
                              (schema,)).fetchone() is not None
        if read_only and not exists:
            raise NotAJournalError(f"{where}: there is no such schema, no palyra-journal store "
                                   "to read")
        if not exists:
            conn.begin(f"BEGIN; SELECT pg_advisory_xact_lock({advisory_key(schema)}); "
                       f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.end("COMMIT")
        check(conn, where)
        prepare(conn, where)
    except psycopg.Error as exc:
        conn.close()
        raise translate_postgres_error(exc, where) from None
    except BaseException:
        conn.close()
        raise
    return conn, where, conn.close


__all__ = ["POSTGRESQL", "PgConnection", "PgCursor", "PostgresDialect", "advisory_key",
           "is_unique_violation", "open_url", "pg_sql", "redact_url"]
