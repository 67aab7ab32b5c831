"""One exception hierarchy rooted at :class:`JournalError`.

Every error a caller can provoke with bad input is a specific subclass, so callers can catch
exactly what they expect, and every message names the offending field or value. A call that
raises has written nothing: the store runs each public call in one transaction.
"""

from __future__ import annotations


class JournalError(Exception):
    """Base class of every error raised by palyra_journal."""

    #: Set on an ``ingest_jsonl`` error raised after earlier batches were committed: the line to
    #: pass as ``start_line`` (CLI ``--start-line``) to resume after them.
    resume_line: int | None = None


class InvalidPathError(JournalError):
    """A path is refused: the database's (a `..` component, a directory, no database there) or a
    file to read or write (a JSON-lines source, an export destination, a payload file)."""


class InvalidPayloadError(JournalError, ValueError):
    """A payload or field is not acceptable JSON / not of the expected form."""


class PayloadTooLargeError(InvalidPayloadError):
    """The canonical payload is larger than the store's limit."""

    def __init__(self, message: str, size: int = 0, limit: int = 0):
        super().__init__(message)
        self.size = size
        self.limit = limit


class DuplicateIdError(JournalError):
    """An id given by the caller already exists."""


class NotFoundError(JournalError, KeyError):
    """The addressed record does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class VersionConflictError(JournalError):
    """A canvas change named an expected version that is not the current one."""

    def __init__(self, expected: int, current: int, canvas_id: str | None = None):
        where = f" of canvas {canvas_id!r}" if canvas_id else ""
        super().__init__(f"expected_version {expected} but the current version{where} is {current}")
        self.expected = expected
        self.current = current


class InvalidPatchError(JournalError, ValueError):
    """A canvas patch is malformed or cannot be applied; the message names op index and path."""


class InvalidScheduleError(JournalError, ValueError):
    """A cron schedule, timezone or policy is invalid."""


class AlreadyResolvedError(JournalError):
    """An approval was resolved before; decisions are evidence and never change."""


class InvalidStateError(JournalError):
    """A record is not in a state that allows the requested transition (e.g. finalizing a cron run
    that already finished); the message names both states."""


class CanvasClosedError(JournalError):
    """A change was asked of a closed canvas; a closed canvas keeps its history but refuses edits."""


class IntegrityError(JournalError):
    """Stored data no longer matches what rebuilding it gives (e.g. an edited canvas snapshot), or
    the file lost a guard it was created with (the append-only triggers)."""


class ConcurrencyError(JournalError):
    """The write lock could not be taken within busy_timeout, or a state changed underneath."""


class SchemaError(JournalError):
    """The file is not a palyra-journal database this version can open."""


class NotADatabaseError(SchemaError):
    """The file exists but is not a SQLite database (or is damaged beyond SQLite's reading)."""


class NotAJournalError(SchemaError):
    """A SQLite database that is not a palyra-journal one: it holds other tables and none of ours
    (opened without ``adopt=True``), or it is empty and was opened read-only. The file is left
    untouched; ``adopt=True`` (CLI ``--adopt``) adds the journal's tables to it."""


class SchemaTooNewError(SchemaError):
    """The database was written by a newer version of palyra-journal."""


class ReadOnlyError(JournalError):
    """The database file or its directory cannot be written."""


class StorageError(JournalError):
    """SQLite failed in a way no narrower class names (an I/O error, a missing table in a damaged
    file); the message carries SQLite's own text."""


class StorageFullError(JournalError):
    """SQLite reported a full disk or reached its page limit."""


class CorruptVectorError(JournalError):
    """A stored embedding blob has the wrong length for its declared dimensions."""


class BackendUnavailableError(JournalError, ImportError):
    """PALYRA_JOURNAL_BACKEND=native was asked for but the extension is not built."""


class EngineUnavailableError(JournalError, ImportError):
    """A ``postgresql://`` URL was opened but the PostgreSQL driver is not installed (the
    ``palyra-journal[postgres]`` extra: psycopg 3)."""


class IdSpaceExhaustedError(JournalError):
    """No ULID is left after the last one at the largest time (2^48 - 1 ms, the year 10889)."""


class ProofError(JournalError):
    """A Merkle proof, a signed checkpoint or a key that does not verify (docs/verifiable.md);
    the message names what failed."""
