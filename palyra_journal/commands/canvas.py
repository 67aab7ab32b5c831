"""``palyra-journal canvas show|history|replay``: read a canvas, at any version, from a shell."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from ..errors import IntegrityError, NotFoundError
from . import READ, add_command, add_db, emit, open_db


def register(sub) -> None:
    parent = sub.add_parser("canvas", help="canvas documents: show (at any version), history, "
                            "replay", description="Canvas documents stored in the database: show "
                            "the latest state or the state at any version, list the patch "
                            "history, replay the history to check the stored snapshots.")
    csub = parent.add_subparsers(dest="canvas_command", metavar="SUBCOMMAND",
                                 parser_class=type(parent))
    parent.set_defaults(func=lambda args: (parent.print_help(), 2)[1])

    p = add_command(csub, "show", "show a canvas (latest, or --at-version N)", run_show,
                    description="Print a canvas's metadata and its JSON state: the latest "
                    "version, or the state as it was at --at-version N (time travel).")
    add_db(p, READ)
    p.add_argument("canvas_id", metavar="ID")
    p.add_argument("--at-version", type=int, default=None, metavar="N")

    p = add_command(csub, "history", "list a canvas's patches, oldest first", run_history)
    add_db(p, READ)
    p.add_argument("canvas_id", metavar="ID")
    p.add_argument("--after", type=int, default=0, metavar="VERSION",
                   help="only versions after this one")
    p.add_argument("--limit", type=int, default=1000, metavar="N")

    p = add_command(csub, "replay", "rebuild every version and check the stored snapshots",
                    run_replay, description="Rebuild the canvas from version 1 through every "
                    "patch and compare each stored snapshot and the latest state; exit 1 when "
                    "one differs.")
    add_db(p, READ)
    p.add_argument("canvas_id", metavar="ID")


def _when(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return stamp[:-3] + "Z"


def run_show(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        snap = store.canvas.get(args.canvas_id)
        if snap is None:
            raise NotFoundError(f"canvas_id {args.canvas_id!r} not found")
        data = snap.to_dict()
        if args.at_version is not None:
            data["state"] = store.canvas.state_at(args.canvas_id, args.at_version)
            data["current_version"] = snap.version
            data["version"] = args.at_version

    def human() -> str:
        at = (f"version {data['version']} of {snap.version}" if args.at_version is not None
              else f"version {snap.version}")
        closed = f"  closed: {snap.close_reason}" if snap.closed else ""
        return (f"canvas {snap.canvas_id}  {at}  session {snap.session_id}  principal "
                f"{snap.principal}  schema {snap.schema_version}  updated "
                f"{_when(snap.updated_at_unix_ms)}{closed}\n"
                + json.dumps(data["state"], indent=2, ensure_ascii=False, sort_keys=True))

    emit(args, data, human)
    return 0


def run_history(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        recs = store.canvas.history(args.canvas_id, after_version=args.after, limit=args.limit)

    def line(r) -> str:
        ops = r.patch["ops"] if isinstance(r.patch, dict) else r.patch
        summary = ", ".join(f"{o.get('op')} {o.get('path')}" for o in ops[:4])
        more = f" (+{len(ops) - 4} more)" if len(ops) > 4 else ""
        who = r.actor_principal or "-"
        return (f"v{r.version:<6} {_when(r.applied_at_unix_ms)}  by {who:<16} "
                f"{summary}{more}")

    emit(args, recs, lambda: "\n".join(map(line, recs)) or "no patches (version 1 only)")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        try:
            snap = store.canvas.replay(args.canvas_id)
        except IntegrityError as exc:
            emit(args, {"ok": False, "canvas_id": args.canvas_id, "error": str(exc)},
                 f"BROKEN: {exc}")
            return 1
    emit(args, {"ok": True, "canvas_id": snap.canvas_id, "version": snap.version},
         f"OK: canvas {snap.canvas_id} rebuilt through version {snap.version}; every stored "
         "snapshot matches")
    return 0
