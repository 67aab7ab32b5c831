"""``Journal.verify`` (docs/journal.md, "Verifying"): the chain, the tree and the checkpoint.

Two ways to read the chain, one answer:

- **one connection** (fewer than :data:`PARALLEL_MIN_ROWS` rows in the range, a journal in
  memory, a connection inside a transaction, a store without hashes): rows are read on the
  store's connection in windows of :data:`VERIFY_BATCH` seqs, each checked by one
  ``kernels.verify_chain`` call, chaining from the last good row;
- **ranges** (everything else): the range is cut into seq ranges of at most
  :data:`RANGE_ROWS` rows, as many for each worker thread (one per core), that they verify
  independently, each on its own read-only connection. A range is read as one result row
  (SQLite's ``json_group_array`` per column, the payloads joined by ``group_concat``;
  ``kernels.verify_joined``: no Python object per value; SQLite's step and the kernel both run
  without the GIL, so the threads use every core) and chains from the stored hash of the row
  before it, so the link between two ranges is checked as every other link is. A range the joined
  read does not prove good (a finding, or a value that form cannot say exactly: a BLOB, a number
  where text belongs...) is read again as rows and checked by ``kernels.verify_chain``, so a
  finding is always the one-connection pass's own. Ranges are taken in seq order: the first range
  with a finding gives the report, later ones are dropped.

Both ways report the same ``VerifyReport``, field for field: ranges cover the same seqs in the same
order, every row is checked against the hash stored before it, and ``checked``/``head`` count the
rows before the first finding (tests/test_verify_parallel.py checks it on every tamper case).
"""

from __future__ import annotations

import os
import queue
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from . import kernels, schema
from .engines import dialect_of
from .errors import InvalidPayloadError
from .progress import Progress
from .tlog import hashing
from .tlog.log import TreeCheck

#: Rows per batch of the one-connection pass.
VERIFY_BATCH = 20_000
#: Rows per range at most: a range's joined columns stay a few MB, which the allocator reuses
#: (20 000-row ranges cost ~18 % more CPU, in page faults on fresh buffers).
RANGE_ROWS = 4_096
#: Ranges (worker threads, own connections) from this many rows in the verified range on. Below
#: it the fixed cost (~1 ms to open a reader connection per worker and start the threads) would be
#: more than a tenth of the work (~2 µs per row on one core), and the one-connection pass stays.
PARALLEL_MIN_ROWS = 4_096

_FIELDS = kernels.VERIFY_FIELDS
_VERIFY_SELECT = (f"SELECT {', '.join(_FIELDS)} FROM journal_events "
                  "WHERE seq >= ? AND seq <= ? ORDER BY seq")
_HASH_AT = "SELECT hash FROM journal_events WHERE seq = ?"
_PREV_AT = "SELECT prev_hash FROM journal_events WHERE seq = ?"
#: A range as one result row: the row count, the payloads' type (TEXT in every row, else 'blob',
#: 'integer', 'null'... sorts first), every other column as a JSON array (types kept: a number or
#: null where text belongs stays one; a BLOB makes SQLite raise) and the payloads joined by NUL.
_JOINED_SELECT = ("SELECT count(*), min(typeof(payload_json)), "
                  + ", ".join("CAST(group_concat(payload_json, char(0)) AS BLOB)"
                              if f == "payload_json" else f"CAST(json_group_array({f}) AS BLOB)"
                              for f in _FIELDS)
                  + " FROM journal_events WHERE seq >= ? AND seq <= ?")
_HASH = _FIELDS.index("hash")
#: The worker connections' memory map (the store's own connection maps as much).
_MMAP_BYTES = 256 << 20


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


class _Pass(NamedTuple):
    """What the chain pass over ``[from_seq, hi]`` found: the rows verified good before the first
    finding, the last of them, and the finding ``(seq, reason)``."""

    checked: int
    head: ChainHead | None
    bad: tuple[int, str] | None


