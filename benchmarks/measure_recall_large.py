"""Recall at 1M x 1536 on clustered data (docs/recall.md "Measured"), in bounded memory.

``bench_recall`` holds the matrix twice (as generated and as stored) plus the peers' copies: at
1M x 1536 that is 12 GB before faiss copies it again. This script keeps one copy, the snapshot's
float32 rows mapped read-only (the very bits the store ranks), and regenerates the queries of
``bench_recall.make_data`` without keeping its matrix:

    python -m benchmarks.measure_recall_large DB [--n 1000000] [--d 1536] [--rounds 3]

``DB`` is a store built by ``bench_recall.build_store`` (``PALYRA_BENCH_DATA`` keeps it). Printed:
open + first search and RSS of a fresh process; per query (medians, interleaved query by query):
the store's ``search(mode="vector")``, the bare kernel call with the store's k, numpy ``M @ q`` +
argpartition, simsimd ``cdist``, and (``--faiss``, another copy of the matrix) faiss
``IndexFlatIP``. Every implementation is checked to return the float32 exact scan's ids first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from .bench_recall import (K, N_QUERIES, VECTOR_ONLY, as_stored, provider, row_ids, store_k,
                           unit_rows)


def clustered_queries(n: int, d: int, seed: int = 7) -> np.ndarray:
    """The queries ``bench_recall.make_data("clustered", n, d)`` returns, drawing (not keeping)
    its matrix so the generator reaches the same state."""
    rng = np.random.default_rng(seed + d)
    centres = unit_rows(rng.standard_normal((1000, d)))
    for start in range(0, n, 1 << 16):
        m = min(1 << 16, n - start)
        rng.standard_normal((m, d), dtype=np.float32)
        rng.integers(0, 1000, m)
    return unit_rows(centres[:N_QUERIES] + rng.standard_normal((N_QUERIES, d)) * 0.1 / np.sqrt(d))


_OPEN_SCRIPT = """
import sys, time
import numpy as np
import palyra_journal as pj
from palyra_journal.memory.embeddings import HashEmbeddingProvider
path, d = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
with pj.JournalStore.open(path, embedding_provider=HashEmbeddingProvider(dimensions=d)) as s:
    s.memory.search("q", principal="p", mode="vector", query_embedding=np.ones(d), top_k=10)
    took = time.perf_counter() - t0
    print(took, int(open("/proc/self/statm").read().split()[1]) * 4096, s.memory._index.snapshot_state)
"""


def open_and_first_search(path: str, d: int) -> dict:
    """A fresh process: open, first vector search; its wall time, RSS and snapshot state."""
    out = subprocess.run([sys.executable, "-c", _OPEN_SCRIPT, path, str(d)], check=True,
                         capture_output=True, text=True, env=dict(os.environ)).stdout.split()
    return {"open_first_search_s": float(out[0]), "rss_gib": int(out[1]) / 2**30,
            "snapshot": " ".join(out[2:])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=1536)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--faiss", action="store_true", help="also faiss IndexFlatIP (a matrix copy)")
    args = ap.parse_args(argv)
    import palyra_journal as pj
    from palyra_journal import kernels

    result: dict = {"n": args.n, "d": args.d, **open_and_first_search(args.db, args.d)}
    given = clustered_queries(args.n, args.d)
    queries = as_stored(given)
    with pj.JournalStore.open(args.db, embedding_provider=provider(args.d), **VECTOR_ONLY) as store:
        mem = store.memory

        def search(q):
            return mem.search("q", principal="p", mode="vector", query_embedding=q, top_k=K)
        search(given[0])
        idx = mem._index
        matrix = idx.matrix[:idx.n]  # the snapshot's float32 rows, mapped
        want = [kernels.topk(matrix, q, K)[0].tolist() for q in queries]
        limit, tier, reader = store_k(mem), idx.int8_tier(), idx.row_reader

        def kernel(q):
            if reader is None:
                return kernels.topk_int8(matrix, tier, q, limit)
            return kernels.topk_rows(reader, kernels.int8_candidates(tier, q, limit)[0], q, limit)

        def numpy_topk(q):
            s = matrix @ q
            part = np.argpartition(s, -K)[-K:]
            return part[np.argsort(-s[part], kind="stable")]
        impls = {"store": lambda q, g: row_ids(search(g)),
                 "bare kernel": lambda q, g: kernel(q),
                 "numpy": lambda q, g: numpy_topk(q)}
        try:
            import simsimd

            def simsimd_topk(q, g):
                s = np.asarray(simsimd.cdist(q[None, :], matrix, metric="dot", threads=0,
                                             out_dtype="float32"))[0]
                part = np.argpartition(s, -K)[-K:]
                return part[np.argsort(-s[part], kind="stable")]
            impls["simsimd"] = simsimd_topk
        except ImportError:
            result["simsimd"] = "not installed"
        faiss_index = None
        if args.faiss:
            import faiss
            faiss_index = faiss.IndexFlatIP(args.d)
            faiss_index.add(np.ascontiguousarray(matrix))
            impls["faiss flat"] = lambda q, g: faiss_index.search(q[None, :], K)[1][0]
        for name, fn in impls.items():
            if name in ("store", "bare kernel"):
                continue
            for q, g, w in zip(queries, given, want):
                assert list(map(int, fn(q, g)))[:K] == w, f"{name} does not return the reference ids"
        for q, g, w in zip(queries, given, want):
            assert impls["store"](q, g) == w, "the store does not return the reference ids"
        times: dict[str, list[float]] = {name: [] for name in impls}
        rescored = []
        for _ in range(args.rounds):
            for q, g in zip(queries, given):
                for name, fn in impls.items():
                    t = time.perf_counter()
                    fn(q, g)
                    times[name].append(time.perf_counter() - t)
                    if name == "store":
                        rescored.append(mem.last_search_stats()["rescored_fraction"])
        med = {name: float(np.median(v)) for name, v in times.items()}
        result["median_ms"] = {name: round(v * 1e3, 2) for name, v in med.items()}
        result["store_speedup"] = {name: round(v / med["store"], 2) for name, v in med.items()
                                   if name != "store"}
        result["rescored_fraction"] = float(np.median(rescored))
        result["precision"] = mem.last_search_stats()["precision"]
        if faiss_index is not None:
            faiss_index.reset()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
