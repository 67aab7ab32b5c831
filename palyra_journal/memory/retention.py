"""Retention and re-embedding: ``maintain()`` and ``reembed()`` of docs/memory.md.

``maintain`` deletes in one transaction (expired, too old, over the entry or byte cap, oldest
first) and records its figures; ``reembed`` walks the items whose vectors were made by another
(model, dims, version) in ``memory_id`` order, runs the provider with no lock held, and writes each
batch in its own short transaction, skipping items changed or deleted meanwhile, so an interrupted
run simply resumes where it stopped on the next call.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from ..fields import check_int, check_number
from .index import VectorIndex
from ..engines import dialect_of
from .ingest import check_provider_output
from .mutation import delete_items, ids_sha256
from .records import MaintenanceReport
from .search import DAY_MS

if TYPE_CHECKING:
    from .store import MemoryStore

_ORDER_OLDEST = "ORDER BY created_at_unix_ms, memory_id"


def _item_bytes(conn: Any) -> str:
    """An item's size: its content's UTF-8 bytes and its vector's."""
    return (f"{dialect_of(conn).text_bytes('i.content')} + COALESCE((SELECT length(v.vector) "
            "FROM memory_vectors v WHERE v.memory_id = i.memory_id), 0)")


def maintain(mem: "MemoryStore", *, now_unix_ms: int | None = None,
             max_entries: int | None = None, max_bytes: int | None = None,
             ttl_days: float | None = None, vacuum: bool = False) -> MaintenanceReport:
    store = mem._store
    check_int("now_unix_ms", now_unix_ms, nullable=True)
    max_entries = check_int("max_entries", max_entries, nullable=True)
    max_bytes = check_int("max_bytes", max_bytes, nullable=True)
    check_number("ttl_days", ttl_days, lo=0.0, lo_open=True, nullable=True)
    started = time.perf_counter()
    now = store.now_ms() if now_unix_ms is None else now_unix_ms
    deleted: list[str] = []
    counts = {}
    nested = store.in_transaction  # VACUUM cannot run inside a transaction
    with mem._mutation() as m:
        conn = m.conn

        def drop(name: str, sql: str, params: tuple[Any, ...] = ()) -> None:
            ids = [r[0] for r in conn.execute(sql, params)]
            delete_items(conn, ids)
            deleted.extend(ids)
            counts[name] = len(ids)

        drop("expired", "SELECT memory_id FROM memory_items WHERE ttl_unix_ms <= ?", (now,))
        if ttl_days is not None:
            cutoff = now - int(float(ttl_days) * DAY_MS)
            drop("ttl", "SELECT memory_id FROM memory_items WHERE created_at_unix_ms < ?",
                 (cutoff,))
        if max_entries is not None:
            total = conn.execute("SELECT count(*) FROM memory_items").fetchone()[0]
            drop("entries", f"SELECT memory_id FROM memory_items {_ORDER_OLDEST} LIMIT ?",
                 (max(0, total - max_entries),))
        if max_bytes is not None:
            # newest first: keep items while the running total fits, drop the older rest
            rows = conn.execute(f"SELECT i.memory_id, {_item_bytes(conn)} FROM memory_items i "
                                "ORDER BY created_at_unix_ms DESC, memory_id DESC").fetchall()
            running, cut = 0, len(rows)
            for k, (_, size) in enumerate(rows):
                running += size
                if running > max_bytes:
                    cut = k
                    break
            ids = [r[0] for r in rows[cut:]]
            delete_items(conn, ids)
            deleted.extend(ids)
            counts["bytes"] = len(ids)
        entries_after, bytes_after = conn.execute(
            f"SELECT count(*), COALESCE(sum({_item_bytes(conn)}), 0) FROM memory_items i").fetchone()
        report = MaintenanceReport(
            ran_at_unix_ms=now, deleted_expired=counts.get("expired", 0),
            deleted_ttl=counts.get("ttl", 0), deleted_for_entries=counts.get("entries", 0),
            deleted_for_bytes=counts.get("bytes", 0), entries_after=entries_after,
            bytes_after=bytes_after, vacuumed=bool(vacuum and not nested),
            duration_ms=int((time.perf_counter() - started) * 1000))
        _record(conn, report)
        m.event("memory.maintained", {
            "deleted_expired": report.deleted_expired, "deleted_ttl": report.deleted_ttl,
            "deleted_for_entries": report.deleted_for_entries,
            "deleted_for_bytes": report.deleted_for_bytes, "count": len(deleted),
            "ids_sha256": ids_sha256(deleted), "entries_after": entries_after,
            "bytes_after": bytes_after, "vacuumed": report.vacuumed})
        if deleted:
            m.index(lambda idx: idx.remove(deleted))
    if report.vacuumed:
        with store.read() as conn:
            conn.execute("VACUUM")
    return report


