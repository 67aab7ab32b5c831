"""Roots, inclusion and consistency proofs of the stored tree against the independent recursive
RFC 9162 implementation of ``reference.py`` (leaf data by the rfc8785 package), on both backends:
every size 0..300, and random sizes up to 10 000."""

from __future__ import annotations

import random

import pytest
import raw_db

import palyra_journal as pj

from . import reference as ref

BASE_MS = 1_700_000_000_000


def _fill(store, n: int, seed: int) -> list:
    """n events of assorted shapes (unicode, nulls, nested payloads), by append and append_many."""
    rng = random.Random(seed)
    events = []
    while len(events) < n:
        k = min(n - len(events), rng.choice((1, 1, 3, 17, 255, 256, 700)))
        batch = [{"kind": rng.choice(("tool.executed", "note", "ünïcode/✓")),
                  "payload": {"i": len(events) + j, "text": "é\n\"x\"" * rng.randint(0, 3),
                              "nested": {"a": [1, 2.5, None, True]}},
                  "session_id": rng.choice((None, "s1", "s\u2028")),
                  "timestamp_unix_ms": BASE_MS + len(events) + j} for j in range(k)]
        if k == 1:
            events.append(store.append(batch[0]["kind"], batch[0]["payload"],
                                       session_id=batch[0]["session_id"],
                                       timestamp_unix_ms=batch[0]["timestamp_unix_ms"]))
        else:
            events += store.append_many(batch)
    return events


@pytest.fixture
def small(store):
    events = _fill(store, 300, 1)
    return store, [ref.leaf(ref.leaf_data(e)) for e in events]


def test_leaf_hash_of_an_event_alone(small, backend):
    store, leaves = small
    for ev, want in zip(store.iter_events(), leaves):
        assert pj.tlog.leaf_hash(ev) == want
        assert pj.tlog.leaf_hash(ev.to_dict()) == want


def test_every_root_of_sizes_0_to_300(small, backend):
    store, leaves = small
    assert store.tree_head().size == 300
    for size in range(301):
        head = store.tree_head(size)
        assert head.size == size and head.root == ref.mth(leaves[:size]), size


def _some(rng: random.Random, low: int, high: int) -> set[int]:
    """The ends, the middle and a few random values of [low, high]: every shape of path."""
    return {low, min(low + 1, high), (low + high) // 2, max(high - 1, low), high,
            *(rng.randint(low, high) for _ in range(3))}


def test_inclusion_proofs_of_every_size_1_to_300(small, backend):
    store, leaves = small
    rng = random.Random(5)
    for size in range(1, 301):
        root = ref.mth(leaves[:size])
        for index in _some(rng, 0, size - 1):
            p = store.inclusion_proof(index + 1, size)
            assert (p.leaf_index, p.tree_size, p.leaf_hash) == (index, size, leaves[index])
            assert p.hashes == ref.path(index, leaves[:size]), (index, size)
            pj.tlog.verify_inclusion(p.leaf_hash, index, size, p.hashes, root)


def test_consistency_proofs_of_every_size_0_to_300(small, backend):
    store, leaves = small
    rng = random.Random(6)
    roots = [ref.mth(leaves[:n]) for n in range(301)]
    for new in range(301):
        for old in _some(rng, 0, new):
            got = store.consistency_proof(old, new)
            assert got == ref.proof(old, leaves[:new]), (old, new)
            if 0 < old:
                pj.tlog.verify_consistency(old, new, roots[old], roots[new], got)


def test_random_sizes_up_to_10000(store, backend):
    rng = random.Random(7)
    events = _fill(store, 10_000, 2)
    leaves = [ref.leaf(ref.leaf_data(e)) for e in events]
    for size in sorted(rng.sample(range(1, 10_001), 12)) + [10_000]:
        root = ref.mth(leaves[:size])
        assert store.tree_head(size).root == root
        for index in rng.sample(range(size), min(size, 6)):
            p = store.inclusion_proof(index + 1, size)
            assert p.hashes == ref.path(index, leaves[:size])
            pj.tlog.verify_inclusion(p.leaf_hash, index, size, p.hashes, root)
        old = rng.randint(1, size)
        c = store.consistency_proof(old, size)
        assert c == ref.proof(old, leaves[:size])
        pj.tlog.verify_consistency(old, size, ref.mth(leaves[:old]), root, c)


def test_tiles_are_written_with_the_events_that_complete_them(store, db_path, backend):
    _fill(store, 1000, 3)
    conn = raw_db.connect(db_path)
    try:
        tiles = conn.execute("SELECT level, idx, length(root), length(nodes) FROM tlog_tiles "
                             "ORDER BY level, idx").fetchall()
    finally:
        conn.close()
    assert tiles == [(0, i, 32, 510 * 32) for i in range(3)]  # 1000 // 256 full tiles, no partial


def test_bad_arguments_name_the_value(store, backend):
    _fill(store, 10, 4)
    with pytest.raises(pj.ProofError, match="size 11 is beyond the journal's 10 events"):
        store.tree_head(11)
    with pytest.raises(pj.ProofError, match="seq 8 is not in a tree of 7 events"):
        store.inclusion_proof(8, 7)
    with pytest.raises(pj.InvalidPayloadError, match="seq must be an int >= 1"):
        store.inclusion_proof(0)
    with pytest.raises(pj.ProofError, match="old_size 9 is larger than new_size 5"):
        store.consistency_proof(9, 5)
    assert store.tree_head(0).root == pj.tlog.EMPTY_ROOT == ref.mth([])


def test_a_rolled_back_append_leaves_no_trace_in_the_tree(store, backend):
    _fill(store, 300, 8)
    with pytest.raises(RuntimeError):
        with store.write():
            store.append_many([{"kind": "doomed", "payload": {"i": i}} for i in range(250)])
            store.tree_head()  # read inside the transaction that is about to roll back
            store.inclusion_proof(520)
            raise RuntimeError("roll back")
    events = _fill(store, 250, 9)
    leaves = [ref.leaf(ref.leaf_data(e)) for e in store.iter_events()]
    assert len(leaves) == 550 and events[-1].seq == 550
    assert store.tree_head().root == ref.mth(leaves)
    assert store.inclusion_proof(520).hashes == ref.path(519, leaves)
    assert store.verify().ok


def test_leaf_hash_of_a_dict_with_only_the_payload_value(store, backend):
    rec = store.append("k", {"b": [1, 2], "a": "é"}, session_id="s")
    d = rec.to_dict()
    del d["payload_json"]
    assert pj.tlog.leaf_hash(d) == ref.leaf(ref.leaf_data(rec))
    with pytest.raises(pj.InvalidPayloadError, match="missing seq"):
        pj.tlog.leaf_hash({"kind": "k"})
    with pytest.raises(pj.InvalidPayloadError, match="EventRecord or a dict"):
        pj.tlog.leaf_hash("k")
