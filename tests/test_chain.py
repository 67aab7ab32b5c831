"""Hash chain v1: the native chain_hashes / verify_chain give exactly the reference's results.

Every test runs on both backends (the ``kernel`` fixture); the comparisons between them use
generated rows (unicode, control characters, None fields, big seqs), batches larger than the native
code's chunk, and every kind of tampering verify has to find.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading

import pytest
import rfc8785
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from palyra_journal.errors import InvalidPayloadError
from palyra_journal.kernels import CHAIN_FIELDS, GENESIS_HASH, VERIFY_FIELDS, native_chain, pure_chain

MODULES = {"python": pure_chain, "native": native_chain}
NATIVE_CHUNK_ROWS = 4096  # sizes around which the native code once chunked its batches


# ---- row builders -----------------------------------------------------------------------------

def canonical(value) -> str:
    return rfc8785.dumps(value).decode("utf-8")


def make_rows(n: int, first_seq: int = 1, seed: int = 0) -> list[tuple]:
    """n chain rows with ~330-byte payloads, some non-ASCII, control characters and None fields."""
    rows = []
    for k in range(n):
        i = seed + k
        payload = {"i": i, "text": ("naïve café ✓ " if i % 10 == 0 else "plain text ") * 20,
                   "nested": {"ok": i % 2 == 0, "tab": "a\tb", "quote": 'say "hi"'}}
        rows.append((first_seq + k, f"01HZX{i:021d}", "tool.called", f"agent-{i % 7}",
                     None if i % 3 else f"sess-{i % 5}", None if i % 4 else "run\n1",
                     "user:é" if i % 5 == 0 else None, None, "cli" if i % 2 else None,
                     1_700_000_000_000 + i, canonical(payload)))
    return rows


def chained(prev: str, rows: list[tuple], first_seq: int | None = None) -> list[tuple]:
    """The rows in VERIFY_FIELDS form, with the reference's hashes and prev links."""
    hashes = pure_chain.chain_hashes(prev, rows)
    return [r + (h, p) for r, h, p in zip(rows, hashes, [prev] + hashes[:-1])]


# ---- hypothesis strategies --------------------------------------------------------------------

# Any text but lone surrogates, with the control characters and JSON specials over-represented.
_chars = st.one_of(st.characters(blacklist_categories=("Cs",)),
                   st.sampled_from('"\\/\x00\x01\x08\x0c\n\r\t\x1f\x7f\u2028\u00e9\U0001f600'))
TEXT = st.text(_chars, max_size=24)
MAYBE_TEXT = st.none() | TEXT
JSON_SCALAR = (st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
               | st.floats(allow_nan=False, allow_infinity=False) | TEXT)
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(TEXT, inner, max_size=4), max_leaves=6)
BIG_INT = st.integers(-(2**70), 2**70)
I_JSON_INT = st.integers(-(2**53) + 1, 2**53 - 1)
PREV = st.text("0123456789abcdef", min_size=64, max_size=64)


@st.composite
def chain_rows(draw, ints=BIG_INT):
    return (draw(ints), draw(MAYBE_TEXT), draw(MAYBE_TEXT), draw(MAYBE_TEXT), draw(MAYBE_TEXT),
            draw(MAYBE_TEXT), draw(MAYBE_TEXT), draw(MAYBE_TEXT), draw(MAYBE_TEXT), draw(ints),
            canonical(draw(JSON_VALUE)))


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(prev=PREV, rows=st.lists(chain_rows(), max_size=5))
def test_native_hashes_equal_the_reference_on_generated_rows(prev, rows):
    assert native_chain.chain_hashes(prev, rows) == pure_chain.chain_hashes(prev, rows)


@FAST
@given(prev=PREV, row=chain_rows(ints=I_JSON_INT))
def test_envelope_is_rfc8785_of_the_envelope_object(prev, row):
    seq, event_id, kind, actor, session_id, run_id, principal, device_id, channel, ts, payload = row
    envelope = {"actor": actor, "channel": channel, "device_id": device_id, "event_id": event_id,
                "kind": kind, "payload": json.loads(payload, parse_int=float), "principal": principal,
                "run_id": run_id, "seq": seq, "session_id": session_id, "timestamp_unix_ms": ts}
    expected = rfc8785.dumps(envelope)
    assert pure_chain.envelope_text(row).encode("utf-8") == expected
    want = hashlib.sha256(prev.encode("ascii") + b"\n" + expected).hexdigest()
    for mod in MODULES.values():
        assert mod.chain_hashes(prev, [row]) == [want]


