"""``palyra-journal doctor``: what this installation runs on."""

from __future__ import annotations

import platform
import sqlite3
import sys

from . import add_command, emit


def register(sub) -> None:
    p = add_command(sub, "doctor", "show the kernel backend, SIMD level, SHA path, SQLite and FTS5",
                    run, description="Show which kernel backend runs (native C or pure Python), the "
                    "SIMD level and SHA-256 path chosen for this CPU, the SQLite and FTS5 versions "
                    "and the redaction rules version; with --db, also which rules version redacted "
                    "each seq range of that journal.")
    p.add_argument("--db", metavar="PATH", help="a journal file: show its redaction rules history")


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


def collect() -> dict:
    from .. import __version__, kernels
    native_error = None
    if not kernels.native_available():
        try:
            from .._native import lib  # noqa: F401
        except ImportError as exc:
            native_error = str(exc)
    info = kernels.cpu_info()
    return {
        "palyra_journal": __version__,
        "backend": kernels.backend_name(),
        "native_available": kernels.native_available(),
        "native_error": native_error,
        "simd": info.get("simd"),
        "simd_detected": info.get("simd_detected", info.get("simd")),
        "sha": info.get("sha"),
        "threads": info.get("threads"),
        "sqlite": sqlite3.sqlite_version,
        "fts5": fts5_version(),
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_model(),
        "redaction_rules": str(kernels.RULES_VERSION),
    }


def rules_history(path: str) -> list[dict]:
    """Which redaction rules version wrote each seq range of the journal at ``path``."""
    from .. import rules_log
    from . import open_store
    with open_store(path) as store, store.read() as conn:
        return [r._asdict() for r in rules_log.ranges(conn)]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(args) -> int:
    d = collect()
    if getattr(args, "db", None):
        d["redaction_rules_by_seq"] = rules_history(args.db)

    def human() -> str:
        lines = [
            f"palyra-journal {d['palyra_journal']}  (Python {d['python']}, {d['platform']})",
            f"  backend      {d['backend']}"
            + ("" if d["native_available"] else "  (native extension not built: pure Python)"),
            f"  SIMD level   {d['simd']}" + (f" (CPU supports {d['simd_detected']})"
                                             if d["simd_detected"] != d["simd"] else ""),
            f"  SHA-256      {d['sha']}",
            f"  threads      {d['threads']}",
            f"  CPU          {d['cpu']}",
            f"  SQLite       {d['sqlite']}",
            f"  FTS5         {d['fts5'] or 'MISSING: memory search needs an SQLite with FTS5'}",
        ]
        lines.append(f"  redaction    rules v{d['redaction_rules']}")
        for r in d.get("redaction_rules_by_seq", ()):
            upto = "newest" if r["to_seq"] is None else r["to_seq"]
            lines.append(f"    seq {r['from_seq']}..{upto}: rules v{r['version']}")
        if d["native_error"]:
            lines.append(f"  native error {d['native_error']}")
        return "\n".join(lines)

    emit(args, d, human)
    return 0 if d["fts5"] else 1
