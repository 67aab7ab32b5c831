"""SQLite errors as JournalError subclasses, classified by result code (text only on 3.10).

``sqlite3`` gives the result code of an error as ``sqlite_errorcode`` since Python 3.11; matching
message text breaks with every SQLite wording change and with localized builds, so the text is
consulted only where the code is missing.
"""

from __future__ import annotations

import sqlite3

from .errors import (
    ConcurrencyError, DuplicateIdError, InvalidPathError, JournalError, NotADatabaseError, ReadOnlyError, StorageError,
    StorageFullError,
)

# Primary result codes of SQLite (sqlite3.h); ``sqlite_errorcode`` carries them since Python 3.11.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_CORRUPT = 5, 6, 8, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_CONSTRAINT, _SQLITE_NOTADB = 13, 14, 19, 26
_SQLITE_CONSTRAINT_PRIMARYKEY, _SQLITE_CONSTRAINT_UNIQUE = 1555, 2067


def _classify(exc: sqlite3.Error) -> str | None:
    """What went wrong, from the result code where the sqlite3 module gives it (3.11+), else
    from the message text (3.10): "busy", "full", "readonly", "notadb", "cantopen", "unique",
    "schema" (a table or column of ours is missing: SQLite gives no code of its own for that, so
    the text decides) or None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        if code in (_SQLITE_CONSTRAINT_UNIQUE, _SQLITE_CONSTRAINT_PRIMARYKEY):
            return "unique"
        return {_SQLITE_BUSY: "busy", _SQLITE_LOCKED: "busy", _SQLITE_FULL: "full",
                _SQLITE_READONLY: "readonly", _SQLITE_NOTADB: "notadb",
                _SQLITE_CORRUPT: "notadb", _SQLITE_CANTOPEN: "cantopen"}.get(code & 0xFF) or _schema(exc)
    low = str(exc).lower()
    if "database is locked" in low or "database is busy" in low or "database table is locked" in low:
        return "busy"
    if "disk is full" in low:
        return "full"
    if "readonly" in low or "read-only" in low:
        return "readonly"
    if "not a database" in low or "malformed" in low:
        return "notadb"
    if isinstance(exc, sqlite3.IntegrityError) and "unique" in low:
        return "unique"
    if "unable to open database file" in low:
        return "cantopen"
    return _schema(exc)


def _schema(exc: sqlite3.Error) -> str | None:
    low = str(exc).lower()
    return "schema" if "no such table" in low or "no such column" in low else None


def is_unique_violation(exc: BaseException) -> bool:
    """True for a UNIQUE or PRIMARY KEY constraint failure (the message then names the column)."""
    return isinstance(exc, sqlite3.IntegrityError) and _classify(exc) == "unique"


#: What each kind of failure becomes: the JournalError subclass and its message ({msg}: SQLite's).
_TRANSLATIONS: dict[str | None, tuple[type[JournalError], str]] = {
    "busy": (ConcurrencyError, "could not get the write lock within busy_timeout ({msg})"),
    "full": (StorageFullError, "storage is full ({msg}); nothing was written"),
    "readonly": (ReadOnlyError, "the database is read-only ({msg})"),
    "notadb": (NotADatabaseError, "not a SQLite database ({msg})"),
    "unique": (DuplicateIdError, "duplicate id ({msg})"),
    "cantopen": (InvalidPathError, "cannot open the database file ({msg})"),
    "schema": (StorageError, "the database lacks part of palyra-journal's schema ({msg}); it is "
               "damaged or was changed outside palyra-journal"),
}


def translate_sqlite_error(exc: BaseException, where: str = "") -> BaseException:
    """Map a ``sqlite3`` error to the matching JournalError subclass (never a raw sqlite3 error;
    other exceptions pass through)."""
    if not isinstance(exc, sqlite3.Error):
        return exc
    msg = str(exc)
    prefix = f"{where}: " if where else ""
    cls, text = _TRANSLATIONS.get(_classify(exc), (StorageError, "SQLite failed: {msg}"))
    return cls(prefix + text.format(msg=msg))
