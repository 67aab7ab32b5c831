"""JournalStore: the one object users hold. Opens the file, sets pragmas, applies migrations, owns
the single writer connection and its transactions, and hands out the domain facades
(``store.memory``, ``store.canvas``, ``store.cron``, ``store.approvals``).

Transactions: every public call that writes runs inside :meth:`JournalStore.write`, one
``BEGIN IMMEDIATE`` transaction (re-entrant: a nested ``write()`` joins the outer one), so a call
that raises has written nothing and concurrent writers in several processes are serialized by
SQLite's lock. SQLite errors raised inside are translated to :class:`JournalError` subclasses.

Domain modules use only the public surface: ``write()`` (the transaction), ``in_transaction``,
``on_commit`` (work to do once the outermost transaction committed, e.g. an in-memory index
update) and :meth:`JournalStore.record_events`, the one audit path: every domain event is
appended by it inside the same ``write()`` block as the state change, so the journal's hash chain
covers every transition.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from . import schema
from .errors import (
    IntegrityError, InvalidPathError, InvalidPayloadError,
    JournalError, NotADatabaseError, NotAJournalError, ReadOnlyError, SchemaError,
)
from .kernels import RedactionRules
from .sqlite_errors import translate_sqlite_error

if TYPE_CHECKING:
    from .approvals import ApprovalStore
    from .canvas import CanvasStore
    from .cron import CronStore
    from .events import ChainHead, EventRecord, Journal, VerifyReport
    from .memory import MemoryStore
    from .tlog.log import InclusionProof, TreeHead

_SYNCHRONOUS = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}


def _check_path(path: "str | os.PathLike[str]") -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidPathError(f"path must be str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if isinstance(text, bytes):
        raise InvalidPathError(f"path must be text, got bytes {text!r}")
    if text == ":memory:":
        return text
    if not text or "\x00" in text:
        raise InvalidPathError(f"invalid database path {text!r}")
    if ".." in PurePath(text).parts:
        raise InvalidPathError(f"database path {text!r} contains a '..' component")
    if os.path.isdir(text):
        raise InvalidPathError(f"database path {text!r} is a directory")
    return text


def _make_parents(path: str) -> None:
    """Create the missing parent directories of ``path``, each with mode 0700."""
    parent = Path(path).parent
    missing = []
    p = parent
    try:
        while not p.exists():
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
    except OSError as exc:  # a directory on the way cannot be entered
        raise InvalidPathError(f"cannot reach directory {str(p)!r}: {exc.strerror}") from exc
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise InvalidPathError(f"cannot create directory {str(d)!r}: {exc.strerror}") from exc
        os.chmod(d, 0o700)


def _narrow_mode(path: str) -> None:
    """Files holding the journal are readable by their owner only (0600 at most)."""
    for suffix in ("", "-wal", "-shm"):
        p = path + suffix
        try:
            mode = stat.S_IMODE(os.stat(p).st_mode)
        except FileNotFoundError:
            continue
        if mode & ~0o600:
            try:
                os.chmod(p, mode & 0o600)
            except PermissionError:
                pass


def _connect(text: str, *, read_only: bool, memory_db: bool, timeout: float,
             immutable: bool = False) -> sqlite3.Connection:
    """The connection: ``mode=ro`` when read-only (SQLite then creates nothing), else read-write,
    creating the file 0600 (and its directories 0700) before SQLite does, so it is never wider."""
    try:
        if read_only:
            uri = Path(os.path.abspath(text)).as_uri() + "?mode=ro" + ("&immutable=1" if immutable
                                                                       else "")
            return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                   timeout=timeout, cached_statements=512)
        if not memory_db:
            _make_parents(text)
            if not os.path.exists(text):
                fd = os.open(text, os.O_CREAT | os.O_RDWR, 0o600)
                os.close(fd)
        return sqlite3.connect(text, isolation_level=None, check_same_thread=False,
                               timeout=timeout, cached_statements=512)
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, text) from exc
    except PermissionError as exc:
        raise ReadOnlyError(f"cannot create {text!r}: {exc.strerror}") from exc
    except OSError as exc:
        raise InvalidPathError(f"cannot open {text!r}: {exc.strerror}") from exc


def _damaged_json(path: str, exc: json.JSONDecodeError) -> IntegrityError:
    """Every JSON column is written by the store as canonical JSON: one that no longer parses was
    changed outside palyra-journal."""
    return IntegrityError(f"{path!r}: a stored JSON value is damaged ({exc}); the file was "
                          "changed outside palyra-journal")


def _sidecars_exist(path: str) -> bool:
    return os.path.exists(path + "-wal") or os.path.exists(path + "-shm")


def _remove_sidecars(path: str) -> None:
    """Let SQLite remove the -wal/-shm files a read-only connection had to create (a read-only
    connection cannot, so the file would be left with two new files beside it): the last
    connection to close removes them, and with an empty WAL the database file is not written.
    When another process still has the file open, SQLite keeps them for it."""
    if not _sidecars_exist(path):
        return
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        pass


def _check_identity(conn: sqlite3.Connection, text: str, *, read_only: bool, adopt: bool) -> None:
    """Refuse, before anything is written, a file that is not ours (see :func:`schema.identify`)."""
    kind = schema.identify(conn)
    if kind == schema.OURS:
        return
    if kind == schema.EMPTY:
        if read_only:
            raise NotAJournalError(f"{text!r} is an empty database, not a palyra-journal one "
                                   "(nothing to read)")
        return  # a new or empty file is initialized
    tables = schema.user_tables(conn)
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    if read_only:
        raise NotAJournalError(f"{text!r} is a SQLite database of another application (tables "
                               f"{shown}), not a palyra-journal one")
    if not adopt:
        raise NotAJournalError(
            f"{text!r} is a SQLite database of another application (tables {shown}), not a "
            "palyra-journal one; it was left untouched. To add the journal's tables to it, open "
            "it with adopt=True (CLI: --adopt)")


class JournalStore:
    """One SQLite file: journal, memory, canvas, cron and approvals. Use :meth:`open`."""

    def __init__(self, conn: sqlite3.Connection, path: str, *, hash_chain: bool,
                 max_payload_bytes: int, embedding_provider: Any, busy_timeout_ms: int,
                 canvas_snapshot_interval: int, redaction: RedactionRules,
                 clock: Callable[[], int] | None, read_only: bool, options: dict[str, Any]):
        self._conn = conn
        self.path = path
        self.hash_chain = hash_chain
        self.max_payload_bytes = max_payload_bytes
        self.busy_timeout_ms = busy_timeout_ms
        self.canvas_snapshot_interval = canvas_snapshot_interval
        self.redaction = redaction
        self.read_only = read_only
        self.options = options
        self._clock = clock
        self._lock = threading.RLock()
        self._tx_depth = 0
        self._on_commit: list[Callable[[], None]] = []
        self._closed = False
        self._sidecars_to_clean = False
        self._embedding_provider = embedding_provider
        self._memory: MemoryStore | None = None
        self._canvas: CanvasStore | None = None
        self._cron: CronStore | None = None
        self._approvals: ApprovalStore | None = None
        from .events import Journal
        self._journal = Journal(self)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: "str | os.PathLike[str]", *, hash_chain: bool = True,
             max_payload_bytes: int = 262_144, embedding_provider: Any = None,
             busy_timeout_ms: int = 5_000, canvas_snapshot_interval: int = 32,
             redaction: RedactionRules | None = None, synchronous: str = "normal",
             read_only: bool = False, adopt: bool = False,
             clock: Callable[[], int] | None = None, **options: Any) -> "JournalStore":
        """Open the store at ``path``, creating it (and its missing directories) when writing.

        ``read_only=True`` never creates a directory, a file or a table: the file must already be
        a palyra-journal database (else :class:`InvalidPathError` "no database at ...", or
        :class:`NotAJournalError`). When writing, a missing or empty file is initialized, and a
        SQLite database of another application (tables, none of ours) is refused with
        :class:`NotAJournalError`, untouched, unless ``adopt=True`` adds the journal's tables to it
        (embedding the store in an application's own database; see docs/api.md "Opening").
        A file whose append-only triggers were dropped is refused for writing
        (:class:`IntegrityError`); it can still be opened read-only and verified.

        Extra keyword ``options`` are kept for the domain modules (e.g. memory fusion weights).
        ``clock`` (a function returning Unix ms) replaces the wall clock, for tests and simulations.
        """
        text = _check_path(path)
        if not isinstance(max_payload_bytes, int) or max_payload_bytes < 2:
            raise InvalidPayloadError(
                f"max_payload_bytes must be an int >= 2, got {max_payload_bytes!r}")
        if not isinstance(busy_timeout_ms, int) or busy_timeout_ms < 0:
            raise InvalidPayloadError(f"busy_timeout_ms must be an int >= 0, got {busy_timeout_ms!r}")
        if not isinstance(canvas_snapshot_interval, int) or canvas_snapshot_interval < 1:
            raise InvalidPayloadError(
                f"canvas_snapshot_interval must be an int >= 1, got {canvas_snapshot_interval!r}")
        sync = _SYNCHRONOUS.get(str(synchronous).lower())
        if sync is None:
            raise InvalidPayloadError(
                f"synchronous must be one of {sorted(_SYNCHRONOUS)}, got {synchronous!r}")
        rules = RedactionRules.coerce(redaction)
        memory_db = text == ":memory:"
        if read_only and memory_db:
            raise InvalidPathError("read_only=True needs a database file, got ':memory:'")
        if read_only and not os.path.exists(text):
            raise InvalidPathError(f"no database at {text!r}")
        had_sidecars = not memory_db and _sidecars_exist(text)
        conn = _connect(text, read_only=read_only, memory_db=memory_db,
                        timeout=busy_timeout_ms / 1000)
        try:
            try:
                conn.execute("PRAGMA schema_version").fetchone()  # reads the header: is it SQLite?
            except sqlite3.OperationalError as exc:
                # A WAL file in a directory we cannot write: SQLite cannot make the -shm file a
                # reader needs. With no -wal file no writer has it open, so it is read as
                # immutable: this store sees the file as it was when opened.
                if not (read_only and "readonly" in str(exc).lower()
                        and not os.path.exists(text + "-wal")):
                    raise
                conn.close()
                conn = _connect(text, read_only=True, memory_db=False,
                                timeout=busy_timeout_ms / 1000, immutable=True)
                conn.execute("PRAGMA schema_version").fetchone()
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _check_identity(conn, text, read_only=read_only, adopt=adopt)
            if not memory_db and not read_only:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise SchemaError(f"{text}: could not switch to WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {sync}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA mmap_size = 268435456")
            if read_only:
                schema.check_not_newer(conn, text)
            else:
                schema.migrate(conn, text)
                missing = schema.missing_guards(conn)
                if missing:
                    raise IntegrityError(
                        f"{text!r}: the append-only triggers {', '.join(missing)} are missing "
                        "(dropped outside palyra-journal), so stored rows could be rewritten; "
                        "refusing to write. Open it read-only to verify or export it, and restore "
                        "the file from a backup")
        except sqlite3.Error as exc:
            conn.close()
            if read_only and not had_sidecars:
                _remove_sidecars(text)
            err = translate_sqlite_error(exc, text)
            if isinstance(err, NotADatabaseError):
                err = NotADatabaseError(f"{text!r} is not a SQLite database")
            raise err from exc
        except BaseException:
            conn.close()
            if read_only and not had_sidecars:
                _remove_sidecars(text)
            raise
        if not memory_db and not read_only:
            _narrow_mode(text)
        store = cls(conn, text, hash_chain=hash_chain, max_payload_bytes=max_payload_bytes,
                   embedding_provider=embedding_provider, busy_timeout_ms=busy_timeout_ms,
                   canvas_snapshot_interval=canvas_snapshot_interval, redaction=rules,
                   clock=clock, read_only=read_only, options=options)
        store._sidecars_to_clean = read_only and not had_sidecars
        return store

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for facade in (self._memory, self._canvas, self._cron, self._approvals):
                closer = getattr(facade, "_close", None)
                if closer is not None:
                    closer()
            self._conn.close()
            if self._sidecars_to_clean:
                _remove_sidecars(self.path)

    def __enter__(self) -> "JournalStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JournalStore({self.path!r}{', closed' if self._closed else ''})"

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ plumbing for the domains
    def now_ms(self) -> int:
        """The store clock in Unix ms (the ``clock`` given to :meth:`open`, else the wall clock)."""
        if self._clock is not None:
            return int(self._clock())
        return time.time_ns() // 1_000_000

    def check_open(self) -> None:
        """Raise :class:`JournalError` when the store was closed."""
        if self._closed:
            raise JournalError(f"the store for {self.path!r} is closed")

    _check_open = check_open

    @property
    def in_transaction(self) -> bool:
        """True inside a :meth:`write` block (of the calling thread, which holds the store lock)."""
        return self._tx_depth > 0

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` once the outermost :meth:`write` transaction committed, still under the
        store lock; dropped if it rolls back. Domains keep in-memory state (memory's vector
        index) in step with the file this way."""
        if not self._tx_depth:
            raise JournalError("on_commit must be called inside store.write()")
        self._on_commit.append(fn)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the store's lock, for reads (no transaction is opened)."""
        with self._lock:
            self._check_open()
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, self.path) from exc
            except json.JSONDecodeError as exc:  # what a read parses was stored by us as JSON
                raise _damaged_json(self.path, exc) from None

    def write(self) -> "_Transaction":
        """One ``BEGIN IMMEDIATE`` transaction; commits on success, rolls back on any exception.

        Re-entrant: a nested ``write()`` joins the outer transaction.
        """
        return _Transaction(self)

    def record_events(self, batch: Iterable[dict[str, Any]]) -> "list[EventRecord]":
        """Append domain audit events inside the current :meth:`write` transaction: the one way
        a domain writes to the journal (docs/fields.md "One audit path").

        ``batch`` holds dicts with :meth:`append`'s keys (kind, payload, actor, session_id,
        run_id, principal, device_id, channel, timestamp_unix_ms); they are validated, redacted,
        chained and inserted as one ``append_many``. Returns the EventRecords.
        """
        if not self._tx_depth:
            raise JournalError("record_events must run inside store.write(), with the state "
                               "change it records")
        return self._journal.record(batch if type(batch) is list else list(batch))

    @property
    def journal(self) -> "Journal":
        """The :class:`~palyra_journal.events.Journal` of this store (queries for the domains)."""
        return self._journal

    # ------------------------------------------------------------------ the journal
    def append(self, kind: str, payload: Any = None, **fields: Any) -> "EventRecord":
        return self._journal.append(kind, payload, **fields)

    def append_many(self, events: Iterable[dict[str, Any]]) -> "list[EventRecord]":
        return self._journal.append_many(events)

    def ingest_jsonl(self, source: Any, *, batch_size: int = 10_000, progress: bool = False,
                     start_line: int = 1, on_duplicate: str = "error") -> int:
        return self._journal.ingest_jsonl(source, batch_size=batch_size, progress=progress,
                                          start_line=start_line, on_duplicate=on_duplicate)

    def verify(self, *, from_seq: int = 1, to_seq: int | None = None, expected_head: Any = None,
               progress: bool = False, checkpoint: str | None = None,
               verifier_key: str | None = None) -> "VerifyReport":
        return self._journal.verify(from_seq=from_seq, to_seq=to_seq, expected_head=expected_head,
                                    progress=progress, checkpoint=checkpoint,
                                    verifier_key=verifier_key)

    def head(self) -> "ChainHead | None":
        return self._journal.head()

    def recent(self, limit: int = 100) -> "list[EventRecord]":
        return self._journal.recent(limit)

    def events(self, *, after_seq: int = 0, limit: int = 1000, kind: str | None = None,
               session_id: str | None = None, run_id: str | None = None) -> "list[EventRecord]":
        return self._journal.events(after_seq=after_seq, limit=limit, kind=kind,
                                    session_id=session_id, run_id=run_id)

    def iter_events(self, *, after_seq: int = 0) -> "Iterator[EventRecord]":
        return self._journal.iter_events(after_seq=after_seq)

    def export_jsonl(self, destination: Any, *, after_seq: int = 0) -> int:
        return self._journal.export_jsonl(destination, after_seq=after_seq)

    # ------------------------------------------------------------------ the verifiable journal
    def tree_head(self, size: int | None = None) -> "TreeHead":
        """Root of the Merkle tree of the first ``size`` events (docs/verifiable.md)."""
        from .tlog import log
        return log.tree_head(self, size)

    def inclusion_proof(self, seq: int, size: int | None = None) -> "InclusionProof":
        """The RFC 9162 inclusion proof of event ``seq`` in the tree of ``size`` events."""
        from .tlog import log
        return log.inclusion_proof(self, seq, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 9162 proof that the tree of ``old_size`` events is a prefix of ``new_size``'s."""
        from .tlog import log
        return log.consistency_proof(self, old_size, new_size)

    def sign_checkpoint(self, signer_key: str, origin: str, *, size: int | None = None) -> str:
        """A C2SP signed checkpoint (note text) of the tree, signed with ``signer_key``."""
        from .tlog import log
        return log.sign_checkpoint(self, signer_key, origin, size=size)

    # ------------------------------------------------------------------ maintenance
    def checkpoint(self, mode: str = "passive") -> tuple[int, int, int]:
        """``PRAGMA wal_checkpoint(MODE)``; returns (busy, wal_frames, checkpointed_frames)."""
        modes = ("passive", "full", "restart", "truncate")
        if mode not in modes:
            raise JournalError(f"checkpoint mode must be one of {modes}, got {mode!r}")
        with self.read() as conn:
            row = conn.execute(f"PRAGMA wal_checkpoint({mode.upper()})").fetchone()
        busy, log, checkpointed = row
        return int(busy), int(log), int(checkpointed)

    def vacuum(self) -> None:
        with self.read() as conn:
            conn.execute("VACUUM")

    # ------------------------------------------------------------------ domain facades
    @property
    def embedding_provider(self) -> Any:
        if self._embedding_provider is None:
            from .memory.embeddings import HashEmbeddingProvider
            self._embedding_provider = HashEmbeddingProvider(dimensions=64)
        return self._embedding_provider

    @property
    def memory(self) -> "MemoryStore":
        if self._memory is None:
            from .memory import MemoryStore
            self._memory = MemoryStore(self)
        return self._memory

    @property
    def canvas(self) -> "CanvasStore":
        if self._canvas is None:
            from .canvas import CanvasStore
            self._canvas = CanvasStore(self)
        return self._canvas

    @property
    def cron(self) -> "CronStore":
        if self._cron is None:
            from .cron import CronStore
            self._cron = CronStore(self)
        return self._cron

    @property
    def approvals(self) -> "ApprovalStore":
        if self._approvals is None:
            from .approvals import ApprovalStore
            self._approvals = ApprovalStore(self)
        return self._approvals



class _Transaction:
    """The context manager of :meth:`JournalStore.write`, as a class: ``append`` opens one per
    event, and a generator-based one costs several times the few attribute reads this does.

    Entering takes the store lock (held until exit) and, outermost, runs ``BEGIN IMMEDIATE``;
    a nested one joins. The outermost exit commits, or on any exception rolls back and raises it
    (an SQLite error translated, a JSON error of stored text as damage), then runs the
    ``on_commit`` callbacks after a commit, still under the lock."""

    __slots__ = ("_store", "_outer")

    def __init__(self, store: JournalStore):
        self._store = store
        self._outer = False

    def __enter__(self) -> sqlite3.Connection:
        store = self._store
        store._lock.acquire()
        try:
            store._check_open()
            if store.read_only:
                raise ReadOnlyError(f"the store for {store.path!r} was opened with read_only=True")
            conn = store._conn
            if store._tx_depth:
                store._tx_depth += 1
                return conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, store.path) from exc
        except BaseException:
            store._lock.release()
            raise
        store._tx_depth = 1
        store._on_commit = []
        self._outer = True
        return conn

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        store = self._store
        try:
            if not self._outer:
                store._tx_depth -= 1
                return
            conn = store._conn
            try:
                if exc is None:
                    try:
                        conn.execute("COMMIT")
                    except BaseException as commit_exc:
                        exc = commit_exc
                if exc is not None:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                    if isinstance(exc, sqlite3.Error):
                        raise translate_sqlite_error(exc, store.path) from exc
                    if isinstance(exc, json.JSONDecodeError):
                        raise _damaged_json(store.path, exc) from None
                    if exc_type is None:  # COMMIT itself failed without an SQLite error
                        raise exc
                    return
            finally:
                store._tx_depth = 0
                done, store._on_commit = store._on_commit, []
            for fn in done:  # reached only after COMMIT
                fn()
        finally:
            store._lock.release()
