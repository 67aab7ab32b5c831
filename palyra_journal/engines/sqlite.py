"""The SQLite engine: one file (or ``:memory:``), opened with its pragmas, serialized by
``BEGIN IMMEDIATE``. Everything here is what the store did before there were two engines."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Callable

from .. import migrations
from ..errors import InvalidPathError, NotADatabaseError, ReadOnlyError, SchemaError
from ..sqlite_errors import is_unique_violation, translate_sqlite_error
from .base import Dialect

if TYPE_CHECKING:
    from ..schema import Migration

#: ``synchronous=`` of :meth:`JournalStore.open` and its PRAGMA value.
SYNCHRONOUS = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}


class SQLiteDialect(Dialect):
    name = "sqlite"
    error_types = (sqlite3.Error,)
    migrations_table = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_unix_ms INTEGER NOT NULL
)"""

    def translate_error(self, exc: BaseException, where: str = "") -> BaseException:
        return translate_sqlite_error(exc, where)

    def begin_write(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def migrations(self) -> "tuple[Migration, ...]":
        return _MIGRATIONS

    def begin_migration(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def run_migration(self, conn: Any, migration: "Migration") -> None:
        for stmt in migration.statements():
            conn.execute(stmt)

    def user_tables(self, conn: Any) -> list[str]:
        return [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]

    def table_columns(self, conn: Any, table: str) -> set[str]:
        return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}

    def trigger_names(self, conn: Any) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}

    def wal_checkpoint(self, conn: Any, mode: str) -> tuple[int, int, int]:
        return conn.execute(f"PRAGMA wal_checkpoint({mode.upper()})").fetchone()

    def vacuum(self, conn: Any) -> None:
        conn.execute("VACUUM")  # rebuilds the file: the free pages go back to the file system

    def stored_bytes(self, conn: Any) -> int:
        count, size = conn.execute("SELECT * FROM pragma_page_count(), pragma_page_size()"
                                   ).fetchone()
        return int(count) * int(size)

    def json_field_equals(self, column: str, key: str, value: Any) -> tuple[str, tuple[Any, ...]]:
        return f"json_extract({column}, ?) = ?", (f'$."{key}"', value)

    def text_bytes(self, expr: str) -> str:
        return f"length(CAST({expr} AS BLOB))"

    def json_array_has(self, column: str) -> str:
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)"

    def fts_match(self, terms: list[str]) -> str | None:
        """``"t1" OR "t2" ...`` for an FTS5 MATCH (terms hold only letters, digits and marks,
        memory/fts.py: quoted, they are never FTS5 syntax), or None when there is none."""
        if not terms:
            return None
        return " OR ".join(f'"{t}"' for t in terms)

    def lexical_sql(self, where: str) -> str:
        # FTS5 over memory_items, tokenizer unicode61 (remove_diacritics 2), ranked by bm25
        return ("SELECT i.memory_id, -bm25(memory_items_fts) AS s, i.created_at_unix_ms "
                "FROM memory_items_fts JOIN memory_items i ON i.rowid = memory_items_fts.rowid "
                f"WHERE memory_items_fts MATCH ? AND {where} "
                "ORDER BY s DESC, i.memory_id LIMIT ?")

    local_files = True

    def data_version(self, conn: Any) -> int | None:
        return conn.execute("PRAGMA data_version").fetchone()[0]


_MIGRATIONS = migrations.load()
SQLITE = SQLiteDialect()


class SQLiteConnection(sqlite3.Connection):
    """A ``sqlite3`` connection that names its dialect (``conn.dialect``)."""

    dialect = SQLITE


