"""The interface every engine implements: the named differences the domains ask for.

One instance per engine (a :class:`Dialect` holds no connection); a store connection carries it as
``conn.dialect``. Every method takes the store connection it works on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..schema import Migration


class Dialect:
    """What differs between the engines, by name (see the engine modules for each answer)."""

    #: ``"sqlite"`` or ``"postgresql"`` (``store.engine``).
    name: str = ""
    #: The driver's exception classes, translated to JournalError subclasses at the store boundary.
    error_types: tuple[type[BaseException], ...] = ()

    # ------------------------------------------------------------------ errors
    def translate_error(self, exc: BaseException, where: str = "") -> BaseException:
        """The JournalError subclass for a driver error (other exceptions pass through)."""
        raise NotImplementedError

    def duplicate_value(self, exc: BaseException) -> str | None:
        """The key value a unique violation names, when the engine's error carries it."""
        return None

    # ------------------------------------------------------------------ transactions
    def begin_write(self, conn: Any) -> None:
        """Start the one write transaction: writers of every process are serialized from here."""
        raise NotImplementedError

    def begin_read(self, conn: Any) -> None:
        """Start a read transaction: one snapshot for several statements."""
        conn.execute("BEGIN")

    def commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        conn.execute("ROLLBACK")

    # ------------------------------------------------------------------ schema
    #: ``CREATE TABLE IF NOT EXISTS schema_migrations`` (version, name, applied_at_unix_ms).
    migrations_table: str = ""

    def migrations(self) -> "tuple[Migration, ...]":
        """The numbered migrations in this engine's DDL (the same numbers and names)."""
        raise NotImplementedError

    def begin_migration(self, conn: Any) -> None:
        """Open the transaction of one migration, exclusive among every process opening the
        store at the same time."""
        raise NotImplementedError

    def run_migration(self, conn: Any, migration: "Migration") -> None:
        """Execute a migration's statements inside :meth:`begin_migration`'s transaction."""
        raise NotImplementedError

    def user_tables(self, conn: Any) -> list[str]:
        """The store's tables and views, the engine's internal ones left out, sorted."""
        raise NotImplementedError

    def table_columns(self, conn: Any, table: str) -> set[str]:
        raise NotImplementedError

    def trigger_names(self, conn: Any) -> set[str]:
        raise NotImplementedError

    # ------------------------------------------------------------------ queries
    #: Appended to the query that picks due cron jobs to claim: the row locks of a claim.
    claim_lock: str = ""

    def wal_checkpoint(self, conn: Any, mode: str) -> tuple[int, int, int]:
        """``store.checkpoint``: (busy, wal_frames, checkpointed_frames)."""
        raise NotImplementedError

    def vacuum(self, conn: Any) -> None:
        """``store.vacuum``: give the store's free space back (outside a transaction)."""
        raise NotImplementedError

    def stored_bytes(self, conn: Any) -> int:
        """The bytes the store's tables and indexes take (``vacuum`` reports it before and
        after)."""
        raise NotImplementedError

    def json_field_equals(self, column: str, key: str, value: Any) -> tuple[str, tuple[Any, ...]]:
        """A condition ``column``'s JSON object holds ``key: value`` (SQL and its parameters)."""
        raise NotImplementedError

    def text_bytes(self, expr: str) -> str:
        """The length in UTF-8 bytes of a text expression."""
        raise NotImplementedError

    def json_array_has(self, column: str) -> str:
        """A condition: ``column``'s JSON array holds the (one ``?``) string parameter."""
        raise NotImplementedError

    def fts_match(self, terms: list[str]) -> str | None:
        """The full-text query parameter for search terms (None: nothing to search for)."""
        raise NotImplementedError

    def lexical_sql(self, where: str) -> str:
        """``(memory_id, score, created_at_unix_ms)`` of the best rows matching the
        :meth:`fts_match` parameter (the first ``?``) within ``where`` (its parameters next),
        best first, ties by memory_id, ``LIMIT ?`` last."""
        raise NotImplementedError

    #: True when the store is a local file beside which derived files (the memory vector
    #: snapshot ``<db>-vectors``) can be kept.
    local_files: bool = False

    def data_version(self, conn: Any) -> int | None:
        """A number that changes when another connection committed (None: not known, read the
        memory generation row instead)."""
        return None
