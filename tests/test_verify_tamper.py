"""Tampering with a real journal through a second, raw connection (sqlite3 on the file, psycopg on
the PostgreSQL schema: tests/raw_db.py) is caught by verify().

Each case drops the append-only triggers first (as an attacker with write access to the database
would), changes the rows, and checks the reported ``first_bad_seq`` and ``reason``.
"""

from __future__ import annotations

import pytest
import raw_db

from palyra_journal import JournalStore, kernels, verify

N = 20


@pytest.fixture(params=[(verify.VERIFY_BATCH, False), (3, False), (3, True), (7, True)],
                ids=["one-batch", "batches-of-3", "ranges-of-3", "ranges-of-7"])
def journal(request, db_path, backend, monkeypatch):
    """A closed journal of N events; the batch (or range) size verify() will use, and whether
    it reads on one connection or in ranges on worker threads (palyra_journal/verify.py)."""
    batch, ranges = request.param
    monkeypatch.setattr(verify, "VERIFY_BATCH", batch)
    monkeypatch.setattr(verify, "RANGE_ROWS", batch)
    monkeypatch.setattr(verify, "PARALLEL_MIN_ROWS", 0 if ranges else 10**12)
    with JournalStore.open(db_path) as store:
        store.append_many([{"kind": "tool.executed", "payload": {"i": i, "text": f"event {i} ü"},
                            "session_id": f"s{i % 2}"} for i in range(N)])
        assert store.verify().ok
    return db_path


def tamper(path, *statements, params=()):
    conn = raw_db.connect(path)
    raw_db.drop_append_only_triggers(conn, "journal_events")
    for i, sql in enumerate(statements):
        conn.execute(sql, params[i] if i < len(params) else ())
    conn.commit()
    conn.close()


def restore_triggers(path):
    """What a careful attacker does after tampering: put the append-only triggers back, so that
    verify() has only the chain (and a checkpoint kept elsewhere) to go by."""
    conn = raw_db.connect(path)
    for stmt in raw_db.trigger_statements(conn, "journal_events"):
        conn.execute(stmt)
    conn.commit()
    conn.close()


def report(path, **kwargs):
    with JournalStore.open(path, read_only=True) as store:  # the triggers are gone: no writing
        return store.verify(**kwargs)


def assert_bad(rep, seq, reason):
    assert (rep.ok, rep.first_bad_seq, rep.reason) == (False, seq, reason)
    assert rep.checked == seq - 1


def test_edited_payload(journal):
    tamper(journal, "UPDATE journal_events SET payload_json = '{\"i\":999}' WHERE seq = 7")
    assert_bad(report(journal), 7, "hash_mismatch")


def test_edited_kind(journal):
    tamper(journal, "UPDATE journal_events SET kind = 'tool.denied' WHERE seq = 11")
    assert_bad(report(journal), 11, "hash_mismatch")


def test_edited_timestamp_and_session(journal):
    tamper(journal, "UPDATE journal_events SET timestamp_unix_ms = timestamp_unix_ms + 1 "
                    "WHERE seq = 1")
    assert_bad(report(journal), 1, "hash_mismatch")


def test_deleted_row(journal):
    tamper(journal, "DELETE FROM journal_events WHERE seq = 7")
    assert_bad(report(journal), 7, "seq_gap")


def test_swapped_rows(journal):
    tamper(journal,  # every column but seq trades places
           "UPDATE journal_events SET seq = -1 WHERE seq = 9",
           "UPDATE journal_events SET seq = 9 WHERE seq = 5",
           "UPDATE journal_events SET seq = 5 WHERE seq = -1")
    assert_bad(report(journal), 5, "prev_link_mismatch")


def test_swapped_payloads_only(journal):
    tamper(journal,
           "CREATE TEMP TABLE t AS SELECT seq, payload_json FROM journal_events WHERE seq IN (5, 9)",
           "UPDATE journal_events SET payload_json = (SELECT payload_json FROM t WHERE t.seq = "
           "14 - journal_events.seq) WHERE seq IN (5, 9)")
    assert_bad(report(journal), 5, "hash_mismatch")