# ---------------------------------------------------------------------------------------- the file
def check_path(path: "str | os.PathLike[str]") -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidPathError(f"path must be str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if isinstance(text, bytes):
        raise InvalidPathError(f"path must be text, got bytes {text!r}")
    if text == ":memory:":
        return text
    if not text or "\x00" in text:
        raise InvalidPathError(f"invalid database path {text!r}")
    if ".." in PurePath(text).parts:
        raise InvalidPathError(f"database path {text!r} contains a '..' component")
    if os.path.isdir(text):
        raise InvalidPathError(f"database path {text!r} is a directory")
    return text


def _make_parents(path: str) -> None:
    """Create the missing parent directories of ``path``, each with mode 0700."""
    parent = Path(path).parent
    missing = []
    p = parent
    try:
        while not p.exists():
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
    except OSError as exc:  # a directory on the way cannot be entered
        raise InvalidPathError(f"cannot reach directory {str(p)!r}: {exc.strerror}") from exc
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise InvalidPathError(f"cannot create directory {str(d)!r}: {exc.strerror}") from exc
        os.chmod(d, 0o700)


def _narrow_mode(path: str) -> None:
    """Files holding the journal are readable by their owner only (0600 at most)."""
    for suffix in ("", "-wal", "-shm"):
        p = path + suffix
        try:
            mode = stat.S_IMODE(os.stat(p).st_mode)
        except FileNotFoundError:
            continue
        if mode & ~0o600:
            try:
                os.chmod(p, mode & 0o600)
            except PermissionError:
                pass


def _connect(text: str, *, read_only: bool, memory_db: bool, timeout: float,
             immutable: bool = False) -> sqlite3.Connection:
    """The connection: ``mode=ro`` when read-only (SQLite then creates nothing), else read-write,
    creating the file 0600 (and its directories 0700) before SQLite does, so it is never wider."""
    try:
        if read_only:
            uri = Path(os.path.abspath(text)).as_uri() + "?mode=ro" + ("&immutable=1" if immutable
                                                                       else "")
            return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                   timeout=timeout, cached_statements=512,
                                   factory=SQLiteConnection)
        if not memory_db:
            _make_parents(text)
            if not os.path.exists(text):
                fd = os.open(text, os.O_CREAT | os.O_RDWR, 0o600)
                os.close(fd)
        return sqlite3.connect(text, isolation_level=None, check_same_thread=False,
                               timeout=timeout, cached_statements=512, factory=SQLiteConnection)
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, text) from exc
    except PermissionError as exc:
        raise ReadOnlyError(f"cannot create {text!r}: {exc.strerror}") from exc
    except OSError as exc:
        raise InvalidPathError(f"cannot open {text!r}: {exc.strerror}") from exc


def _sidecars_exist(path: str) -> bool:
    return os.path.exists(path + "-wal") or os.path.exists(path + "-shm")


def _remove_sidecars(path: str) -> None:
    """Let SQLite remove the -wal/-shm files a read-only connection had to create (a read-only
    connection cannot, so the file would be left with two new files beside it): the last
    connection to close removes them, and with an empty WAL the database file is not written.
    When another process still has the file open, SQLite keeps them for it."""
    if not _sidecars_exist(path):
        return
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        pass


def open_file(path: "str | os.PathLike[str]", *, read_only: bool, busy_timeout_ms: int,
              synchronous: str, check: Callable[[Any, str], None],
              prepare: Callable[[Any, str], None]) -> tuple[Any, str, Callable[[], None]]:
    """Open the file (creating it when writing): ``(connection, path, close)``. ``check`` refuses
    a file that is not ours before anything is written to it; ``prepare`` migrates it (both from
    the engine-neutral :mod:`palyra_journal.schema`)."""
    text = check_path(path)
    memory_db = text == ":memory:"
    if read_only and memory_db:
        raise InvalidPathError("read_only=True needs a database file, got ':memory:'")
    if read_only and not os.path.exists(text):
        raise InvalidPathError(f"no database at {text!r}")
    had_sidecars = not memory_db and _sidecars_exist(text)
    conn = _connect(text, read_only=read_only, memory_db=memory_db,
                    timeout=busy_timeout_ms / 1000)
    try:
        try:
            conn.execute("PRAGMA schema_version").fetchone()  # reads the header: is it SQLite?
        except sqlite3.OperationalError as exc:
            # A WAL file in a directory we cannot write: SQLite cannot make the -shm file a
            # reader needs. With no -wal file no writer has it open, so it is read as
            # immutable: this store sees the file as it was when opened.
            if not (read_only and "readonly" in str(exc).lower()
                    and not os.path.exists(text + "-wal")):
                raise
            conn.close()
            conn = _connect(text, read_only=True, memory_db=False,
                            timeout=busy_timeout_ms / 1000, immutable=True)
            conn.execute("PRAGMA schema_version").fetchone()
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        check(conn, text)
        if not memory_db and not read_only:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SchemaError(f"{text}: could not switch to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[synchronous]}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA mmap_size = 268435456")
        prepare(conn, text)
    except sqlite3.Error as exc:
        conn.close()
        if read_only and not had_sidecars:
            _remove_sidecars(text)
        err = translate_sqlite_error(exc, text)
        if isinstance(err, NotADatabaseError):
            err = NotADatabaseError(f"{text!r} is not a SQLite database")
        raise err from exc
    except BaseException:
        conn.close()
        if read_only and not had_sidecars:
            _remove_sidecars(text)
        raise
    if not memory_db and not read_only:
        _narrow_mode(text)
    clean = read_only and not had_sidecars

    def close() -> None:
        conn.close()
        if clean:
            _remove_sidecars(text)
    return conn, text, close


__all__ = ["SQLITE", "SQLiteConnection", "SQLiteDialect", "SYNCHRONOUS", "check_path",
           "is_unique_violation", "open_file"]
