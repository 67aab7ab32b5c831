"""Section 6, recall at scale (docs/recall.md): vector search through the store against the peers,
on random and on clustered data, plus open time, resident memory, batches and ingest.

Per (data, N x d), one store is built (``ingest_many`` with the vectors as embeddings) and its
snapshot written; then, in one run, on the same matrix and queries:

* ``recall <data> NxD`` (k = 10): ``store.memory.search(mode="vector")`` (``palyra native``, the
  precision ``auto`` picks, with the rescored fraction and the precision as notes); the bare kernel
  call the store makes (``kernels.topk_int8`` / ``kernels.topk`` with the k the store asks for,
  ``store_k``: the floor, the store's own overhead is the gap); numpy ``M @ q`` + argpartition; simsimd
  ``cdist`` (all threads); faiss ``IndexFlatIP``; faiss ``IndexScalarQuantizer`` (8-bit) inside
  ``IndexRefineFlat`` (k_factor 4), the int8 peer, whose recall@10 against the float64 reference
  is noted (ours is 1.0 by construction: every implementation but that one is checked to return
  the reference ids before it is timed).
* ``open NxD``: opening the store and answering the first vector search from the snapshot, against
  the naive load (``SELECT vector FROM memory_vectors`` -> numpy); the resident memory of a fresh
  process after that first search is noted.
* ``search_many 10000x384`` (64 queries): ``store.memory.search_many`` against numpy
  ``Q @ M.T`` + argpartition per row.
* ``ingest_many 384d``: ``store.memory.ingest_many`` of 10 000 items (quick: 2 000) against a raw
  ``executemany`` of the same rows into items (FTS by trigger) and vectors, each into a fresh store.

Data: random unit vectors, and a mixture of 1 000 Gaussian clusters (unit centres, spread 0.35 /
sqrt(d) per coordinate) with queries near the centres. Sizes: quick: 20k x 384 (a smoke test);
``PALYRA_BENCH_SCALE=full``: 100k x 384, 1M x 64 and 1M x 384 (1M x 1536, 6 GB of float32 plus its
snapshot, does not fit a 2-core CI machine's memory budget alongside the peers' copies:
``benchmarks/measure_recall_large.py`` measures it on a store built here, with one mapped copy).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import palyra_journal as pj
from palyra_journal import kernels
from palyra_journal.memory.embeddings import HashEmbeddingProvider
from palyra_journal.memory.ingest import unit_rows as stored_rows
from palyra_journal.memory.search import candidate_limit, first_ask

from .bench_vector import K as VECTOR_K, make_search
from .common import FULL, describe, scaled

K = 10
N_QUERIES = 16
SIZES = [(100_000, 384), (1_000_000, 64), (1_000_000, 384)] if FULL else [(20_000, 384)]
DATA = ["random", "clustered"]
#: (data, n, d) timed: both data sets at every size but the largest, whose target is on clustered
#: data (building a second 1M x 384 store doubles the run); quick: random data only.
CASES = [(kind, n, d) for n, d in SIZES for kind in DATA if n * d < 10**8 or kind == "clustered"] \
    if FULL else [("random", n, d) for n, d in SIZES]
PEERS = ["numpy", "simsimd", "faiss flat", "faiss sq8+refine"]
SECTION = 7
assert K == VECTOR_K  # the peers of bench_vector search for the same k


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(kind: str, n: int, d: int, seed: int = 7):
    """The matrix and the queries of one data set, generated in blocks (bounded memory)."""
    rng = np.random.default_rng(seed + d)
    matrix = np.empty((n, d), dtype=np.float32)
    centres = unit_rows(rng.standard_normal((1000, d))) if kind == "clustered" else None
    for start in range(0, n, 1 << 16):
        m = min(1 << 16, n - start)
        block = rng.standard_normal((m, d), dtype=np.float32)
        if centres is not None:
            block = centres[rng.integers(0, 1000, m)] + block * np.float32(0.35 / np.sqrt(d))
        matrix[start:start + m] = unit_rows(block)
    if centres is None:
        queries = unit_rows(rng.standard_normal((N_QUERIES, d)))
    else:
        queries = unit_rows(centres[:N_QUERIES] + rng.standard_normal((N_QUERIES, d)) * 0.1 / np.sqrt(d))
    return matrix, queries


def as_stored(x: np.ndarray) -> np.ndarray:
    """The vectors as the store keeps them (it normalizes what it is given, in float64): peers and
    the reference must see the very same bits, or clustered data's near-ties rank differently."""
    out = np.empty_like(x)
    for start in range(0, x.shape[0], 1 << 16):
        out[start:start + (1 << 16)] = stored_rows(x[start:start + (1 << 16)].astype(np.float64))
    return out


