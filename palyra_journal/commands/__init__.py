"""Subcommands of the ``palyra-journal`` CLI, one module per domain (see ``cli.py``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable


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


def open_store(path: str, **kwargs: Any):
    from ..store import JournalStore
    return JournalStore.open(path, **kwargs)
