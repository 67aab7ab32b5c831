"""The ``palyra-journal`` command.

Each domain registers its subcommands from ``palyra_journal/commands/<domain>.py`` (a
``register(subparsers)`` function); this module only builds the parser, runs the chosen command and
turns errors into exit codes: 0 success, 1 a failed check (e.g. ``verify`` found a broken chain),
2 bad usage or input (any :class:`JournalError`; the message names the bad value).
Every subcommand takes ``--json`` for scripts (one JSON document on stdout).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Sequence

from .errors import JournalError

# Order here is the order of `palyra-journal --help`.
COMMAND_MODULES = ("doctor", "journal", "tlog", "memory", "canvas", "cron", "approvals", "bench")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 as well; keep its text
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="palyra-journal",
        description="Tamper-evident event journal, RAG memory, canvas, cron and approvals in one "
                    "SQLite file.",
        epilog="Run `palyra-journal demo` for a tour, `palyra-journal COMMAND --help` for details.",
    )
    from . import __version__
    parser.add_argument("--version", action="version", version=f"palyra-journal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(f"commands.{name}"):
                continue  # a domain not shipped in this build
            raise
        module.register(sub)
    return parser


def _fail(args: argparse.Namespace, message: str, kind: str) -> int:
    """Report a refused command: one line on stderr, or one JSON document with --json; exit 2."""
    if getattr(args, "json", False):
        print(json.dumps({"error": message, "type": kind}))
    else:
        print(f"palyra-journal: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except JournalError as exc:
        return _fail(args, str(exc), type(exc).__name__)
    except json.JSONDecodeError as exc:  # a stored JSON column edited outside palyra-journal
        return _fail(args, f"stored JSON is damaged ({exc}): the file was changed outside "
                     "palyra-journal; `palyra-journal verify DB` checks the journal",
                     "IntegrityError")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
