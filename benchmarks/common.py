"""What every benchmark shares: the scale of the run and the tags the report reads.

``PALYRA_BENCH_SCALE=quick`` (default) keeps every workload small enough for a 2-core machine in
about two minutes; ``full`` runs the sizes of benchmarks/README.md. Each benchmark calls :func:`describe`
so that ``python -m benchmarks.report`` can put it in the right table and compute its ratios.
"""

from __future__ import annotations

import os

SCALE = os.environ.get("PALYRA_BENCH_SCALE", "quick").strip().lower() or "quick"
FULL = SCALE == "full"


def scaled(quick: int, full: int) -> int:
    """A size for this run: ``quick`` by default, ``full`` with PALYRA_BENCH_SCALE=full."""
    return full if FULL else quick


def describe(benchmark, *, section: int, workload: str, impl: str, role: str, items: int,
             x: float | None = None, **extra) -> None:
    """Tag a pytest-benchmark result for the report.

    section   the benchmarks/README.md section (1 appends, 2 verify, 3 vectors, 4 hybrid, 5 domains)
    workload  the table row group, e.g. "append_many" or "topk 100000x384"
    impl      who ran: "palyra native", "palyra python", "raw sqlite3", "numpy", "faiss", ...
    role      "ours", "floor" (what this library cannot go below) or "peer"
    items     units of work per round (events, rows, queries): the rate is items / median time
    x         the value plotted on the x axis (batch size, N), when the workload is a series
    """
    if role not in ("ours", "floor", "peer"):
        raise ValueError(f"role must be ours, floor or peer, got {role!r}")
    benchmark.extra_info.update(section=section, workload=workload, impl=impl, role=role,
                                items=items, x=x, **extra)
