"""Canvas (docs/canvas.md): versioned JSON documents with time travel.

Why it is built this way:

* ``canvas_state`` holds the latest state, so :meth:`CanvasStore.get` is one row read.
  ``canvas_patches`` holds one row per version >= 2 (the patch as given, in canonical JSON) and
  ``canvas_snapshots`` a full state at version 1, every ``canvas_snapshot_interval``-th version and
  at restores; both are append-only (triggers), so storage grows with the patches, not with
  versions x state size.
* :meth:`CanvasStore.state_at` starts from the nearest snapshot at or below the version and applies
  at most ``interval - 1`` patches, fetched in one query, parsed in one ``loads_canonical`` call and
  applied in one loop by :func:`~palyra_journal.patch.apply_stored_all` (the stored patches were
  checked when written), so its cost does not depend on how old the version is.
  :meth:`CanvasStore.replay` uses the fully checked path: it is the verification.
* A patch is applied to the state parsed back from its stored canonical text, and the patch is
  re-read from *its* canonical text before it is applied, so the state written now is exactly what
  :meth:`CanvasStore.replay` rebuilds later from the stored rows.
* Canvas states are user documents: they are validated and canonicalized but **not redacted** (a
  redacted document would no longer be the one the agent edits). The journal events carry only ids,
  versions, sizes and the SHA-256 of the state, and go through the journal's redaction.
* Every change runs in one ``store.write()`` transaction with its journal event, so a call that
  raises has written nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from . import kernels
from .errors import (
    CanvasClosedError, DuplicateIdError, IntegrityError, InvalidPatchError, InvalidPayloadError,
    NotFoundError, VersionConflictError,
)
from .fields import canonical_within_limit, check_int, check_text, clamp_limit
from .ids import new_ulid
from .patch import StalePatchError, apply_ops_in_place, apply_stored_all, parse_patch

if TYPE_CHECKING:
    from .store import JournalStore

MAX_HISTORY = 1000
MAX_SCHEMA_VERSION = 2**31 - 1

#: Stored canonical text back to values (large integral doubles stay floats, not re-validated).
_loads = kernels.loads_canonical


class StateRow(NamedTuple):
    """A ``canvas_state`` row by column name (rows become named records at the SQL boundary)."""

    canvas_id: str
    session_id: str
    principal: str
    version: int
    schema_version: int
    state_json: str
    closed: int
    close_reason: str | None
    created_at_unix_ms: int
    updated_at_unix_ms: int


class PatchRow(NamedTuple):
    """A ``canvas_patches`` row by column name."""

    canvas_id: str
    version: int
    base_version: int
    patch_json: str
    actor_principal: str | None
    actor_device_id: str | None
    applied_at_unix_ms: int


_STATE_COLUMNS = StateRow._fields
_PATCH_COLUMNS = PatchRow._fields
_STATE_SELECT = f"SELECT {', '.join(_STATE_COLUMNS)} FROM canvas_state WHERE canvas_id = ?"
_INSERT_PATCH = (f"INSERT INTO canvas_patches ({', '.join(_PATCH_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(_PATCH_COLUMNS))})")
_INSERT_SNAPSHOT = ("INSERT INTO canvas_snapshots (canvas_id, version, state_json, "
                    "created_at_unix_ms) VALUES (?, ?, ?, ?)")
_NEAREST_SNAPSHOT = ("SELECT version, state_json FROM canvas_snapshots WHERE canvas_id = ? "
                     "AND version <= ? ORDER BY version DESC LIMIT 1")
_PATCHES_BETWEEN = ("SELECT patch_json FROM canvas_patches WHERE canvas_id = ? AND version > ? "
                    "AND version <= ? ORDER BY version")


# ---------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class CanvasSnapshot:
    """A canvas at one version (docs/api.md); ``state`` is the document as Python objects."""

    canvas_id: str
    session_id: str
    principal: str
    version: int
    schema_version: int
    state: Any
    closed: bool
    close_reason: str | None
    created_at_unix_ms: int
    updated_at_unix_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class CanvasPatchRecord:
    """One stored change (docs/api.md): ``patch`` is the patch as given (agent form or RFC 6902 array);
    ``replace_state`` and ``restore`` store ``[{"op": "replace", "path": "", "value": state}]``."""

    canvas_id: str
    version: int
    base_version: int
    patch: Any
    actor_principal: str | None
    actor_device_id: str | None
    applied_at_unix_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _snapshot(row: StateRow, state: Any = None, *, parsed: bool = False) -> CanvasSnapshot:
    return CanvasSnapshot(row.canvas_id, row.session_id, row.principal, row.version,
                          row.schema_version, state if parsed else _loads(row.state_json),
                          bool(row.closed), row.close_reason, row.created_at_unix_ms,
                          row.updated_at_unix_ms)


def _named(conn: sqlite3.Connection, record: Any, sql: str, params: Any) -> sqlite3.Cursor:
    """Run ``sql`` with rows coming back as the namedtuple ``record`` (StateRow, PatchRow)."""
    cur = conn.cursor()
    cur.row_factory = lambda _cursor, row: record._make(row)
    return cur.execute(sql, params)


# ---------------------------------------------------------------------------------------- checks
def _root_replace(state: Any) -> list[dict[str, Any]]:
    """The patch stored for a whole-state change (replace_state, restore)."""
    return [{"op": "replace", "path": "", "value": state}]


# ---------------------------------------------------------------------------------------- store
class CanvasStore:
    """``store.canvas``: create, patch, replace, read, time-travel, replay, restore, close."""

    def __init__(self, store: "JournalStore") -> None:
        self._store = store

    # ------------------------------------------------------------------ helpers
    def _canonical(self, value: Any, what: str) -> str:
        """Canonical JSON (not redacted) of a state or patch, within ``max_payload_bytes``."""
        return canonical_within_limit(value, what, rules=self._store.redaction, redact=False,
                                      limit=self._store.max_payload_bytes)

    @staticmethod
    def _row(conn: sqlite3.Connection, canvas_id: Any) -> StateRow:
        check_text("canvas_id", canvas_id, nullable=False)
        row: StateRow | None = _named(conn, StateRow, _STATE_SELECT, (canvas_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"canvas_id {canvas_id!r} not found")
        return row

    @staticmethod
    def _check_writable(row: StateRow, expected_version: Any) -> None:
        canvas_id, version = row.canvas_id, row.version
        if row.closed:
            raise CanvasClosedError(f"canvas_id {canvas_id!r} is closed ({row.close_reason}); it "
                                    "refuses changes")
        if expected_version is not None:
            check_int("expected_version", expected_version, lo=1)
            if expected_version != version:
                raise VersionConflictError(expected_version, version, canvas_id)

    def _append_version(self, conn: sqlite3.Connection, row: StateRow, new_text: str, patch_text: str, *,
                        actor_principal: str | None, actor_device_id: str | None,
                        schema_version: int | None, snapshot: bool, kind: str,
                        event: dict[str, Any]) -> CanvasSnapshot:
        """Write version current+1: the patch row, a snapshot when due, the state row, the event."""
        store = self._store
        canvas_id, base = row.canvas_id, row.version
        version = base + 1
        now = store.now_ms()
        conn.execute(_INSERT_PATCH, (canvas_id, version, base, patch_text, actor_principal,
                                     actor_device_id, now))
        if snapshot or version % store.canvas_snapshot_interval == 0:
            conn.execute(_INSERT_SNAPSHOT, (canvas_id, version, new_text, now))
        schema = row.schema_version if schema_version is None else schema_version
        conn.execute("UPDATE canvas_state SET version = ?, state_json = ?, schema_version = ?, "
                     "updated_at_unix_ms = ? WHERE canvas_id = ?",
                     (version, new_text, schema, now, canvas_id))
        payload = {"canvas_id": canvas_id, "version": version, "base_version": base,
                   "schema_version": schema, **_state_digest(new_text), **event}
        if actor_principal is not None:
            payload["actor_principal"] = actor_principal
        store.record_events([{"kind": kind, "payload": payload, "session_id": row.session_id,
                              "principal": row.principal, "device_id": actor_device_id,
                              "timestamp_unix_ms": now}])
        return _snapshot(row._replace(version=version, schema_version=schema, state_json=new_text,
                                      updated_at_unix_ms=now))

    # ------------------------------------------------------------------ writes
    def create(self, state: Any, *, session_id: str, principal: str, canvas_id: str | None = None,
               schema_version: int = 1, actor_principal: str | None = None,
               actor_device_id: str | None = None) -> CanvasSnapshot:
        """A new canvas at version 1 (its first snapshot); ``canvas_id`` defaults to a ULID."""
        check_text("session_id", session_id, nullable=False)
        check_text("principal", principal, nullable=False)
        check_text("canvas_id", canvas_id, nullable=True)
        check_text("actor_principal", actor_principal, nullable=True)
        check_text("actor_device_id", actor_device_id, nullable=True)
        check_int("schema_version", schema_version, lo=1, hi=MAX_SCHEMA_VERSION)
        text = self._canonical(state, "state")
        store = self._store
        with store.write() as conn:
            now = store.now_ms()
            cid = canvas_id if canvas_id is not None else new_ulid(now)
            if conn.execute("SELECT 1 FROM canvas_state WHERE canvas_id = ?", (cid,)).fetchone():
                raise DuplicateIdError(f"canvas_id {cid!r} already exists")
            row = StateRow(cid, session_id, principal, 1, schema_version, text, 0, None, now, now)
            conn.execute(f"INSERT INTO canvas_state ({', '.join(_STATE_COLUMNS)}) "
                         f"VALUES ({', '.join('?' * len(_STATE_COLUMNS))})", row)
            conn.execute(_INSERT_SNAPSHOT, (cid, 1, text, now))
            payload = {"canvas_id": cid, "version": 1, "schema_version": schema_version,
                       **_state_digest(text)}
            if actor_principal is not None:
                payload["actor_principal"] = actor_principal
            store.record_events([{"kind": "canvas.created", "payload": payload,
                                  "session_id": session_id, "principal": principal,
                                  "device_id": actor_device_id, "timestamp_unix_ms": now}])
        return _snapshot(row)

    def apply_patch(self, canvas_id: str, patch: Any, *, expected_version: int | None = None,
                    actor_principal: str | None = None,
                    actor_device_id: str | None = None) -> CanvasSnapshot:
        """Apply ``patch`` (agent form or RFC 6902, all ops or none) as the next version."""
        check_text("actor_principal", actor_principal, nullable=True)
        check_text("actor_device_id", actor_device_id, nullable=True)
        form, _ = parse_patch(patch)  # shape errors first, naming op index and path
        patch_text = self._canonical(patch, "patch")
        _, ops = parse_patch(_loads(patch_text))  # apply exactly what is stored
        with self._store.write() as conn:
            row = self._row(conn, canvas_id)
            self._check_writable(row, expected_version)
            new_state = apply_ops_in_place(_loads(row.state_json), ops)
            new_text = self._canonical(new_state, "state")
            return self._append_version(
                conn, row, new_text, patch_text, actor_principal=actor_principal,
                actor_device_id=actor_device_id, schema_version=None, snapshot=False,
                kind="canvas.patched", event={"form": form, "ops": len(ops)})

    def replace_state(self, canvas_id: str, state: Any, *, expected_version: int | None = None,
                      actor_principal: str | None = None, actor_device_id: str | None = None,
                      schema_version: int | None = None) -> CanvasSnapshot:
        """Replace the whole document as the next version (stored as a root ``replace`` patch)."""
        check_text("actor_principal", actor_principal, nullable=True)
        check_text("actor_device_id", actor_device_id, nullable=True)
        if schema_version is not None:
            check_int("schema_version", schema_version, lo=1, hi=MAX_SCHEMA_VERSION)
        new_text = self._canonical(state, "state")
        patch_text = self._canonical(_root_replace(_loads(new_text)), "patch")
        with self._store.write() as conn:
            row = self._row(conn, canvas_id)
            self._check_writable(row, expected_version)
            return self._append_version(
                conn, row, new_text, patch_text, actor_principal=actor_principal,
                actor_device_id=actor_device_id, schema_version=schema_version, snapshot=False,
                kind="canvas.patched", event={"form": "replace_state", "ops": 1})

    def restore(self, canvas_id: str, version: int, *, expected_version: int | None = None,
                actor_principal: str | None = None,
                actor_device_id: str | None = None) -> CanvasSnapshot:
        """Append version current+1 holding ``state_at(version)``; history is never rewound."""
        check_text("actor_principal", actor_principal, nullable=True)
        check_text("actor_device_id", actor_device_id, nullable=True)
        with self._store.write() as conn:
            row = self._row(conn, canvas_id)
            self._check_writable(row, expected_version)
            old_text = self._canonical(self._state_at(conn, row, version), "state")
            patch_text = self._canonical(_root_replace(_loads(old_text)), "patch")
            return self._append_version(
                conn, row, old_text, patch_text, actor_principal=actor_principal,
                actor_device_id=actor_device_id, schema_version=None, snapshot=True,
                kind="canvas.restored", event={"restored_from": version})

    def close(self, canvas_id: str, *, reason: str = "closed_by_operator") -> CanvasSnapshot:
        """Close the canvas: it keeps its history and stays readable, but refuses changes."""
        check_text("reason", reason, nullable=False)
        store = self._store
        with store.write() as conn:
            row = self._row(conn, canvas_id)
            self._check_writable(row, None)
            now = store.now_ms()
            conn.execute("UPDATE canvas_state SET closed = 1, close_reason = ?, "
                         "updated_at_unix_ms = ? WHERE canvas_id = ?",
                         (reason, now, row.canvas_id))
            store.record_events([{"kind": "canvas.closed",
                                  "payload": {"canvas_id": row.canvas_id, "version": row.version,
                                              "reason": reason},
                                  "session_id": row.session_id, "principal": row.principal,
                                  "timestamp_unix_ms": now}])
        return _snapshot(row._replace(closed=1, close_reason=reason, updated_at_unix_ms=now))

    # ------------------------------------------------------------------ reads
    def get(self, canvas_id: str) -> CanvasSnapshot | None:
        """The latest version, or None for an unknown id."""
        check_text("canvas_id", canvas_id, nullable=False)
        with self._store.read() as conn:
            row = _named(conn, StateRow, _STATE_SELECT, (canvas_id,)).fetchone()
        return None if row is None else _snapshot(row)

    def state_at(self, canvas_id: str, version: int) -> Any:
        """The document as it was when ``version`` was current."""
        with self._store.read() as conn:
            return self._state_at(conn, self._row(conn, canvas_id), version)

    def _state_at(self, conn: sqlite3.Connection, row: StateRow, version: Any) -> Any:
        canvas_id, current = row.canvas_id, row.version
        check_int("version", version, lo=1)
        if version > current:
            raise NotFoundError(f"canvas_id {canvas_id!r} has no version {version} "
                                f"(current version {current})")
        if version == current:
            return _loads(row.state_json)
        snap = conn.execute(_NEAREST_SNAPSHOT, (canvas_id, version)).fetchone()
        if snap is None:
            raise IntegrityError(f"canvas_id {canvas_id!r} has no snapshot at or below version "
                                 f"{version}")
        base, text = snap
        state = _loads(text)
        if base == version:
            return state
        texts = [text for text, in conn.execute(_PATCHES_BETWEEN, (canvas_id, base, version))]
        if len(texts) != version - base:
            raise IntegrityError(f"canvas_id {canvas_id!r}: {version - base - len(texts)} "
                                 f"patch(es) missing between versions {base} and {version}")
        patches = _loads("[" + ",".join(texts) + "]")
        try:
            state = apply_stored_all(state, patches)
        except StalePatchError:  # a stored row no longer applies: the checked path says where
            state = _loads(text)
            for i, patch in enumerate(patches, start=base + 1):
                try:
                    state = apply_ops_in_place(state, parse_patch(patch)[1])
                except InvalidPatchError as exc:
                    raise IntegrityError(f"canvas_id {canvas_id!r}: the stored patch for version "
                                         f"{i} no longer applies ({exc})") from exc
        return state

    def history(self, canvas_id: str, *, after_version: int = 0,
                limit: int = MAX_HISTORY) -> list[CanvasPatchRecord]:
        """Stored patches with version > ``after_version``, oldest first; ``limit`` in [1, 1000]."""
        check_int("after_version", after_version, lo=0)
        limit = clamp_limit(limit, MAX_HISTORY)
        with self._store.read() as conn:
            self._row(conn, canvas_id)
            rows = _named(
                conn, PatchRow,
                f"SELECT {', '.join(_PATCH_COLUMNS)} FROM canvas_patches WHERE canvas_id = ? "
                "AND version > ? ORDER BY version LIMIT ?",
                (canvas_id, after_version, limit)).fetchall()
        return [CanvasPatchRecord(r.canvas_id, r.version, r.base_version, _loads(r.patch_json),
                                  r.actor_principal, r.actor_device_id, r.applied_at_unix_ms)
                for r in rows]

    def replay(self, canvas_id: str) -> CanvasSnapshot:
        """Rebuild every version from version 1 and check each stored snapshot and the latest state.

        Raises :class:`IntegrityError` naming the first version whose stored snapshot (or the
        latest state, or the version-1 state recorded in the ``canvas.created`` event) differs
        from what the patches rebuild, or a missing or out-of-order patch.
        """
        with self._store.read() as conn:
            row = self._row(conn, canvas_id)
            snaps = conn.execute("SELECT version, state_json FROM canvas_snapshots "
                                 "WHERE canvas_id = ? ORDER BY version", (canvas_id,))
            first = snaps.fetchone()
            if first is None or first[0] != 1:
                raise IntegrityError(f"canvas_id {canvas_id!r}: the version-1 snapshot is missing")
            first_text: str = first[1]
            self._check_created_event(canvas_id, first_text)
            pending = snaps.fetchall()  # versions and texts of the later snapshots
            want = {v: t for v, t in pending}
            state = _loads(first_text)
            expected = 2
            for version, base, patch_json in conn.execute(
                    "SELECT version, base_version, patch_json FROM canvas_patches "
                    "WHERE canvas_id = ? ORDER BY version", (canvas_id,)):
                if version != expected or base != version - 1:
                    raise IntegrityError(
                        f"canvas_id {canvas_id!r}: patch for version {version} (base {base}) "
                        f"found where version {expected} was expected")
                try:
                    state = apply_ops_in_place(state, parse_patch(_loads(patch_json))[1])
                except (InvalidPayloadError, ValueError) as exc:
                    raise IntegrityError(f"canvas_id {canvas_id!r}: the stored patch for version "
                                         f"{version} no longer applies ({exc})") from exc
                stored = want.pop(version, None)
                if stored is not None and self._rebuilt_text(state) != stored:
                    raise IntegrityError(
                        f"canvas_id {canvas_id!r}: the stored snapshot at version {version} "
                        "differs from the state rebuilt from the patches")
                expected += 1
            if want:
                raise IntegrityError(f"canvas_id {canvas_id!r}: snapshot(s) at version(s) "
                                     f"{sorted(want)} have no patch history")
            if expected - 1 != row.version:
                raise IntegrityError(f"canvas_id {canvas_id!r}: the patches end at version "
                                     f"{expected - 1} but the current version is {row.version}")
            text = self._rebuilt_text(state)
            if text != row.state_json:
                raise IntegrityError(f"canvas_id {canvas_id!r}: the latest state (version "
                                     f"{row.version}) differs from the state rebuilt from the patches")
        return _snapshot(row, _loads(text), parsed=True)

    def _rebuilt_text(self, state: Any) -> str:
        return kernels.canonicalize(state, rules=self._store.redaction, redact=False)[0]

    def _check_created_event(self, canvas_id: str, text: str) -> None:
        """The version-1 snapshot must hash to the ``state_sha256`` its creation event recorded."""
        rec = self._store.journal.first_event("canvas.created", payload_key="canvas_id",
                                              payload_value=canvas_id)
        if rec is None:
            return
        recorded = rec.payload.get("state_sha256") if isinstance(rec.payload, dict) else None
        if recorded is not None and recorded != _sha256(text):
            raise IntegrityError(f"canvas_id {canvas_id!r}: the version-1 snapshot differs from "
                                 "the state recorded by its canvas.created event")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _state_digest(text: str) -> dict[str, Any]:
    """What a journal event records of a state: its size and SHA-256 (never its content)."""
    data = text.encode("utf-8")
    return {"state_bytes": len(data), "state_sha256": hashlib.sha256(data).hexdigest()}


# ---------------------------------------------------------------------------------------- demo
def demo_step(store: "JournalStore", out: Any = None) -> dict[str, Any]:
    """Demo: a task board edited over several versions, then read back at an old version,
    restored, replayed and closed. ``out`` (a text stream or a callable taking a line) gets one
    line per step; returns a summary dict for the demo's table."""
    emit: Callable[[str], Any] = ((lambda line: None) if out is None else out if callable(out)
                                  else (lambda line: out.write(line + "\n")))
    snap = store.canvas.create({"title": "Release plan", "tasks": []}, session_id="demo-session",
                               principal="user:ada", actor_principal="agent:planner")
    cid = snap.canvas_id
    for i, task in enumerate(("write changelog", "tag release", "publish wheels", "announce")):
        snap = store.canvas.apply_patch(
            cid, {"v": 1, "ops": [{"op": "add", "path": "/tasks/-",
                                   "value": {"id": i + 1, "title": task, "done": False}}]},
            expected_version=snap.version, actor_principal="agent:planner")
    snap = store.canvas.apply_patch(cid, [{"op": "replace", "path": "/tasks/0/done", "value": True},
                                          {"op": "move", "from": "/tasks/3", "path": "/tasks/1"}],
                                    expected_version=snap.version, actor_principal="user:ada")
    emit(f"  canvas: {cid} at version {snap.version} with {len(snap.state['tasks'])} tasks")
    old = store.canvas.state_at(cid, 3)
    emit(f"  canvas: version 3 had {len(old['tasks'])} tasks: "
         + ", ".join(t["title"] for t in old["tasks"]))
    restored = store.canvas.restore(cid, 3, actor_principal="user:ada")
    emit(f"  canvas: restored version 3 as version {restored.version}")
    replayed = store.canvas.replay(cid)
    store.canvas.close(cid, reason="demo finished")
    return {"canvas_id": cid, "versions": restored.version,
            "tasks_at_v3": len(old["tasks"]), "tasks_latest": len(snap.state["tasks"]),
            "replay_ok": replayed.state == restored.state}


__all__ = ["CanvasStore", "CanvasSnapshot", "CanvasPatchRecord", "demo_step"]
