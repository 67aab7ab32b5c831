"""Retention and re-embedding: ``maintain()`` and ``reembed()`` of MEMORY.md.

``maintain`` deletes in one transaction (expired, too old, over the entry or byte cap, oldest
first) and records its figures; ``reembed`` walks the items whose vectors were made by another
(model, dims, version) in ``memory_id`` order, runs the provider with no lock held, and writes each
batch in its own short transaction, skipping items changed or deleted meanwhile, so an interrupted
run simply resumes where it stopped on the next call.
"""

from __future__ import annotations

import sys
import time
from numbers import Real
from typing import TYPE_CHECKING

from ..errors import InvalidPayloadError
from .ingest import check_provider_output
from .records import MaintenanceReport
from .search import DAY_MS

if TYPE_CHECKING:
    from .store import MemoryStore

_ORDER_OLDEST = "ORDER BY created_at_unix_ms, memory_id"
_ITEM_BYTES = ("length(CAST(i.content AS BLOB)) + COALESCE((SELECT length(v.vector) FROM "
               "memory_vectors v WHERE v.memory_id = i.memory_id), 0)")


def _check_cap(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidPayloadError(f"{name} must be an int >= 0, got {value!r}")
    return value


def maintain(mem: "MemoryStore", *, now_unix_ms=None, max_entries=None, max_bytes=None,
             ttl_days=None, vacuum=False) -> MaintenanceReport:
    from .store import bump, generation
    store = mem._store
    if now_unix_ms is not None and (isinstance(now_unix_ms, bool) or not isinstance(now_unix_ms, int)):
        raise InvalidPayloadError(f"now_unix_ms must be an int, got {now_unix_ms!r}")
    max_entries = _check_cap(max_entries, "max_entries")
    max_bytes = _check_cap(max_bytes, "max_bytes")
    if ttl_days is not None and (isinstance(ttl_days, bool) or not isinstance(ttl_days, Real)
                                 or not ttl_days > 0 or ttl_days == float("inf")):
        raise InvalidPayloadError(f"ttl_days must be a finite number > 0, got {ttl_days!r}")
    started = time.perf_counter()
    now = store.now_ms() if now_unix_ms is None else now_unix_ms
    deleted: list[str] = []
    counts = {}
    with store._lock:
        nested = store._tx_depth > 0
        with store.write() as conn:
            gen0 = generation(conn)

            def drop(name: str, sql: str, params=()) -> None:
                ids = [r[0] for r in conn.execute(sql, params)]
                mem.delete_ids(conn, ids)
                deleted.extend(ids)
                counts[name] = len(ids)

            drop("expired", "SELECT memory_id FROM memory_items WHERE ttl_unix_ms <= ?", (now,))
            if ttl_days is not None:
                cutoff = now - int(ttl_days * DAY_MS)
                drop("ttl", "SELECT memory_id FROM memory_items WHERE created_at_unix_ms < ?",
                     (cutoff,))
            if max_entries is not None:
                total = conn.execute("SELECT count(*) FROM memory_items").fetchone()[0]
                drop("entries", f"SELECT memory_id FROM memory_items {_ORDER_OLDEST} LIMIT ?",
                     (max(0, total - max_entries),))
            if max_bytes is not None:
                # newest first: keep items while the running total fits, drop the older rest
                rows = conn.execute(f"SELECT i.memory_id, {_ITEM_BYTES} FROM memory_items i "
                                    "ORDER BY created_at_unix_ms DESC, memory_id DESC").fetchall()
                running, cut = 0, len(rows)
                for k, (_, size) in enumerate(rows):
                    running += size
                    if running > max_bytes:
                        cut = k
                        break
                ids = [r[0] for r in rows[cut:]]
                mem.delete_ids(conn, ids)
                deleted.extend(ids)
                counts["bytes"] = len(ids)
            entries_after, bytes_after = conn.execute(
                f"SELECT count(*), COALESCE(sum({_ITEM_BYTES}), 0) FROM memory_items i").fetchone()
            gen1 = bump(conn, gen0)
            report = MaintenanceReport(
                ran_at_unix_ms=now, deleted_expired=counts.get("expired", 0),
                deleted_ttl=counts.get("ttl", 0), deleted_for_entries=counts.get("entries", 0),
                deleted_for_bytes=counts.get("bytes", 0), entries_after=entries_after,
                bytes_after=bytes_after, vacuumed=bool(vacuum and not nested),
                duration_ms=int((time.perf_counter() - started) * 1000))
            _record(conn, report)
        if deleted:
            mem._apply(nested, gen0, gen1, lambda idx: idx.remove(deleted))
        if report.vacuumed:
            with store.read() as conn:
                conn.execute("VACUUM")
    return report


def _record(conn, r: MaintenanceReport) -> None:
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
    return MaintenanceReport(*row[:7], bool(row[7]), row[8])


_STALE = (
    "SELECT i.memory_id, i.content, i.content_hash FROM memory_items i "
    "LEFT JOIN memory_vectors v ON v.memory_id = i.memory_id "
    "WHERE (v.memory_id IS NULL OR v.model != ? OR v.dims != ? OR v.version != ?) "
    "AND i.memory_id > ? ORDER BY i.memory_id LIMIT ?")


def reembed(mem: "MemoryStore", *, batch_size: int = 256, progress: bool = False) -> int:
    from .store import bump, generation
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 100_000:
        raise InvalidPayloadError(f"batch_size must be an int in [1, 100000], got {batch_size!r}")
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
        with store._lock:
            nested = store._tx_depth > 0
            now = store.now_ms()
            with store.write() as conn:
                gen0 = generation(conn)
                rows = []
                for (mid, _, chash), vec in zip(batch, vecs):
                    meta = conn.execute(
                        "SELECT principal, channel, session_id, source, tags_json, ttl_unix_ms, "
                        "created_at_unix_ms FROM memory_items WHERE memory_id = ? AND content_hash = ?",
                        (mid, chash)).fetchone()
                    if meta is None:  # deleted or changed while the provider ran
                        continue
                    conn.execute(
                        "INSERT INTO memory_vectors(memory_id, model, dims, version, vector, "
                        "embedded_at_unix_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(memory_id) DO "
                        "UPDATE SET model = excluded.model, dims = excluded.dims, version = "
                        "excluded.version, vector = excluded.vector, "
                        "embedded_at_unix_ms = excluded.embedded_at_unix_ms",
                        (mid, model, dims, version, vec.astype("<f4").tobytes(), now))
                    rows.append((mid, vec, *meta))
                gen1 = bump(conn, gen0)
            mem._apply(nested, gen0, gen1, lambda idx: idx.add(rows))
        total += len(rows)
        if show:
            print(f"\rre-embedded {total}", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    return total
