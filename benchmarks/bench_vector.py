"""benchmarks/README.md section 3: exact top-k (k = 10), one query at a time, against the peers.

Every size holds random unit float32 vectors generated once with a fixed seed; each implementation
runs on that same matrix in the same run: ours (native kernel), numpy (``M @ q`` + argpartition +
sort of the k), simsimd ``cdist`` (all threads) + argpartition, faiss ``IndexFlatIP``, usearch exact
search, sqlite-vec ``vec0`` KNN (cosine = dot on unit vectors). A peer that cannot be imported or
loaded is skipped with the reason (the report lists it as missing). ``scan 1000000x384`` compares
our top-k with numpy's bare matvec (no selection): the memory-bandwidth floor.

Sizes: 10k/100k x 64/384 and 1M x 64/384 by default; every size of benchmarks/README.md (10k, 100k, 1M x
64, 384, 1536, skipping matrices above ~6 GB) with ``PALYRA_BENCH_SCALE=full``.

Some machines set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow a current numpy: they are removed
from this process (effective for a numpy loaded afterwards; the values found are recorded with the
BLAS kernel threadpoolctl reports, so a report shows what the numpy peer ran on).
"""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np
import pytest

from .common import FULL, describe

OPENBLAS_ENV = {name: os.environ.pop(name, None) for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}

K = 10
MAX_BYTES = 6 * 10**9
if FULL:
    SIZES = [(n, d) for n in (10_000, 100_000, 1_000_000) for d in (64, 384, 1536)]
else:  # --quick: the smaller half of the grid, a couple of minutes on 2 cores
    SIZES = [(10_000, 64), (10_000, 384), (100_000, 64), (100_000, 384)]
SIZES = [(n, d) for n, d in SIZES if n * d * 4 <= MAX_BYTES]
IMPLS = ["palyra native", "numpy", "simsimd", "faiss", "usearch", "sqlite-vec"]
N_QUERIES = 8


def blas_kernel() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl missing"
    blas = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} x{i.get('num_threads')}"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(blas) or "unknown"


@functools.lru_cache(maxsize=1)
def dataset(n: int, d: int):
    """Unit vectors, the queries, and the float64 reference top-k of each query (one size at a time
    in memory)."""
    from palyra_journal.kernels import pure_vector
    rng = np.random.default_rng(20240 + d)
    matrix = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 1 << 16):
        block = rng.standard_normal((min(1 << 16, n - start), d), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        matrix[start:start + block.shape[0]] = block
    queries = rng.standard_normal((N_QUERIES, d), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    expected = [pure_vector.topk(matrix, q, K)[0] for q in queries]
    return matrix, queries, expected


def numpy_topk(matrix, q):
    scores = matrix @ q
    part = np.argpartition(scores, -K)[-K:]
    return part[np.argsort(-scores[part], kind="stable")]


def make_search(impl: str, matrix: np.ndarray):
    """A function query -> top-k ids for one implementation (index built here, outside timing),
    plus a cleanup function."""
    n, d = matrix.shape
    if impl == "palyra native":
        from palyra_journal.kernels import native_vector
        return lambda q: native_vector.topk(matrix, q, K)[0], None
    if impl == "numpy":
        return lambda q: numpy_topk(matrix, q), None
    if impl == "simsimd":
        simsimd = pytest.importorskip("simsimd", reason="peer simsimd is not installed")

        def search(q):
            scores = np.asarray(simsimd.cdist(q[None, :], matrix, metric="dot", threads=0,
                                              out_dtype="float32"))[0]
            part = np.argpartition(scores, -K)[-K:]
            return part[np.argsort(-scores[part], kind="stable")]
        return search, None
    if impl == "faiss":
        faiss = pytest.importorskip("faiss", reason="peer faiss is not installed")
        index = faiss.IndexFlatIP(d)
        index.add(matrix)
        return lambda q: index.search(q[None, :], K)[1][0], index.reset
    if impl == "usearch":
        pytest.importorskip("usearch", reason="peer usearch is not installed")
        from usearch.index import MetricKind, search as usearch_search
        return (lambda q: usearch_search(matrix, q, K, MetricKind.IP, exact=True, threads=0).keys,
                None)
    if impl == "sqlite-vec":
        sqlite_vec = pytest.importorskip("sqlite_vec", reason="peer sqlite-vec is not installed")
        try:
            from pysqlite3 import dbapi2 as sqlite3
        except ImportError:
            import sqlite3
        tmp = tempfile.TemporaryDirectory()
        conn = sqlite3.connect(os.path.join(tmp.name, "vec.db"))
        try:
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
        except (AttributeError, sqlite3.Error) as exc:
            conn.close()
            tmp.cleanup()
            pytest.skip(f"peer sqlite-vec cannot be loaded by this sqlite3 ({exc}); "
                        "install pysqlite3-binary")
        conn.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{d}] distance_metric=cosine)")
        with conn:
            conn.executemany("INSERT INTO v(rowid, embedding) VALUES (?, ?)",
                             ((i, matrix[i].tobytes()) for i in range(n)))
        sql = f"SELECT rowid FROM v WHERE embedding MATCH ? AND k = {K} ORDER BY distance"

        def search(q):
            return np.array([r[0] for r in conn.execute(sql, (q.tobytes(),))], dtype=np.int64)

        def cleanup():
            conn.close()
            tmp.cleanup()
        return search, cleanup
    raise ValueError(impl)


