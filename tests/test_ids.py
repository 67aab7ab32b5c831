"""ULIDs (ids.py): 26 Crockford base32 characters, time first, fresh random bits, both encoders."""

from __future__ import annotations

import os

import pytest

from palyra_journal import ids

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def _decode(u: str) -> int:
    return int("".join("0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(c).__format__("05b") for c in u), 2)


@pytest.mark.parametrize("count", [1, 7, 8, 1000, 5000])
def test_new_ulids_shape_time_and_uniqueness(count):
    now = 1_700_000_000_123
    out = ids.new_ulids(count, now)
    assert len(out) == count and len(set(out)) == count
    for u in out:
        assert len(u) == 26 and set(u) <= CROCKFORD and u[0] <= "7"
        assert _decode(u) >> 80 == now
    assert ids.new_ulid(now)[:10] == out[0][:10]


def test_every_encoder_writes_the_same_layout():
    """The native batch encoder (when built) and the Python one: time prefix, random tail."""
    now = 2**48 - 1  # all time bits set: the top character is 7
    encoders = [ids._py_ulids] + ([ids._native_ulids] if ids._native_fill is not None else [])
    for encode in encoders:
        out = encode(64, now)
        assert {u[:10] for u in out} == {"7ZZZZZZZZZ"}
        assert all(len(u) == 26 and set(u) <= CROCKFORD for u in out)
        bits = [_decode(u) & (2**80 - 1) for u in out]
        assert len(set(bits)) == 64
        ones = sum(bin(b).count("1") for b in bits)
        assert 0.4 < ones / (64 * 80) < 0.6  # random bits, not a constant or a counter


def test_time_is_truncated_to_48_bits_and_defaults_to_now():
    assert ids.new_ulids(10, 2**48 + 5)[0][:10] == ids.new_ulid(5)[:10]
    assert ids.new_ulids(0) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_do_not_repeat_ids():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        os.write(w, "".join(ids.new_ulids(50, 1) + [ids.new_ulid(1)]).encode())
        os._exit(0)
    os.close(w)
    child = b""
    while chunk := os.read(r, 65536):
        child += chunk
    os.close(r)
    os.waitpid(pid, 0)
    parent = "".join(ids.new_ulids(50, 1) + [ids.new_ulid(1)])
    theirs = {child.decode()[i:i + 26] for i in range(0, len(child), 26)}
    ours = {parent[i:i + 26] for i in range(0, len(parent), 26)}
    assert len(theirs) == 51 and not theirs & ours
