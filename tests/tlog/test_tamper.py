"""What the tree and a signed checkpoint catch that the chain alone cannot: a full rewrite with
recomputed chain hashes (and rebuilt tiles), a truncation; while an honest append-only growth
still passes an old checkpoint by a consistency proof."""

from __future__ import annotations

import hashlib

import pytest
import raw_db
import rfc8785

import palyra_journal as pj

ORIGIN = "example.com/agent-journal"
N = 600


@pytest.fixture
def signed_file(db_path, backend):
    """A closed file of N events and a checkpoint of it signed before any tampering."""
    signer, verifier = pj.tlog.generate_key("example.com/key")
    with pj.JournalStore.open(db_path) as store:
        store.append_many([{"kind": "tool.executed", "payload": {"i": i, "ok": True}}
                           for i in range(N)])
        note = store.sign_checkpoint(signer, ORIGIN)
    return db_path, note, verifier


def _rewrite_history(path, seq: int, rebuild_tiles: bool) -> None:
    """An attacker with write access: edit event ``seq``, recompute every chain hash after it
    (with rfc8785 and hashlib, as anyone can), and, optionally, throw the tiles away so that
    the store rebuilds them from the forged leaves. The triggers are put back afterwards."""
    conn = raw_db.connect(path)
    triggers = _triggers(conn)
    for t in ("journal_events_no_update", "journal_events_no_delete", "tlog_tiles_no_delete"):
        conn.execute(f"DROP TRIGGER IF EXISTS {t}")
    conn.execute("UPDATE journal_events SET payload_json = ? WHERE seq = ?",
                 ('{"i":-1,"ok":false}', seq))
    prev = "0" * 64
    cols = ("seq, event_id, kind, actor, session_id, run_id, principal, device_id, channel, "
            "timestamp_unix_ms, payload_json")
    for row in conn.execute(f"SELECT {cols} FROM journal_events ORDER BY seq").fetchall():
        env = dict(zip(("seq", "event_id", "kind", "actor", "session_id", "run_id", "principal",
                        "device_id", "channel", "timestamp_unix_ms"), row[:10]))
        env["payload"] = __import__("json").loads(row[10])
        h = hashlib.sha256(prev.encode() + b"\n" + rfc8785.dumps(env)).hexdigest()
        conn.execute("UPDATE journal_events SET hash = ?, prev_hash = ? WHERE seq = ?",
                     (h, prev, row[0]))
        prev = h
    if rebuild_tiles:
        conn.execute("DELETE FROM tlog_tiles")
    _restore(conn, triggers)
    conn.commit()
    conn.close()
    if rebuild_tiles:
        with pj.JournalStore.open(path) as store:
            assert pj.tlog.build_tiles(store) == (N // 256) * 256


def _triggers(conn) -> list[str]:
    return raw_db.trigger_sql(conn)


def _restore(conn, triggers: list[str]) -> None:
    """Put back the append-only triggers an attacker dropped, covering the tracks that
    ``verify``'s ``triggers_missing`` finding would show: only the tree and checkpoints remain."""
    present = set(_triggers(conn))
    for sql in triggers:
        if sql not in present:
            conn.execute(sql)


def _raw(path, *statements: str) -> None:
    """Run ``statements`` on the file with plain sqlite3, as an attacker with write access who
    puts the dropped triggers back afterwards."""
    conn = raw_db.connect(path)
    triggers = _triggers(conn)
    for sql in statements:
        conn.execute(sql)
    _restore(conn, triggers)
    conn.commit()
    conn.close()


def _verify(path, **kwargs):
    with pj.JournalStore.open(path) as store:
        return store.verify(**kwargs)


def test_a_rewrite_leaving_the_tiles_is_a_tree_mismatch(signed_file):
    path, note, verifier = signed_file
    _rewrite_history(path, 10, rebuild_tiles=False)
    rep = _verify(path)
    assert (rep.ok, rep.reason, rep.first_bad_seq) == (False, "tree_mismatch", 1)


def test_a_rewrite_with_rebuilt_tiles_is_caught_only_by_the_checkpoint(signed_file):
    path, note, verifier = signed_file
    _rewrite_history(path, 10, rebuild_tiles=True)
    assert _verify(path).ok  # the chain and the tree agree with themselves: nothing to see
    rep = _verify(path, checkpoint=note, verifier_key=verifier)
    assert (rep.ok, rep.reason, rep.first_bad_seq) == (False, "checkpoint_mismatch", N)


def test_honest_growth_passes_an_old_checkpoint(signed_file):
    path, note, verifier = signed_file
    with pj.JournalStore.open(path) as store:
        store.append_many([{"kind": "later", "payload": {"j": j}} for j in range(700)])
        for j in range(5):
            store.append("later.one", {"j": j})
        rep = store.verify(checkpoint=note, verifier_key=verifier)
        assert rep.ok and rep.checked == N + 705
        cp = pj.tlog.open_checkpoint(note, verifier)
        head = store.tree_head()
        pj.tlog.verify_consistency(cp.size, head.size, cp.root, head.root,
                                   store.consistency_proof(cp.size))


def test_truncation_is_caught(signed_file):
    path, note, verifier = signed_file
    _raw(path, "DROP TRIGGER journal_events_no_delete", "DELETE FROM journal_events WHERE seq > 500")
    rep = _verify(path)  # the shorter chain is valid, but tile 1 covers events that are gone
    assert (rep.ok, rep.reason, rep.first_bad_seq) == (False, "tree_mismatch", 257)
    rep = _verify(path, checkpoint=note, verifier_key=verifier)
    assert rep.reason == "tree_mismatch"


def test_a_checkpoint_from_the_future_is_a_mismatch(db_path, db_factory, backend):
    signer, verifier = pj.tlog.generate_key("k")
    with pj.JournalStore.open(db_path) as store:
        store.append_many([{"kind": "k"} for _ in range(50)])
        note = store.sign_checkpoint(signer, ORIGIN)
    with pj.JournalStore.open(db_factory()) as other:
        other.append_many([{"kind": "k"} for _ in range(20)])
        rep = other.verify(checkpoint=note, verifier_key=verifier)
    assert (rep.ok, rep.reason, rep.first_bad_seq) == (False, "checkpoint_mismatch", 21)


def test_a_checkpoint_that_does_not_open_is_bad_signature(signed_file):
    path, note, verifier = signed_file
    _, stranger = pj.tlog.generate_key("example.com/key")
    rep = _verify(path, checkpoint=note, verifier_key=stranger)
    assert (rep.ok, rep.reason, rep.first_bad_seq) == (False, "bad_signature", None)
    with pytest.raises(pj.InvalidPayloadError, match="needs verifier_key"):
        _verify(path, checkpoint=note)
    with pytest.raises(pj.ProofError, match="verifier key"):
        _verify(path, checkpoint=note, verifier_key="not+a+key")


def test_a_damaged_tile_is_a_tree_mismatch_at_its_first_event(signed_file):
    path, note, verifier = signed_file
    _raw(path, "DROP TRIGGER tlog_tiles_no_update",
         "UPDATE tlog_tiles SET nodes = zeroblob(16320) WHERE level = 0 AND idx = 1")
    rep = _verify(path)
    assert (rep.ok, rep.reason, rep.first_bad_seq) == (False, "tree_mismatch", 257)
    assert _verify(path, from_seq=1, to_seq=200).ok  # outside the range checked


def test_an_edited_row_is_named_by_the_chain_not_its_tile(signed_file):
    path, note, verifier = signed_file
    _raw(path, "DROP TRIGGER journal_events_no_update",
         "UPDATE journal_events SET payload_json = '{\"i\":1}' WHERE seq = 300")
    rep = _verify(path)
    assert (rep.ok, rep.reason, rep.first_bad_seq) == (False, "hash_mismatch", 300)
    _raw(path, "DROP TRIGGER journal_events_no_update",
         "UPDATE journal_events SET kind = 7 WHERE seq = 290")  # a type no envelope holds
    rep = _verify(path, checkpoint=note, verifier_key=verifier)
    assert (rep.ok, rep.reason, rep.first_bad_seq) == (False, "hash_mismatch", 290)
