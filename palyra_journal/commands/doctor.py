"""``palyra-journal doctor``: what this installation runs on."""

from __future__ import annotations

import argparse
import platform
import sqlite3
import sys
from typing import Any

from . import READ, add_command, add_db, emit, open_db


def register(sub: Any) -> None:
    p = add_command(sub, "doctor", "show the kernel backend, SIMD level, SHA path, SQLite and FTS5",
                    run, description="Show which kernel backend runs (native C or pure Python), "
                    "the SIMD level and SHA-256 path chosen for this CPU, and the SQLite and FTS5 "
                    "versions and the redaction rules version. With DB, also the database's schema "
                    "version, event count, whether its append-only triggers are all in place "
                    "(exit 1 when one is missing) and which redaction rules version wrote each seq "
                    "range. DB is opened read-only.")
    add_db(p, READ, optional=True)


def database(args: argparse.Namespace) -> dict[str, Any]:
    """What doctor says of one database: schema version, events, head, missing triggers."""
    from .. import rules_log, schema
    with open_db(args) as store:
        with store.read() as conn:
            version = schema.current_version(conn)
            missing = schema.missing_guards(conn)
            rules = [r._asdict() for r in rules_log.ranges(conn)]
        head = store.head()
    return {"path": args.db, "schema_version": version, "schema_latest": schema.LATEST_VERSION,
            "events": head.seq if head else 0, "head": head and head.to_dict(),
            "missing_triggers": missing, "redaction_rules_by_seq": rules}


def fts5_version() -> str | None:
    """FTS5 is compiled into most SQLite builds; report whether a virtual table can be made."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
        opts = [r[0] for r in conn.execute("PRAGMA compile_options")]
        return "enabled" + (" (ENABLE_FTS5)" if "ENABLE_FTS5" in opts else "")
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def collect() -> dict[str, Any]:
    from .. import __version__, kernels
    reason = kernels.native_unavailable_reason()
    info = kernels.cpu_info()
    return {
        "palyra_journal": __version__,
        "backend": kernels.backend_name(),
        "native_available": reason is None,
        "native_unavailable_reason": reason,
        "native_error": kernels.native_load_error(),
        "implementation": sys.implementation.name,
        "simd": info.get("simd"),
        "simd_detected": info.get("simd_detected", info.get("simd")),
        "sha": info.get("sha"),
        "int8": info.get("int8"),  # the int8 scan tier's kernel (docs/recall.md)
        "threads": info.get("threads"),
        "sqlite": sqlite3.sqlite_version,
        "fts5": fts5_version(),
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_model(),
        "redaction_rules": str(kernels.RULES_VERSION),
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(args: argparse.Namespace) -> int:
    d = collect()
    if args.db is not None:
        d["database"] = database(args)

    def human() -> str:
        lines = [
            f"palyra-journal {d['palyra_journal']}  (Python {d['python']}, {d['platform']})",
            f"  backend      {d['backend']}"
            + ("" if d["native_available"]
               else f"  (pure Python: {d['native_unavailable_reason']})"),
            f"  SIMD level   {d['simd']}" + (f" (CPU supports {d['simd_detected']})"
                                             if d["simd_detected"] != d["simd"] else ""),
            f"  SHA-256      {d['sha']}",
            f"  int8 scan    {d['int8'] or 'numpy (pure backend)'}",
            f"  threads      {d['threads']}",
            f"  CPU          {d['cpu']}",
            f"  SQLite       {d['sqlite']}",
            f"  FTS5         {d['fts5'] or 'MISSING: memory search needs an SQLite with FTS5'}",
        ]
        lines.append(f"  redaction    rules v{d['redaction_rules']}")
        if d["native_error"]:
            lines.append(f"  NATIVE ERROR {d['native_error']} (a bug: please report it)")
        db = d.get("database")
        if db:
            head = db["head"]
            lines += [
                f"  database     {db['path']}",
                f"  schema       version {db['schema_version']} (this palyra-journal: "
                f"{db['schema_latest']})",
                f"  events       {db['events']}" + (f", head {head['seq']}:{head['hash']}"
                                                     if head else ""),
                "  triggers     " + (f"MISSING: {', '.join(db['missing_triggers'])} (dropped "
                                     "outside palyra-journal: rows can be rewritten)"
                                     if db["missing_triggers"] else "all append-only triggers "
                                     "in place"),
            ]
            for r in db["redaction_rules_by_seq"]:
                upto = "newest" if r["to_seq"] is None else r["to_seq"]
                lines.append(f"  redacted     seq {r['from_seq']}..{upto} by rules v{r['version']}")
        return "\n".join(lines)

    emit(args, d, human)
    healthy = d["fts5"] and not d.get("database", {}).get("missing_triggers")
    return 0 if healthy else 1