@FAST
@given(prev=PREV, rows=st.lists(chain_rows(), min_size=1, max_size=4), data=st.data())
def test_verify_agrees_with_the_reference_after_a_random_edit(prev, rows, data):
    seqs = list(range(5, 5 + len(rows)))
    rows = [(s,) + r[1:] for s, r in zip(seqs, rows)]
    good = chained(prev, rows)
    assert native_chain.verify_chain(prev, 5, good) is None
    i = data.draw(st.integers(0, len(good) - 1))
    k = data.draw(st.integers(0, len(VERIFY_FIELDS) - 1))
    value = data.draw(st.none() | TEXT | BIG_INT)
    bad = list(good)
    bad[i] = good[i][:k] + (value,) + good[i][k + 1:]
    assert native_chain.verify_chain(prev, 5, bad) == pure_chain.verify_chain(prev, 5, bad)


# ---- batches ----------------------------------------------------------------------------------

def test_a_batch_larger_than_a_native_chunk_hashes_like_the_reference(kernel):
    rows = make_rows(NATIVE_CHUNK_ROWS + 904)
    want = pure_chain.chain_hashes(GENESIS_HASH, rows)
    assert kernel.chain_hashes(GENESIS_HASH, rows) == want


def test_rows_bigger_than_a_native_chunk_buffer_hash_like_the_reference(kernel):
    big = canonical({"blob": "x" * (3 << 20)})  # each row over a native chunk's bytes
    rows = [r[:10] + (big,) for r in make_rows(4)]
    assert kernel.chain_hashes(GENESIS_HASH, rows) == pure_chain.chain_hashes(GENESIS_HASH, rows)
    good = chained(GENESIS_HASH, rows)
    assert kernel.verify_chain(GENESIS_HASH, 1, good) is None
    good[3] = good[3][:10] + (big[:-3] + 'y"}',) + good[3][11:]
    assert kernel.verify_chain(GENESIS_HASH, 1, good) == (3, "hash_mismatch")


def test_chain_of_two_calls_equals_one_call(kernel):
    rows = make_rows(300)
    whole = kernel.chain_hashes(GENESIS_HASH, rows)
    first = kernel.chain_hashes(GENESIS_HASH, rows[:120])
    assert first + kernel.chain_hashes(first[-1], rows[120:]) == whole


def test_empty_batches(kernel):
    assert kernel.chain_hashes(GENESIS_HASH, []) == []
    assert kernel.verify_chain(GENESIS_HASH, 1, []) is None


def test_any_iterable_and_sequence_rows_are_accepted(kernel):
    rows = make_rows(20)
    want = pure_chain.chain_hashes(GENESIS_HASH, rows)
    assert kernel.chain_hashes(GENESIS_HASH, iter(rows)) == want
    assert kernel.chain_hashes(GENESIS_HASH, [list(r) for r in rows]) == want
    good = chained(GENESIS_HASH, rows)
    assert kernel.verify_chain(GENESIS_HASH, 1, (list(r) for r in good)) is None


def test_big_and_negative_integers_hash_like_the_reference(kernel):
    rows = [r[:0] + (s,) + r[1:9] + (t,) + r[10:]
            for r, s, t in zip(make_rows(4), (2**63 + 5, -(2**64), 0, 2**100), (-1, 2**63, -(2**63), 7))]
    assert kernel.chain_hashes(GENESIS_HASH, rows) == pure_chain.chain_hashes(GENESIS_HASH, rows)


# ---- verification: every tamper gives the same (index, reason) ----------------------------------

N_VERIFY = NATIVE_CHUNK_ROWS + 1000
AT = NATIVE_CHUNK_ROWS + 321  # past the first native chunk


@pytest.fixture(scope="module")
def journal() -> list[tuple]:
    return chained(GENESIS_HASH, make_rows(N_VERIFY))


def _edit(rows, i, field, value):
    k = VERIFY_FIELDS.index(field)
    out = list(rows)
    out[i] = rows[i][:k] + (value,) + rows[i][k + 1:]
    return out


