"""The event journal (docs/journal.md): append, append_many, ingest of JSON lines, verify, queries, export.

Every append runs in one ``BEGIN IMMEDIATE`` transaction (``store.write()``, which joins an
enclosing one), reads the chain head *inside* it, and hashes the new rows with one
``kernels.chain_hashes`` call per batch, so concurrent writers in several processes can never fork
the chain and a failed call writes nothing.

Speed matters here (benchmarks/README.md sections 1 and 2), so the batch paths work column by column:
each envelope field becomes one list built by a comprehension and validated with C-level
builtins (``set(map(type, col))``, one ``join().encode()`` per column for lone surrogates), ULIDs
are made in one call, the chain in one kernel call, the insert in one ``executemany``. Records are
tuple subclasses built straight from the inserted or selected row (see :class:`EventRecord`).
"""

from __future__ import annotations

import gc
import io
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any, BinaryIO, Callable, Iterable, Iterator, NamedTuple, Sequence

from . import kernels, rules_log, schema
from .errors import (
    DuplicateIdError, IntegrityError, InvalidPathError, InvalidPayloadError, JournalError, PayloadTooLargeError,
)
from .fields import (
    MAX_ID_CHARS, MAX_SAFE_INT, bad_char_at, check_int, check_text, check_texts, clamp_limit,
)
from .ids import new_ulid, new_ulids
from .progress import Progress
from .engines import dialect_of, is_unique_violation
from .tlog.log import TreeCheck
from .tlog.tiles import TILE_WIDTH, TailLeaves, batch_leaf_count, record_leaves

GENESIS_HASH = kernels.GENESIS_HASH

#: The keys an ``append_many`` dict or an ingested line may carry (``append``'s arguments).
EVENT_KEYS = frozenset(kernels.EVENT_LINE_KEYS)
#: Keys written by ``export_jsonl`` that ``ingest_jsonl`` ignores, so an export can be re-ingested.
EXPORT_ONLY_KEYS = frozenset(kernels.EVENT_LINE_IGNORED_KEYS)
#: Optional text fields of the envelope (None or str).
OPTIONAL_FIELDS = ("session_id", "run_id", "principal", "device_id", "channel")

COLUMNS = ("seq", "event_id", "kind", "actor", "session_id", "run_id", "principal", "device_id",
           "channel", "timestamp_unix_ms", "payload_json", "redacted", "hash", "prev_hash",
           "created_at_unix_ms")
_COLS = ", ".join(COLUMNS)
_INSERT = f"INSERT INTO journal_events ({_COLS}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SELECT = f"SELECT {_COLS} FROM journal_events"
#: One batch of verify: the rows of a window of at most VERIFY_BATCH seqs (a PostgreSQL client
#: cursor would hold a whole range's result in memory). The window is bounded at both ends: with
#: ``seq > ? ... LIMIT ?`` the planner (before ANALYZE) sorted the whole rest of the range for
#: every batch, 2.4x slower than one query (measured, 200 000 events).
_VERIFY_SELECT = (f"SELECT {', '.join(kernels.VERIFY_FIELDS)} FROM journal_events "
                  "WHERE seq > ? AND seq <= ? ORDER BY seq")
_TAIL = "SELECT seq, hash FROM journal_events ORDER BY seq DESC LIMIT 1"

#: seq & _TILE_MASK is 0 for the row that completes a Merkle tile.
_TILE_MASK = TILE_WIDTH - 1
VERIFY_BATCH = 20_000
PAGE = 1_000

_new_tuple = tuple.__new__
_loads = kernels.loads_canonical  # stored canonical text: large integral doubles read as floats


# ---------------------------------------------------------------------------------------- records
class EventRecord(tuple):
    """One journal event, as stored (docs/api.md attribute names; ``to_dict()``).

    A frozen record built as a tuple subclass rather than a dataclass: building one from a row
    costs ~0.16 µs instead of ~2.5 µs for a 15-field frozen dataclass, which matters when
    ``append_many`` returns hundreds of thousands of them. ``payload`` parses ``payload_json`` on
    each access (records are cheap to make; parse only what is read).
    """

    __slots__ = ()
    _fields = COLUMNS

    def __new__(cls, seq: int, event_id: str, kind: str, actor: str, session_id: str | None,
                run_id: str | None, principal: str | None, device_id: str | None,
                channel: str | None, timestamp_unix_ms: int, payload_json: str, redacted: bool,
                hash: str | None, prev_hash: str | None, created_at_unix_ms: int) -> "EventRecord":
        return _new_tuple(cls, (seq, event_id, kind, actor, session_id, run_id, principal,
                                device_id, channel, timestamp_unix_ms, payload_json,
                                bool(redacted), hash, prev_hash, created_at_unix_ms))

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> "EventRecord":
        """A record from a row in :data:`COLUMNS` order (no validation: rows come from the table)."""
        return _new_tuple(cls, row)

    seq = property(itemgetter(0), doc="position in the chain: 1, 2, 3, ...")
    event_id = property(itemgetter(1))
    kind = property(itemgetter(2))
    actor = property(itemgetter(3))
    session_id = property(itemgetter(4))
    run_id = property(itemgetter(5))
    principal = property(itemgetter(6))
    device_id = property(itemgetter(7))
    channel = property(itemgetter(8))
    timestamp_unix_ms = property(itemgetter(9))
    payload_json = property(itemgetter(10), doc="the canonical (RFC 8785) text as stored")
    hash = property(itemgetter(12))
    prev_hash = property(itemgetter(13))
    created_at_unix_ms = property(itemgetter(14))

    @property
    def redacted(self) -> bool:
        """True when redaction changed the payload."""
        return bool(self[11])

    @property
    def payload(self) -> Any:
        """The stored (redacted) payload as Python objects, parsed from ``payload_json``."""
        try:
            return _loads(self[10])
        except (ValueError, TypeError, RecursionError) as exc:  # edited behind the store's back
            raise IntegrityError(f"seq {self[0]}: the stored payload_json is not JSON ({exc}); "
                                 "the file was changed outside palyra-journal") from None

    def to_dict(self) -> dict[str, Any]:
        d = dict(zip(COLUMNS, self))
        d["redacted"] = bool(self[11])
        d["payload"] = self.payload
        return d

    def __getnewargs__(self) -> tuple:  # pickle/copy call __new__ with the fields
        return tuple(self)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={bool(value) if name == 'redacted' else value!r}"
                          for name, value in zip(COLUMNS, self))
        return f"EventRecord({inner})"


