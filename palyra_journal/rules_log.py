"""The redaction rules version of each seq range of the journal (table journal_redaction_rules).

Redaction happens before hashing and stored payloads are never rewritten, so a journal written
over years holds events redacted by several versions of the rules. Each batch of appends records
the version of the rules that redacted it when it differs from the last one recorded; ``ranges``
reads the history back (``doctor DB`` shows it).
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

_LAST = "SELECT rules_version FROM journal_redaction_rules ORDER BY from_seq DESC LIMIT 1"
# An upsert both engines run (SQLite's INSERT OR REPLACE is not PostgreSQL's).
_INSERT = ("INSERT INTO journal_redaction_rules (from_seq, rules_version, recorded_at_unix_ms) "
           "VALUES (?, ?, ?) ON CONFLICT (from_seq) DO UPDATE SET "
           "rules_version = excluded.rules_version, recorded_at_unix_ms = excluded.recorded_at_unix_ms")
_ALL = "SELECT from_seq, rules_version FROM journal_redaction_rules ORDER BY from_seq"


class RulesRange(NamedTuple):
    """Events ``from_seq`` .. ``to_seq`` (None: up to the newest) were redacted by ``version``."""

    from_seq: int
    to_seq: int | None
    version: str


def record(conn: sqlite3.Connection, first_seq: int, version: str, now_ms: int) -> None:
    """Inside the append transaction: note that events from ``first_seq`` on use ``version``."""
    row = conn.execute(_LAST).fetchone()
    if row is None or row[0] != version:
        conn.execute(_INSERT, (first_seq, version, now_ms))


def ranges(conn: sqlite3.Connection) -> list[RulesRange]:
    """The recorded history, oldest first."""
    rows = conn.execute(_ALL).fetchall()
    out = []
    for i, (start, version) in enumerate(rows):
        end = rows[i + 1][0] - 1 if i + 1 < len(rows) else None
        out.append(RulesRange(start, end, version))
    return out
