"""The numbered migrations: ``NNNN_name.sql`` here for SQLite, their PostgreSQL twins (the same
numbers and names) in ``postgresql/``. :func:`load` reads one directory."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: A guard: a trigger that refuses an UPDATE or DELETE (append-only tables, final decisions).
_GUARD = re.compile(r"CREATE\s+TRIGGER\s+(\w+)\s+BEFORE\s+(?:UPDATE|DELETE)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """Split the script into statements (triggers keep their inner semicolons)."""
        out, buf = [], ""
        for line in self.sql.splitlines(keepends=True):
            if not buf and (not line.strip() or line.lstrip().startswith("--")):
                continue
            buf += line
            if sqlite3.complete_statement(buf):
                out.append(buf.strip())
                buf = ""
        if buf.strip():
            raise ValueError(f"migration {self.version:04d}_{self.name}: incomplete statement at end")
        return out

    def guards(self) -> tuple[str, ...]:
        """The names of the BEFORE UPDATE/DELETE triggers this migration creates."""
        return tuple(_GUARD.findall(self.sql))


def load(package: str = "palyra_journal.migrations") -> tuple[Migration, ...]:
    """The numbered migrations shipped in ``package`` (each engine has its own directory)."""
    found = []
    for entry in resources.files(package).iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return tuple(found)
