"""``palyra-journal cron add|list|due|runs|scheduler``: manage jobs and run a worker from a shell."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from datetime import datetime, timezone

from ..errors import InvalidScheduleError
from . import CREATE, READ, WRITE, add_command, add_db, emit, open_db


def register(sub) -> None:
    parent = sub.add_parser("cron", help="cron jobs: add, list, due, runs, scheduler",
                            description="Cron jobs stored in the database: add and list jobs, "
                            "show or claim due runs, list runs, run a scheduler worker.")
    csub = parent.add_subparsers(dest="cron_command", metavar="SUBCOMMAND",
                                 parser_class=type(parent))
    parent.set_defaults(func=lambda args: (parent.print_help(), 2)[1])

    p = add_command(csub, "add", "create a job", run_add, description="Create a cron job with "
                    "one schedule: --cron EXPR [--tz ZONE], --every MS or --at UNIX_MS.")
    add_db(p, CREATE)
    p.add_argument("--name", required=True)
    p.add_argument("--prompt", default="")
    p.add_argument("--owner", required=True, dest="owner_principal", metavar="PRINCIPAL")
    p.add_argument("--channel")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help="5 or 6 fields (seconds last), or @daily …")
    when.add_argument("--every", type=int, metavar="MS", help="interval in milliseconds")
    when.add_argument("--at", type=int, metavar="UNIX_MS", help="one run at this time")
    p.add_argument("--tz", default="UTC", metavar="ZONE", help="IANA timezone for --cron")
    p.add_argument("--job-id")
    p.add_argument("--concurrency", default="forbid", choices=("forbid", "replace", "queue_one"))
    p.add_argument("--misfire", default="skip", choices=("skip", "catch_up"))
    p.add_argument("--max-attempts", type=int, default=1)
    p.add_argument("--backoff-ms", type=int, default=1_000)
    p.add_argument("--jitter-ms", type=int, default=0)
    p.add_argument("--disabled", action="store_true", help="create it disabled")

    p = add_command(csub, "list", "list jobs", run_list)
    add_db(p, READ)
    p.add_argument("--owner", dest="owner_principal", metavar="PRINCIPAL")
    p.add_argument("--channel")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--enabled", action="store_true", default=None)
    state.add_argument("--disabled", action="store_true", default=None)
    p.add_argument("--after", metavar="JOB_ID")
    p.add_argument("--limit", type=int, default=100)

    p = add_command(csub, "due", "show the jobs due now, or claim them", run_due,
                    description="Show the enabled jobs whose next run is due (now, or within "
                    "--within SEC). With --claim WORKER the due runs are claimed atomically and "
                    "the claims printed.")
    add_db(p, READ)
    p.add_argument("--within", type=float, default=0.0, metavar="SEC")
    p.add_argument("--claim", metavar="WORKER", help="claim the due runs as this worker id")
    p.add_argument("--limit", type=int, default=64)
    p.add_argument("--lease-ms", type=int, default=300_000)

    p = add_command(csub, "runs", "list runs", run_runs)
    add_db(p, READ)
    p.add_argument("--job", dest="job_id", metavar="JOB_ID")
    p.add_argument("--after", metavar="RUN_ID")
    p.add_argument("--limit", type=int, default=100)

    p = add_command(csub, "scheduler", "run a worker loop with a built-in handler", run_scheduler,
                    description="Claim and run due jobs until Ctrl-C, --max-runs N or --for SEC. "
                    "The built-in handler prints each claim (a JSON line with --json) and "
                    "records the run as succeeded.")
    add_db(p, WRITE)
    p.add_argument("--worker-id", default=None, help="default: HOST:PID")
    p.add_argument("--poll-ms", type=int, default=1_000)
    p.add_argument("--lease-ms", type=int, default=300_000)
    p.add_argument("--max-runs", type=int, default=None, metavar="N")
    p.add_argument("--for", dest="seconds", type=float, default=None, metavar="SEC")


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _schedule(args: argparse.Namespace):
    from ..schedule import At, CronSchedule, Every
    if args.cron is not None:
        return CronSchedule(args.cron, timezone=args.tz)
    if args.every is not None:
        return Every(args.every)
    if args.at is not None:
        return At(args.at)
    raise InvalidScheduleError("one of --cron, --every or --at is required")


def _job_line(job) -> str:
    sched = job.schedule.to_dict()
    desc = {"cron": lambda: f"cron '{sched['expression']}' {sched['timezone']}",
            "every": lambda: f"every {sched['interval_ms']} ms",
            "at": lambda: f"at {_when(sched['at_unix_ms'])}"}[sched["type"]]()
    state = "on " if job.enabled else "off"
    return (f"{job.job_id}  {state}  next {_when(job.next_run_at_unix_ms)}  {job.name}  "
            f"[{desc}; {job.concurrency_policy}/{job.misfire_policy}]")


def _run_line(run) -> str:
    err = f"  {run.error_kind}: {run.error_message}" if run.error_kind or run.error_message else ""
    return (f"{run.run_id}  job {run.job_id}  #{run.attempt}  {run.status:<9}  slot "
            f"{_when(run.scheduled_for_unix_ms)}  worker {run.worker_id or '-'}{err}")


def run_add(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        job = store.cron.create_job(
            name=args.name, prompt=args.prompt, owner_principal=args.owner_principal,
            channel=args.channel, schedule=_schedule(args), job_id=args.job_id,
            enabled=not args.disabled, concurrency_policy=args.concurrency,
            misfire_policy=args.misfire, max_attempts=args.max_attempts,
            backoff_ms=args.backoff_ms, jitter_ms=args.jitter_ms)
    emit(args, job, lambda: "created " + _job_line(job))
    return 0


def run_list(args: argparse.Namespace) -> int:
    enabled = True if args.enabled else False if args.disabled else None
    with open_db(args) as store:
        jobs = store.cron.list_jobs(after_job_id=args.after, limit=args.limit, enabled=enabled,
                                    owner_principal=args.owner_principal, channel=args.channel)
    emit(args, jobs, lambda: "\n".join(map(_job_line, jobs)) or "no jobs")
    return 0


def run_due(args: argparse.Namespace) -> int:
    with open_db(args, WRITE if args.claim else READ) as store:
        if args.claim:
            claims = store.cron.claim_due(worker_id=args.claim, limit=args.limit,
                                          lease_ms=args.lease_ms)
            emit(args, claims, lambda: "\n".join(
                f"claimed {_run_line(c.run)}  ({c.job.name})" for c in claims) or "nothing due")
            return 0
        horizon = store.now_ms() + int(args.within * 1000)
        with store.read() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT job_id FROM cron_jobs WHERE enabled = 1 AND next_run_at_unix_ms <= ? "
                "ORDER BY next_run_at_unix_ms, job_id LIMIT ?", (horizon, args.limit))]
        jobs = [store.cron.get_job(i) for i in ids]
    emit(args, jobs, lambda: "\n".join(map(_job_line, jobs)) or "nothing due")
    return 0


def run_runs(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        runs = store.cron.list_runs(job_id=args.job_id, after_run_id=args.after, limit=args.limit)
    emit(args, runs, lambda: "\n".join(map(_run_line, runs)) or "no runs")
    return 0


def run_scheduler(args: argparse.Namespace) -> int:
    worker = args.worker_id or f"{socket.gethostname()}:{os.getpid()}"

    def handler(claim) -> None:
        if args.json:
            print(json.dumps({"event": "run", "job_id": claim.job.job_id, "name": claim.job.name,
                              "run_id": claim.run.run_id, "attempt": claim.run.attempt,
                              "scheduled_for_unix_ms": claim.run.scheduled_for_unix_ms,
                              "worker_id": claim.run.worker_id}), flush=True)
        else:
            print(f"run {claim.run.run_id}  {claim.job.name}  slot "
                  f"{_when(claim.run.scheduled_for_unix_ms)}  attempt {claim.run.attempt}",
                  flush=True)

    with open_db(args) as store:
        if not args.json:
            print(f"scheduler {worker}: polling {store.path} (Ctrl-C to stop)", file=sys.stderr)
        try:
            n = store.cron.run_scheduler(handler, worker_id=worker, poll_ms=args.poll_ms,
                                         lease_ms=args.lease_ms, max_runs=args.max_runs,
                                         max_seconds=args.seconds)
        except KeyboardInterrupt:
            n = None
    if args.json:
        print(json.dumps({"event": "stopped", "worker_id": worker, "runs": n}))
    else:
        print(f"scheduler {worker}: stopped after {'?' if n is None else n} runs", file=sys.stderr)
    return 0
