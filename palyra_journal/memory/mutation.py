"""The memory mutation protocol, written once: one transaction, its audit events, the index update.

Every memory write (ingest, update, delete, purge, maintain, reembed) runs as::

    with mem._mutation() as m:          # store.write(): one BEGIN IMMEDIATE transaction
        m.conn.execute(...)             # the table changes
        m.index(lambda idx: ...)        # how the in-memory vector index follows them
        m.event("memory.deleted", {...}, principal=...)   # the audit trail (never the content)

On leaving the block the ``memory_generation`` counter is bumped (other connections see that
memory changed), the events are appended with ``store.record_events`` in the same transaction, and
the index changes are registered with ``store.on_commit``: they run only after the outermost
transaction committed, and only when the index was current just before this change (otherwise it
is dropped and reloaded on the next search), so a rollback can never leave it out of step.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

if TYPE_CHECKING:
    from .index import VectorIndex
    from .store import MemoryStore

IndexChange = Callable[["VectorIndex"], None]


def generation(conn: sqlite3.Connection) -> int:
    """The ``memory_generation`` counter (bumped by every memory change of any connection)."""
    return int(conn.execute("SELECT generation FROM memory_generation WHERE id = 1").fetchone()[0])


def _bump(conn: sqlite3.Connection, gen0: int) -> int:
    conn.execute("UPDATE memory_generation SET generation = ? WHERE id = 1", (gen0 + 1,))
    return gen0 + 1


def delete_items(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Inside a mutation: delete these items' vectors and rows (FTS follows by trigger)."""
    pairs = [(mid,) for mid in ids]
    conn.executemany("DELETE FROM memory_vectors WHERE memory_id = ?", pairs)
    conn.executemany("DELETE FROM memory_items WHERE memory_id = ?", pairs)


def ids_sha256(ids: Sequence[str]) -> str:
    """What an event records of a set of ids too large for a payload: SHA-256 of the ids joined
    by newlines, in the order they were changed."""
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


class Mutation:
    """One memory write in progress: its connection, index changes and audit events."""

    __slots__ = ("conn", "changes", "events")

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.changes: list[IndexChange] = []
        self.events: list[dict[str, Any]] = []

    def index(self, change: IndexChange) -> None:
        """Replay ``change(index)`` on the loaded vector index after the commit."""
        self.changes.append(change)

    def event(self, kind: str, payload: dict[str, Any], *, principal: str | None = None,
              channel: str | None = None, session_id: str | None = None,
              timestamp_unix_ms: int | None = None) -> None:
        """Record a ``memory.*`` journal event in this transaction (ids, counts, scope, hashes)."""
        self.events.append({"kind": kind, "payload": payload, "actor": "system",
                            "principal": principal, "channel": channel, "session_id": session_id,
                            "timestamp_unix_ms": timestamp_unix_ms})


@contextmanager
def mutation(mem: "MemoryStore") -> Iterator[Mutation]:
    """The protocol of the module docstring, for :meth:`MemoryStore._mutation`."""
    store = mem._store
    with store.write() as conn:
        gen0 = generation(conn)
        m = Mutation(conn)
        yield m
        gen1 = _bump(conn, gen0)
        if m.events:
            store.record_events(m.events)
        changes = m.changes
        if changes:
            store.on_commit(lambda: mem._apply(gen0, gen1, changes))
