"""Subcommands of the ``palyra-journal`` CLI, one module per domain (see ``cli.py``).

Every subcommand names how it opens its database with :func:`add_db`, and opens it with
:func:`open_db`, so the rule lives here once: a *read* command opens read-only and creates
nothing (a missing, empty or foreign file is refused with exit 2); a *write* command needs an
existing palyra-journal database; a *create* command also makes a new one (or initializes an
empty file). Write and create commands refuse another application's SQLite file unless
``--adopt`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

#: How a subcommand opens its database (see the module docstring).
READ, WRITE, CREATE = "read", "write", "create"

ADOPT_HELP = ("add the journal's tables to an existing SQLite database of another application "
              "(embed the store in it); without it such a file is refused, untouched")
_DB_HELP = {
    READ: "database file or postgresql:// URL (opened read-only: nothing is created or changed)",
    WRITE: "an existing palyra-journal database file, or a postgresql:// URL",
    CREATE: "database file (created, with its directories, when missing) or postgresql:// URL "
            "(its schema created when missing)",
}
SCHEMA_HELP = ("with a postgresql:// DB: the schema holding the store (a lowercase SQL identifier; "
               "default palyra); refused with a SQLite file, which has none")


def add_command(sub, name: str, help_text: str, func: Callable[[argparse.Namespace], int | None],
                description: str | None = None) -> argparse.ArgumentParser:
    """Add a subcommand with ``--json`` and ``func`` bound; returns its parser for arguments."""
    p = sub.add_parser(name, help=help_text, description=description or help_text)
    p.add_argument("--json", action="store_true", help="print one JSON document for scripts")
    p.set_defaults(func=func)
    return p


def emit(args: argparse.Namespace, data: Any, human: str | Callable[[], str]) -> None:
    """Print ``data`` as JSON with ``--json``, else the human text."""
    if getattr(args, "json", False):
        json.dump(data, sys.stdout, ensure_ascii=False, default=_default)
        sys.stdout.write("\n")
    else:
        text = human() if callable(human) else human
        if text:
            print(text)


def _default(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def add_db(p: argparse.ArgumentParser, mode: str, *, optional: bool = False) -> None:
    """The DB argument of a subcommand that opens its database as ``mode``."""
    if optional:
        p.add_argument("db", nargs="?", metavar="DB", help=_DB_HELP[mode])
    else:
        p.add_argument("db", metavar="DB", help=_DB_HELP[mode])
    if mode != READ:
        p.add_argument("--adopt", action="store_true", help=ADOPT_HELP)
    add_schema(p)
    p.set_defaults(db_mode=mode)


def add_schema(p: argparse.ArgumentParser) -> None:
    """``--schema NAME``, for a subcommand whose DB may be a ``postgresql://`` URL."""
    p.add_argument("--schema", metavar="NAME", help=SCHEMA_HELP)


def schema_option(args: argparse.Namespace) -> dict[str, Any]:
    """``JournalStore.open``'s ``schema`` keyword from ``--schema`` (none given: nothing), which
    only a ``postgresql://`` DB has."""
    from ..engines import is_server_url
    from ..errors import InvalidPayloadError
    schema = getattr(args, "schema", None)
    if schema is None:
        return {}
    if not is_server_url(args.db):
        raise InvalidPayloadError(f"--schema {schema!r} names a PostgreSQL schema: DB "
                                  f"{args.db!r} is not a postgresql:// URL")
    return {"schema": schema}


def open_db(args: argparse.Namespace, mode: str | None = None, **kwargs: Any):
    """Open ``args.db`` as the subcommand's mode (or ``mode``); refusals are JournalErrors."""
    from ..engines import is_server_url
    from ..errors import InvalidPathError, NotAJournalError
    from ..store import JournalStore
    mode = mode or args.db_mode
    path = args.db
    kwargs.update(schema_option(args))
    if mode == READ:
        return JournalStore.open(path, read_only=True, **kwargs)
    if mode == WRITE and path != ":memory:" and not is_server_url(path):
        if not os.path.lexists(path):
            raise InvalidPathError(f"no database at {path!r}")
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise NotAJournalError(f"{path!r} is an empty file, not a palyra-journal database")
    return JournalStore.open(path, adopt=getattr(args, "adopt", False), **kwargs)