def _check_head_arg(expected_head: Any) -> tuple[int, str] | None:
    if expected_head is None:
        return None
    try:
        h_seq, h_hash = expected_head
    except (TypeError, ValueError):
        raise InvalidPayloadError(
            f"expected_head must be (seq, hash), got {expected_head!r:.80}") from None
    if type(h_seq) is not int or h_seq < 1 or not isinstance(h_hash, str):
        raise InvalidPayloadError(
            f"expected_head must be (seq >= 1, hash str), got {expected_head!r:.80}")
    return h_seq, h_hash.lower()


def verify_journal(store: Any, *, from_seq: int = 1, to_seq: int | None = None,
                   expected_head: Any = None, progress: bool = False,
                   checkpoint: str | None = None, verifier_key: str | None = None) -> VerifyReport:
    """:meth:`Journal.verify` (its docstring holds the contract)."""
    if type(from_seq) is not int or from_seq < 1:
        raise InvalidPayloadError(f"from_seq must be an int >= 1, got {from_seq!r:.60}")
    if to_seq is not None and (type(to_seq) is not int or to_seq < from_seq):
        raise InvalidPayloadError(
            f"to_seq must be None or an int >= from_seq ({from_seq}), got {to_seq!r:.60}")
    want = _check_head_arg(expected_head)
    with store.read() as conn:
        tail = conn.execute("SELECT max(seq) FROM journal_events").fetchone()
        last_seq = tail[0] or 0
        hi = last_seq if to_seq is None else min(to_seq, last_seq)
        head_bad: int | None = None
        expected_hash = actual_hash = None
        if want is not None:
            expected_hash = want[1]
            row = conn.execute(_HASH_AT, (want[0],)).fetchone()
            actual_hash = None if row is None else row[0]
            if actual_hash != want[1]:
                head_bad = want[0]
        missing = tuple(schema.missing_guards(conn))
        tree = TreeCheck(store, conn, from_seq, hi, last_seq, checkpoint, verifier_key)
        total = max(0, hi - from_seq + 1)
        with Progress("verify", total, enabled=progress) as bar:
            if not total:
                chain = _Pass(0, None, None)
            elif store.hash_chain and total >= PARALLEL_MIN_ROWS and (
                    uri := _reader_uri(conn)) is not None and (readers := _open_readers(
                        uri, store.busy_timeout_ms, _workers(from_seq, hi))) is not None:
                chain = _ranges(conn, readers, from_seq, hi, tree, bar)
            else:
                chain = _one_connection(conn, store.hash_chain, from_seq, hi, tree, bar)
        bad = chain.bad
        tree_bad = tree.result(None if bad is None else bad[0])
    if head_bad is not None and (bad is None or head_bad < bad[0]):
        bad = (head_bad, "head_mismatch")
    finding: tuple[int | None, str] | None = bad
    if tree_bad is not None and (bad is None or tree_bad[0] is None or tree_bad[0] < bad[0]):
        finding = tree_bad
    checked, head = chain.checked, chain.head
    if finding is None:
        if missing:
            return VerifyReport(False, checked, None, "triggers_missing", head, missing)
        return VerifyReport(True, checked, None, None, head)
    if finding[1] == "head_mismatch":
        return VerifyReport(False, checked, finding[0], finding[1], head, missing, expected_hash,
                            actual_hash)
    return VerifyReport(False, checked, finding[0], finding[1], head, missing)


def _start_hash(conn: sqlite3.Connection, from_seq: int) -> str:
    """What row ``from_seq`` chains from: row N-1's stored hash, or (that row gone or unchained)
    row N's own ``prev_hash``, so that the range is checked on its own."""
    if from_seq == 1:
        return kernels.GENESIS_HASH
    row = conn.execute(_HASH_AT, (from_seq - 1,)).fetchone()
    if row is not None and row[0] is not None:
        return row[0]
    row = conn.execute(_PREV_AT, (from_seq,)).fetchone()
    return row[0] if row is not None and row[0] is not None else kernels.GENESIS_HASH


