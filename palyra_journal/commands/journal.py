"""Journal subcommands: append, ingest, verify, tail, export, checkpoint, vacuum, demo."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

from ..errors import InvalidPathError, InvalidPayloadError, JournalError
from . import CREATE, READ, WRITE, add_command, add_db, add_schema, emit, open_db, schema_option

PAYLOAD_LIMIT_HELP = ("largest canonical payload accepted, in bytes (default 262144); a larger "
                      "one is refused with exit 2")


def register(sub) -> None:
    p = add_command(sub, "demo", "run the main job on a synthetic sample (in a temp dir or DB)",
                    run_demo, description="Create a sample database (in a new temporary directory, "
                    "or DB), ingest a realistic synthetic workload with secrets that must come out "
                    "redacted, verify the chain and print a summary and the head.")
    p.add_argument("db", nargs="?", metavar="DB",
                   help="database file or postgresql:// URL to write the sample into (default: a "
                   "temporary directory, removed when the demo ends)")
    p.add_argument("--events", type=int, default=5_000, help="sample size (default 5000)")
    add_schema(p)
    p.set_defaults(db_mode=CREATE)

    p = add_command(sub, "append", "append one event", run_append,
                    description="Append one event. PAYLOAD is JSON text, or @FILE to read it.")
    add_db(p, CREATE)
    p.add_argument("--max-payload-bytes", type=int, default=262_144, metavar="N",
                   help=PAYLOAD_LIMIT_HELP)
    p.add_argument("kind", metavar="KIND")
    p.add_argument("payload", nargs="?", metavar="PAYLOAD", help="JSON text or @file")
    for name in ("event-id", "session-id", "run-id", "actor", "principal", "device-id", "channel"):
        p.add_argument(f"--{name}")
    p.add_argument("--timestamp", type=int, dest="timestamp_unix_ms", metavar="UNIX_MS")

    p = add_command(sub, "ingest", "append the events of a JSON-lines file",
                    run_ingest, description="Append one event per line of FILE (- for stdin), "
                    "in all-or-nothing batches; a progress bar shows on a terminal. When a line is "
                    "refused, the batches before it stay written and the error names the last "
                    "committed line and the command that resumes after it (--start-line N); "
                    "--skip-existing makes a re-run of the same file idempotent for events that "
                    "carry an event_id.")
    add_db(p, CREATE)
    p.add_argument("file", metavar="FILE.jsonl")
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--start-line", type=int, default=1, metavar="N",
                   help="skip the lines before line N (1-based): resume after a failed ingest")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip events whose event_id is already stored (counted in the report) "
                   "instead of failing on them")
    p.add_argument("--max-payload-bytes", type=int, default=262_144, metavar="N",
                   help=PAYLOAD_LIMIT_HELP)

    p = add_command(sub, "verify", "recompute the hash chain; exit 1 when broken", run_verify,
                    description="Recompute the hash chain and report the first bad seq. Exit "
                    "status 1 when the chain is broken, the expected head is not found, or the "
                    "append-only triggers were dropped. Opens the file read-only.")
    add_db(p, READ)
    p.add_argument("--from", dest="from_seq", type=int, default=1, metavar="SEQ")
    p.add_argument("--to", dest="to_seq", type=int, default=None, metavar="SEQ")
    p.add_argument("--expected-head", metavar="SEQ:HASH",
                   help="a checkpoint kept elsewhere (from an earlier verify or `tail`)")

    p = add_command(sub, "tail", "show the newest events", run_tail,
                    description="Show the last N events, oldest first; --follow keeps printing "
                    "new ones (JSON lines with --json).")
    add_db(p, READ)
    p.add_argument("-n", type=int, default=10, metavar="N")
    p.add_argument("--follow", "-f", action="store_true")
    p.add_argument("--interval", type=float, default=0.5, help="poll interval in seconds")

    p = add_command(sub, "export", "write the events as JSON lines", run_export)
    add_db(p, READ)
    p.add_argument("out", metavar="OUT.jsonl", help="output file, - for stdout")
    p.add_argument("--after", type=int, default=0, metavar="SEQ")

    p = add_command(sub, "checkpoint", "checkpoint the write-ahead log", run_checkpoint)
    add_db(p, WRITE)
    p.add_argument("--mode", choices=("passive", "full", "restart", "truncate"), default="passive")

    p = add_command(sub, "vacuum", "reclaim free space (SQLite: rebuild the file; PostgreSQL: "
                    "VACUUM the store's tables)", run_vacuum)
    add_db(p, WRITE)


def _line(rec) -> str:
    ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(rec.timestamp_unix_ms / 1000))
    payload = rec.payload_json if len(rec.payload_json) <= 100 else rec.payload_json[:97] + "..."
    session = rec.session_id or "-"
    return f"{rec.seq:>8}  {ts}  {rec.kind:<20} {rec.actor:<8} {session:<14} {payload}"


def run_demo(args: argparse.Namespace) -> int:
    from ..demo import format_summary, run_demo as demo
    if args.events < 1:
        raise InvalidPayloadError(f"--events must be >= 1, got {args.events}")
    summary = demo(args.db, events=args.events, **schema_option(args))
    emit(args, summary, lambda: format_summary(summary))
    ok = all(step.get("chain_ok", True) for step in summary["steps"].values())
    return 0 if ok else 1


def run_append(args: argparse.Namespace) -> int:
    payload = args.payload
    if payload is not None and payload.startswith("@"):
        try:
            with open(payload[1:], "rb") as f:
                payload = f.read()
        except OSError as exc:
            raise InvalidPathError(
                f"cannot read payload file {payload[1:]!r}: {exc.strerror}") from None
    fields = {name: getattr(args, name) for name in
              ("event_id", "session_id", "run_id", "principal", "device_id", "channel",
               "timestamp_unix_ms") if getattr(args, name) is not None}
    if args.actor is not None:
        fields["actor"] = args.actor
    with open_db(args, max_payload_bytes=args.max_payload_bytes) as store:
        rec = store.append(args.kind, payload, **fields)
    emit(args, rec.to_dict(), lambda: f"appended seq {rec.seq} {rec.event_id}\n"
         f"hash {rec.hash}" + ("\n(payload redacted)" if rec.redacted else ""))
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    source = sys.stdin.buffer if args.file == "-" else args.file
    t0 = time.perf_counter()
    with open_db(args, max_payload_bytes=args.max_payload_bytes) as store:
        try:
            n = store.ingest_jsonl(source, batch_size=args.batch_size, progress=not args.json,
                                   start_line=args.start_line,
                                   on_duplicate="skip" if args.skip_existing else "error")
        except JournalError as exc:
            resume = exc.resume_line
            text = str(exc).replace("on_duplicate='skip'", "--skip-existing")
            if resume is not None and args.file != "-":
                from ..engines.postgresql import redact_url  # no password in a message
                command = (f"palyra-journal ingest {shlex.quote(redact_url(args.db))} "
                           f"{shlex.quote(args.file)} --start-line {resume}"
                           + (f" --schema {args.schema}" if args.schema else "")
                           + (" --skip-existing" if args.skip_existing else ""))
                text = text.replace(f"resume with start_line={resume}", f"resume with: {command}")
            exc.args = (text,)
            raise
        head = store.head()
    dt = time.perf_counter() - t0
    skipped = getattr(n, "skipped", 0)
    data = {"ingested": int(n), "skipped_existing": skipped, "seconds": round(dt, 3),
            "head": head and head.to_dict()}
    emit(args, data, lambda: f"ingested {n} events in {dt:.2f} s ({n / max(dt, 1e-9):,.0f}/s)"
         + (f"; skipped {skipped} already stored" if args.skip_existing else "")
         + (f"\nhead {head.seq}:{head.hash}" if head else ""))
    return 0


def _parse_head(text: str | None):
    if text is None:
        return None
    seq, sep, digest = text.partition(":")
    try:
        value = int(seq)
    except ValueError:
        value = None
    if not sep or value is None or value < 1 or len(digest) != 64:
        raise InvalidPayloadError(f"--expected-head must be SEQ:HASH (64 hex digits), got {text!r}")
    return (value, digest)


def run_verify(args: argparse.Namespace) -> int:
    expected = _parse_head(args.expected_head)
    with open_db(args) as store:
        report = store.verify(from_seq=args.from_seq, to_seq=args.to_seq, expected_head=expected,
                              progress=not args.json)
    emit(args, report.to_dict(), lambda: format_report(report))
    return 0 if report.ok else 1


def format_report(report) -> str:
    """A verify report for people: what failed, where, and what the chain itself says."""
    head = report.head
    head_text = f"{head.seq}:{head.hash}" if head else "(empty)"
    triggers = (f"\nTRIGGERS MISSING: {', '.join(report.missing_triggers)} (dropped outside "
                "palyra-journal: stored rows can be rewritten)" if report.missing_triggers else "")
    if report.ok:
        return f"OK: {report.checked} events verified\nhead {head_text}"
    if report.reason == "triggers_missing":
        return (f"NOT OK: the chain verifies ({report.checked} events, head {head_text}) but the "
                f"append-only triggers are gone{triggers}")
    if report.reason == "head_mismatch":
        actual = report.actual_hash or "no event at that seq"
        return (f"HEAD MISMATCH at seq {report.first_bad_seq}: expected hash "
                f"{report.expected_hash}, the journal holds {actual}\n"
                f"the chain itself verifies: {report.checked} events, head {head_text}{triggers}")
    return (f"BROKEN at seq {report.first_bad_seq}: {report.reason} "
            f"({report.checked} events verified before it)\nlast good {head_text}{triggers}")



def run_tail(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise InvalidPayloadError(f"-n must be >= 0, got {args.n}")
    with open_db(args) as store:
        recs = list(reversed(store.recent(args.n))) if args.n else []
        if not args.follow:
            emit(args, [r.to_dict() for r in recs], lambda: "\n".join(map(_line, recs)))
            return 0
        last = recs[-1].seq if recs else (store.head().seq if store.head() else 0)
        try:
            while True:
                for rec in recs:
                    if args.json:
                        print(json.dumps(rec.to_dict(), ensure_ascii=False), flush=True)
                    else:
                        print(_line(rec), flush=True)
                    last = rec.seq
                time.sleep(max(0.01, args.interval))
                recs = store.events(after_seq=last, limit=1000)
        except KeyboardInterrupt:
            return 0


def run_export(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        if args.out == "-":
            n = store.export_jsonl(sys.stdout.buffer, after_seq=args.after)
            if args.json:
                print(json.dumps({"exported": n}), file=sys.stderr)
            return 0
        n = store.export_jsonl(args.out, after_seq=args.after)
    emit(args, {"exported": n, "path": args.out}, f"exported {n} events to {args.out}")
    return 0


def run_checkpoint(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        busy, frames, done = store.checkpoint(args.mode)
    emit(args, {"mode": args.mode, "busy": bool(busy), "wal_frames": frames,
                "checkpointed_frames": done},
         f"checkpoint {args.mode}: {done}/{frames} WAL frames copied" + (" (busy)" if busy else ""))
    return 0


def run_vacuum(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        before = store.stored_bytes()
        store.vacuum()
        after = store.stored_bytes()
    emit(args, {"bytes_before": before, "bytes_after": after},
         f"vacuumed {store.path}: {before:,} -> {after:,} bytes")
    return 0
