"""benchmarks/README.md section 4 (hybrid search end to end) and the first-search matrix load of section 3.

One store of realistic sentences (Zipf-distributed words, so FTS posting lists look like real
text) embedded by a 384-dim ``RandomProjectionProvider``, built once per run:

* ``hybrid search NxD``: ``store.memory.search()`` (k = 8) over distinct queries, one per round;
  p50/p95 and the split into embed / FTS / vector / fusion go into extra_info (``p50``, ``p95``,
  ``split_embed``, ``split_fts``, ``split_vector``, ``split_fusion``: seconds, the split as
medians). The floor is the bare vector-only scan (``kernels.topk`` over the same matrix, no
  mask), so the report's ratio is the target "p50 ≤ 3 × the vector-only scan".
* ``matrix load NxD``: loading the index (``VectorIndex.load`` from the snapshot beside the
  database, written by the warm-up round: vectors, int8 tier and scope fields, see
  docs/recall.md) against the naive ``SELECT vector`` →
  one ``np.frombuffer`` per row → ``np.vstack``, which loads the vectors alone (the same rows).
  Both run on one plain ``sqlite3`` connection (default pragmas), alternately in the same run.

Size: 20 000 memories by default, 100 000 with ``PALYRA_BENCH_SCALE=full``.
"""

from __future__ import annotations

import sqlite3
import statistics

import numpy as np
import pytest

import palyra_journal as pj
from .common import describe, scaled
from palyra_journal import kernels
from palyra_journal.memory.index import VectorIndex

N = scaled(20_000, 100_000)
DIMS = 384
K = 8
N_QUERIES = 60
SHAPE = f"{N}x{DIMS}"


def impl() -> str:
    return f"palyra {kernels.backend_name()}"


def vocabulary(rng: np.random.Generator, size: int = 8_000) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvwz", "aeiou"
    words = set()
    while len(words) < size:
        n = int(rng.integers(1, 4))
        words.add("".join(rng.choice(list(consonants)) + rng.choice(list(vowels))
                          for _ in range(n)) + rng.choice(list(consonants + " ")).strip())
    return sorted(words)


def sentences(rng: np.random.Generator, vocab: list[str], count: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.3, size=(count, 18)), len(vocab)) - 1
    lengths = rng.integers(6, 19, count)
    return [" ".join(vocab[r] for r in row[:n]).capitalize() + "."
            for row, n in zip(ranks, lengths)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(2024)
    vocab = vocabulary(rng)
    texts = sentences(rng, vocab, N)
    path = tmp_path_factory.mktemp("memory-bench") / "memory.db"
    provider = pj.RandomProjectionProvider(DIMS, seed=1)
    with pj.JournalStore.open(path, embedding_provider=provider) as store:
        for start in range(0, N, 5_000):
            store.memory.ingest_many(
                {"content": t, "principal": f"user:{i % 4}", "channel": ("cli", "web")[i % 2],
                 "tags": ["ops"] if i % 5 == 0 else []}
                for i, t in enumerate(texts[start:start + 5_000], start))
    # queries: 2-4 words of middling frequency, as a person would type
    queries = [" ".join(vocab[int(r)] for r in rng.integers(5, 2_000, int(rng.integers(2, 5))))
               for _ in range(N_QUERIES)]
    return path, provider, queries


def test_hybrid_search(benchmark, corpus):
    path, provider, queries = corpus
    with pj.JournalStore.open(path, embedding_provider=provider) as store:
        mem = store.memory
        mem.search("warm up", principal="user:0")  # loads the index: measured separately below
        it = iter(range(10**9))
        timings: list[dict] = []

        def one():
            q = queries[next(it) % len(queries)]
            hits = mem.search(q, principal="user:0", top_k=K)
            timings.append(mem.last_timings)
            return hits

        benchmark.pedantic(one, rounds=N_QUERIES * 2, iterations=1, warmup_rounds=3)
        totals = sorted(t["total"] for t in timings)
        split = {f"split_{k}": statistics.median(t[k] for t in timings)
                 for k in ("embed", "fts", "vector", "fusion")}
        describe(benchmark, section=4, workload=f"hybrid search {SHAPE}", impl=impl(), role="ours",
                 items=1, p50=totals[len(totals) // 2],
                 p95=totals[min(len(totals) - 1, int(len(totals) * 0.95))], **split)


def test_vector_only_scan(benchmark, corpus):
    path, provider, _ = corpus
    with pj.JournalStore.open(path, embedding_provider=provider) as store:
        store.memory.search("warm up", principal="user:0")
        idx = store.memory._index
        matrix = idx.matrix[:idx.n]
        q = provider.embed(["vector only scan"])[0]
        benchmark(kernels.topk, matrix, q, K)
        describe(benchmark, section=4, workload=f"hybrid search {SHAPE}",
                 impl="vector-only scan (kernels.topk, same matrix)", role="floor", items=1)


def test_matrix_load(benchmark, corpus):
    path, provider, _ = corpus
    conn = sqlite3.connect(path)
    key = (provider.model_name, provider.dimensions, provider.version)

    def load():
        idx = VectorIndex(*key)
        idx.load(conn, snapshot=str(path) + "-vectors")
        return idx

    idx = benchmark.pedantic(load, rounds=5, iterations=1, warmup_rounds=1)
    conn.close()
    assert idx.n == N
    describe(benchmark, section=3, workload=f"matrix load {SHAPE}", impl=impl(), role="ours",
             items=1, note_load=f"snapshot: {idx.snapshot_state}")


def test_matrix_load_naive(benchmark, corpus):
    path, _, _ = corpus
    conn = sqlite3.connect(path)

    def naive():
        rows = conn.execute("SELECT vector FROM memory_vectors").fetchall()
        return np.vstack([np.frombuffer(b, dtype=np.float32) for (b,) in rows])

    m = benchmark.pedantic(naive, rounds=5, iterations=1, warmup_rounds=1)
    conn.close()
    assert m.shape == (N, DIMS)
    describe(benchmark, section=3, workload=f"matrix load {SHAPE}",
             impl="naive SELECT blobs -> numpy", role="floor", items=1)
