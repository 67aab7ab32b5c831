"""Approvals (docs/approvals.md): human-in-the-loop requests and decisions.

Why it is built this way:

* A request is pending while ``decision`` is NULL. :meth:`ApprovalStore.resolve` writes the
  decision once, guarded in SQL (``WHERE decision IS NULL``) and by a trigger, because decisions
  are evidence: a second resolve raises :class:`AlreadyResolvedError` and changes nothing.
* ``request_summary``, ``reason``, ``policy_snapshot`` and ``prompt`` pass through the journal's
  redaction before they are stored (docs/journal.md "Redaction"): a summary quoting
  ``oauth_refresh_token=...`` or a prompt holding ``{"cookie": ...}`` never reaches the file.
* :meth:`ApprovalStore.standing_decision` reads the table, so a ``session`` or ``timeboxed``
  decision survives restarts; ``once`` decisions never apply again.
* :meth:`ApprovalStore.list` pages by ``approval_id``: ULIDs sort by creation time, so
  ``after_id`` = the last id of a page gives the next page without gaps or repeats.
* Every change writes its journal event (``approval.requested``, ``approval.resolved``) in the same
  transaction, so a call that raises has written nothing.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Callable

from . import kernels
from .errors import AlreadyResolvedError, DuplicateIdError, InvalidPayloadError, NotFoundError
from .fields import (
    MAX_TEXT_CHARS, canonical_within_limit, check_bool, check_choice, check_int,
    check_text, redact_text,
)
from .ids import new_ulid
from .paging import page_query

if TYPE_CHECKING:
    from .store import JournalStore

SUBJECT_TYPES = ("tool", "channel_send", "secret_access", "browser_action", "node_capability",
                 "device_pairing")
DECISIONS = ("allow", "deny", "timeout", "error")
SCOPES = ("once", "session", "timeboxed")
#: Decisions that :meth:`ApprovalStore.standing_decision` can return.
STANDING_DECISIONS = ("allow", "deny")


@dataclass(frozen=True)
class ApprovalRecord:
    """One approval request and its decision (docs/api.md); ``decision`` is None while pending.

    ``request_summary``, ``reason``, ``policy_snapshot`` and ``prompt`` are the stored, redacted
    values (``policy_snapshot`` and ``prompt`` as Python objects).
    """

    approval_id: str
    subject_type: str
    subject_id: str
    request_summary: str
    principal: str
    session_id: str | None
    run_id: str | None
    device_id: str | None
    channel: str | None
    policy_snapshot: Any
    prompt: Any
    requested_at_unix_ms: int
    expires_at_unix_ms: int | None
    decision: str | None
    scope: str | None
    reason: str | None
    scope_ttl_ms: int | None
    resolved_by: str | None
    resolved_at_unix_ms: int | None

    @property
    def pending(self) -> bool:
        return self.decision is None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: Fields stored as canonical JSON text, in a column named ``<field>_json``.
_JSON_FIELDS = ("policy_snapshot", "prompt")
_FIELDS = tuple(f.name for f in fields(ApprovalRecord))
#: ``approvals`` columns: the record's fields, the JSON ones under their ``_json`` column name.
COLUMNS = tuple(f"{name}_json" if name in _JSON_FIELDS else name for name in _FIELDS)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM approvals"
_INSERT = (f"INSERT INTO approvals ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join(':' + c for c in COLUMNS)})")


def _from_columns(values: dict[str, Any]) -> ApprovalRecord:
    """The record of a row given by column name (the JSON columns parsed)."""
    rec = {name: values[column] for name, column in zip(_FIELDS, COLUMNS)}
    for name in _JSON_FIELDS:
        if rec[name] is not None:
            rec[name] = kernels.loads_canonical(rec[name])  # stored canonical text: not re-validated
    return ApprovalRecord(**rec)


def _record(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> ApprovalRecord:
    """Row factory of ``_SELECT`` queries: the record, built by column name."""
    return _from_columns(dict(zip(COLUMNS, row)))


def _rows(conn: sqlite3.Connection, sql: str, params: Any = ()) -> sqlite3.Cursor:
    """Run a ``_SELECT`` query whose rows come back as :class:`ApprovalRecord`."""
    cur = conn.cursor()
    cur.row_factory = _record
    return cur.execute(sql, params)


# ---------------------------------------------------------------------------------------- store
class ApprovalStore:
    """``store.approvals``: create, resolve, get, list, expire_overdue, standing_decision."""

    def __init__(self, store: "JournalStore") -> None:
        self._store = store

    # ------------------------------------------------------------------ redaction
    def _redacted_json(self, name: str, value: Any) -> str:
        """Canonical JSON of the redacted value, within ``max_payload_bytes``."""
        return canonical_within_limit(value, name, rules=self._store.redaction, redact=True,
                                      limit=self._store.max_payload_bytes)

    def _redacted_text(self, name: str, value: Any) -> str:
        """A free-text field after redaction (fields.redact_text)."""
        return redact_text(check_text(name, value, max_chars=MAX_TEXT_CHARS), self._store.redaction)

    # ------------------------------------------------------------------ writes
    def create(self, *, subject_type: str, subject_id: str, request_summary: str, principal: str,
               session_id: str | None = None, run_id: str | None = None,
               device_id: str | None = None, channel: str | None = None,
               policy_snapshot: Any = None, prompt: Any = None, approval_id: str | None = None,
               expires_at_unix_ms: int | None = None) -> ApprovalRecord:
        """Record a pending request (decision None); writes ``approval.requested``."""
        check_choice("subject_type", subject_type, SUBJECT_TYPES)
        check_text("subject_id", subject_id, nullable=False)
        check_text("principal", principal, nullable=False)
        for name, value in (("session_id", session_id), ("run_id", run_id),
                            ("device_id", device_id), ("channel", channel),
                            ("approval_id", approval_id)):
            check_text(name, value, nullable=True)
        check_int("expires_at_unix_ms", expires_at_unix_ms, nullable=True)
        summary = self._redacted_text("request_summary", request_summary)
        policy = (None if policy_snapshot is None
                  else self._redacted_json("policy_snapshot", policy_snapshot))
        prompt_json = None if prompt is None else self._redacted_json("prompt", prompt)
        store = self._store
        with store.write() as conn:
            now = store.now_ms()
            aid = approval_id if approval_id is not None else new_ulid(now)
            if conn.execute("SELECT 1 FROM approvals WHERE approval_id = ?", (aid,)).fetchone():
                raise DuplicateIdError(f"approval_id {aid!r} already exists")
            row = dict.fromkeys(COLUMNS)
            row.update(approval_id=aid, subject_type=subject_type, subject_id=subject_id,
                       request_summary=summary, principal=principal, session_id=session_id,
                       run_id=run_id, device_id=device_id, channel=channel,
                       policy_snapshot_json=policy, prompt_json=prompt_json,
                       requested_at_unix_ms=now, expires_at_unix_ms=expires_at_unix_ms)
            conn.execute(_INSERT, row)
            store.record_events([{
                "kind": "approval.requested",
                "payload": {"approval_id": aid, "subject_type": subject_type,
                            "subject_id": subject_id, "request_summary": summary,
                            "expires_at_unix_ms": expires_at_unix_ms},
                "session_id": session_id, "run_id": run_id, "principal": principal,
                "device_id": device_id, "channel": channel, "timestamp_unix_ms": now}])
        return _from_columns(row)

    def resolve(self, approval_id: str, *, decision: str, scope: str = "once",
                reason: str | None = None, scope_ttl_ms: int | None = None,
                resolved_by: str | None = None) -> ApprovalRecord:
        """Decide a pending request once; a second resolve raises :class:`AlreadyResolvedError`.

        ``scope="timeboxed"`` needs ``scope_ttl_ms > 0``; the other scopes take no TTL.
        """
        check_text("approval_id", approval_id, nullable=False)
        check_choice("decision", decision, DECISIONS)
        check_choice("scope", scope, SCOPES)
        if scope == "timeboxed":
            check_int("scope_ttl_ms", scope_ttl_ms, nullable=False, lo=1)
        elif scope_ttl_ms is not None:
            raise InvalidPayloadError(f"scope_ttl_ms applies only to scope 'timeboxed', got "
                                      f"scope_ttl_ms={scope_ttl_ms!r} with scope {scope!r}")
        check_text("resolved_by", resolved_by, nullable=True)
        reason_text = None if reason is None else self._redacted_text("reason", reason)
        store = self._store
        with store.write() as conn:
            now = store.now_ms()
            rec = self._resolve_row(conn, approval_id, decision, scope, reason_text, scope_ttl_ms,
                                    resolved_by, now)
        return rec

    def _resolve_row(self, conn: sqlite3.Connection, approval_id: str, decision: str, scope: str,
                     reason: str | None, scope_ttl_ms: int | None, resolved_by: str | None,
                     now: int) -> ApprovalRecord:
        old: ApprovalRecord | None = _rows(conn, f"{_SELECT} WHERE approval_id = ?",
                                           (approval_id,)).fetchone()
        if old is None:
            raise NotFoundError(f"approval_id {approval_id!r} not found")
        if old.decision is not None:
            raise AlreadyResolvedError(f"approval_id {approval_id!r} was already resolved "
                                       f"({old.decision!r}); decisions never change")
        conn.execute("UPDATE approvals SET decision = ?, scope = ?, reason = ?, scope_ttl_ms = ?, "
                     "resolved_by = ?, resolved_at_unix_ms = ? "
                     "WHERE approval_id = ? AND decision IS NULL",
                     (decision, scope, reason, scope_ttl_ms, resolved_by, now, approval_id))
        rec = replace(old, decision=decision, scope=scope, reason=reason,
                      scope_ttl_ms=scope_ttl_ms, resolved_by=resolved_by, resolved_at_unix_ms=now)
        self._store.record_events([{
            "kind": "approval.resolved",
            "payload": {"approval_id": approval_id, "subject_type": rec.subject_type,
                        "subject_id": rec.subject_id, "decision": decision, "scope": scope,
                        "scope_ttl_ms": scope_ttl_ms, "reason": reason,
                        "resolved_by": resolved_by},
            "session_id": rec.session_id, "run_id": rec.run_id, "principal": rec.principal,
            "device_id": rec.device_id, "channel": rec.channel, "timestamp_unix_ms": now}])
        return rec

    def expire_overdue(self, *, now_unix_ms: int | None = None) -> int:
        """Pending requests whose ``expires_at_unix_ms`` is at or before now become ``timeout``."""
        store = self._store
        now = store.now_ms() if now_unix_ms is None else check_int("now_unix_ms", now_unix_ms)
        with store.write() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT approval_id FROM approvals WHERE decision IS NULL AND "
                "expires_at_unix_ms IS NOT NULL AND expires_at_unix_ms <= ? ORDER BY approval_id",
                (now,))]
            for aid in ids:
                self._resolve_row(conn, aid, "timeout", "once", "expired", None, "system", now)
        return len(ids)

    # ------------------------------------------------------------------ reads
    def get(self, approval_id: str) -> ApprovalRecord | None:
        check_text("approval_id", approval_id, nullable=False)
        with self._store.read() as conn:
            rec: ApprovalRecord | None = _rows(conn, f"{_SELECT} WHERE approval_id = ?",
                                               (approval_id,)).fetchone()
        return rec

    def list(self, *, after_id: str | None = None, limit: int = 100, pending: bool | None = None,
             principal: str | None = None, subject_id: str | None = None,
             subject_type: str | None = None, decision: str | None = None,
             since_unix_ms: int | None = None,
             until_unix_ms: int | None = None) -> list[ApprovalRecord]:
        """Requests in ``approval_id`` order (creation order), after ``after_id``.

        ``limit`` is clamped to [1, 1000]; ``since_unix_ms`` <= requested_at < ``until_unix_ms``;
        ``pending=True`` selects unresolved requests, ``False`` resolved ones.
        """
        check_bool("pending", pending, nullable=True)
        sql, params = page_query(_SELECT, (
            ("approval_id > ?", check_text("after_id", after_id, nullable=True)),
            ("decision IS NULL", True if pending is True else None),
            ("decision IS NOT NULL", True if pending is False else None),
            ("principal = ?", check_text("principal", principal, nullable=True)),
            ("subject_id = ?", check_text("subject_id", subject_id, nullable=True)),
            ("subject_type = ?", check_choice("subject_type", subject_type, SUBJECT_TYPES,
                                              nullable=True)),
            ("decision = ?", check_choice("decision", decision, DECISIONS, nullable=True)),
            ("requested_at_unix_ms >= ?", check_int("since_unix_ms", since_unix_ms, nullable=True)),
            ("requested_at_unix_ms < ?", check_int("until_unix_ms", until_unix_ms, nullable=True)),
        ), order_by="approval_id", limit=limit)
        with self._store.read() as conn:
            records: list[ApprovalRecord] = _rows(conn, sql, params).fetchall()
        return records

    def standing_decision(self, *, principal: str, subject_id: str, session_id: str | None = None,
                          now_unix_ms: int | None = None) -> ApprovalRecord | None:
        """The latest allow/deny for (principal, subject_id) that still applies, or None.

        A ``session`` decision applies within the same ``session_id``; a ``timeboxed`` one until
        ``resolved_at + scope_ttl_ms`` (exclusive), in any session; a ``once`` decision never
        applies again.
        """
        check_text("principal", principal, nullable=False)
        check_text("subject_id", subject_id, nullable=False)
        check_text("session_id", session_id, nullable=True)
        now = (self._store.now_ms() if now_unix_ms is None
               else check_int("now_unix_ms", now_unix_ms))
        sql = (f"{_SELECT} WHERE subject_id = ? AND principal = ? "
               "AND decision IN ('allow', 'deny') AND ("
               "(scope = 'timeboxed' AND resolved_at_unix_ms + scope_ttl_ms > ?)"
               + (" OR (scope = 'session' AND session_id = ?)" if session_id is not None else "")
               + ") ORDER BY resolved_at_unix_ms DESC, approval_id DESC LIMIT 1")
        params: list[Any] = [subject_id, principal, now]
        if session_id is not None:
            params.append(session_id)
        with self._store.read() as conn:
            rec: ApprovalRecord | None = _rows(conn, sql, params).fetchone()
        return rec


# ---------------------------------------------------------------------------------------- demo
def demo_step(store: "JournalStore", out: Any = None) -> dict[str, Any]:
    """Demo: an agent asks to run a shell tool, a human allows it for the session, and the
    standing decision then answers the next ask without a prompt. ``out`` (a text stream or a
    callable taking a line) gets one line per step; returns a summary dict."""
    emit: Callable[[str], Any] = ((lambda line: None) if out is None else out if callable(out)
                                  else (lambda line: out.write(line + "\n")))
    req = store.approvals.create(
        subject_type="tool", subject_id="shell.exec", principal="user:ada",
        session_id="demo-session", run_id="demo-run-1",
        request_summary="run `make release` (env has oauth_refresh_token=abc123)",
        prompt={"command": "make release", "details": {"cookie": "sessionid=42"}},
        policy_snapshot={"tool": "shell.exec", "requires_approval": True},
        expires_at_unix_ms=store.now_ms() + 60_000)
    emit(f"  approvals: requested {req.approval_id} ({req.subject_id}); summary stored as "
         f"{req.request_summary!r}")
    done = store.approvals.resolve(req.approval_id, decision="allow", scope="session",
                                   reason="release day", resolved_by="user:ada")
    standing = store.approvals.standing_decision(principal="user:ada", subject_id="shell.exec",
                                                 session_id="demo-session")
    emit(f"  approvals: resolved {done.decision} for the {done.scope}; the next ask in the session "
         f"is answered by {standing.approval_id if standing else None}")
    return {"approval_id": req.approval_id, "decision": done.decision, "scope": done.scope,
            "standing": standing is not None,
            "summary_redacted": "abc123" not in req.request_summary,
            "pending": len(store.approvals.list(pending=True))}


__all__ = ["ApprovalStore", "ApprovalRecord", "SUBJECT_TYPES", "DECISIONS", "SCOPES", "demo_step"]