def _record(conn: sqlite3.Connection, r: MaintenanceReport) -> None:
    conn.execute(
        "INSERT INTO memory_maintenance_state(id, ran_at_unix_ms, deleted_expired, deleted_ttl, "
        "deleted_for_entries, deleted_for_bytes, entries_after, bytes_after, vacuumed, duration_ms) "
        "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
        "ran_at_unix_ms = excluded.ran_at_unix_ms, deleted_expired = excluded.deleted_expired, "
        "deleted_ttl = excluded.deleted_ttl, deleted_for_entries = excluded.deleted_for_entries, "
        "deleted_for_bytes = excluded.deleted_for_bytes, entries_after = excluded.entries_after, "
        "bytes_after = excluded.bytes_after, vacuumed = excluded.vacuumed, "
        "duration_ms = excluded.duration_ms",
        (r.ran_at_unix_ms, r.deleted_expired, r.deleted_ttl, r.deleted_for_entries,
         r.deleted_for_bytes, r.entries_after, r.bytes_after, int(r.vacuumed), r.duration_ms))


def last_maintenance(mem: "MemoryStore") -> MaintenanceReport | None:
    """The figures of the last ``maintain()`` run, from ``memory_maintenance_state``."""
    with mem._store.read() as conn:
        row = conn.execute(
            "SELECT ran_at_unix_ms, deleted_expired, deleted_ttl, deleted_for_entries, "
            "deleted_for_bytes, entries_after, bytes_after, vacuumed, duration_ms "
            "FROM memory_maintenance_state WHERE id = 1").fetchone()
    if row is None:
        return None
    (ran_at, expired, ttl, entries, size, entries_after, bytes_after, vacuumed, duration) = row
    return MaintenanceReport(ran_at, expired, ttl, entries, size, entries_after, bytes_after,
                             bool(vacuumed), duration)


_STALE = (
    "SELECT i.memory_id, i.content, i.content_hash FROM memory_items i "
    "LEFT JOIN memory_vectors v ON v.memory_id = i.memory_id "
    "WHERE (v.memory_id IS NULL OR v.model != ? OR v.dims != ? OR v.version != ?) "
    "AND i.memory_id > ? ORDER BY i.memory_id LIMIT ?")


def reembed(mem: "MemoryStore", *, batch_size: int = 256, progress: bool = False) -> int:
    check_int("batch_size", batch_size, lo=1, hi=100_000)
    store = mem._store
    model, dims, version = mem._key()
    show = progress and sys.stderr.isatty()
    after, total = "", 0
    while True:
        with store.read() as conn:
            batch = conn.execute(_STALE, (model, dims, version, after, batch_size)).fetchall()
        if not batch:
            break
        after = batch[-1][0]
        # the provider runs here, with no lock and no transaction open
        vecs = check_provider_output(mem.provider.embed([r[1] for r in batch]), len(batch), dims)
        now = store.now_ms()
        with mem._mutation() as m:
            rows = []
            for (mid, _, chash), vec in zip(batch, vecs):
                meta = m.conn.execute(
                    "SELECT principal, channel, session_id, source, tags_json, ttl_unix_ms, "
                    "created_at_unix_ms FROM memory_items WHERE memory_id = ? AND content_hash = ?",
                    (mid, chash)).fetchone()
                if meta is None:  # deleted or changed while the provider ran
                    continue
                m.conn.execute(
                    "INSERT INTO memory_vectors(memory_id, model, dims, version, vector, "
                    "embedded_at_unix_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(memory_id) DO "
                    "UPDATE SET model = excluded.model, dims = excluded.dims, version = "
                    "excluded.version, vector = excluded.vector, "
                    "embedded_at_unix_ms = excluded.embedded_at_unix_ms",
                    (mid, model, dims, version, vec.astype("<f4").tobytes(), now))
                rows.append((mid, vec, *meta))
            if rows:
                ids = [r[0] for r in rows]
                m.event("memory.reembedded", {"count": len(rows), "ids_sha256": ids_sha256(ids),
                                              "model": model, "dims": dims, "version": version},
                        timestamp_unix_ms=now)
                m.index(partial(VectorIndex.add, rows=rows))
        total += len(rows)
        if show:
            print(f"\rre-embedded {total}", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    return total
