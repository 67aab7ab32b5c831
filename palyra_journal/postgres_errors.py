"""psycopg errors as JournalError subclasses, classified by SQLSTATE (the twin of
``sqlite_errors``): the same failure gives the same class on either engine, and no psycopg
exception reaches a caller.

A lost connection (the server restarted, the backend was terminated, the network dropped) is a
:class:`ConcurrencyError`: retryable, and the transaction it interrupted was rolled back by the
server, so nothing of it is written.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    ConcurrencyError, DuplicateIdError, InvalidPathError, JournalError, ReadOnlyError,
    StorageError, StorageFullError,
)

#: SQLSTATE (exact code, else its two-character class) -> the kind of failure.
_KINDS = {
    "23505": "unique",            # unique_violation
    "40001": "busy",              # serialization_failure
    "40P01": "busy",              # deadlock_detected
    "55P03": "busy",              # lock_not_available (lock_timeout = busy_timeout_ms)
    "57014": "busy",              # query_canceled (a statement or lock timeout)
    "57P01": "lost",              # admin_shutdown (pg_terminate_backend, server stop)
    "57P02": "lost",              # crash_shutdown
    "57P03": "lost",              # cannot_connect_now (the server is starting or stopping)
    "08": "lost",                 # connection_exception (class)
    "53100": "full",              # disk_full
    "25006": "readonly",          # read_only_sql_transaction
    "42P01": "schema",            # undefined_table
    "42703": "schema",            # undefined_column
    "28": "cantopen",             # invalid_authorization_specification (class)
    "3D000": "cantopen",          # invalid_catalog_name: no such database
}

_TRANSLATIONS: dict[str | None, tuple[type[JournalError], str]] = {
    "busy": (ConcurrencyError, "a concurrent writer held the lock or won the race ({msg}); "
             "nothing was written, retry"),
    "lost": (ConcurrencyError, "the connection to PostgreSQL was lost ({msg}); the transaction "
             "was rolled back, nothing of it was written, retry"),
    "full": (StorageFullError, "storage is full ({msg}); nothing was written"),
    "readonly": (ReadOnlyError, "the database is read-only ({msg})"),
    "unique": (DuplicateIdError, "duplicate id ({msg})"),
    "cantopen": (InvalidPathError, "cannot open the database ({msg})"),
    "schema": (StorageError, "the database lacks part of palyra-journal's schema ({msg}); it is "
               "damaged or was changed outside palyra-journal"),
}


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # without the extra no psycopg error can exist
        return None
    return psycopg


def _classify(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    if state:
        return _KINDS.get(state) or _KINDS.get(state[:2])
    psycopg = _psycopg()
    if psycopg is not None and isinstance(exc, (psycopg.OperationalError,
                                                psycopg.InterfaceError)):
        return "lost"  # no SQLSTATE: the client lost (or never had) the server
    return None


def is_unique_violation(exc: BaseException) -> bool:
    """True for a UNIQUE or PRIMARY KEY failure (its detail names the key and value)."""
    return getattr(exc, "sqlstate", None) == "23505"


def duplicate_value(exc: BaseException) -> str | None:
    """The value of the key a unique violation names (``Key (event_id)=(X) already exists``)."""
    diag = getattr(exc, "diag", None)
    detail = getattr(diag, "message_detail", None) or ""
    head, sep, rest = detail.partition(")=(")
    if not sep or not head.startswith("Key ("):
        return None
    value, sep, _ = rest.rpartition(") already exists")
    return value if sep else None


def translate_postgres_error(exc: BaseException, where: str = "") -> BaseException:
    """Map a psycopg error to the matching JournalError subclass (other exceptions pass
    through)."""
    psycopg = _psycopg()
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return exc
    msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if is_unique_violation(exc):
        detail = getattr(getattr(exc, "diag", None), "message_detail", None)
        if detail:
            msg = f"{msg}: {detail}"
    prefix = f"{where}: " if where else ""
    cls, text = _TRANSLATIONS.get(_classify(exc), (StorageError, "PostgreSQL failed: {msg}"))
    return cls(prefix + text.format(msg=msg))
