"""Runs the benchmark suite once and writes ``report.md`` with one table per benchmarks/README.md section,
plus PNG plots. ``python -m benchmarks.report [--quick|--full] [--out DIR]`` or
``palyra-journal bench``.

Every figure in the report is a ratio measured in this one run: the benchmarks tag each result with
:func:`benchmarks.common.describe` (section, workload, impl, role, items), and the tables compare each
``ours`` row with the ``floor`` and ``peer`` rows of the same workload. Peers that are not installed
are listed as missing (each benchmark of a missing peer is skipped with the reason, which the report
collects), never silently dropped.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent

SECTIONS = {
    0: "0. Kernels (one call, native vs pure vs the best peer)",
    1: "1. Appending events",
    2: "2. Verifying the chain",
    3: "3. Vector recall (exact top-k, one query at a time)",
    4: "4. Hybrid memory search",
    5: "5. Canvas, cron",
    6: "6. Verifiable journal (Merkle tiles, proofs, migration)",
    7: "7. Recall at scale (store search, int8 tier, open, batches, ingest)",
    8: "8. PostgreSQL (the same store on a local server; raw psycopg as the floor)",
}

# (section, workload pattern, ours impl, against: "floor" | "best peer" | an impl name, min ratio,
#  what benchmarks/README.md says). Ratios compare rates (items per second): ours / against.
TARGETS = [
    (1, r"^append$", "palyra native", "floor", 0.85, "append ≥ 0.85 × raw insert+commit"),
    (1, r"^append_many$", "palyra native", "floor", 0.90, "append_many ≥ 0.90 × raw executemany"),
    (1, r"^ingest_jsonl$", "palyra native", "floor", 0.90, "ingest_jsonl ≥ 0.90 × raw executemany"),
    (1, r"^append_many$", "palyra native", "palyra python", 3.0, "native append_many ≥ 3 × pure"),
    (2, r"^verify$", "palyra native", "floor", 1.0,
     "verify ≥ 1.0 × one bare single-threaded SELECT of the same columns"),
    (2, r"^verify$", "palyra native", "python hashlib loop", 2.0, "verify ≥ 2 × Python loop"),
    (3, r"^topk ", "palyra native", "best peer", 1.0, "top-k ≥ 1.0 × best peer at every size"),
    (3, r"^topk 1000000x64$", "palyra native", "best peer", 1.3, "top-k ≥ 1.3 × best peer at 1M × 64"),
    (3, r"^scan 1000000x384$", "palyra native", "floor", 0.80, "scan ≥ 0.8 × numpy matvec-only at 1M × 384"),
    (3, r"^matrix load", "palyra native", "floor", 2.0, "first-search load ≤ 0.5 × naive SELECT (ratio ≥ 2)"),
    (4, r"^hybrid search", "palyra native", "floor", 1 / 3, "hybrid p50 ≤ 3 × vector-only scan"),
    (5, r"^state_at", "palyra native", "floor", 0.5, "state_at slowest/fastest ≤ 2"),
    (6, r"^tlog append_many$", "palyra native", "floor", 1 / 1.10, "tile maintenance ≤ 10 % on append_many"),
    (6, r"^tlog append$", "palyra native", "floor", 1 / 1.15, "tile maintenance ≤ 15 % on append"),
    (6, r"^tlog migration", "palyra native", "floor", 0.80, "migration ≥ 0.8 × one native leaf-hash call"),
    (7, r"^recall \w+ 100000x384$", "palyra native", "numpy", 1.5,
     "store vector search ≥ 1.5 × numpy at 100k × 384"),
    (7, r"^recall clustered 1000000x(384|1536)$", "palyra native", "numpy", 2.5,
     "store vector search ≥ 2.5 × numpy at 1M × 384 / 1536, clustered"),
    (7, r"^recall clustered 1000000x(384|1536)$", "palyra native", "best float32 peer", 2.0,
     "store vector search ≥ 2 × the best float32 peer at 1M × 384 / 1536, clustered"),
    (7, r"^recall \w+ 1000000x64$", "palyra native", "best peer", 1.3,
     "store vector search ≥ 1.3 × the best peer at 1M × 64"),
    (7, r"^recall ", "palyra native", "floor", 1 / 1.15,
     "store vector search within 1.15 × the bare kernel call"),
    (7, r"^open ", "palyra native", "floor", 20.0,
     "open + first search ≤ 0.05 × the naive SELECT load"),
    (7, r"^search_many ", "palyra native", "numpy", 1.0,
     "search_many ≥ 1.0 × numpy Q @ M.T + argpartition per row"),
    (7, r"^ingest_many ", "palyra native", "floor", 0.8,
     "memory.ingest_many ≥ 0.8 × raw executemany"),
    (8, r"^pg append_many$", "palyra native", "floor", 0.80,
     "PostgreSQL append_many ≥ 0.80 × raw psycopg executemany (pipeline)"),
    (8, r"^pg writers$", "palyra native", "floor", 0.90,
     "PostgreSQL: 4 concurrent writers ≥ 0.90 × one writer's total throughput"),
    (8, r"^pg claim_due$", "palyra native", "floor", 0.5,
     "PostgreSQL claim_due, 4 workers ≥ 0.5 × raw FOR UPDATE SKIP LOCKED claiming"),
    (0, r"^canonicalize tool event", "palyra native", "orjson", 0.5,
     "canonicalize (redaction on, one call) ≤ 2 × orjson's time"),
    (0, r"^canonicalize tool event", "palyra native batch", "orjson", 0.5,
     "canonicalize (redaction on, batch path) ≤ 2 × orjson's time"),
]

PEER_MODULES = ["numpy", "orjson", "rfc8785", "simsimd", "faiss", "usearch", "sqlite_vec",
                "pysqlite3", "matplotlib", "threadpoolctl"]


def machine() -> dict:
    from palyra_journal.commands.doctor import collect
    info = collect()
    versions = {}
    for mod in PEER_MODULES:
        try:
            m = importlib.import_module(mod)
            versions[mod] = getattr(m, "__version__", getattr(m, "version", "installed"))
            if callable(versions[mod]):
                versions[mod] = "installed"
        except Exception:  # noqa: BLE001 - any import failure means "missing" here
            versions[mod] = None
    info["versions"] = versions
    info["blas"] = blas_info()
    return info


def blas_info() -> str | None:
    try:
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return f"{pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')}, {pool.get('num_threads')} threads)"
    return None


def run_suite(out: Path, scale: str, select: str | None) -> tuple[Path, str]:
    """Run pytest-benchmark over the suite; returns the JSON path and pytest's output."""
    result = out / "benchmarks.json"
    env = dict(os.environ, PALYRA_BENCH_SCALE=scale)
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # benchmarks/README.md, fair peers
        env.pop(name, None)
    # The collection rules are given here, not read from a pyproject.toml: an installed copy
    # (palyra_journal/benchsuite) has none, and a project around the current directory may have
    # its own. `-c` names an empty config, so the suite runs the same from any directory.
    cmd = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider",
           "-c", os.devnull, "--rootdir", str(HERE), "-o", "python_files=bench_*.py",
           "-o", "addopts=", "-rs", f"--benchmark-json={result}", "--benchmark-disable-gc",
           "--benchmark-min-rounds=3", "--benchmark-max-time=0.5", "--benchmark-warmup=off"]
    if select:
        cmd += ["-k", select]
    proc = subprocess.run(cmd, env=env, cwd=str(HERE.parent), capture_output=True, text=True)
    if proc.returncode not in (0, 5) or not result.exists() or not result.stat().st_size:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"benchmark run failed (pytest exit {proc.returncode})")
    return result, proc.stdout


