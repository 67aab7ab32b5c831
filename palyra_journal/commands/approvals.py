"""``palyra-journal approvals list|resolve|expire``: review and decide requests from a shell."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from ..approvals import DECISIONS, SCOPES, SUBJECT_TYPES
from . import READ, WRITE, add_command, add_db, emit, open_db


def register(sub) -> None:
    parent = sub.add_parser("approvals", help="approval requests: list, resolve, expire",
                            description="Human-in-the-loop approval requests stored in the "
                            "database: list them (pending ones with --pending), resolve one, "
                            "time out the overdue ones.")
    asub = parent.add_subparsers(dest="approvals_command", metavar="SUBCOMMAND",
                                 parser_class=type(parent))
    parent.set_defaults(func=lambda args: (parent.print_help(), 2)[1])

    p = add_command(asub, "list", "list requests, oldest first", run_list)
    add_db(p, READ)
    state = p.add_mutually_exclusive_group()
    state.add_argument("--pending", action="store_const", const=True, default=None,
                       help="only unresolved requests")
    state.add_argument("--resolved", dest="pending", action="store_const", const=False,
                       help="only resolved requests")
    p.add_argument("--principal")
    p.add_argument("--subject-id")
    p.add_argument("--subject-type", choices=SUBJECT_TYPES)
    p.add_argument("--decision", choices=DECISIONS)
    p.add_argument("--after", metavar="APPROVAL_ID", help="the last id of the previous page")
    p.add_argument("--limit", type=int, default=100)

    p = add_command(asub, "resolve", "decide a pending request (once: decisions never change)",
                    run_resolve, description="Record the decision for a pending request. "
                    "--scope session applies to the rest of the session, --scope timeboxed "
                    "for --ttl-ms milliseconds.")
    add_db(p, WRITE)
    p.add_argument("approval_id", metavar="APPROVAL_ID")
    p.add_argument("--decision", required=True, choices=DECISIONS)
    p.add_argument("--scope", default="once", choices=SCOPES)
    p.add_argument("--ttl-ms", dest="scope_ttl_ms", type=int, default=None, metavar="MS")
    p.add_argument("--reason")
    p.add_argument("--by", dest="resolved_by", metavar="PRINCIPAL")

    p = add_command(asub, "expire", "time out pending requests past their deadline", run_expire)
    add_db(p, WRITE)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _line(r) -> str:
    state = r.decision or "PENDING"
    scope = f"/{r.scope}" if r.scope else ""
    return (f"{r.approval_id}  {state + scope:<17} {r.subject_type}:{r.subject_id}  "
            f"{r.principal}  {_when(r.requested_at_unix_ms)}  {r.request_summary}")


def run_list(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        recs = store.approvals.list(after_id=args.after, limit=args.limit, pending=args.pending,
                                    principal=args.principal, subject_id=args.subject_id,
                                    subject_type=args.subject_type, decision=args.decision)
    emit(args, recs, lambda: "\n".join(map(_line, recs)) or "no approval requests")
    return 0


def run_resolve(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        rec = store.approvals.resolve(args.approval_id, decision=args.decision, scope=args.scope,
                                      reason=args.reason, scope_ttl_ms=args.scope_ttl_ms,
                                      resolved_by=args.resolved_by)
    emit(args, rec, lambda: "resolved " + _line(rec))
    return 0


def run_expire(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        n = store.approvals.expire_overdue()
    emit(args, {"expired": n}, f"{n} request(s) timed out")
    return 0
