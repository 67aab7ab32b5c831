"""JournalStore: the one object users hold. Opens the file, sets pragmas, applies migrations, owns
the single writer connection and its transactions, and hands out the domain facades
(``store.memory``, ``store.canvas``, ``store.cron``, ``store.approvals``).

Transactions: every public call that writes runs inside :meth:`JournalStore.write`, one
``BEGIN IMMEDIATE`` transaction (re-entrant: a nested ``write()`` joins the outer one), so a call
that raises has written nothing and concurrent writers in several processes are serialized by
SQLite's lock. SQLite errors raised inside are translated to :class:`JournalError` subclasses.

Domain modules write their audit events with :meth:`JournalStore.record_event` inside the same
``write()`` block as the state change, so the journal's hash chain covers every transition.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any, Callable, Iterator

from . import schema
from .errors import (
    ConcurrencyError, DuplicateIdError, InvalidPathError, JournalError, NotADatabaseError,
    ReadOnlyError, SchemaError, StorageFullError,
)
from .kernels import RedactionRules

_SYNCHRONOUS = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}


def translate_sqlite_error(exc: BaseException, where: str = "") -> BaseException:
    """Map a ``sqlite3`` error to the matching JournalError subclass (others pass through)."""
    if not isinstance(exc, sqlite3.Error):
        return exc
    msg = str(exc)
    low = msg.lower()
    prefix = f"{where}: " if where else ""
    if "database is locked" in low or "database is busy" in low or "database table is locked" in low:
        return ConcurrencyError(f"{prefix}could not get the write lock within busy_timeout ({msg})")
    if "disk is full" in low or "database or disk is full" in low:
        return StorageFullError(f"{prefix}storage is full ({msg}); nothing was written")
    if "readonly" in low or "read-only" in low:
        return ReadOnlyError(f"{prefix}the database is read-only ({msg})")
    if "file is not a database" in low or "not a database" in low or "malformed" in low:
        return NotADatabaseError(f"{prefix}not a SQLite database ({msg})")
    if isinstance(exc, sqlite3.IntegrityError) and "unique" in low:
        return DuplicateIdError(f"{prefix}duplicate id ({msg})")
    return exc


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
        self._closed = False
        self._embedding_provider = embedding_provider
        self._memory = self._canvas = self._cron = self._approvals = None
        from .events import Journal
        self._journal = Journal(self)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: "str | os.PathLike[str]", *, hash_chain: bool = True,
             max_payload_bytes: int = 262_144, embedding_provider: Any = None,
             busy_timeout_ms: int = 5_000, canvas_snapshot_interval: int = 32,
             redaction: RedactionRules | None = None, synchronous: str = "normal",
             read_only: bool = False, clock: Callable[[], int] | None = None,
             **options: Any) -> "JournalStore":
        """Open (creating if needed) the store at ``path``; see API.md "Opening".

        Extra keyword ``options`` are kept for the domain modules (e.g. memory fusion weights).
        ``clock`` (a function returning Unix ms) replaces the wall clock, for tests and simulations.
        """
        text = _check_path(path)
        if not isinstance(max_payload_bytes, int) or max_payload_bytes < 2:
            raise JournalError(f"max_payload_bytes must be an int >= 2, got {max_payload_bytes!r}")
        if not isinstance(busy_timeout_ms, int) or busy_timeout_ms < 0:
            raise JournalError(f"busy_timeout_ms must be an int >= 0, got {busy_timeout_ms!r}")
        if not isinstance(canvas_snapshot_interval, int) or canvas_snapshot_interval < 1:
            raise JournalError(
                f"canvas_snapshot_interval must be an int >= 1, got {canvas_snapshot_interval!r}")
        sync = _SYNCHRONOUS.get(str(synchronous).lower())
        if sync is None:
            raise JournalError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}, got {synchronous!r}")
        rules = RedactionRules.coerce(redaction)
        memory_db = text == ":memory:"
        if read_only and (memory_db or not os.path.exists(text)):
            raise InvalidPathError(f"read_only=True needs an existing database file, got {text!r}")
        if not memory_db and not read_only:
            _make_parents(text)
        try:
            if read_only:
                uri = Path(os.path.abspath(text)).as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                       timeout=busy_timeout_ms / 1000, cached_statements=512)
            else:
                existed = memory_db or os.path.exists(text)
                if not existed:  # create it 0600 before SQLite does, so it is never wider
                    fd = os.open(text, os.O_CREAT | os.O_RDWR, 0o600)
                    os.close(fd)
                conn = sqlite3.connect(text, isolation_level=None, check_same_thread=False,
                                       timeout=busy_timeout_ms / 1000, cached_statements=512)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, text) from exc
        except OSError as exc:
            raise InvalidPathError(f"cannot open {text!r}: {exc.strerror}") from exc
        try:
            conn.execute("PRAGMA schema_version").fetchone()  # reads the header: is it SQLite?
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
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
        except sqlite3.Error as exc:
            conn.close()
            err = translate_sqlite_error(exc, text)
            if isinstance(err, NotADatabaseError):
                err = NotADatabaseError(f"{text!r} is not a SQLite database")
            raise err from exc
        except BaseException:
            conn.close()
            raise
        if not memory_db and not read_only:
            _narrow_mode(text)
        return cls(conn, text, hash_chain=hash_chain, max_payload_bytes=max_payload_bytes,
                   embedding_provider=embedding_provider, busy_timeout_ms=busy_timeout_ms,
                   canvas_snapshot_interval=canvas_snapshot_interval, redaction=rules,
                   clock=clock, read_only=read_only, options=options)

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

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError(f"the store for {self.path!r} is closed")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the store's lock, for reads (no transaction is opened)."""
        with self._lock:
            self._check_open()
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc) from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; commits on success, rolls back on any exception.

        Re-entrant: a nested ``write()`` joins the outer transaction.
        """
        with self._lock:
            self._check_open()
            if self.read_only:
                raise ReadOnlyError(f"the store for {self.path!r} was opened with read_only=True")
            if self._tx_depth:
                self._tx_depth += 1
                try:
                    yield self._conn
                finally:
                    self._tx_depth -= 1
                return
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, self.path) from exc
            self._tx_depth = 1
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.Error):
                    raise translate_sqlite_error(exc, self.path) from exc
                raise
            finally:
                self._tx_depth = 0

    def record_event(self, kind: str, payload: Any, **fields: Any) -> Any:
        """Append one journal event inside the current :meth:`write` transaction (domain audit).

        ``fields`` are :meth:`append`'s keyword arguments (session_id, run_id, actor, principal,
        device_id, channel, timestamp_unix_ms). Returns the EventRecord.
        """
        if not self._tx_depth:
            raise JournalError("record_event must run inside store.write()")
        return self._journal.append(kind, payload, **fields)

    # ------------------------------------------------------------------ the journal
    def append(self, kind: str, payload: Any = None, **fields: Any):
        return self._journal.append(kind, payload, **fields)

    def append_many(self, events):
        return self._journal.append_many(events)

    def ingest_jsonl(self, source, *, batch_size: int = 10_000, progress: bool = False) -> int:
        return self._journal.ingest_jsonl(source, batch_size=batch_size, progress=progress)

    def verify(self, *, from_seq: int = 1, to_seq: int | None = None, expected_head=None,
               progress: bool = False, checkpoint: str | None = None,
               verifier_key: str | None = None):
        return self._journal.verify(from_seq=from_seq, to_seq=to_seq, expected_head=expected_head,
                                    progress=progress, checkpoint=checkpoint,
                                    verifier_key=verifier_key)

    def head(self):
        return self._journal.head()

    def recent(self, limit: int = 100):
        return self._journal.recent(limit)

    def events(self, *, after_seq: int = 0, limit: int = 1000, kind: str | None = None,
               session_id: str | None = None, run_id: str | None = None):
        return self._journal.events(after_seq=after_seq, limit=limit, kind=kind,
                                    session_id=session_id, run_id=run_id)

    def iter_events(self, *, after_seq: int = 0):
        return self._journal.iter_events(after_seq=after_seq)

    def export_jsonl(self, destination, *, after_seq: int = 0) -> int:
        return self._journal.export_jsonl(destination, after_seq=after_seq)

    # ------------------------------------------------------------------ the verifiable journal
    def tree_head(self, size: int | None = None):
        """Root of the Merkle tree of the first ``size`` events (docs/verifiable.md)."""
        from .tlog import log
        return log.tree_head(self, size)

    def inclusion_proof(self, seq: int, size: int | None = None):
        from .tlog import log
        return log.inclusion_proof(self, seq, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list:
        from .tlog import log
        return log.consistency_proof(self, old_size, new_size)

    def sign_checkpoint(self, signer_key: str, origin: str, *, size: int | None = None) -> str:
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
        return tuple(row)  # type: ignore[return-value]

    def vacuum(self) -> None:
        with self.read() as conn:
            conn.execute("VACUUM")

    # ------------------------------------------------------------------ domain facades
    @property
    def embedding_provider(self):
        if self._embedding_provider is None:
            from .memory.embeddings import HashEmbeddingProvider
            self._embedding_provider = HashEmbeddingProvider(dimensions=64)
        return self._embedding_provider

    @property
    def memory(self):
        if self._memory is None:
            from .memory import MemoryStore
            self._memory = MemoryStore(self)
        return self._memory

    @property
    def canvas(self):
        if self._canvas is None:
            from .canvas import CanvasStore
            self._canvas = CanvasStore(self)
        return self._canvas

    @property
    def cron(self):
        if self._cron is None:
            from .cron import CronStore
            self._cron = CronStore(self)
        return self._cron

    @property
    def approvals(self):
        if self._approvals is None:
            from .approvals import ApprovalStore
            self._approvals = ApprovalStore(self)
        return self._approvals