def reference(matrix: np.ndarray, q: np.ndarray, k: int = K) -> np.ndarray:
    return kernels.topk(matrix, q, k)[0]


def provider(d: int):
    return HashEmbeddingProvider(dimensions=d)


#: Fusion weights of the benchmark stores: the vector score alone, so that the hits' order is the
#: exact top-k's and can be checked against the reference (recency would reorder near-ties of the
#: clustered data; it costs the same either way).
VECTOR_ONLY = {"memory_fusion_weights": (0.0, 1.0, 0.0)}


def build_store(path: str, matrix: np.ndarray) -> None:
    """The store of one data set (kept across runs: the data are the same every time; its snapshot,
    written by the last step, marks it complete)."""
    if os.path.exists(path + "-vectors"):
        return
    for leftover in (path, path + "-wal", path + "-shm"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    n, d = matrix.shape
    with pj.JournalStore.open(path, embedding_provider=provider(d), **VECTOR_ONLY) as store:
        for start in range(0, n, 20_000):
            store.memory.ingest_many(
                {"content": f"item {i}", "principal": "p", "embedding": v,
                 "memory_id": f"m{i:08d}"} for i, v in enumerate(matrix[start:start + 20_000], start))
        store.memory.search("warm", principal="p", mode="vector", query_embedding=matrix[0])


@functools.lru_cache(maxsize=1)
def dataset(kind: str, n: int, d: int, root: str):
    """One data set at a time: the matrix and queries as the store holds them (for the peers and
    the reference), the queries as given to the store, the reference ids, and the built store."""
    given, given_queries = make_data(kind, n, d)
    path = os.path.join(root, f"recall-{kind}-{n}x{d}.db")
    build_store(path, given)
    matrix, queries = as_stored(given), as_stored(given_queries)
    del given
    expected = [reference(matrix, q) for q in queries]
    return matrix, queries, given_queries, expected, path


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Where the stores go: ``PALYRA_BENCH_DATA`` keeps them between runs (building a 1M-row store
    takes minutes; the data are the same every time), else a temporary directory."""
    keep = os.environ.get("PALYRA_BENCH_DATA")
    if keep:
        os.makedirs(keep, exist_ok=True)
        return keep
    return str(tmp_path_factory.mktemp("recall"))


def row_ids(hits) -> list[int]:
    return [int(h.item.memory_id[1:]) for h in hits]


def peer_search(impl: str, matrix: np.ndarray):
    """A function query -> top-k ids for a peer (index built here, outside timing)."""
    if impl != "faiss sq8+refine":  # the float32 peers of section 3, as configured there
        return make_search({"faiss flat": "faiss"}.get(impl, impl), matrix)[0]
    faiss = pytest.importorskip("faiss", reason="peer faiss is not installed")
    index = faiss.IndexRefineFlat(faiss.IndexScalarQuantizer(
        matrix.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT))
    index.k_factor = 4
    index.train(matrix[: min(matrix.shape[0], 100_000)])
    index.add(matrix)
    return lambda q: index.search(q[None, :], K)[1][0]


def store_k(mem) -> int:
    """The k the store asks the kernel for in a vector search of ``K`` (memory/search.py
    ``first_ask``: ``K + 1`` with these stores' weights): the bare kernel call is timed with it."""
    return first_ask(mem.weights, K, candidate_limit(K))


def timed_queries(benchmark, fn, queries):
    it = iter(range(10**9))
    benchmark.pedantic(lambda: fn(queries[next(it) % len(queries)]), rounds=3 * len(queries),
                       iterations=1, warmup_rounds=2)



@pytest.mark.parametrize("impl", ["palyra native", "palyra kernel"] + PEERS)
@pytest.mark.parametrize("kind,n,d", CASES, ids=[f"{k}-{n}x{d}" for k, n, d in CASES])
def test_recall(benchmark, root, kind, n, d, impl):
    matrix, queries, given_queries, expected, path = dataset(kind, n, d, root)
    workload = f"recall {kind} {n}x{d}"
    if impl in ("palyra native", "palyra kernel"):
        with pj.JournalStore.open(path, embedding_provider=provider(d), **VECTOR_ONLY) as store:
            mem = store.memory

            def search(q):
                return mem.search("q", principal="p", mode="vector", query_embedding=q, top_k=K)
            for q, want in zip(given_queries, expected):
                assert row_ids(search(q)) == want.tolist()
            stats = mem.last_search_stats()
            idx = mem._index
            if impl == "palyra kernel":
                m, limit = idx.matrix[:idx.n], store_k(mem)
                if stats["precision"] == "int8" and idx.row_reader is not None:
                    tier, reader = idx.int8_tier(), idx.row_reader
                    timed_queries(benchmark, lambda q: kernels.topk_rows(
                        reader, kernels.int8_candidates(tier, q, limit)[0], q, limit), queries)
                elif stats["precision"] == "int8":
                    tier = idx.int8_tier()
                    timed_queries(benchmark, lambda q: kernels.topk_int8(m, tier, q, limit),
                                  queries)
                else:
                    timed_queries(benchmark, lambda q: kernels.topk(m, q, limit), queries)
                describe(benchmark, section=SECTION, workload=workload, impl=impl, role="floor",
                         items=1, note_kernel=f"bare {stats['precision']} kernel call, k={limit}")
                return
            rescored = []

            def measured(q):
                hits = search(q)
                rescored.append(mem.last_search_stats()["rescored_fraction"])
                return hits
            timed_queries(benchmark, measured, given_queries)
            overhead = store_over_kernel(search, idx, given_queries, queries, store_k(mem))
        describe(benchmark, section=SECTION, workload=workload, impl=impl, role="ours", items=1,
                 note_precision=stats["precision"],
                 note_rescored=f"{float(np.median(rescored)):.4%}",
                 note_store_over_kernel=f"store / bare kernel, interleaved per query: {overhead:.3f}")
        return
    search = peer_search(impl, matrix)
    got = [search(q) for q in queries]
    recall = np.mean([len(set(g.tolist()) & set(w.tolist())) / K for g, w in zip(got, expected)])
    if impl != "faiss sq8+refine":
        assert recall == 1.0, f"{impl} does not return the reference ids"
    timed_queries(benchmark, search, queries)
    describe(benchmark, section=SECTION, workload=workload, impl=impl, role="peer", items=1,
             quantized=impl == "faiss sq8+refine", note_recall=f"{impl}: recall@10 {recall:.4f}")


def store_over_kernel(search, idx, given_queries, queries, limit: int,
                      rounds: int = 3) -> float:
    """Median store time over median bare-kernel time, the two alternated query by query: on a
    shared machine the load drifts between two separately timed tests, not within one query."""
    m = idx.matrix[:idx.n]
    tier = idx.int8_tier()
    reader = idx.row_reader

    def kernel(q):
        if reader is None:
            return kernels.topk_int8(m, tier, q, limit)
        kept, _ = kernels.int8_candidates(tier, q, limit)
        return kernels.topk_rows(reader, kept, q, limit)
    store_t, kernel_t = [], []
    for _ in range(rounds):
        for given, q in zip(given_queries, queries):
            t = time.perf_counter()
            search(given)
            store_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            kernel(q)
            kernel_t.append(time.perf_counter() - t)
    return float(np.median(store_t) / np.median(kernel_t))


_RSS_SCRIPT = """
import sys
import numpy as np
import palyra_journal as pj
from palyra_journal.memory.embeddings import HashEmbeddingProvider
from palyra_journal.memory.ingest import unit_rows as stored_rows
path, d = sys.argv[1], int(sys.argv[2])
with pj.JournalStore.open(path, embedding_provider=HashEmbeddingProvider(dimensions=d)) as s:
    s.memory.search("q", principal="p", mode="vector", query_embedding=np.ones(d), top_k=10)
    print(int(open("/proc/self/statm").read().split()[1]) * 4096, s.memory._index.snapshot_state)
"""


@pytest.mark.parametrize("n,d", SIZES, ids=[f"{n}x{d}" for n, d in SIZES])
@pytest.mark.parametrize("impl", ["palyra native", "naive SELECT"])
def test_open(benchmark, root, n, d, impl):
    """Open + first vector search (the snapshot mapped, the page cache warm, as for a store opened
    often) against the naive SELECT load of the vectors alone."""
    _, _, queries, _, path = dataset("clustered" if FULL else "random", n, d, root)
    workload = f"open {n}x{d}"
    if impl == "naive SELECT":
        import sqlite3

        def naive():
            conn = sqlite3.connect(path)
            rows = conn.execute("SELECT vector FROM memory_vectors").fetchall()
            conn.close()
            return np.vstack([np.frombuffer(b, dtype=np.float32) for (b,) in rows])
        benchmark.pedantic(naive, rounds=3, iterations=1, warmup_rounds=1)
        describe(benchmark, section=SECTION, workload=workload, impl=impl, role="floor", items=1)
        return
    states = []

    def open_and_search():
        with pj.JournalStore.open(path, embedding_provider=provider(d), **VECTOR_ONLY) as store:
            store.memory.search("q", principal="p", mode="vector", query_embedding=queries[0],
                                top_k=K)
            states.append(store.memory._index.snapshot_state)
    benchmark.pedantic(open_and_search, rounds=5, iterations=1, warmup_rounds=1)
    assert set(states) == {"mapped"}
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, path, str(d)], check=True,
                         capture_output=True, text=True, env=dict(os.environ)).stdout.split()
    describe(benchmark, section=SECTION, workload=workload, impl=impl, role="ours", items=1,
             note_rss=f"RSS of a fresh process after open + first search: "
                      f"{int(out[0]) / 2**30:.2f} GiB ({out[1]})")