# ------------------------------------------------------------------------------ one connection
def _one_connection(conn: sqlite3.Connection, chained: bool, from_seq: int, hi: int,
                    tree: TreeCheck, bar: Progress) -> _Pass:
    """The rows read on the store's connection in windows of at most :data:`VERIFY_BATCH` seqs,
    each window checked by one kernel call.

    One query per window, bounded at both ends: a PostgreSQL client cursor holds a query's whole
    result in memory, and an open-ended ``seq > ? ... LIMIT ?`` made its planner (before ANALYZE)
    sort the rest of the range for every batch (2.4x slower than one query, 200 000 events)."""
    prev = _start_hash(conn, from_seq)
    checked = 0
    head: ChainHead | None = None
    bad: tuple[int, str] | None = None
    expect = from_seq
    verify_chain = kernels.verify_chain
    lo = from_seq
    while lo <= hi:
        rows = conn.execute(_VERIFY_SELECT, (lo, min(lo + VERIFY_BATCH - 1, hi))).fetchall()
        lo += VERIFY_BATCH
        if not rows:  # seqs missing: the next rows' seq (or the end) tells the gap
            continue
        res = verify_chain(prev, expect, rows) if chained else _seq_only(expect, rows)
        good = len(rows) if res is None else res[0]
        tree.feed(rows[:good] if res is not None else rows)  # leaves of the good rows only
        checked += good
        if good:
            head = ChainHead(rows[good - 1][0], rows[good - 1][_HASH])
        if res is not None:
            bad = (expect + res[0], res[1])
            break
        prev = rows[-1][_HASH]
        expect += len(rows)
        bar.update(len(rows))
    if bad is None and expect <= hi:  # rows missing at the end of the range
        bad = (expect, "seq_gap")
    return _Pass(checked, head, bad)


def _seq_only(expect: int, rows: list[tuple]) -> tuple[int, str] | None:
    """The seq check alone, for journals written without a hash chain."""
    if rows[0][0] == expect and rows[-1][0] == expect + len(rows) - 1:
        return None
    for i, row in enumerate(rows):
        if row[0] != expect + i:
            return i, "seq_gap"
    return None


# ------------------------------------------------------------------------------------ ranges
class _Range(NamedTuple):
    """One range's answer: rows good before its first finding, the last of them, the finding,
    and the leaf hashes of its good rows the tree check asked for."""

    good: int
    head: ChainHead | None
    bad: tuple[int, str] | None
    leaves: bytes


def _reader_uri(conn: sqlite3.Connection) -> str | None:
    """A read-only URI of the store's file for the worker connections, or None when they could
    not see what this connection sees (a database in memory, an open transaction), or when the
    store is not a local file (a PostgreSQL store verifies on its own connection: the range read
    is SQLite's JSON aggregation)."""
    if not dialect_of(conn).local_files or conn.in_transaction:
        return None
    files = {name: path for _, name, path in conn.execute("PRAGMA database_list")}
    path = files.get("main")
    return Path(path).as_uri() + "?mode=ro" if path else None


def _open_readers(uri: str, busy_timeout_ms: int, count: int) -> list[sqlite3.Connection] | None:
    """``count`` read-only connections for the workers, each having read the schema, or None when
    one cannot open (a file only readable as immutable, in a directory SQLite cannot write its
    -shm file to): the one-connection pass then runs."""
    conns: list[sqlite3.Connection] = []
    try:
        for _ in range(count):
            conns.append(sqlite3.connect(uri, uri=True, isolation_level=None,
                                         check_same_thread=False, timeout=busy_timeout_ms / 1000))
            conns[-1].execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")  # pages read in place
            conns[-1].execute("SELECT 1 FROM journal_events LIMIT 1").fetchall()
    except sqlite3.Error:
        for conn in conns:
            conn.close()
        return None
    return conns