def test_forged_row_inserted_in_the_middle(journal):
    conn = raw_db.connect(journal)
    prev = conn.execute("SELECT hash FROM journal_events WHERE seq = 7").fetchone()[0]
    conn.close()
    forged = (8, "forged-id", "tool.executed", "agent", None, None, None, None, None, 1, "{}")
    forged_hash = kernels.chain_hashes(prev, [forged])[0]  # a well-formed link to row 7
    tamper(journal,
           "UPDATE journal_events SET seq = -seq WHERE seq >= 8",
           "UPDATE journal_events SET seq = 1 - seq WHERE seq < 0",
           "INSERT INTO journal_events (seq, event_id, kind, actor, timestamp_unix_ms, "
           "payload_json, redacted, hash, prev_hash, created_at_unix_ms) "
           "VALUES (8, 'forged-id', 'tool.executed', 'agent', 1, '{}', 0, ?, ?, 1)",
           params=((), (), (forged_hash, prev)))
    rep = report(journal)
    assert_bad(rep, 9, "prev_link_mismatch")  # the original 8th event no longer links
    assert rep.head.seq == 8 and rep.head.hash == forged_hash


def test_truncated_tail_is_caught_with_expected_head(journal):
    with JournalStore.open(journal) as store:
        checkpoint = store.head()
    tamper(journal, "DELETE FROM journal_events WHERE seq > 15")
    assert report(journal).reason == "triggers_missing"
    restore_triggers(journal)
    assert report(journal).ok  # a shorter chain is still a valid chain...
    rep = report(journal, expected_head=checkpoint)  # ...but not the one we checkpointed
    assert (rep.ok, rep.first_bad_seq, rep.reason, rep.checked) == (False, N, "head_mismatch", 15)


def test_rewritten_history_with_recomputed_hashes_is_caught_with_expected_head(journal):
    with JournalStore.open(journal) as store:
        checkpoint = store.head()
        rows = [tuple(r) for r in store.iter_events()]
    rows[2] = rows[2][:10] + ('{"i":2,"text":"rewritten"}',) + rows[2][11:]
    hashes = kernels.chain_hashes(kernels.GENESIS_HASH, [r[:11] for r in rows])
    prevs = [kernels.GENESIS_HASH] + hashes[:-1]
    tamper(journal, "DELETE FROM journal_events")
    conn = raw_db.connect(journal)
    conn.executemany("INSERT INTO journal_events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     [r[:12] + (h, p) + r[14:] for r, h, p in zip(rows, hashes, prevs)])
    conn.commit()
    conn.close()
    restore_triggers(journal)
    assert report(journal).ok
    rep = report(journal, expected_head=checkpoint)
    assert (rep.ok, rep.first_bad_seq, rep.reason) == (False, N, "head_mismatch")


def test_nulled_hash(journal):
    tamper(journal, "UPDATE journal_events SET hash = NULL WHERE seq = 13")
    assert_bad(report(journal), 13, "unchained_row")


def test_verify_from_the_middle_after_a_bad_row(journal):
    tamper(journal, "UPDATE journal_events SET kind = 'x' WHERE seq = 4")
    assert_bad(report(journal), 4, "hash_mismatch")
    rep = report(journal, from_seq=5)  # the range after the bad row chains from row 4's hash
    assert (rep.reason, rep.first_bad_seq, rep.checked) == ("triggers_missing", None, N - 4)


class _CountingConnection:
    """The store's connection, counting the rows each verify batch query returned."""

    def __init__(self, conn):
        self._conn = conn
        self.batches: list[int] = []

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def execute(self, sql, params=()):
        cur = self._conn.execute(sql, params)
        if sql == verify._VERIFY_SELECT:
            rows = cur.fetchall()
            self.batches.append(len(rows))
            return _Rows(rows)
        return cur


class _Rows:
    def __init__(self, rows):
        self._rows = rows

    def fetchall(self):
        return self._rows


def test_verify_reads_at_most_one_batch_at_a_time(journal, monkeypatch):
    """A range is read in bounded batches on both engines (a PostgreSQL client cursor would
    otherwise hold a whole range's result in memory)."""
    batch = verify.VERIFY_BATCH
    monkeypatch.setattr(verify, "PARALLEL_MIN_ROWS", 10**12)  # the store's own connection
    with JournalStore.open(journal) as store:
        counting = _CountingConnection(store._conn)
        monkeypatch.setattr(store, "_conn", counting)
        report = store.verify()
        assert report.ok and report.checked == N
        assert max(counting.batches) <= batch and sum(counting.batches) == N
        assert len(counting.batches) == -(-N // batch)
        counting.batches.clear()
        assert store.verify(from_seq=5, to_seq=11).checked == 7
        assert sum(counting.batches) == 7 and max(counting.batches) <= batch
