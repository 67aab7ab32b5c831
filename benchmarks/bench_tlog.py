"""The verifiable journal (docs/verifiable.md, "What is measured"): the cost of keeping the Merkle
tiles, proofs per second, past tree heads, and the migration of an older file.

- tile maintenance: ``append_many`` (batches of 1 000) and ``append`` with the tiles, against the
  same store with the tile hook switched off (floor "no tiles"), on fresh files, same run;
- inclusion proofs/s and ``tree_head(size)`` for random past sizes on an N-event journal (the
  store's tile cache warm, as in a server answering proofs), beside the cheapest store call
  (``store.head()``) as the yardstick of per-call overhead on the machine of the run;
- migration: ``build_tiles`` over an N-event file that has none, against one native
  ``leaf_hashes`` call over the same rows already in memory (the target's reference) and against
  the SELECT of those rows plus that call.

Native backend only (the targets are the native ones). Quick: 100 000 events in the journal;
PALYRA_BENCH_SCALE=full: 1 000 000. Run: ``python -m pytest benchmarks/bench_tlog.py --benchmark-only``.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import time

import pytest

from palyra_journal import JournalStore, events, kernels
from palyra_journal.tlog import hashing, tiles

from .bench_journal import chunks, fresh_path, make_events
from .common import describe, scaled

SECTION = 6
N_BATCH = scaled(20_000, 100_000)
N_SINGLE = scaled(2_000, 20_000)
N_TREE = scaled(100_000, 1_000_000)
BATCH = 1_000
PROOFS = 2_000
HEADS = 200
ROUNDS = 5


@pytest.fixture(autouse=True, scope="module")
def native():
    if not kernels.native_available():
        pytest.skip("native backend not built")
    previous = kernels.backend_name()
    kernels.set_backend("native")
    yield
    kernels.set_backend(previous)


@pytest.fixture(params=["tiles", "no tiles"])
def tiles_mode(request, monkeypatch):
    """Our store as shipped (the hook timed from inside: on a shared machine the share of the time
    spent in it is steadier than the ratio of two runs), or with the hook a no-op (the floor)."""
    if request.param == "no tiles":
        monkeypatch.setattr(events, "record_leaves", lambda *args, **kwargs: None)
        return "no tiles", "floor", None
    spent = [0.0]
    real = events.record_leaves

    def timed(*args, **kwargs):
        t = time.perf_counter()
        real(*args, **kwargs)
        spent[0] += time.perf_counter() - t
    monkeypatch.setattr(events, "record_leaves", timed)
    return "palyra native", "ours", spent


def _hook_share(benchmark, spent) -> None:
    """Record the hook's time as a share of the rest of the appends (a note in the report)."""
    if spent is not None:
        total = benchmark.stats.stats.total
        benchmark.extra_info["note_hook_share"] = f"{spent[0] / (total - spent[0]):.1%}"


@pytest.fixture(scope="module")
def evs():
    return make_events(max(N_BATCH, N_SINGLE))


def _fresh(benchmark, workdir, job):
    benchmark.pedantic(job, setup=lambda: ((fresh_path(workdir),), {}), rounds=ROUNDS,
                       iterations=1)


def test_append_many_tiles(benchmark, workdir, evs, tiles_mode):
    impl, role, spent = tiles_mode

    def job(path):
        with JournalStore.open(path) as store:
            for part in chunks(evs[:N_BATCH], BATCH):
                store.append_many(part)
    describe(benchmark, section=SECTION, workload="tlog append_many", impl=impl, role=role,
             items=N_BATCH)
    _fresh(benchmark, workdir, job)
    _hook_share(benchmark, spent)


def test_append_tiles(benchmark, workdir, evs, tiles_mode):
    impl, role, spent = tiles_mode

    def job(path):
        with JournalStore.open(path) as store:
            for ev in evs[:N_SINGLE]:
                store.append(ev["kind"], ev["payload"], actor=ev["actor"],
                             session_id=ev["session_id"])
    describe(benchmark, section=SECTION, workload="tlog append", impl=impl, role=role,
             items=N_SINGLE)
    _fresh(benchmark, workdir, job)
    _hook_share(benchmark, spent)