TAMPERS = {
    "edited payload": (lambda r: _edit(r, AT, "payload_json", r[AT][10].replace("plain", "plane")),
                       (AT, "hash_mismatch")),
    "edited actor": (lambda r: _edit(r, 17, "actor", "mallory"), (17, "hash_mismatch")),
    "edited timestamp": (lambda r: _edit(r, AT, "timestamp_unix_ms", r[AT][9] + 1), (AT, "hash_mismatch")),
    "None field set": (lambda r: _edit(r, 1, "session_id", ""), (1, "hash_mismatch")),
    "deleted row": (lambda r: r[:AT] + r[AT + 1:], (AT, "seq_gap")),
    "swapped rows": (lambda r: r[:AT] + [r[AT + 1], r[AT]] + r[AT + 2:], (AT, "seq_gap")),
    "swapped rows, seqs kept": (
        lambda r: r[:AT] + [(r[AT][0],) + r[AT + 1][1:], (r[AT + 1][0],) + r[AT][1:]] + r[AT + 2:],
        (AT, "prev_link_mismatch")),
    "NULL hash": (lambda r: _edit(r, AT, "hash", None), (AT, "unchained_row")),
    "wrong prev link": (lambda r: _edit(r, AT, "prev_hash", "f" * 64), (AT, "prev_link_mismatch")),
    "forged hash": (lambda r: _edit(r, 0, "hash", "0" * 64), (0, "hash_mismatch")),
    "uppercase hash": (lambda r: _edit(r, 3, "hash", r[3][11].upper()), (3, "hash_mismatch")),
    "lone surrogate": (lambda r: _edit(r, AT, "kind", "tool.\ud800"), (AT, "hash_mismatch")),
    "float timestamp": (lambda r: _edit(r, AT, "timestamp_unix_ms", float(r[AT][9]) + 0.5),
                        (AT, "hash_mismatch")),
    "blob payload": (lambda r: _edit(r, AT, "payload_json", r[AT][10].encode()), (AT, "hash_mismatch")),
    "text seq": (lambda r: _edit(r, AT, "seq", str(r[AT][0])), (AT, "seq_gap")),
    "truncated hash": (lambda r: _edit(r, AT, "hash", r[AT][11][:63]), (AT, "hash_mismatch")),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_each_tamper_is_found_at_the_same_row_for_the_same_reason(kernel, journal, tamper):
    edit, expected = TAMPERS[tamper]
    rows = edit(journal)
    assert kernel.verify_chain(GENESIS_HASH, 1, rows) == expected


def test_an_intact_chain_verifies(kernel, journal):
    assert kernel.verify_chain(GENESIS_HASH, 1, journal) is None


def test_verify_checks_seq_before_null_hash_before_link_before_hash(kernel, journal):
    rows = _edit(journal, 9, "hash", None)
    rows = _edit(rows, 9, "prev_hash", "x")
    assert kernel.verify_chain(GENESIS_HASH, 1, rows) == (9, "unchained_row")
    rows = _edit(rows, 9, "seq", 99)
    assert kernel.verify_chain(GENESIS_HASH, 1, rows) == (9, "seq_gap")
    rows = _edit(journal, 9, "prev_hash", "x")
    rows = _edit(rows, 9, "actor", "mallory")
    assert kernel.verify_chain(GENESIS_HASH, 1, rows) == (9, "prev_link_mismatch")
    # A bad hash on an earlier row comes first, even when a later row has a seq gap.
    rows = _edit(journal, 20, "actor", "mallory")
    rows = rows[:30] + rows[31:]
    assert kernel.verify_chain(GENESIS_HASH, 1, rows) == (20, "hash_mismatch")


def test_verify_from_the_middle_with_the_previous_hash(kernel, journal):
    start = 1234
    prev = journal[start - 1][11]
    assert kernel.verify_chain(prev, start + 1, journal[start:]) is None
    assert kernel.verify_chain(prev, start, journal[start:]) == (0, "seq_gap")
    assert kernel.verify_chain("0" * 64, start + 1, journal[start:]) == (0, "prev_link_mismatch")


def test_a_non_ascii_prev_hash_is_a_hash_mismatch_not_a_crash(kernel):
    prev = "é" * 64
    rows = [r + ("0" * 64, prev) for r in make_rows(1)]
    assert kernel.verify_chain(prev, 1, rows) == (0, "hash_mismatch")


def test_verify_reads_sqlite_rows_straight_from_fetchmany(kernel, journal):
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE j ({', '.join(VERIFY_FIELDS)})")
    db.executemany(f"INSERT INTO j VALUES ({', '.join('?' * len(VERIFY_FIELDS))})", journal[:2500])
    for factory in (None, sqlite3.Row):
        db.row_factory = factory
        cur = db.execute(f"SELECT {', '.join(VERIFY_FIELDS)} FROM j ORDER BY seq")
        prev, seq = GENESIS_HASH, 1
        while rows := cur.fetchmany(1000):
            assert kernel.verify_chain(prev, seq, rows) is None
            prev, seq = rows[-1][11], seq + len(rows)


def test_concurrent_verifications_in_threads_agree(journal):
    results = []
    bad = _edit(journal, AT, "actor", "mallory")

    def work(rows):
        results.append(native_chain.verify_chain(GENESIS_HASH, 1, rows))

    threads = [threading.Thread(target=work, args=(rows,)) for rows in (journal, bad, journal, bad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=repr) == sorted([None, None, (AT, "hash_mismatch"),
                                               (AT, "hash_mismatch")], key=repr)


# ---- errors ------------------------------------------------------------------------------------

BAD_FIELDS = [
    ("actor", 5, "row 2: actor must be str or None, not int"),
    ("payload_json", None, "row 2: payload_json must be str, not NoneType"),
    ("payload_json", b"{}", "row 2: payload_json must be str, not bytes"),
    ("seq", 3.0, "row 2: seq must be int, not float"),
    ("seq", True, "row 2: seq must be int, not bool"),
    ("timestamp_unix_ms", "1", "row 2: timestamp_unix_ms must be int, not str"),
    ("channel", "a\udc80b", "row 2: channel is not valid Unicode (lone surrogate)"),
    ("payload_json", '"\ud800"', "row 2: payload_json is not valid Unicode (lone surrogate)"),
]


@pytest.mark.parametrize("field,value,message", BAD_FIELDS)
def test_chain_hashes_names_the_row_and_field_of_a_bad_value(kernel, field, value, message):
    rows = make_rows(4)
    k = CHAIN_FIELDS.index(field)
    rows[2] = rows[2][:k] + (value,) + rows[2][k + 1:]
    with pytest.raises(InvalidPayloadError) as err:
        kernel.chain_hashes(GENESIS_HASH, rows)
    assert str(err.value) == message


def test_the_first_bad_field_in_envelope_order_is_named(kernel):
    row = make_rows(1)[0]
    row = (1.5,) + row[1:3] + ("\ud800",) + row[4:]  # a bad seq, and an actor with a surrogate
    with pytest.raises(InvalidPayloadError, match="row 0: actor is not valid Unicode"):
        kernel.chain_hashes(GENESIS_HASH, [row])


@pytest.mark.parametrize("row", [("too", "short"), "a string row", 42, {"seq": 1}])
def test_a_row_of_the_wrong_shape_is_refused(kernel, row):
    with pytest.raises(InvalidPayloadError, match=r"row 1: expected a sequence of 11 fields"):
        kernel.chain_hashes(GENESIS_HASH, [make_rows(1)[0], row])
    with pytest.raises(InvalidPayloadError, match=r"row 0: expected a sequence of 13 fields"):
        kernel.verify_chain(GENESIS_HASH, 1, [make_rows(1)[0]])


@pytest.mark.parametrize("prev", ["é" * 64, None, b"0" * 64])
def test_chain_hashes_refuses_a_prev_hash_that_is_not_ascii_text(kernel, prev):
    with pytest.raises(InvalidPayloadError, match="prev_hash must be an ASCII str"):
        kernel.chain_hashes(prev, make_rows(1))


# ---- the native boundary: columns of buffers and lengths ---------------------------------------

@contextlib.contextmanager
def reference_refused():
    """Make the native wrapper's hand-off to the reference fail loudly: what passes ran in C."""
    def refuse(*args, **kwargs):
        raise AssertionError("the batch was handed to the reference")
    saved = pure_chain.chain_hashes, pure_chain.verify_chain
    pure_chain.chain_hashes = pure_chain.verify_chain = refuse
    try:
        yield
    finally:
        pure_chain.chain_hashes, pure_chain.verify_chain = saved


@FAST
@given(prev=PREV, rows=st.lists(chain_rows(ints=st.integers(-(2**63), 2**63 - 1)), max_size=6))
def test_well_formed_batches_are_hashed_in_c(prev, rows):
    # NUL and "\x01" are the layout's own: such texts go to the reference (tested below)
    assume(not any(isinstance(v, str) and ("\x00" in v or v == "\x01") for r in rows for v in r))
    want = pure_chain.chain_hashes(prev, rows)
    good = chained(prev, [(i + 1,) + r[1:] for i, r in enumerate(rows)])
    with reference_refused():
        assert native_chain.chain_hashes(prev, rows) == want
        assert native_chain.verify_chain(prev, 1, good) is None


def test_the_journal_batches_run_in_c(journal):
    rows = [r[:11] for r in journal]
    bad = _edit(journal, AT, "actor", "mallory")
    with reference_refused():
        assert native_chain.chain_hashes(GENESIS_HASH, rows) == [r[11] for r in journal]
        assert native_chain.verify_chain(GENESIS_HASH, 1, journal) is None
        assert native_chain.verify_chain(GENESIS_HASH, 1, bad) == (AT, "hash_mismatch")


HOSTILE = (st.none() | st.booleans() | st.floats(allow_nan=False) | BIG_INT | TEXT | st.binary(max_size=4)
           | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
           | st.sampled_from(["\x00", "\x01", "a\x00b", "é\x00", "\U0001f600"]))


@FAST
@given(prev=PREV, rows=st.lists(chain_rows(), min_size=1, max_size=4), data=st.data())
def test_hostile_values_get_the_reference_result_or_error(prev, rows, data):
    """Whatever a field holds, native and reference agree: same hashes, same error message."""
    i = data.draw(st.integers(0, len(rows) - 1))
    k = data.draw(st.integers(0, len(CHAIN_FIELDS) - 1))
    rows = list(rows)
    rows[i] = rows[i][:k] + (data.draw(HOSTILE),) + rows[i][k + 1:]
    outcomes = []
    for mod in (pure_chain, native_chain):
        try:
            outcomes.append(("ok", mod.chain_hashes(prev, rows)))
        except InvalidPayloadError as exc:
            outcomes.append(("error", str(exc)))
    assert outcomes[0] == outcomes[1]


def _call_hashes(rows, columns=None, out_len=None):
    """pj_chain_hashes on the columns native_chain packs for rows (or on edited ones)."""
    from palyra_journal._native import ffi, lib
    from palyra_journal.kernels.native_chain import _TEXT_COLUMNS, _c_columns, _columns
    seq, ts, text = _columns(rows, _TEXT_COLUMNS, nullable_payload=False)
    if columns is not None:
        text = columns(list(text))
    n = len(rows)
    out = bytearray(64 * n)
    index, field = ffi.new("int64_t *"), ffi.new("int *")
    rc = lib.pj_chain_hashes(b"0" * 64, 64, n, *_c_columns(seq, ts, text), ffi.from_buffer(out),
                             len(out) if out_len is None else out_len, index, field)
    return rc, index[0], field[0]


def _edit_column(c: int, edit):
    def apply(text: list[bytes]) -> list[bytes]:
        text[c] = edit(text[c])
        return text
    return apply


def test_c_checks_each_column_holds_exactly_n_values():
    from palyra_journal._native import lib
    rows = make_rows(3)
    assert _call_hashes(rows)[0] == lib.PJ_CHAIN_OK
    # column 1 (kind, field 2) loses its last value's NUL: row 2 is missing
    assert _call_hashes(rows, _edit_column(1, lambda b: b[:-1])) == (lib.PJ_CHAIN_BAD_LAYOUT, 2, 2)
    # column 0 (event_id, field 1) gets bytes after its last value
    assert _call_hashes(rows, _edit_column(0, lambda b: b + b"x")) == (lib.PJ_CHAIN_BAD_LAYOUT, -1, 1)
    assert _call_hashes(rows, _edit_column(0, lambda b: b""))[:2] == (lib.PJ_CHAIN_BAD_LAYOUT, 0)
    assert _call_hashes(rows, out_len=64 * 3 - 1)[0] == lib.PJ_CHAIN_BAD_ARGS


def test_c_reports_invalid_utf8_and_a_null_payload_by_row_and_field():
    from palyra_journal._native import lib
    rows = make_rows(3)
    assert _call_hashes(rows, _edit_column(0, lambda b: b"\xff" + b[1:])) == (
        lib.PJ_CHAIN_BAD_TEXT, 0, CHAIN_FIELDS.index("event_id"))
    payload = 8  # the last text column

    def null_last(b: bytes) -> bytes:
        values = b.split(b"\0")[:-1]
        return b"\0".join(values[:-1] + [b"\x01"]) + b"\0"
    assert _call_hashes(rows, _edit_column(payload, null_last)) == (
        lib.PJ_CHAIN_BAD_TYPE, 2, CHAIN_FIELDS.index("payload_json"))


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "\x01", "x\x01"])
def test_texts_that_collide_with_the_layout_get_the_reference_result(kernel, value):
    rows = make_rows(3)
    k = CHAIN_FIELDS.index("actor")
    rows[1] = rows[1][:k] + (value,) + rows[1][k + 1:]
    assert kernel.chain_hashes(GENESIS_HASH, rows) == pure_chain.chain_hashes(GENESIS_HASH, rows)