class ChainHead(NamedTuple):
    """The last event's position and hash: a checkpoint to keep elsewhere."""

    seq: int
    hash: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of :meth:`Journal.verify`: ``ok``, or the first bad seq and why.

    ``missing_triggers`` names the append-only triggers the file lost (reason
    ``triggers_missing`` when the chain itself verifies: rows can be rewritten from now on).
    For ``head_mismatch``, ``expected_hash`` is the checkpoint's and ``actual_hash`` what the
    journal holds at that seq (None when it has no such row).
    """

    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    head: ChainHead | None
    missing_triggers: tuple[str, ...] = ()
    expected_hash: str | None = None
    actual_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_bad_seq": self.first_bad_seq,
                "reason": self.reason, "head": None if self.head is None else self.head.to_dict(),
                "missing_triggers": list(self.missing_triggers),
                "expected_hash": self.expected_hash, "actual_hash": self.actual_hash}


# ---------------------------------------------------------------------------------------- checks
def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_timestamp(name: str, value: Any) -> int:
    """An event time: an int (Unix ms) within ±(2**53 - 1)."""
    if type(value) is not int:  # exactly int, as a JSON line gives: no bool, float or numpy
        raise InvalidPayloadError(f"{name} must be an int (Unix ms), got {_type_name(value)} "
                                  f"{value!r:.60}")
    return int(check_int(name, value, lo=-MAX_SAFE_INT))


def _check_fields(kind: Any, actor: Any, event_id: Any, *optional: Any) -> None:
    """``append``'s text fields, checked in one pass when they are plainly good (str, non-empty,
    at most MAX_ID_CHARS together, no NUL or lone surrogate); otherwise field by field, for the
    message. ``join`` refuses a value that is not a str (kind or actor None included)."""
    given = [kind, actor]
    given += [v for v in (event_id, *optional) if v is not None]
    try:
        joined = "".join(given)
    except TypeError:
        joined = ""
    if joined and len(joined) <= MAX_ID_CHARS and "" not in given and bad_char_at(joined) < 0:
        return
    check_text("kind", kind)
    check_text("actor", actor)
    check_text("event_id", event_id, nullable=True)
    for name, value in zip(OPTIONAL_FIELDS, optional):
        check_text(name, value, nullable=True)


def _clamp_limit(limit: Any, high: int) -> int:
    return clamp_limit(limit, high)


def _check_seq_arg(name: str, value: Any) -> int:
    if type(value) is not int or value < 0:
        raise InvalidPayloadError(f"{name} must be an int >= 0, got {value!r:.60}")
    return value


def _index_label(i: int) -> str:
    return f"events[{i}]"


def _json_str(value: str | None) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


_EXPORT_LINE = ('{"actor":%s,"channel":%s,"created_at_unix_ms":%d,"device_id":%s,"event_id":%s,'
                '"hash":%s,"kind":%s,"payload":%s,"prev_hash":%s,"principal":%s,"redacted":%s,'
                '"run_id":%s,"seq":%d,"session_id":%s,"timestamp_unix_ms":%d}\n')
# The line is written out by hand for speed; its keys must be the event-line keys of
# kernels/layout.py, sorted (RFC 8785), so that an export can be ingested again.
if re.findall(r'"(\w+)":', _EXPORT_LINE) != sorted(kernels.EVENT_LINE_KEYS
                                                    + kernels.EVENT_LINE_IGNORED_KEYS):
    raise ImportError("events._EXPORT_LINE does not hold the keys of kernels/layout.py")


def export_line(row: tuple) -> str:
    """One exported event as canonical JSON (keys sorted, stored payload spliced in verbatim)."""
    (seq, event_id, kind, actor, session_id, run_id, principal, device_id, channel, ts,
     payload_json, redacted, hash_, prev_hash, created) = row
    s = _json_str
    return _EXPORT_LINE % (s(actor), s(channel), created, s(device_id), s(event_id), s(hash_),
                           s(kind), payload_json, s(prev_hash), s(principal),
                           "true" if redacted else "false", s(run_id), seq, s(session_id), ts)


def _gc_paused(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with the cyclic GC paused: a batch allocates tens of thousands of tuples
    (columns, rows, records) that hold no cycles, and the collections they trigger cost ~5 % of
    ``append_many``. The GC is re-enabled only if it was enabled on entry."""
    if not gc.isenabled():
        return fn(*args)
    gc.disable()
    try:
        return fn(*args)
    finally:
        gc.enable()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Objects of an ingested line refuse duplicate keys, as canonicalize_text does."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return d