@pytest.fixture(scope="module")
def tree_db(workdir):
    path = workdir / "tree.db"
    with JournalStore.open(path) as store:
        pool = make_events(10_000, seed=2)
        for start in range(0, N_TREE, 10_000):
            store.append_many(pool[:min(10_000, N_TREE - start)])
    return path


def _per_call(benchmark, tree_db, method: str, args: list, *, workload: str, impl: str,
              role: str) -> None:
    """Time ``store.<method>(arg)`` for each of ``args`` on the tree journal, cache warm."""
    with JournalStore.open(tree_db) as store:
        fn = getattr(store, method)

        def job():
            for a in args:
                fn(*a)
        describe(benchmark, section=SECTION, workload=workload, impl=impl, role=role,
                 items=len(args))
        benchmark.pedantic(job, rounds=ROUNDS, iterations=1, warmup_rounds=1)


def test_inclusion_proofs(benchmark, tree_db):
    rng = random.Random(1)
    _per_call(benchmark, tree_db, "inclusion_proof",
              [(rng.randint(1, N_TREE),) for _ in range(PROOFS)],
              workload=f"tlog inclusion proofs {N_TREE}", impl="palyra native", role="ours")


def test_one_query_store_call(benchmark, tree_db):
    """The cheapest store call (``store.head()``: one indexed probe under the store lock), as the
    yardstick of what any per-proof API call costs on this machine at this moment."""
    _per_call(benchmark, tree_db, "head", [()] * PROOFS,
              workload=f"tlog inclusion proofs {N_TREE}", impl="store.head() (one-query call)",
              role="floor")


def test_tree_head_past_sizes(benchmark, tree_db):
    rng = random.Random(2)
    _per_call(benchmark, tree_db, "tree_head", [(rng.randint(1, N_TREE),) for _ in range(HEADS)],
              workload=f"tlog tree_head(size) {N_TREE}", impl="palyra native", role="ours")


def _without_tiles(src, dst):
    shutil.copyfile(src, dst)
    conn = sqlite3.connect(dst)
    (guard,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                            "AND name = 'tlog_tiles_no_delete'").fetchone()
    conn.execute("DROP TRIGGER tlog_tiles_no_delete")
    conn.execute("DELETE FROM tlog_tiles")
    conn.execute(guard)  # the file stays append-only: only its tiles are gone
    conn.commit()
    conn.close()
    return dst


def test_migration_build_tiles(benchmark, workdir, tree_db):
    bare = _without_tiles(tree_db, workdir / "bare.db")
    copies = iter(range(10**6))

    def setup():
        path = workdir / f"migrate{next(copies)}.db"
        shutil.copyfile(bare, path)
        return (path,), {}

    def job(path):
        with JournalStore.open(path) as store:
            assert tiles.build_tiles(store) == N_TREE // 256 * 256
    describe(benchmark, section=SECTION, workload=f"tlog migration {N_TREE}",
             impl="palyra native", role="ours", items=N_TREE // 256 * 256)
    benchmark.pedantic(job, setup=setup, rounds=ROUNDS, iterations=1)


def _leaf_rows(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {', '.join(tiles.LEAF_FIELDS)} FROM journal_events "
                            "WHERE seq <= ? ORDER BY seq", (N_TREE // 256 * 256,)).fetchall()
    finally:
        conn.close()


def test_migration_floor_one_hash_call(benchmark, tree_db):
    rows = _leaf_rows(tree_db)
    describe(benchmark, section=SECTION, workload=f"tlog migration {N_TREE}",
             impl="one native leaf-hash call", role="floor", items=len(rows))
    benchmark.pedantic(hashing.leaf_hashes, args=(rows,), rounds=ROUNDS, iterations=1)


def test_migration_peer_select_and_hash(benchmark, tree_db):
    describe(benchmark, section=SECTION, workload=f"tlog migration {N_TREE}",
             impl="SELECT + one native leaf-hash call", role="peer", items=N_TREE // 256 * 256)
    benchmark.pedantic(lambda: hashing.leaf_hashes(_leaf_rows(tree_db)), rounds=ROUNDS,
                       iterations=1)
