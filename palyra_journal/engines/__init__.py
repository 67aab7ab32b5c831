"""The storage engines: what differs between SQLite and PostgreSQL, behind one interface.

The domains (journal, memory, canvas, cron, approvals, the Merkle tiles) are written once, in SQL
that both engines run, against a connection with the ``sqlite3`` surface (``execute``,
``executemany``, ``cursor()`` with a settable ``row_factory``, ``fetch*``). Where the dialects
differ, a domain asks the connection's :class:`~palyra_journal.engines.base.Dialect`
(``dialect_of(conn)``) by a named method; the engine-specific SQL lives in one module per engine:
:mod:`.sqlite` (a file) and :mod:`.postgresql` (a server, selected by a ``postgresql://`` or
``postgres://`` URL; docs/postgres.md).
"""

from __future__ import annotations

from typing import Any

from .base import Dialect
from .sqlite import SQLITE

#: The URL schemes that select the PostgreSQL engine.
SERVER_SCHEMES = ("postgresql", "postgres")


def is_server_url(target: Any) -> bool:
    """True when ``target`` names a PostgreSQL database (``postgresql://...``), not a file."""
    if not isinstance(target, str):
        return False
    scheme, sep, _ = target.partition("://")
    return bool(sep) and scheme.lower() in SERVER_SCHEMES


def dialect_of(conn: Any) -> Dialect:
    """The dialect of a store connection (a plain ``sqlite3`` connection is SQLite's)."""
    return getattr(conn, "dialect", SQLITE)


def is_unique_violation(exc: BaseException) -> bool:
    """True for a UNIQUE or PRIMARY KEY failure of either engine (the message names the column)."""
    from . import postgresql, sqlite
    return sqlite.is_unique_violation(exc) or postgresql.is_unique_violation(exc)


__all__ = ["Dialect", "SERVER_SCHEMES", "SQLITE", "dialect_of", "is_server_url",
           "is_unique_violation"]
