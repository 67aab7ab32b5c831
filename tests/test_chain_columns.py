"""``chain_columns``: the batch path's one kernel call (chain hashes and tile leaf hashes of a batch
given as columns) equals the reference on both backends, and the native one runs in C whenever the
columns are plainly well formed (docs/native.md)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_chain import FAST, PREV, chain_rows, make_rows

from palyra_journal.errors import InvalidPayloadError
from palyra_journal.kernels import CHAIN_FIELDS, GENESIS_HASH, native_chain, pure_chain, pure_merkle

MODULES = {"python": pure_merkle, "native": native_chain}  # the reference's chain_columns
#: chain_hashes of one row, reference and native.
ROW_MODULES = {"python": pure_chain, "native": native_chain}


def columns_of(rows: list[tuple]) -> list[list]:
    """The columns after ``seq`` of rows in CHAIN_FIELDS order (what the journal's batch holds)."""
    return [list(col) for col in zip(*rows)][1:] if rows else [[] for _ in CHAIN_FIELDS[1:]]


def expected(prev: str, rows: list[tuple], leaf_count: int) -> tuple[list[str], bytes]:
    """The reference's answer from its row functions: chain_hashes and leaf_hashes."""
    return (pure_chain.chain_hashes(prev, rows), pure_merkle.leaf_hashes(rows, 0, leaf_count))


@contextlib.contextmanager
def reference_refused():
    """Make the native wrapper's hand-off to the reference fail loudly: what passes ran in C."""
    def refuse(*args, **kwargs):
        raise AssertionError("the batch was handed to the reference")
    saved = pure_merkle.chain_columns
    pure_merkle.chain_columns = refuse
    try:
        yield
    finally:
        pure_merkle.chain_columns = saved


@contextlib.contextmanager
def reference_calls():
    """Count the native wrapper's hand-offs to the reference (the list grows by one per call)."""
    calls: list[int] = []
    saved = pure_merkle.chain_columns

    def counted(*args, **kwargs):
        calls.append(1)
        return saved(*args, **kwargs)
    pure_merkle.chain_columns = counted
    try:
        yield calls
    finally:
        pure_merkle.chain_columns = saved


@FAST
@given(prev=PREV, first=st.integers(1, 2**40), data=st.data(),
       rows=st.lists(chain_rows(ints=st.integers(-(2**63), 2**63 - 1)), max_size=6))
def test_both_backends_equal_the_reference_on_generated_batches(prev, first, data, rows):
    """Generated text covers NULL fields, non-ASCII, NUL and "\\x01" inside text (the native side
    hands those to the reference), and every leaf count."""
    rows = [(first + i,) + r[1:] for i, r in enumerate(rows)]
    leaf_count = data.draw(st.integers(0, len(rows)))
    want = expected(prev, rows, leaf_count)
    for mod in MODULES.values():
        assert mod.chain_columns(prev, first, columns_of(rows), leaf_count) == want


@pytest.mark.parametrize("n,leaf_count", [(0, 0), (1, 1), (300, 0), (300, 57), (1000, 1000)])
def test_a_well_formed_batch_runs_in_c_and_equals_the_reference(n, leaf_count):
    rows = make_rows(n, first_seq=7)  # NULL fields, non-ASCII, control characters
    with reference_refused():
        got = native_chain.chain_columns(GENESIS_HASH, 7, columns_of(rows), leaf_count)
    assert got == expected(GENESIS_HASH, rows, leaf_count)
    assert len(got[1]) == 32 * leaf_count


def test_an_all_null_column_and_a_non_ascii_one_pack_as_c_reads_them():
    rows = make_rows(3)
    cols = columns_of(rows)
    assert native_chain._text_values(cols[CHAIN_FIELDS.index("device_id") - 1], True) \
        == b"\x01\x00" * 3
    assert native_chain._text_values([None, "é", ""], True) == b"\x01\x00\xc3\xa9\x00\x00"


@pytest.mark.parametrize("field,value", [("kind", "a\x00b"), ("payload_json", '"a\x00b"'),
                                         ("actor", "\x01")])
def test_nul_or_the_null_marker_inside_text_goes_to_the_reference(field, value):
    rows = make_rows(4)
    k = CHAIN_FIELDS.index(field)
    rows[1] = rows[1][:k] + (value,) + rows[1][k + 1:]
    with reference_calls() as calls:
        got = native_chain.chain_columns(GENESIS_HASH, 1, columns_of(rows), 4)
    assert calls == [1]
    assert got == expected(GENESIS_HASH, rows, 4)


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize("field,value,message", [
    ("channel", "a\udc80b", "row 2: channel is not valid Unicode (lone surrogate)"),
    ("payload_json", '"\ud800"', "row 2: payload_json is not valid Unicode (lone surrogate)"),
    ("timestamp_unix_ms", 1.5, "row 2: timestamp_unix_ms must be int, not float"),
])
def test_a_bad_value_is_refused_with_the_reference_message(name, field, value, message):
    rows = make_rows(4)
    k = CHAIN_FIELDS.index(field)
    rows[2] = rows[2][:k] + (value,) + rows[2][k + 1:]
    with pytest.raises(InvalidPayloadError) as err:
        MODULES[name].chain_columns(GENESIS_HASH, 1, columns_of(rows), 2)
    assert str(err.value) == message


@pytest.mark.parametrize("name", sorted(MODULES))
def test_columns_of_unequal_length_and_a_bad_leaf_count_are_refused(name):
    mod = MODULES[name]
    cols = columns_of(make_rows(3))
    cols[4] = cols[4][:2]
    with pytest.raises(InvalidPayloadError, match="column run_id holds 2 values, event_id 3"):
        mod.chain_columns(GENESIS_HASH, 1, cols)
    with pytest.raises(InvalidPayloadError, match="expected 10 columns"):
        mod.chain_columns(GENESIS_HASH, 1, cols[:9])
    with pytest.raises(InvalidPayloadError, match="leaf_count must be an int in 0..3, got 4"):
        mod.chain_columns(GENESIS_HASH, 1, columns_of(make_rows(3)), 4)
    with pytest.raises(InvalidPayloadError, match="prev_hash must be an ASCII str"):
        mod.chain_columns("é" * 64, 1, columns_of(make_rows(3)))


@FAST
@given(prev=PREV, rows=st.lists(chain_rows(), max_size=6), data=st.data())
def test_a_packed_payload_column_gives_the_reference_answer(prev, rows, data):
    """The payload column packed by the canonicalizer (NUL-ended UTF-8) stands in for the texts;
    one that does not hold one value per row (a text with NUL, a short column) is the
    reference's, with the texts of ``columns``."""
    rows = [r for r in rows if isinstance(r[10], str)]
    rows = [(i + 1, *r[1:]) for i, r in enumerate(rows)]  # seqs from 1, as chain_columns numbers
    leaf_count = data.draw(st.integers(0, len(rows)))
    try:
        want = expected(prev, rows, leaf_count)
    except InvalidPayloadError:
        return
    cols = columns_of(rows)
    try:
        packed = b"".join(t.encode("utf-8") + b"\0" for t in cols[9])
    except UnicodeEncodeError:
        return
    assert native_chain.chain_columns(prev, 1, cols, leaf_count, packed) == want
    if rows:
        assert native_chain.chain_columns(prev, 1, cols, leaf_count, packed[:-1]) == want
    assert pure_merkle.chain_columns(prev, 1, cols, leaf_count, packed) == want


def test_a_packed_payload_column_is_hashed_in_c():
    rows = [r for r in make_rows(50) if "\0" not in r[10]]
    cols = columns_of(rows)
    packed = b"".join(t.encode("utf-8") + b"\0" for t in cols[9])
    want = expected(GENESIS_HASH, rows, len(rows))
    with reference_refused():
        assert native_chain.chain_columns(GENESIS_HASH, 1, cols, len(rows), packed) == want


# ---- one row (append): chain_row, pj_chain_row ---------------------------------------------------

@FAST
@given(prev=PREV, row=chain_rows())
def test_chain_row_is_the_reference_hash_and_leaf(prev, row):
    """NULLs, non-ASCII, NUL and "\\x01" in text, ints beyond int64: both backends give the
    reference's hash and leaf hash, or the same error."""
    def answer(fn):
        try:
            return fn(prev, row)
        except InvalidPayloadError as exc:
            return str(exc)
    want = answer(lambda p, r: (pure_chain.chain_hashes(p, [r])[0], pure_merkle.leaf_hashes([r])))
    assert answer(pure_merkle.chain_row) == want
    assert answer(native_chain.chain_row) == want


def test_a_well_formed_row_is_hashed_and_leafed_in_c(monkeypatch):
    rows = make_rows(40)  # NULL fields, non-ASCII, control characters
    want = [pure_merkle.chain_row(GENESIS_HASH, r) for r in rows]

    def refuse(*args, **kwargs):
        raise AssertionError("the row was handed to the reference")
    monkeypatch.setattr(pure_merkle, "chain_row", refuse)
    assert [native_chain.chain_row(GENESIS_HASH, r) for r in rows] == want


@pytest.mark.parametrize("field,value", [("actor", "a\x00b"), ("run_id", "\x01"),
                                         ("timestamp_unix_ms", True), ("seq", 2**63)])
def test_a_row_c_cannot_take_goes_to_the_reference(field, value):
    row = make_rows(1)[0]
    k = CHAIN_FIELDS.index(field)
    row = row[:k] + (value,) + row[k + 1:]
    for prev in (GENESIS_HASH, "f" * 64):
        try:
            want = pure_merkle.chain_row(prev, row)
        except InvalidPayloadError as exc:
            with pytest.raises(InvalidPayloadError) as err:
                native_chain.chain_row(prev, row)
            assert str(err.value) == str(exc)
        else:
            assert native_chain.chain_row(prev, row) == want


@FAST
@given(prev=PREV, row=chain_rows())
def test_one_row_hashes_like_the_reference(prev, row):
    """NULLs, non-ASCII, NUL and "\\x01" in text, ints beyond int64: the same hash or the same
    fallback as a batch."""
    assert native_chain.chain_hashes(prev, [row]) == pure_chain.chain_hashes(prev, [row])


def test_a_well_formed_row_is_hashed_in_c(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the row was handed to the reference")
    rows = make_rows(40)  # NULL fields, non-ASCII, control characters
    want = [pure_chain.chain_hashes(GENESIS_HASH, [r]) for r in rows]
    monkeypatch.setattr(pure_chain, "chain_hashes", refuse)
    assert [native_chain.chain_hashes(GENESIS_HASH, [r]) for r in rows] == want


@pytest.mark.parametrize("field,value,message", [
    ("actor", "a\udc80b", "row 0: actor is not valid Unicode (lone surrogate)"),
    ("payload_json", None, "row 0: payload_json must be str, not NoneType"),
])
def test_one_bad_row_is_refused_with_the_reference_message(field, value, message):
    row = make_rows(1)[0]
    k = CHAIN_FIELDS.index(field)
    row = row[:k] + (value,) + row[k + 1:]
    for mod in ROW_MODULES.values():
        with pytest.raises(InvalidPayloadError) as err:
            mod.chain_hashes(GENESIS_HASH, [row])
        assert str(err.value) == message


def test_one_row_with_a_seq_beyond_int64_is_hashed_by_the_reference():
    row = (2**63,) + make_rows(1)[0][1:]
    assert native_chain.chain_hashes(GENESIS_HASH, [row]) \
        == pure_chain.chain_hashes(GENESIS_HASH, [row])