_LINE_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, object_pairs_hook=_no_duplicate_keys)
_AT_BYTE = re.compile(r"^(?P<head>[^:]*): (?P<what>.*?) at byte (?P<at>\d+)(?P<tail>.*)$", re.S)


def _byte_first(message: str, sep: str = ": ") -> str:
    """One format for every JSON error: the kernels say ``ROOT: WHAT at byte M[: WHY]``; callers
    read ``ROOT: byte M: WHAT[: WHY]`` (``line N, byte M: …`` for a JSON line, ``sep=", "``)."""
    m = _AT_BYTE.match(message)
    if m is None:
        return message
    return f"{m['head']}{sep}byte {m['at']}: {m['what']}{m['tail']}"


def _line_json_error(raw: bytes, lineno: int, exc: BaseException) -> str:
    """``line N, byte M: …`` for a line the decoder refused, located by the kernels' strict
    parser (the same diagnostics as ``append``'s); the decoder's own position is the fallback."""
    root = f"line {lineno}"
    try:
        kernels.canonicalize_text(raw, redact=False, root=root)
    except InvalidPayloadError as strict:
        return _byte_first(str(strict), sep=", ")
    pos = getattr(exc, "pos", None)
    at = len(raw.decode("utf-8")[:pos].encode("utf-8")) if isinstance(pos, int) else 0
    why = getattr(exc, "msg", None) or str(exc)
    return f"{root}, byte {at}: invalid JSON: {why}"


def _drop_stored(conn: sqlite3.Connection, b: "_Prepared") -> tuple["_Prepared", int]:
    """The batch without the events whose event_id is already stored, and how many those were."""
    given = list(b.given_ids)
    stored: set[str] = set()
    for start in range(0, len(given), 500):
        chunk = given[start:start + 500]
        stored.update(r[0] for r in conn.execute(
            f"SELECT event_id FROM journal_events WHERE event_id IN ({', '.join('?' * len(chunk))})",
            chunk))
    if not stored:
        return b, 0
    keep = [i for i, v in enumerate(b.ids) if v not in stored]
    return b.subset(keep), len(b) - len(keep)


class IngestCount(int):
    """The count ``ingest_jsonl`` wrote (an int), with ``skipped``: events left out because their
    event_id was already stored (``on_duplicate="skip"``)."""

    skipped: int

    def __new__(cls, written: int, skipped: int = 0) -> "IngestCount":
        self = super().__new__(cls, written)
        self.skipped = skipped
        return self


class _Prepared:
    """A validated batch, column by column, waiting for its seq numbers and hashes."""

    __slots__ = ("ids", "kinds", "actors", "optional", "timestamps", "texts", "redacted", "now",
                 "given_ids", "labels", "packed")
    ids: list[str]
    kinds: list[str]
    actors: list[str]
    optional: list[list[str | None]]
    timestamps: list[int]
    texts: list[str]
    redacted: list[bool]
    packed: bytes | None  # the texts as the chain's payload column, when the canonicalizer wrote it
    now: int
    given_ids: list[str]
    labels: Callable[[int], str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, keep: list[int]) -> "_Prepared":
        """The batch restricted to the rows at ``keep`` (labels still name the original rows)."""
        b = _Prepared()
        for name in ("ids", "kinds", "actors", "timestamps", "texts", "redacted"):
            col = getattr(self, name)
            setattr(b, name, [col[i] for i in keep])
        b.optional = [[col[i] for i in keep] for col in self.optional]
        b.packed = None  # packed for the whole batch: chain_columns packs the texts kept
        kept = set(b.ids)
        b.given_ids = [v for v in self.given_ids if v in kept]
        b.now = self.now
        labels = self.labels
        b.labels = lambda i: labels(keep[i])
        return b


