"""The native Merkle kernels (csrc/merkle.c) against the pure reference, byte for byte, on
generated rows and hashes; bad rows raise the same errors on both."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palyra_journal.errors import InvalidPayloadError
from palyra_journal.kernels import native_merkle, pure_merkle

from . import reference as ref

text = st.one_of(st.none(), st.text(max_size=40))
rows = st.lists(st.tuples(
    st.integers(1, 2**62), st.text(max_size=30), st.text(min_size=1, max_size=20), st.text(max_size=10),
    text, text, text, text, text, st.integers(-(2**53) + 1, 2**53 - 1),
    st.sampled_from(['{}', '{"a":1}', '"é\\n"', '[1,2.5,null]', '{"k":"\u2028"}'])), max_size=40)


def _no_surrogates(rs):
    try:
        "".join(str(f) for r in rs for f in r).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows.filter(_no_surrogates), st.data())
def test_leaf_hashes_native_equals_pure(rs, data):
    start = data.draw(st.integers(0, len(rs)))
    count = data.draw(st.integers(0, len(rs) - start))
    assert native_merkle.leaf_hashes(rs, start, count) == pure_merkle.leaf_hashes(rs, start, count)
    for i, row in enumerate(rs):  # the leaf is SHA-256(0x00 || envelope), whoever computes it
        want = hashlib.sha256(b"\x00" + pure_merkle.leaf_data(i, row)).digest()
        assert native_merkle.leaf_hashes(rs, i, 1) == want


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 8), st.binary(min_size=32, max_size=32))
def test_subtree_and_node_hashes_native_equal_pure_and_the_reference(log_w, seed):
    entries = b"".join(hashlib.sha256(seed + i.to_bytes(2, "big")).digest()
                       for i in range(1 << log_w))
    up = native_merkle.subtree(entries)
    assert up == pure_merkle.subtree(entries)
    hashes = [entries[i:i + 32] for i in range(0, len(entries), 32)]
    assert (up[-32:] if up else entries) == ref.mth(hashes)
    assert native_merkle.node_hashes(entries[:len(entries) // 64 * 64]) == \
        pure_merkle.node_hashes(entries[:len(entries) // 64 * 64])


@pytest.mark.parametrize("mod", [pure_merkle, native_merkle], ids=["python", "native"])
def test_bad_input_is_refused_alike(mod):
    good = (1, "e", "k", "a", None, None, None, None, None, 5, "{}")
    with pytest.raises(InvalidPayloadError, match="row 1: kind must be str or None, not int"):
        mod.leaf_hashes([good, (2, "e", 7, "a", None, None, None, None, None, 5, "{}")])
    with pytest.raises(InvalidPayloadError, match="row 0: expected a sequence of 11 fields"):
        mod.leaf_hashes([(1, "e")])
    with pytest.raises(InvalidPayloadError, match="outside a batch of 1 rows"):
        mod.leaf_hashes([good], 1, 1)
    with pytest.raises(InvalidPayloadError, match="power-of-two count of hashes, got 3"):
        mod.subtree(b"\0" * 96)
    with pytest.raises(InvalidPayloadError, match="not a whole number of 64-byte pairs"):
        mod.node_hashes(b"\0" * 63)