def skipped_peers(pytest_output: str) -> list[str]:
    """The reasons pytest printed for skipped benchmarks (missing peers)."""
    out = []
    for line in pytest_output.splitlines():
        m = re.match(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", line.strip())
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out


def load_rows(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    rows = []
    for b in data.get("benchmarks", []):
        info = b.get("extra_info") or {}
        if "workload" not in info:
            continue
        median = b["stats"]["median"]
        items = info.get("items") or 1
        rows.append({**info, "name": b["name"], "median": median, "rate": items / median if median else 0.0,
                     "rounds": b["stats"]["rounds"]})
    return rows


def fmt_rate(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k/s"
    return f"{v:.1f} /s"


def fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} µs"


def reference(rows: list[dict], against: str) -> dict | None:
    if against == "floor":
        cands = [r for r in rows if r["role"] == "floor"]
    elif against == "best peer":
        cands = [r for r in rows if r["role"] == "peer"]
    elif against == "best float32 peer":  # leaves out quantized peers (faiss SQ8)
        cands = [r for r in rows if r["role"] == "peer" and not r.get("quantized")]
    else:
        cands = [r for r in rows if r["impl"] == against]
    return max(cands, key=lambda r: r["rate"]) if cands else None


def evaluate(rows: list[dict]) -> list[dict]:
    """Every target of benchmarks/README.md against the rows of this run."""
    by_workload = defaultdict(list)
    for r in rows:
        by_workload[(r["section"], r["workload"])].append(r)
    results = []
    for section, pattern, ours_impl, against, minimum, text in TARGETS:
        matched = False
        for (sec, workload), group in sorted(by_workload.items()):
            if sec != section or not re.search(pattern, workload):
                continue
            ours = [r for r in group if r["impl"] == ours_impl]
            ref = reference(group, against)
            if not ours or ref is None:
                continue
            matched = True
            ratio = ours[0]["rate"] / ref["rate"] if ref["rate"] else float("inf")
            results.append({"target": text, "workload": workload, "against": ref["impl"],
                            "ratio": ratio, "min": minimum, "met": ratio >= minimum})
        if not matched:
            results.append({"target": text, "workload": pattern, "against": against, "ratio": None,
                            "min": minimum, "met": None})
    return results


def section_tables(rows: list[dict]) -> str:
    out = []
    by_section = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_section[r["section"]][r["workload"]].append(r)
    for sec in sorted(by_section):
        out.append(f"\n## {SECTIONS.get(sec, f'Section {sec}')}\n")
        for workload, group in sorted(by_section[sec].items(), key=lambda kv: (kv[0].split()[0], kv[1][0].get("x") or 0, kv[0])):
            floor = reference(group, "floor")
            out.append(f"\n**{workload}**\n")
            out.append("| implementation | role | median per round | rate | rate vs floor | palyra native rate vs this |")
            out.append("|---|---|---|---|---|---|")
            ours = next((r for r in group if r["impl"] == "palyra native"), None)
            for r in sorted(group, key=lambda r: -r["rate"]):
                vs_floor = f"{r['rate'] / floor['rate']:.2f}×" if floor and floor["rate"] else "–"
                vs_ours = f"{ours['rate'] / r['rate']:.2f}×" if ours and r["rate"] and r is not ours else "–"
                out.append(f"| {r['impl']} | {r['role']} | {fmt_time(r['median'])} | {fmt_rate(r['rate'])} "
                           f"| {vs_floor} | {vs_ours} |")
            notes = [f"{k}={v}" for r in group for k, v in r.items() if k.startswith("note_")]
            if notes:
                out.append("\n" + "; ".join(notes))
    return "\n".join(out)


def plots(rows: list[dict], out: Path) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    # Throughput vs batch size (appends).
    series = defaultdict(list)
    for r in rows:
        if r["section"] == 1 and r.get("x") is not None and r["workload"].startswith("append_many batch"):
            series[r["impl"]].append((r["x"], r["rate"]))
    if series:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for impl, pts in sorted(series.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=impl)
        ax.set_xscale("log"); ax.set_xlabel("batch size (events per transaction)")
        ax.set_ylabel("events / s"); ax.set_title("Append throughput vs batch size"); ax.grid(alpha=.3)
        ax.legend(); fig.tight_layout(); fig.savefig(out / "appends_vs_batch.png", dpi=110); plt.close(fig)
        made.append("appends_vs_batch.png")
    # Queries/s vs N per dimension (vectors).
    by_dim = defaultdict(lambda: defaultdict(list))
    for r in rows:
        m = re.match(r"^topk (\d+)x(\d+)$", r["workload"])
        if r["section"] == 3 and m:
            by_dim[int(m.group(2))][r["impl"]].append((int(m.group(1)), r["rate"]))
    for dims, impls in sorted(by_dim.items()):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for impl, pts in sorted(impls.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=impl)
        ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("N vectors")
        ax.set_ylabel("queries / s (k=10)"); ax.set_title(f"Exact top-k, {dims} dimensions")
        ax.grid(alpha=.3, which="both"); ax.legend(); fig.tight_layout()
        name = f"topk_{dims}d.png"; fig.savefig(out / name, dpi=110); plt.close(fig); made.append(name)
    # Verify rate.
    ver = [r for r in rows if r["section"] == 2]
    if ver:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ver.sort(key=lambda r: r["rate"])
        ax.barh([r["impl"] for r in ver], [r["rate"] for r in ver], color="#4a7")
        ax.set_xlabel("rows / s"); ax.set_title("Chain verification rate"); fig.tight_layout()
        fig.savefig(out / "verify_rate.png", dpi=110); plt.close(fig); made.append("verify_rate.png")
    # Hybrid latency split.
    hyb = [r for r in rows if r["section"] == 4 and any(k.startswith("split_") for k in r)]
    if hyb:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        left = 0.0
        r = hyb[0]
        for k in sorted(k for k in r if k.startswith("split_")):
            v = float(r[k]) * 1e3
            ax.barh(["p50 split"], [v], left=[left], label=k[len("split_"):])
            left += v
        ax.set_xlabel("ms"); ax.set_title("Hybrid search latency split"); ax.legend(); fig.tight_layout()
        fig.savefig(out / "hybrid_split.png", dpi=110); plt.close(fig); made.append("hybrid_split.png")
    return made


def write_report(out: Path, rows: list[dict], info: dict, scale: str, missing: list[str],
                 images: list[str]) -> Path:
    targets = evaluate(rows)
    v = info["versions"]
    lines = [
        "# palyra-journal benchmark report",
        "",
        f"Generated {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by "
        f"`palyra-journal bench{' --quick' if scale == 'quick' else ''}`, all figures from this one run.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {info['cpu']} ({info['threads']} threads) |",
        f"| SIMD level / SHA-256 path | {info['simd']} / {info['sha']} |",
        f"| backend | {info['backend']} |",
        f"| Python / SQLite | {info['python']} / {info['sqlite']} |",
        f"| BLAS (numpy peer) | {info.get('blas') or 'unknown'} |",
        "| libraries | " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + " |",
        "",
        "## Targets",
        "",
        "| target | workload | against | ratio | met |",
        "|---|---|---|---|---|",
    ]
    for t in targets:
        ratio = "not measured" if t["ratio"] is None else f"{t['ratio']:.2f}"
        met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {t['workload']} | {t['against']} | {ratio} | {met} |")
    if missing:
        lines += ["", "## Missing peers and skipped workloads", ""] + [f"- {m}" for m in missing]
    lines.append(section_tables(rows))
    if images:
        lines += ["", "## Plots", ""] + [f"![{i}]({i})" for i in images]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps({"machine": info, "scale": scale, "rows": rows,
                                                 "targets": targets, "missing": missing}, indent=1,
                                                default=str))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes: about 2 minutes on 2 cores (default)")
    g.add_argument("--full", action="store_true", help="the sizes of benchmarks/README.md (up to ~20 minutes)")
    p.add_argument("--out", default=None, help="output directory (default: a new temporary one)")
    p.add_argument("-k", dest="select", default=None, help="only benchmarks matching this pytest -k expression")
    args = p.parse_args(argv)
    scale = "full" if args.full else "quick"
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="palyra-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"running the {scale} benchmark suite (results in {out}) ...", file=sys.stderr)
    result, output = run_suite(out, scale, args.select)
    rows = load_rows(result)
    info = machine()
    images = plots(rows, out)
    path = write_report(out, rows, info, scale, skipped_peers(output), images)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
