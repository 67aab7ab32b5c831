"""verify() in seq ranges on worker threads gives the one-connection pass's report, field for field.

palyra_journal/verify.py reads a large range as independent seq ranges (joined columns, worker
threads, their own connections) and the rest on the store's connection. Here every tamper case of
tests/test_verify_tamper.py, and generated tampering placed at range boundaries, is verified both
ways (the threshold forced either way) on both backends, and the whole ``VerifyReport`` (or the
error) must be the same. The joined kernel itself is checked against its reference on generated
columns, and an intact journal must never need the row read on the range path.
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palyra_journal import JournalStore, kernels, verify
from palyra_journal.kernels import GENESIS_HASH, VERIFY_FIELDS, pure_chain, pure_chain_joined
from palyra_journal.kernels import pure_merkle

from test_chain import chain_rows, chained, make_rows

# The range path reads SQLite files on worker connections; a PostgreSQL store always verifies on
# its own connection (the one-connection pass, tested on both engines by test_verify_tamper.py).
pytestmark = pytest.mark.sqlite_only

N = 600  # two full tiles of 256 leaves and a partial one
BATCHES = (7, 64, 256, 1000)


# ---------------------------------------------------------------------------- the joined kernel
PAYLOAD = VERIFY_FIELDS.index("payload_json")


def tokens(rows: list[tuple]) -> list[list[bytes]]:
    """Each column's values as verify()'s range query writes them: a JSON token (json_group_array:
    SQLite writes strings as RFC 8785 does), the payload as its raw text."""
    return [[r[k].encode() if k == PAYLOAD else
             json.dumps(r[k], ensure_ascii=False).encode() for r in rows]
            for k in range(len(VERIFY_FIELDS))]


def assemble(cols: list[list[bytes]]) -> list[bytes]:
    return [b"\x00".join(c) if k == PAYLOAD else b"[" + b",".join(c) + b"]"
            for k, c in enumerate(cols)]


def joined(rows: list[tuple]) -> list[bytes]:
    return assemble(tokens(rows))


INT64 = st.integers(-(2**63), 2**63 - 1)
SEQ = st.integers(-(2**40), 2**40)
#: What a tampered or unusual value looks like in the joined form.
EDITS = {
    "flip": None, "number": b"5", "real": b"1.0", "null": b"null", "string": b'"5"',
    "escaped_slash": b'"a\\/b"', "u_escape": b'"\\u0061"', "upper_hex": b'"\\u001F"',
    "short_form_as_u": b'"\\u000a"', "raw_control": b'"a\tb"', "bad_utf8": b'"\xff"',
    "nul": b'"a\x00b"', "extra_value": b'"a","b"', "lead_zero": b"01", "minus_zero": b"-0",
}


@st.composite
def joined_case(draw):
    """Chained rows, their joined columns, and maybe one token replaced."""
    rows = draw(st.lists(chain_rows(ints=INT64), min_size=1, max_size=5))
    first = draw(SEQ)
    rows = [(first + i,) + r[1:] for i, r in enumerate(rows)]
    prev = draw(st.sampled_from([GENESIS_HASH, "ab" * 32]))
    cols = tokens(chained(prev, rows))
    edit = draw(st.sampled_from(["none"] + sorted(EDITS)))
    k = draw(st.integers(0, len(cols) - 1))
    j = draw(st.integers(0, len(rows) - 1))
    if edit == "flip" and cols[k][j]:
        t = bytearray(cols[k][j])
        t[draw(st.integers(0, len(t) - 1))] ^= draw(st.integers(1, 255))
        cols[k][j] = bytes(t)
    elif edit != "none" and edit != "flip":
        cols[k][j] = EDITS[edit]
    return prev, first, len(rows), assemble(cols), draw(st.integers(0, len(rows)))


@settings(max_examples=400, deadline=None)
@given(case=joined_case())
def test_joined_kernel_matches_its_reference_and_proves_only_good_rows(case):
    prev, first, n, cols, leaf_count = case
    from palyra_journal.kernels import native_chain
    want = pure_chain_joined.verify_joined(prev, first, n, cols, leaf_count)
    assert native_chain.verify_joined(prev, first, n, cols, leaf_count) == want
    if want is not None:  # good: the rows read back verify, and the leaves are theirs
        rows = pure_chain_joined.joined_rows(n, cols)
        assert rows is not None and pure_chain.verify_chain(prev, first, rows) is None
        assert want == pure_merkle.leaf_hashes(rows, 0, leaf_count)


def test_joined_kernel_proves_intact_rows_with_their_leaves(kernel):
    rows = chained(GENESIS_HASH, make_rows(50))
    assert kernel.verify_joined(GENESIS_HASH, 1, 50, joined(rows), 20) == \
        pure_merkle.leaf_hashes(rows, 0, 20)
    bad = joined(rows)
    bad[2] = bad[2].replace(b"tool.called", b"tool.calleD", 1)
    assert kernel.verify_joined(GENESIS_HASH, 1, 50, bad, 0) is None  # a finding: rows decide
    assert kernel.verify_joined(GENESIS_HASH, 2, 50, joined(rows), 0) is None  # seqs start at 1


def test_joined_columns_are_what_sqlite_writes(db_path):
    """The kernel's form is SQLite's own: json_group_array writes strings as RFC 8785 does."""
    rows = chained(GENESIS_HASH, make_rows(30))
    conn = sqlite3.connect(db_path)
    conn.execute(f"CREATE TABLE journal_events ({', '.join(VERIFY_FIELDS)})")
    conn.executemany(f"INSERT INTO journal_events VALUES ({', '.join('?' * len(VERIFY_FIELDS))})",
                     rows)
    n, kind, *cols = conn.execute(verify._JOINED_SELECT, (1, 30)).fetchone()
    conn.close()
    assert (n, kind, cols) == (30, "text", joined(rows))


# ---------------------------------------------------------------------------- the store, both ways
@pytest.fixture(scope="module")
def base_file(tmp_path_factory):
    """A closed journal of N events (tiles built), varied optional fields, some non-ASCII."""
    path = tmp_path_factory.mktemp("base") / "base.db"
    with JournalStore.open(path) as store:
        store.append_many([{"kind": "tool.executed", "actor": f"agent-{i % 3}",
                            "session_id": None if i % 3 else f"s{i % 5}",
                            "channel": "cli" if i % 2 else None,
                            "payload": {"i": i, "text": "café ✓" if i % 10 == 0 else "plain"}}
                           for i in range(N)])
    return path


def _outcome(path, ranges: bool, batch: int, kwargs: dict):
    """verify()'s report (or its error as (type, message)) with the path forced either way."""
    mp = pytest.MonkeyPatch()
    mp.setattr(verify, "VERIFY_BATCH", batch)
    mp.setattr(verify, "RANGE_ROWS", batch)
    mp.setattr(verify, "PARALLEL_MIN_ROWS", 0 if ranges else 10**12)
    try:
        with JournalStore.open(path, read_only=True) as store:
            return store.verify(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the error must be the same too
        return type(exc), str(exc)
    finally:
        mp.undo()


def _both_ways(path, batch: int, **kwargs):
    one = _outcome(path, False, batch, kwargs)
    assert _outcome(path, True, batch, kwargs) == one
    return one


def _tamper(path, *statements, params=()) -> int:
    """Run the statements with the append-only triggers dropped; returns the rows they changed."""
    conn = sqlite3.connect(path)
    for t in ("journal_events_no_update", "journal_events_no_delete", "tlog_tiles_no_update"):
        conn.execute(f"DROP TRIGGER IF EXISTS {t}")
    for i, sql in enumerate(statements):
        conn.execute(sql, params[i] if i < len(params) else ())
    changed = conn.total_changes
    conn.commit()
    conn.close()
    return changed


def _rehash_last(path):
    """Give the last row a hash that matches what it now holds (an attacker's valid link)."""
    conn = sqlite3.connect(path)
    fields = ", ".join(kernels.CHAIN_FIELDS)
    row = conn.execute(f"SELECT {fields}, prev_hash FROM journal_events "
                       "ORDER BY seq DESC LIMIT 1").fetchone()
    h = pure_chain.chain_hashes(row[-1], [row[:-1]])[0]
    conn.execute("UPDATE journal_events SET hash = ? WHERE seq = ?", (h, row[0]))
    conn.commit()
    conn.close()


def _swap(s: int, t: int) -> tuple[str, ...]:
    return (f"UPDATE journal_events SET seq = -1 WHERE seq = {s}",
            f"UPDATE journal_events SET seq = {s} WHERE seq = {t}",
            f"UPDATE journal_events SET seq = {t} WHERE seq = -1")


#: Tampering at seq s: each a list of SQL statements over journal_events (and tlog_tiles).
TAMPER = {
    "payload": lambda s: [f"UPDATE journal_events SET payload_json = '{{\"i\":-1}}' WHERE seq = {s}"],
    "kind": lambda s: [f"UPDATE journal_events SET kind = 'tool.denied' WHERE seq = {s}"],
    "hash": lambda s: [f"UPDATE journal_events SET hash = '{'e' * 64}' WHERE seq = {s}"],
    "prev_hash": lambda s: [f"UPDATE journal_events SET prev_hash = '{'f' * 64}' WHERE seq = {s}"],
    "null_hash": lambda s: [f"UPDATE journal_events SET hash = NULL WHERE seq = {s}"],
    "null_prev": lambda s: [f"UPDATE journal_events SET prev_hash = NULL WHERE seq = {s}"],
    "delete": lambda s: [f"DELETE FROM journal_events WHERE seq = {s}"],
    "delete_tail": lambda s: [f"DELETE FROM journal_events WHERE seq >= {s}"],
    "swap_next": lambda s: list(_swap(s, s + 1)),
    "swap_far": lambda s: list(_swap(s, s + 9)),
    # types the joined form cannot tell apart from text: the rows decide
    "blob_kind": lambda s: [f"UPDATE journal_events SET kind = CAST(kind AS BLOB) WHERE seq = {s}"],
    "blob_hash": lambda s: [f"UPDATE journal_events SET hash = CAST(hash AS BLOB) WHERE seq = {s}"],
    "blob_ts": lambda s: [f"UPDATE journal_events SET timestamp_unix_ms = "
                          f"CAST(CAST(timestamp_unix_ms AS TEXT) AS BLOB) WHERE seq = {s}"],
    "real_ts": lambda s: [f"UPDATE journal_events SET timestamp_unix_ms = timestamp_unix_ms + 0.5 "
                          f"WHERE seq = {s}"],
    "text_ts": lambda s: [f"UPDATE journal_events SET timestamp_unix_ms = 'soon' WHERE seq = {s}"],
    "x01_for_null": lambda s: [f"UPDATE journal_events SET channel = char(1) WHERE seq = {s} "
                               "AND channel IS NULL",
                               f"UPDATE journal_events SET session_id = char(1) WHERE seq = {s} "
                               "AND session_id IS NULL"],
    "nul_in_text": lambda s: [f"UPDATE journal_events SET actor = actor || char(0) || 'x' "
                              f"WHERE seq = {s}"],
    "bad_utf8": lambda s: [f"UPDATE journal_events SET payload_json = CAST(X'7b7dff' AS TEXT) "
                           f"WHERE seq = {s}"],
    "tile": lambda s: [f"UPDATE tlog_tiles SET nodes = zeroblob(16320) WHERE level = 0 "
                       f"AND idx = {(s - 1) // 256}"],
}


def _boundaries(batch: int) -> list[int]:
    """Seqs at and around the boundaries of the ranges verify() cuts [1, N] into with ranges of at
    most ``batch`` rows (and the ends of the journal)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(verify, "RANGE_ROWS", batch)
    starts = verify.range_starts(1, N)[0]
    mp.undo()
    out = {1, 2, N - 1, N}
    for k in starts[1:]:
        out.update((k - 1, k))
    return sorted(s for s in out if 1 <= s <= N)


@pytest.mark.parametrize("batch", (7, 256))
@pytest.mark.parametrize("case", sorted(TAMPER))
def test_every_tamper_case_reports_the_same_both_ways(base_file, tmp_path, backend, case, batch):
    seqs = _boundaries(batch)
    for s in (seqs[0], seqs[len(seqs) // 2], seqs[-2]):
        path = tmp_path / f"{case}-{s}.db"
        shutil.copy(base_file, path)
        changed = _tamper(path, *TAMPER[case](s))
        rep = _both_ways(path, batch)
        if changed and case != "delete_tail":  # a shorter chain is valid (docs/journal.md)
            assert isinstance(rep, tuple) or rep.first_bad_seq is not None  # each edit is caught
        _both_ways(path, batch, from_seq=max(1, s - 1))
        _both_ways(path, batch, from_seq=1, to_seq=s)


def test_a_valid_forged_last_row_holding_x01_verifies_both_ways(base_file, tmp_path, backend):
    path = tmp_path / "x01.db"
    shutil.copy(base_file, path)
    _tamper(path, f"UPDATE journal_events SET channel = char(1) WHERE seq = {N}")
    _rehash_last(path)  # a stored text "\x01" is a value like any other once its hash says so
    rep = _both_ways(path, 64)
    assert (rep.reason, rep.checked) == ("triggers_missing", N)


@pytest.mark.parametrize("batch", BATCHES)
def test_intact_journal_checkpoints_and_sub_ranges_report_the_same(base_file, backend, batch):
    with JournalStore.open(base_file, read_only=True) as store:
        head = store.head()
    assert _both_ways(base_file, batch).ok
    assert _both_ways(base_file, batch, expected_head=head).ok
    assert _both_ways(base_file, batch, expected_head=(head.seq, "0" * 64)).reason == "head_mismatch"
    assert _both_ways(base_file, batch, expected_head=(N + 5, head.hash)).actual_hash is None
    for lo, hi in ((1, 1), (batch, batch + 1), (257, N), (N, None), (300, 10**9)):
        rep = _both_ways(base_file, batch, from_seq=lo, to_seq=hi)
        assert rep.ok and rep.checked == max(0, min(hi or N, N) - lo + 1)


def test_intact_journal_never_needs_the_row_read_on_the_range_path(base_file, backend,
                                                                   monkeypatch):
    def refuse(*args):
        raise AssertionError("an intact range was read as rows")
    monkeypatch.setattr(verify, "_range_rows", refuse)
    monkeypatch.setattr(verify, "RANGE_ROWS", 100)
    monkeypatch.setattr(verify, "PARALLEL_MIN_ROWS", 0)
    with JournalStore.open(base_file, read_only=True) as store:
        rep, head = store.verify(), store.head()
    assert rep.ok and rep.checked == N and rep.head == head


def test_small_ranges_memory_transactions_unopenable_files_stay_on_one_connection(
        base_file, backend, monkeypatch):
    def refuse(*args):
        raise AssertionError("ranges used")
    monkeypatch.setattr(verify, "_ranges", refuse)
    with JournalStore.open(base_file, read_only=True) as store:  # N < PARALLEL_MIN_ROWS
        assert store.verify().ok
    monkeypatch.setattr(verify, "PARALLEL_MIN_ROWS", 0)
    with JournalStore.open(":memory:") as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(30)])
        assert store.verify().ok
    monkeypatch.setattr(verify, "_reader_uri", lambda conn: "file:/no/such/dir/x.db?mode=ro")
    with JournalStore.open(base_file, read_only=True) as store:  # the workers cannot open it
        assert store.verify().ok
    monkeypatch.undo()
    monkeypatch.setattr(verify, "_ranges", refuse)
    monkeypatch.setattr(verify, "PARALLEL_MIN_ROWS", 0)
    shutil.copy(base_file, base_file.with_name("tx.db"))
    with JournalStore.open(base_file.with_name("tx.db")) as store:
        with store.write():
            store.append("k", {"late": True})
            assert store.verify().checked == N + 1  # the row only this transaction sees


@st.composite
def tampering(draw):
    batch = draw(st.sampled_from((5, 7, 64, 256)))
    edges = _boundaries(batch)
    seq = st.sampled_from(edges) | st.integers(1, N)
    ops = draw(st.lists(st.tuples(st.sampled_from(sorted(set(TAMPER) - {"tile"})), seq),
                        min_size=1, max_size=3))
    lo = draw(st.sampled_from([1, 1, edges[len(edges) // 2]]) | st.integers(1, N))
    hi = draw(st.none() | st.integers(lo, N + 3))
    return batch, ops, lo, hi


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=tampering())
def test_generated_tampering_reports_the_same_both_ways(base_file, tmp_path, backend, case):
    batch, ops, lo, hi = case
    path = tmp_path / "gen.db"
    shutil.copy(base_file, path)
    _tamper(path, *[q for name, s in ops for q in TAMPER[name](s)])
    _both_ways(path, batch)
    _both_ways(path, batch, from_seq=lo, to_seq=hi)