# ---------------------------------------------------------------------------------------- journal
class Journal:
    """The journal of one :class:`~palyra_journal.store.JournalStore` (``store.append`` etc.)."""

    def __init__(self, store: Any):
        self.store = store
        self._tail = TailLeaves()  # the leaves past the last full tile (tlog/tiles.py)
        #: ((seq, hash) of the head, rules version) after this journal's last committed append:
        #: the rules log then ends with that version, as long as the head has not moved.
        self._rules_head: tuple | None = None

    # ------------------------------------------------------------------ payloads
    def _canonical(self, payload: Any, where: str) -> tuple[str, bool]:
        """Redacted canonical text of a payload, size-checked; errors are prefixed by ``where``."""
        rules = self.store.redaction
        try:
            if payload is None:
                text, red = "{}", False
            else:
                t = type(payload)
                if t is str or t is bytes:
                    text, red = kernels.canonicalize_text(payload, rules=rules)
                elif t is bytearray or t is memoryview:
                    text, red = kernels.canonicalize_text(bytes(payload), rules=rules)
                else:
                    text, red = kernels.canonicalize(payload, rules=rules)
        except InvalidPayloadError as exc:
            msg = str(exc)
            raise type(exc)(_byte_first(msg if msg.startswith(where) else f"{where}: {msg}")) \
                from None
        limit = self.store.max_payload_bytes
        n = len(text)
        if n * 4 > limit:
            size = len(text.encode("utf-8"))
            if size > limit:
                raise PayloadTooLargeError(
                    f"{where}: canonical payload is {size} bytes; max_payload_bytes is {limit}",
                    size, limit)
        return text, red

    # ------------------------------------------------------------------ appending
    def append(self, kind: str, payload: Any = None, *, event_id: str | None = None,
               session_id: str | None = None, run_id: str | None = None, actor: str = "system",
               principal: str | None = None, device_id: str | None = None,
               channel: str | None = None, timestamp_unix_ms: int | None = None) -> EventRecord:
        """Append one event (docs/api.md); joins an enclosing ``store.write()`` transaction.

        The per-call work around SQLite is kept to a few µs (benchmarks/README.md section 1): the
        text fields are checked in one pass, the row is hashed with its tile leaf in one kernel
        call (``kernels.chain_row``), the tile leaves past the last full tile are kept between
        calls (:class:`TailLeaves`), and the redaction rules log is read only when another writer
        (or a rolled-back call) moved the chain head since this journal's last commit.
        """
        store = self.store
        _check_fields(kind, actor, event_id, session_id, run_id, principal, device_id, channel)
        text, red = self._canonical(payload, "payload")
        now = store.now_ms()
        ts = now if timestamp_unix_ms is None else _check_timestamp("timestamp_unix_ms",
                                                                    timestamp_unix_ms)
        if event_id is None:
            event_id = new_ulid(now)
        chained = store.hash_chain
        version = store.redaction.version
        outermost = not store.in_transaction
        with store.write() as conn:
            last = conn.execute(_TAIL).fetchone()
            if last is None:
                seq, prev = 1, GENESIS_HASH
            else:
                seq, prev = last[0] + 1, last[1] or GENESIS_HASH
            h: str | None = None
            if chained:
                h, leaf = kernels.chain_row(prev, (seq, event_id, kind, actor, session_id, run_id,
                                                   principal, device_id, channel, ts, text))
            row = (seq, event_id, kind, actor, session_id, run_id, principal, device_id, channel,
                   ts, text, red, h, prev if chained else None, now)
            if self._rules_head != (last, version):
                rules_log.record(conn, seq, version, now)
            try:
                conn.execute(_INSERT, row)
            except Exception as exc:  # either engine's unique violation
                if is_unique_violation(exc) and "event_id" in str(exc):
                    raise DuplicateIdError(f"event_id {event_id!r} already exists") from None
                raise
            # the Merkle tiles this row completes (tlog/tiles.py), from its leaf hash while the
            # tiles are known to be current
            tail = self._tail
            if h is not None and (seq & _TILE_MASK or tail.end_seq == seq - 1
                                  and tail.end_hash == prev or batch_leaf_count(conn, seq, 1)):
                record_leaves(conn, (row,), leaf, tail, (prev, h))
            else:
                record_leaves(conn, (row,))
        self._rules_head = ((seq, h), version) if outermost else None
        return _new_tuple(EventRecord, row)

    def append_many(self, events: Iterable[dict]) -> list[EventRecord]:
        """Append many events in one transaction: all are written or none (docs/api.md)."""
        if isinstance(events, (dict, str, bytes)):
            raise InvalidPayloadError(
                f"append_many takes an iterable of event dicts, got {_type_name(events)}")
        evs = events if type(events) is list else list(events)
        if not evs:
            return []
        return _gc_paused(self._append_batch, evs)

    def _append_batch(self, evs: list, savepoint: bool = True) -> list[EventRecord]:
        try:
            batch = self._prepare(evs, _index_label, extra_keys=frozenset())
        except InvalidPayloadError as exc:
            exc.args = (_byte_first(str(exc)),)
            raise
        return self._write_batch(batch, savepoint=savepoint)

    def record(self, events: list[dict[str, Any]]) -> list[EventRecord]:
        """``append_many`` for ``store.record_events``: inside a domain's transaction, which rolls
        back as a whole when this raises, so no savepoint is needed around the batch."""
        if not events:
            return []
        if len(events) == 1:  # the common audit event: the single-row path is ~1.4x faster
            ev = events[0]
            if type(ev) is dict and ev.keys() <= EVENT_KEYS:
                kw = dict(ev)
                kind = kw.pop("kind", None)
                payload = kw.pop("payload", None)
                return [self.append(kind, payload, **kw)]
        return _gc_paused(self._append_batch, events, False)

    def ingest_jsonl(self, source: Any, *, batch_size: int = 10_000, progress: bool = False,
                     start_line: int = 1, on_duplicate: str = "error") -> "IngestCount":
        """Append the events of a JSON-lines file or binary stream; returns the count written.

        Each batch of ``batch_size`` lines is one all-or-nothing transaction. When a line is
        refused, the batches before it stay written: the error names the line (``line N, byte M``
        for a JSON error), the last committed line, and carries ``resume_line`` for
        ``start_line=`` (CLI ``--start-line``), which skips the lines before it.
        ``on_duplicate="skip"`` skips events whose ``event_id`` is already stored instead of
        failing (the count is the result's ``skipped``), so re-running the same file is
        idempotent when its events carry ids. Blank lines are skipped; the keys ``export_jsonl``
        adds (seq, hash, ...) are ignored, so an export can be ingested again (into an empty
        store it reproduces the very same hashes).
        """
        if type(batch_size) is not int or batch_size < 1:
            raise InvalidPayloadError(f"batch_size must be an int >= 1, got {batch_size!r:.60}")
        if type(start_line) is not int or start_line < 1:
            raise InvalidPayloadError(f"start_line must be an int >= 1, got {start_line!r:.60}")
        if on_duplicate not in ("error", "skip"):
            raise InvalidPayloadError(
                f"on_duplicate must be 'error' or 'skip', got {on_duplicate!r:.60}")
        skip = on_duplicate == "skip"
        close = False
        total = None
        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            try:
                stream: BinaryIO = open(path, "rb")
            except OSError as exc:
                raise InvalidPathError(f"cannot read {path!r}: {exc.strerror}") from None
            close = True
            if progress:
                try:
                    total = os.fstat(stream.fileno()).st_size
                except OSError:
                    total = None
        elif hasattr(source, "read"):
            stream = source
            if isinstance(source, io.TextIOBase):
                raise InvalidPayloadError("ingest_jsonl needs a path or a binary stream "
                                          "(open the file with 'rb')")
        else:
            raise InvalidPayloadError(
                f"source must be a path or a binary stream, got {_type_name(source)}")
        written = skipped = 0
        bar = Progress("ingest", total, enabled=progress, unit="bytes" if total else "events")
        lineno = 0
        try:
            lines: list[bytes] = []
            linenos: list[int] = []
            consumed = 0
            for raw in stream:
                lineno += 1
                consumed += len(raw)
                if lineno < start_line or raw.isspace() or not raw:
                    continue
                lines.append(raw)
                linenos.append(lineno)
                if len(lines) >= batch_size:
                    n, dup = _gc_paused(self._ingest_batch, lines, linenos, written, start_line,
                                        skip)
                    written += n
                    skipped += dup
                    bar.update(consumed if total else len(lines))
                    consumed = 0
                    lines, linenos = [], []
            if lines:
                n, dup = _gc_paused(self._ingest_batch, lines, linenos, written, start_line, skip)
                written += n
                skipped += dup
                bar.update(consumed if total else len(lines))
        except OSError as exc:  # the source failed while being read
            raise InvalidPathError(
                f"reading the source failed after line {lineno}: {exc.strerror or exc}") from None
        finally:
            bar.close()
            if close:
                stream.close()
        return IngestCount(written, skipped)

    def _ingest_batch(self, lines: list[bytes], linenos: list[int], written: int,
                      start_line: int, skip: bool) -> tuple[int, int]:
        """Write one batch of lines; returns (written, skipped as already stored)."""
        def label(i: int) -> str:
            return f"line {linenos[i]}"

        try:
            store = self.store
            cols = kernels.event_lines(lines, rules=store.redaction,
                                       max_bytes=store.max_payload_bytes, pack=True)
            if cols is not None:
                (kinds, actors, ids, sess, runs, princs, devs, chans, tss, texts,
                 flags, packed) = cols
                batch = self._prepare_columns(label, kinds, actors, [sess, runs, princs, devs, chans],
                                              ids, tss, None, (texts, flags, packed))
            else:
                evs = [self._parse_line(raw, linenos[i]) for i, raw in enumerate(lines)]
                batch = self._prepare(evs, label, extra_keys=EXPORT_ONLY_KEYS)
            if not skip:
                self._write_batch(batch, return_records=False)
                return len(batch), 0
            with store.write() as conn:
                batch, dup = _drop_stored(conn, batch)
                if len(batch):
                    self._write_batch(batch, return_records=False)
            return len(batch), dup
        except JournalError as exc:
            if isinstance(exc, InvalidPayloadError):
                exc.args = (_byte_first(str(exc)),)
            elif isinstance(exc, DuplicateIdError) and not skip:
                exc.args = (f"{exc} (on_duplicate='skip' skips events already stored)",)
            first = linenos[0]
            if first > start_line or written:
                exc.args = (f"{exc}; nothing from line {first} on was written, the lines before "
                            f"it are committed ({written} events): resume with start_line={first}",)
                exc.resume_line = first
            else:
                exc.args = (f"{exc}; nothing was written",)
            raise

    @staticmethod
    def _parse_line(raw: bytes, lineno: int) -> dict:
        """One event line as a dict; a JSON error is located as ``line N, byte M: …``."""
        try:
            ev = _LINE_DECODER.decode(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidPayloadError(f"line {lineno}, byte {exc.start}: invalid UTF-8") from None
        except (ValueError, RecursionError) as exc:
            raise InvalidPayloadError(_line_json_error(raw, lineno, exc)) from None
        if type(ev) is not dict:
            raise InvalidPayloadError(f"line {lineno}: expected a JSON object, got {_type_name(ev)}")
        return ev

    def _prepare(self, evs: list, label: Callable[[int], str],
                 extra_keys: frozenset) -> _Prepared:
        """Validate a batch of event dicts and canonicalize their payloads (no I/O)."""
        allowed = EVENT_KEYS | extra_keys
        for i, ev in enumerate(evs):
            if type(ev) is not dict:
                if not isinstance(ev, dict):
                    raise InvalidPayloadError(f"{label(i)}: an event must be a dict, got "
                                              f"{_type_name(ev)}")
            if not ev.keys() <= allowed:
                bad = sorted(str(k) for k in ev.keys() - allowed)
                raise InvalidPayloadError(f"{label(i)}: unknown key {bad[0]!r} (allowed: "
                                          f"{', '.join(sorted(EVENT_KEYS))})")
        kinds = [ev.get("kind") for ev in evs]
        actors = [ev.get("actor", "system") for ev in evs]
        optional = [[ev.get(name) for ev in evs] for name in OPTIONAL_FIELDS]
        ids = [ev.get("event_id") for ev in evs]
        tss = [ev.get("timestamp_unix_ms") for ev in evs]
        payloads = [ev.get("payload") for ev in evs]
        return self._prepare_columns(label, kinds, actors, optional, ids, tss, payloads, None)

    def _prepare_columns(self, label: Callable[[int], str], kinds: list, actors: list,
                         optional: list, ids: list, tss: list, payloads: list | None,
                         canonical: tuple | None) -> _Prepared:
        """Validate a batch given column by column and canonicalize its payloads (no I/O).

        ``tss`` holds None where the store clock applies. ``canonical`` is ``(texts, flags,
        packed)`` when the payloads are already canonical (the native line parser), else
        ``payloads`` are.
        """
        store = self.store
        b = _Prepared()
        b.labels = label
        check_texts("kind", kinds, label)
        check_texts("actor", actors, label)
        for name, col in zip(OPTIONAL_FIELDS, optional):
            check_texts(name, col, label, nullable=True)
        check_texts("event_id", ids, label, nullable=True)
        now = store.now_ms()
        missing = ids.count(None)
        if not missing:  # every id given by the caller
            b.given_ids = ids
        elif missing == len(ids):  # none given (the usual batch): the fresh ids are the column
            b.given_ids = []
            ids = new_ulids(missing, now)
        else:
            b.given_ids = [v for v in ids if v is not None]
            fresh = iter(new_ulids(missing, now))
            ids = [next(fresh) if v is None else v for v in ids]
        if b.given_ids and len(set(ids)) != len(ids):
            seen: dict[str, int] = {}
            for i, v in enumerate(ids):
                if v in seen:
                    raise DuplicateIdError(
                        f"{label(i)}.event_id {v!r} repeats {label(seen[v])} in the same batch")
                seen[v] = i
        types = set(map(type, tss))
        if types != {int}:
            if types == {type(None)}:
                tss = [now] * len(tss)
            else:
                for i, v in enumerate(tss):
                    if v is None:
                        tss[i] = now
                    else:
                        _check_timestamp(f"{label(i)}.timestamp_unix_ms", v)
        if min(tss) < -MAX_SAFE_INT or max(tss) > MAX_SAFE_INT:
            for i, v in enumerate(tss):
                _check_timestamp(f"{label(i)}.timestamp_unix_ms", v)
        if canonical is None:
            canonical = kernels.canonicalize_many(
                payloads, rules=store.redaction, max_bytes=store.max_payload_bytes,
                root=lambda i: f"{label(i)}.payload", payloads=True, pack=True)
        b.ids = ids
        b.kinds = kinds
        b.actors = actors
        b.optional = optional
        b.timestamps = tss
        b.texts, b.redacted, b.packed = canonical
        b.now = now
        return b

    def _write_batch(self, b: _Prepared, return_records: bool = True,
                     savepoint: bool = True) -> Any:
        """Number, hash and insert a prepared batch in one transaction (a savepoint when nested,
        unless the caller rolls back the whole transaction on error)."""
        store = self.store
        n = len(b)
        outermost = not store.in_transaction
        nested = savepoint and not outermost
        version = store.redaction.version
        with store.write() as conn:
            if nested:
                conn.execute("SAVEPOINT pj_journal_batch")
            try:
                last = conn.execute(_TAIL).fetchone()
                if last is None:
                    first, prev = 1, GENESIS_HASH
                else:
                    first, prev = last[0] + 1, last[1] or GENESIS_HASH
                seqs = range(first, first + n)
                sess, runs, princs, devs, chans = b.optional
                hashes: Sequence[str | None]
                prevs: list[str | None]
                leaves: bytes | None = None
                chain: tuple[str, str] | None = None
                if store.hash_chain:  # chain and tile leaves from one envelope per row
                    chained, leaves = kernels.chain_columns(
                        prev, first, [b.ids, b.kinds, b.actors, sess, runs, princs, devs, chans,
                                      b.timestamps, b.texts], batch_leaf_count(conn, first, n),
                        b.packed)
                    chain = (prev, chained[-1])
                    hashes = chained
                    prevs = [prev]
                    prevs += hashes[:-1]
                else:
                    hashes = prevs = [None] * n
                rows = list(zip(seqs, b.ids, b.kinds, b.actors, sess, runs, princs, devs, chans,
                                b.timestamps, b.texts, b.redacted, hashes, prevs,
                                repeat(b.now, n)))
                if self._rules_head != (last, version):
                    rules_log.record(conn, first, version, b.now)
                try:
                    conn.executemany(_INSERT, rows)
                except Exception as exc:  # either engine's unique violation
                    if is_unique_violation(exc) and "event_id" in str(exc):
                        raise self._duplicate_error(conn, b, exc) from None
                    raise
                # the Merkle tiles these rows complete (tlog/tiles.py)
                record_leaves(conn, rows, leaves or None, self._tail, chain)
            except BaseException:
                if nested:
                    conn.execute("ROLLBACK TO pj_journal_batch")
                    conn.execute("RELEASE pj_journal_batch")
                raise
            if nested:
                conn.execute("RELEASE pj_journal_batch")
        self._rules_head = ((first + n - 1, hashes[-1]), version) if outermost else None
        if not return_records:
            return n
        return list(map(_new_tuple, repeat(EventRecord, n), rows))

    @staticmethod
    def _duplicate_error(conn: sqlite3.Connection, b: _Prepared,
                         exc: BaseException) -> DuplicateIdError:
        index = {v: i for i, v in enumerate(b.ids)}
        named = dialect_of(conn).duplicate_value(exc)  # PostgreSQL names it (its transaction
        if named is not None and named in index:       # is aborted: no query can follow)
            return DuplicateIdError(f"{b.labels(index[named])}.event_id {named!r} already exists")
        given = list(b.given_ids)
        for start in range(0, len(given), 500):
            chunk = given[start:start + 500]
            row = conn.execute(
                f"SELECT event_id FROM journal_events WHERE event_id IN "
                f"({', '.join('?' * len(chunk))}) ORDER BY seq LIMIT 1", chunk).fetchone()
            if row is not None:
                i = index.get(row[0], 0)
                return DuplicateIdError(f"{b.labels(i)}.event_id {row[0]!r} already exists")
        return DuplicateIdError("an event_id of this batch already exists")

    # ------------------------------------------------------------------ reading
    def head(self) -> ChainHead | None:
        """``ChainHead(seq, hash)`` of the last event, or None when the journal is empty."""
        with self.store.read() as conn:
            row = conn.execute(_TAIL).fetchone()
        return None if row is None else ChainHead(row[0], row[1])

    def recent(self, limit: int = 100) -> list[EventRecord]:
        """The newest events first; ``limit`` is clamped to [1, 1000]."""
        limit = _clamp_limit(limit, 1000)
        with self.store.read() as conn:
            rows = conn.execute(f"{_SELECT} ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return list(map(_new_tuple, repeat(EventRecord), rows))

    def events(self, *, after_seq: int = 0, limit: int = 1000, kind: str | None = None,
               session_id: str | None = None, run_id: str | None = None) -> list[EventRecord]:
        """Events after ``after_seq``, oldest first, optionally filtered; ``limit`` in [1, 1000]."""
        after_seq = _check_seq_arg("after_seq", after_seq)
        limit = _clamp_limit(limit, 1000)
        where = ["seq > ?"]
        params: list[Any] = [after_seq]
        for name, value in (("kind", kind), ("session_id", session_id), ("run_id", run_id)):
            if value is not None:
                check_text(name, value)
                where.append(f"{name} = ?")
                params.append(value)
        params.append(limit)
        sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        with self.store.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return list(map(_new_tuple, repeat(EventRecord), rows))

    def first_event(self, kind: str, *, payload_key: str, payload_value: Any
                    ) -> EventRecord | None:
        """The oldest event of ``kind`` whose payload holds ``payload_key: payload_value`` (a
        domain looking up the event of one of its records, e.g. a canvas's ``canvas.created``)."""
        check_text("kind", kind)
        check_text("payload_key", payload_key)
        where = f"{_SELECT} WHERE kind = ?"
        with self.store.read() as conn:
            try:
                cond, params = dialect_of(conn).json_field_equals("payload_json", payload_key,
                                                                  payload_value)
                row = conn.execute(f"{where} AND {cond} ORDER BY seq LIMIT 1",
                                   (kind, *params)).fetchone()
                return None if row is None else _new_tuple(EventRecord, row)
            except sqlite3.OperationalError:  # an SQLite built without the JSON functions
                pass
            for row in conn.execute(f"{where} ORDER BY seq", (kind,)):
                payload = _loads(row[10])
                if isinstance(payload, dict) and payload.get(payload_key) == payload_value:
                    return _new_tuple(EventRecord, row)
        return None

    def _pages(self, after_seq: int) -> Iterator[list[tuple]]:
        """Raw rows in pages, re-taking the store lock per page so other calls interleave."""
        sql = f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT {PAGE}"
        last = after_seq
        while True:
            with self.store.read() as conn:
                rows = conn.execute(sql, (last,)).fetchall()
            if not rows:
                return
            yield rows
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    def iter_events(self, *, after_seq: int = 0) -> Iterator[EventRecord]:
        """Every event after ``after_seq``, oldest first, streamed in pages."""
        after_seq = _check_seq_arg("after_seq", after_seq)
        for rows in self._pages(after_seq):
            yield from map(_new_tuple, repeat(EventRecord), rows)

    def export_jsonl(self, destination: Any, *, after_seq: int = 0) -> int:
        """Write events after ``after_seq`` as JSON lines; returns the count.

        ``destination`` is a path (created with mode 0600, like the database) or an open binary
        or text file. Each line holds every column, keys sorted, ``payload`` spliced verbatim from
        the stored canonical text, so the export is byte-stable and can be ingested again.
        """
        after_seq = _check_seq_arg("after_seq", after_seq)
        close = False
        if isinstance(destination, (str, os.PathLike)):
            path = os.fspath(destination)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            except OSError as exc:
                raise InvalidPathError(f"cannot write {path!r}: {exc.strerror}") from None
            out: Any = open(fd, "wb")
            close = True
        elif hasattr(destination, "write"):
            out = destination
        else:
            raise InvalidPayloadError(
                f"destination must be a path or a file, got {_type_name(destination)}")
        text_mode = isinstance(out, io.TextIOBase)
        count = 0
        try:
            for rows in self._pages(after_seq):
                chunk = "".join(map(export_line, rows))
                out.write(chunk if text_mode else chunk.encode("utf-8"))
                count += len(rows)
        except OSError as exc:  # the destination failed (full disk, closed pipe, ...)
            if isinstance(exc, BrokenPipeError):
                raise
            raise InvalidPathError(f"writing the export failed after {count} events: "
                                   f"{exc.strerror or exc}") from None
        finally:
            if close:
                out.close()
            else:
                flush = getattr(out, "flush", None)
                if flush is not None:
                    flush()
        return count

    # ------------------------------------------------------------------ verifying
    def verify(self, *, from_seq: int = 1, to_seq: int | None = None,
               expected_head: Any = None, progress: bool = False, checkpoint: str | None = None,
               verifier_key: str | None = None) -> VerifyReport:
        """Recompute the chain over ``[from_seq, to_seq]`` and report the first problem.

        Rows are read in windows of :data:`VERIFY_BATCH` seqs (one query each), each checked
        by one ``kernels.verify_chain`` call. With ``from_seq`` N > 1 the chain starts from row N-1's
        stored hash (or, when that row is gone or unchained, from row N's own ``prev_hash``: the
        range is then checked on its own). ``expected_head=(seq, hash)`` fails with
        ``head_mismatch`` when that row is missing or its hash differs. ``head`` is the last row
        verified good. In a store opened with ``hash_chain=False`` only the seq sequence can be
        checked (there are no hashes): gaps are reported, ``head.hash`` is the stored value.
        The Merkle tiles and a signed ``checkpoint`` are checked by ``tlog.log.TreeCheck``
        (``tree_mismatch``, ``checkpoint_mismatch``, ``bad_signature``; docs/verifiable.md).
        """
        if type(from_seq) is not int or from_seq < 1:
            raise InvalidPayloadError(f"from_seq must be an int >= 1, got {from_seq!r:.60}")
        if to_seq is not None and (type(to_seq) is not int or to_seq < from_seq):
            raise InvalidPayloadError(
                f"to_seq must be None or an int >= from_seq ({from_seq}), got {to_seq!r:.60}")
        want = None
        if expected_head is not None:
            try:
                h_seq, h_hash = expected_head
            except (TypeError, ValueError):
                raise InvalidPayloadError(
                    f"expected_head must be (seq, hash), got {expected_head!r:.80}") from None
            if type(h_seq) is not int or h_seq < 1 or not isinstance(h_hash, str):
                raise InvalidPayloadError(
                    f"expected_head must be (seq >= 1, hash str), got {expected_head!r:.80}")
            want = (h_seq, h_hash.lower())
        store = self.store
        chained = store.hash_chain
        with store.read() as conn:
            tail = conn.execute(_TAIL).fetchone()
            last_seq = tail[0] if tail else 0
            hi = last_seq if to_seq is None else min(to_seq, last_seq)
            head_bad: int | None = None
            expected_hash = actual_hash = None
            if want is not None:
                expected_hash = want[1]
                row = conn.execute("SELECT hash FROM journal_events WHERE seq = ?",
                                   (want[0],)).fetchone()
                actual_hash = None if row is None else row[0]
                if actual_hash != want[1]:
                    head_bad = want[0]
            missing = tuple(schema.missing_guards(conn))
            prev = GENESIS_HASH
            if from_seq > 1:
                row = conn.execute("SELECT hash FROM journal_events WHERE seq = ?",
                                   (from_seq - 1,)).fetchone()
                if row is not None and row[0] is not None:
                    prev = row[0]
                else:
                    row = conn.execute("SELECT prev_hash FROM journal_events WHERE seq = ?",
                                       (from_seq,)).fetchone()
                    prev = row[0] if row is not None and row[0] is not None else GENESIS_HASH
            checked = 0
            bad: tuple[int, str] | None = None
            head: ChainHead | None = None
            total = max(0, hi - from_seq + 1)
            tree = TreeCheck(store, conn, from_seq, hi, last_seq, checkpoint, verifier_key)
            with Progress("verify", total, enabled=progress) as bar:
                if total:
                    expect, after = from_seq, from_seq - 1  # the next window: seqs past ``after``
                    verify_chain = kernels.verify_chain
                    while after < hi:
                        upto = min(after + VERIFY_BATCH, hi)
                        rows = conn.execute(_VERIFY_SELECT, (after, upto)).fetchall()
                        after = upto
                        if not rows:  # seqs missing: the next rows' seq tells the gap
                            continue
                        tree.feed(rows)  # the Merkle tiles' leaves, hashed beside the chain
                        if chained:
                            res = verify_chain(prev, expect, rows)
                        else:
                            res = _seq_only(expect, rows)
                        if res is not None:
                            i, reason = res
                            bad = (expect + i, reason)
                            checked += i
                            if i:
                                head = ChainHead(rows[i - 1][0], rows[i - 1][11])
                            break
                        last = rows[-1]
                        prev = last[11]
                        head = ChainHead(last[0], last[11])
                        expect += len(rows)
                        checked += len(rows)
                        bar.update(len(rows))
                    if bad is None and expect <= hi:  # rows missing at the end of the range
                        bad = (expect, "seq_gap")
            tree_bad = tree.result(None if bad is None else bad[0])
        if head_bad is not None and (bad is None or head_bad < bad[0]):
            bad = (head_bad, "head_mismatch")
        finding: tuple[int | None, str] | None = bad
        if tree_bad is not None and (bad is None or tree_bad[0] is None or tree_bad[0] < bad[0]):
            finding = tree_bad
        if finding is None:
            if missing:
                return VerifyReport(False, checked, None, "triggers_missing", head, missing)
            return VerifyReport(True, checked, None, None, head)
        if finding[1] == "head_mismatch":
            return VerifyReport(False, checked, finding[0], finding[1], head, missing, expected_hash,
                                actual_hash)
        return VerifyReport(False, checked, finding[0], finding[1], head, missing)


def _seq_only(expect: int, rows: list[tuple]) -> tuple[int, str] | None:
    """The seq check alone, for journals written without a hash chain."""
    if rows[0][0] == expect and rows[-1][0] == expect + len(rows) - 1:
        return None
    for i, row in enumerate(rows):
        if row[0] != expect + i:
            return i, "seq_gap"
    return None