def rounds_for(impl: str, n: int, d: int) -> int:
    if impl == "sqlite-vec":
        return 3 if n * d >= 10**8 else 8
    return 20 if n * d >= 10**8 else 50


def _run(benchmark, impl, n, d, workload, role):
    matrix, queries, expected = dataset(n, d)
    search, cleanup = make_search(impl, matrix)
    try:
        agree = all(np.array_equal(np.asarray(search(q), dtype=np.int64), e)
                    for q, e in zip(queries, expected))
        state = {"i": 0}

        def one_query():
            q = queries[state["i"] % N_QUERIES]
            state["i"] += 1
            return search(q)

        describe(benchmark, section=3, workload=workload, impl=impl, role=role, items=1, x=n,
                 agrees_with_float64_reference=agree, blas=blas_kernel(),
                 openblas_env_found={k: v for k, v in OPENBLAS_ENV.items() if v is not None})
        benchmark.pedantic(one_query, rounds=rounds_for(impl, n, d), iterations=1,
                           warmup_rounds=1)
    finally:
        if cleanup is not None:
            cleanup()
    if impl == "palyra native":
        assert agree, "the native top-k must give the float64 reference ids"


@pytest.mark.parametrize("impl, n, d", [(impl, n, d) for n, d in SIZES for impl in IMPLS],
                         ids=lambda v: str(v))
def test_topk(benchmark, impl, n, d):
    _run(benchmark, impl, n, d, f"topk {n}x{d}", "ours" if impl == "palyra native" else "peer")


SCAN = (1_000_000, 384) if FULL else (100_000, 384)


@pytest.mark.parametrize("impl", ["palyra native", "numpy matvec"])
def test_scan_against_matvec(benchmark, impl):
    """Our whole top-k against numpy's bare ``M @ q`` on the same matrix: the bandwidth floor."""
    n, d = SCAN
    if impl == "palyra native":
        _run(benchmark, impl, n, d, f"scan {n}x{d}", "ours")
        return
    matrix, queries, _ = dataset(n, d)
    state = {"i": 0}

    def matvec():
        state["i"] += 1
        return matrix @ queries[state["i"] % N_QUERIES]

    describe(benchmark, section=3, workload=f"scan {n}x{d}", impl="numpy matvec", role="floor",
             items=1, x=n, bytes_per_item=n * d * 4, blas=blas_kernel(),
             openblas_env_found={k: v for k, v in OPENBLAS_ENV.items() if v is not None})
    benchmark.pedantic(matvec, rounds=20, iterations=1, warmup_rounds=1)
