"""The append paths' tile hook takes the leaves past the last full tile from the previous batch or
``append`` (``tiles.TailLeaves``) only while the stored tail is the one it hashed: another writer
or a rolled-back batch in between make it read the rows again. Either way the stored tiles give
the reference roots."""

from __future__ import annotations

import pytest

import palyra_journal as pj
from palyra_journal.errors import DuplicateIdError
from palyra_journal.tlog import tiles

from . import reference as ref


def _batch(tag: str, n: int) -> list[dict]:
    return [{"kind": "k", "payload": {"tag": tag, "i": i, "s": "é" * (i % 3)},
             "session_id": None if i % 2 else "s"} for i in range(n)]


@pytest.fixture
def reads(monkeypatch):
    """The count of rows the hook read back from the database."""
    count = [0]
    real = tiles.leaf_rows

    def counted(conn, first_leaf, n):
        count[0] += n
        return real(conn, first_leaf, n)
    monkeypatch.setattr(tiles, "leaf_rows", counted)
    return count


def _assert_reference_roots(store) -> None:
    leaves = [ref.leaf(ref.leaf_data(e)) for e in store.iter_events()]
    for size in sorted({256, 512, 768, len(leaves) // 256 * 256, len(leaves)}):
        if size <= len(leaves):
            assert store.tree_head(size).root == ref.mth(leaves[:size]), size


def test_consecutive_batches_read_no_row_back(store, reads):
    for n in (300, 100, 200, 57, 700):  # every batch but the first starts inside a tile
        store.append_many(_batch("a", n))
    assert reads[0] == 0
    _assert_reference_roots(store)


def test_another_writer_and_a_rollback_make_the_hook_read_again_a_single_append_does_not(
        store, db_path, reads):
    store.append_many(_batch("a", 300))
    with pj.JournalStore.open(db_path) as other:  # a second writer: its own journal object
        other.append_many(_batch("b", 100))
    store.append_many(_batch("c", 250))  # seq 401..650 completes tile 1: reads 400 - 256 rows
    assert reads[0] == 400 - 256
    store.append("single", {"x": 1})  # its leaf joins the kept tail
    store.append_many(_batch("d", 200))  # 652..851 completes tile 2 from the kept tail
    assert reads[0] == 144
    dup = _batch("e", 300)
    dup[-1]["event_id"] = dup[0]["event_id"] = "01HZX00000000000000000DUPE"
    with pytest.raises(DuplicateIdError):
        store.append_many(dup)  # refused: nothing written, the tail stays the stored one
    store.append_many(_batch("f", 200))  # 852..1051 completes tile 3: the kept tail serves
    assert reads[0] == 144
    _assert_reference_roots(store)


def test_single_appends_read_rows_back_only_to_complete_their_first_tile(store, db_path, reads):
    """Appends starting inside a tile the tail does not cover read that tile's rows once; from
    then on each append's leaf joins the tail, across batches, appends and tile boundaries."""
    with pj.JournalStore.open(db_path) as other:  # the rows before: another journal object
        other.append_many(_batch("a", 200))
    for i in range(120):  # 201..320 completes tile 0 at 256: reads its 255 rows before
        store.append("single", {"i": i}, session_id=None if i % 2 else "s")
    assert reads[0] == 255
    store.append_many(_batch("b", 150))  # 321..470: no tile completes
    for i in range(300):  # 471..770 completes tiles 1 and 2 from the tail
        store.append("single", {"i": i})
    assert reads[0] == 255
    _assert_reference_roots(store)


def test_a_batch_that_rolls_back_after_the_hook_leaves_no_stale_tail(store, db_path, reads):
    store.append_many(_batch("a", 300))
    with pytest.raises(RuntimeError), store.write():
        store.append_many(_batch("b", 100))  # hashed, hooked, then rolled back with the caller
        raise RuntimeError("the caller's transaction fails")
    with pj.JournalStore.open(db_path) as other:  # another writer takes the same seqs
        other.append_many(_batch("c", 100))
    store.append_many(_batch("d", 200))  # 401..600 completes tile 1 from rows read back
    assert reads[0] == 400 - 256
    _assert_reference_roots(store)


def test_an_append_that_rolls_back_after_the_hook_leaves_no_stale_tail(store, db_path, reads):
    store.append_many(_batch("a", 300))
    store.append("single", {"n": 0})  # 301: its leaf joins the tail
    with pytest.raises(RuntimeError), store.write():
        store.append("single", {"n": 1})  # 302: hashed, hooked, then rolled back
        raise RuntimeError("the caller's transaction fails")
    with pj.JournalStore.open(db_path) as other:  # another writer takes seq 302 on
        other.append("other", {"n": 2})
    for i in range(470):  # 303..772: tile 1 at 512 from its 255 rows read back, tile 2 at 768
        store.append("single", {"i": i})  # from the leaves kept since
    assert reads[0] == 255
    _assert_reference_roots(store)