SM_N, SM_D, SM_Q = 10_000, 384, 64


@pytest.mark.parametrize("impl", ["palyra native", "numpy"])
def test_search_many(benchmark, root, impl):
    given, _ = make_data("random", SM_N, SM_D, seed=11)
    given_queries = unit_rows(np.random.default_rng(12).standard_normal((SM_Q, SM_D)))
    matrix, queries = as_stored(given), as_stored(given_queries)
    workload = f"search_many {SM_N}x{SM_D} x{SM_Q}"
    expected = [reference(matrix, q).tolist() for q in queries]
    if impl == "numpy":
        def batch():
            s = queries @ matrix.T
            part = np.argpartition(s, -K, axis=1)[:, -K:]
            return [p[np.argsort(-r[p], kind="stable")] for r, p in zip(s, part)]
        assert [b.tolist() for b in batch()] == expected
        benchmark.pedantic(batch, rounds=10, iterations=1, warmup_rounds=1)
        describe(benchmark, section=SECTION, workload=workload, impl=impl, role="peer", items=SM_Q)
        return
    path = os.path.join(root, "search-many.db")
    build_store(path, given)
    with pj.JournalStore.open(path, embedding_provider=provider(SM_D), **VECTOR_ONLY) as store:
        got = store.memory.search_many(given_queries, principal="p", top_k=K)
        assert [row_ids(h) for h in got] == expected
        benchmark.pedantic(lambda: store.memory.search_many(given_queries, principal="p", top_k=K),
                           rounds=10, iterations=1, warmup_rounds=1)
    describe(benchmark, section=SECTION, workload=workload, impl=impl, role="ours", items=SM_Q)