def _workers(from_seq: int, hi: int) -> int:
    """Worker threads for ``[from_seq, hi]``: one per core this process may run on, no more than
    there are ranges of :data:`RANGE_ROWS` rows."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, min(cores, -(-(hi - from_seq + 1) // RANGE_ROWS)))


def range_starts(from_seq: int, hi: int) -> tuple[list[int], int]:
    """(first seq of each range, rows per range) for ``[from_seq, hi]``: ranges of at most
    :data:`RANGE_ROWS` rows, as many for each worker, so that the cores end together."""
    total = hi - from_seq + 1
    workers = _workers(from_seq, hi)
    count = -(-max(workers, -(-total // RANGE_ROWS)) // workers) * workers
    size = -(-total // count)
    return list(range(from_seq, hi + 1, size)), size


def _ranges(conn: sqlite3.Connection, readers: list[sqlite3.Connection], from_seq: int, hi: int,
            tree: TreeCheck, bar: Progress) -> _Pass:
    """The range ``[from_seq, hi]`` cut into ranges (:func:`range_starts`), verified by one worker
    thread per reader connection and joined in seq order (module docstring)."""
    starts, size = range_starts(from_seq, hi)
    first_prev = _start_hash(conn, from_seq)
    leaf_end = tree.leaves_until()
    free: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
    for reader in readers:
        free.put(reader)
    stop = [len(starts)]  # ranges after a finding are not started

    def job(k: int) -> _Range | None:
        if k > stop[0]:
            return None
        lo = starts[k]
        reader = free.get()
        try:
            return _verify_range(reader, lo, min(lo + size - 1, hi),
                                 first_prev if k == 0 else None, leaf_end)
        finally:
            free.put(reader)

    checked = 0
    head: ChainHead | None = None
    bad: tuple[int, str] | None = None
    try:
        with ThreadPoolExecutor(len(readers), thread_name_prefix="pj-verify") as pool:
            futures: list[Future] = [pool.submit(job, k) for k in range(len(starts))]
            try:
                for k, future in enumerate(futures):
                    got = future.result()
                    assert got is not None  # only ranges after a finding are skipped
                    tree.feed_leaves(got.leaves)
                    checked += got.good
                    head = got.head or head
                    bar.update(got.good)
                    if got.bad is not None:
                        bad = got.bad
                        stop[0] = k
                        break
            finally:
                for future in futures:
                    future.cancel()
    finally:
        for reader in readers:
            reader.close()
    return _Pass(checked, head, bad)


def _verify_range(conn: sqlite3.Connection, lo: int, hi: int, prev: str | None,
                  leaf_end: int) -> _Range:
    """Rows ``[lo, hi]``, chaining from ``prev`` (None: the stored hash of row ``lo - 1``; when
    that row is gone or unchained the range before reports it first)."""
    if prev is None:
        row = conn.execute(_HASH_AT, (lo - 1,)).fetchone()
        prev = row[0] if row is not None and isinstance(row[0], str) else kernels.GENESIS_HASH
    try:
        n, payload_type, *columns = conn.execute(_JOINED_SELECT, (lo, hi)).fetchone()
    except sqlite3.OperationalError:  # a BLOB value ("JSON cannot hold BLOB values"): rows decide
        n = payload_type = None
    if n == hi - lo + 1 and payload_type == "text":
        leaves = kernels.verify_joined(prev, lo, n, columns, max(0, min(n, leaf_end - lo + 1)))
        if leaves is not None:
            last = columns[_HASH]  # ..."<64 hex>"]
            return _Range(n, ChainHead(hi, last[-66:-2].decode("ascii")), None, leaves)
    return _range_rows(conn, lo, hi, prev, leaf_end)


def _range_rows(conn: sqlite3.Connection, lo: int, hi: int, prev: str, leaf_end: int) -> _Range:
    """The range read as rows and checked by ``kernels.verify_chain``: every finding's path."""
    rows = conn.execute(_VERIFY_SELECT, (lo, hi)).fetchall()
    res = kernels.verify_chain(prev, lo, rows)
    good = len(rows) if res is None else res[0]
    if res is not None:
        bad: tuple[int, str] | None = (lo + res[0], res[1])
    else:
        bad = (lo + len(rows), "seq_gap") if len(rows) < hi - lo + 1 else None
    head = ChainHead(rows[good - 1][0], rows[good - 1][_HASH]) if good else None
    leaf_count = max(0, min(good, leaf_end - lo + 1))
    return _Range(good, head, bad, hashing.leaf_hashes(rows, 0, leaf_count) if leaf_count else b"")