ING_N, ING_D = scaled(2_000, 10_000), 384


@pytest.mark.parametrize("impl", ["palyra native", "raw executemany"])
def test_ingest_many(benchmark, root, impl):
    matrix, _ = make_data("random", ING_N, ING_D, seed=13)
    specs = [{"content": f"note {i} about topic {i % 97}", "principal": "p", "embedding": v}
             for i, v in enumerate(matrix)]
    counter = iter(range(10**9))

    def fresh() -> str:
        path = os.path.join(root, f"ingest-{impl.replace(' ', '-')}-{os.getpid()}-{next(counter)}.db")
        pj.JournalStore.open(path, embedding_provider=provider(ING_D)).close()
        return path

    if impl == "raw executemany":
        blobs = [v.astype("<f4").tobytes() for v in matrix]

        def raw(path):
            import sqlite3
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO memory_items(memory_id, principal, channel, session_id, source, "
                "content, content_hash, tags_json, confidence, ttl_unix_ms, created_at_unix_ms, "
                "updated_at_unix_ms) VALUES (?, ?, NULL, NULL, 'manual', ?, ?, '[]', NULL, NULL, "
                "1, 1)", [(f"r{i:08d}", "p", s["content"], "0" * 64) for i, s in enumerate(specs)])
            conn.executemany(
                "INSERT INTO memory_vectors(memory_id, model, dims, version, vector, "
                "embedded_at_unix_ms) VALUES (?, 'hash', ?, 1, ?, 1)",
                [(f"r{i:08d}", ING_D, b) for i, b in enumerate(blobs)])
            conn.execute("COMMIT")
            conn.close()
        benchmark.pedantic(raw, setup=lambda: ((fresh(),), {}), rounds=5, iterations=1)
        describe(benchmark, section=SECTION, workload=f"ingest_many {ING_D}d", impl=impl,
                 role="floor", items=ING_N)
        return

    def ours(path):
        with pj.JournalStore.open(path, embedding_provider=provider(ING_D)) as store:
            store.memory.ingest_many(specs)
    benchmark.pedantic(ours, setup=lambda: ((fresh(),), {}), rounds=5, iterations=1)
    describe(benchmark, section=SECTION, workload=f"ingest_many {ING_D}d", impl=impl, role="ours",
             items=ING_N)
