"""ULIDs (ids.py, kernels.ulids): 26 Crockford base32 characters, time first, monotonic within a
millisecond per process, fresh CSPRNG bits in every other millisecond, on both backends."""

from __future__ import annotations

import os
import threading

import pytest
from hypothesis import assume, given, settings, strategies as st

from palyra_journal import ids, kernels
from palyra_journal.errors import IdSpaceExhaustedError
from palyra_journal.kernels import pure_ulid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAX = 2**128 - 1


def _decode(u: str) -> int:
    assert len(u) == 26 and set(u) <= set(CROCKFORD) and u[0] <= "7", u
    v = 0
    for c in u:
        v = v * 32 + CROCKFORD.index(c)
    return v


@pytest.mark.parametrize("count", [1, 7, 8, 1000, 5000])
def test_new_ulids_shape_time_and_order(backend, count):
    now = 1_700_000_000_123
    out = ids.new_ulids(count, now)
    values = [_decode(u) for u in out]
    assert all(v >> 80 == now for v in values)
    assert values == sorted(set(values))  # strictly increasing: unique and in the order made
    assert ids.new_ulid(now) > out[-1]  # the same millisecond continues the sequence


def test_a_batch_counts_up_from_fresh_random_bits(kernel):
    now = 2**48 - 1  # all time bits set: the top character is 7
    out, last = kernel.ulids(64, now, 0)
    assert {u[:10] for u in out} == {"7ZZZZZZZZZ"}
    values = [_decode(u) for u in out]
    assert values == list(range(values[0], values[0] + 64)) and last == values[-1]


def test_each_new_millisecond_draws_fresh_random_bits(kernel):
    firsts = []
    last = 0
    for t in range(1, 129):
        out, last = kernel.ulids(1, t, last)
        firsts.append(_decode(out[0]))
    assert [v >> 80 for v in firsts] == list(range(1, 129))
    bits = [v & (2**80 - 1) for v in firsts]
    assert len(set(bits)) == 128
    ones = sum(bin(b).count("1") for b in bits)
    assert 0.4 < ones / (128 * 80) < 0.6  # random bits, not a constant or a counter


def test_the_same_millisecond_continues_after_the_last_ulid(kernel):
    last = (1234 << 80) | 0xABCDEF
    out, new_last = kernel.ulids(3, 1234, last)
    assert [_decode(u) for u in out] == [last + 1, last + 2, last + 3] and new_last == last + 3
    out, _ = kernel.ulids(1, 1235, last)  # another millisecond: not a continuation
    assert _decode(out[0]) >> 80 == 1235


def test_interleaved_milliseconds_each_keep_their_sequence(backend):
    """Callers pass their own times (a claim's now, an import's timestamps): ids of two
    milliseconds may interleave, and each millisecond's ids still count up in the order made."""
    a, b = 1_800_000_000_000, 1_700_000_000_000
    made = {a: [], b: []}
    for _ in range(5):
        for t in (a, b):
            made[t] += ids.new_ulids(2, t)
    for t, out in made.items():
        values = [_decode(u) for u in out]
        assert values == list(range(values[0], values[0] + 10)) and values[0] >> 80 == t


def test_a_carried_sequence_continues_in_its_millisecond(kernel):
    last = (1234 << 80) | (2**80 - 1)
    out, carried = kernel.ulids(1, 1234, last)
    assert _decode(out[0]) == carried == 1235 << 80
    out, _ = kernel.ulids(1, 1234, carried)  # still the millisecond 1234 sequence
    assert _decode(out[0]) == carried + 1


def test_random_part_overflow_carries_into_the_time(kernel):
    last = (1234 << 80) | (2**80 - 2)
    out, new_last = kernel.ulids(3, 1234, last)
    assert [_decode(u) for u in out] == [(1234 << 80) | (2**80 - 1), 1235 << 80, (1235 << 80) | 1]
    assert new_last == (1235 << 80) | 1


def test_the_largest_ulid_is_the_last_one(kernel):
    t = 2**48 - 1
    out, last = kernel.ulids(2, t, MAX - 2)
    assert [_decode(u) for u in out] == [MAX - 1, MAX] and last == MAX
    with pytest.raises(IdSpaceExhaustedError, match=str(t)):
        kernel.ulids(1, t, MAX)
    with pytest.raises(IdSpaceExhaustedError, match="3 ULIDs"):
        kernel.ulids(3, t, MAX - 2)
    assert kernel.ulids(0, t, MAX) == ([], MAX)


@settings(max_examples=200, deadline=None)
@given(t=st.integers(0, 2**48 - 1), r=st.integers(0, 2**80 - 1), count=st.integers(1, 40))
def test_backends_agree_within_a_millisecond(t, r, count):
    """Continuing a millisecond is deterministic, so native and python must write the same ids."""
    from palyra_journal.kernels import native_ulid
    last = (t << 80) | r
    assume(last != 0)  # 0 means "no last ULID": a fresh draw
    try:
        want = pure_ulid.ulids(count, t, last)
    except IdSpaceExhaustedError:
        with pytest.raises(IdSpaceExhaustedError):
            native_ulid.ulids(count, t, last)
        return
    assert native_ulid.ulids(count, t, last) == want


def test_the_backend_setting_covers_ulids(monkeypatch):
    previous = kernels.backend_name()
    kernels.set_backend("python")
    try:
        monkeypatch.setattr(pure_ulid.os, "urandom", lambda n: b"\x01" * n)
        assert ids.new_ulid(77) == pure_ulid._encode((77 << 80) | int.from_bytes(b"\x01" * 10, "big"))
    finally:
        kernels.set_backend(previous)


def test_time_is_truncated_to_48_bits_and_defaults_to_now(backend):
    a = ids.new_ulids(10, 2**48 + 5)
    assert {u[:10] for u in a} == {ids.new_ulid(5)[:10]}
    assert ids.new_ulids(0) == []
    with pytest.raises(Exception, match="count"):
        ids.new_ulids(-1)


def test_ids_made_back_to_back_are_increasing(backend):
    made = [ids.new_ulid() for _ in range(5000)]  # most share a millisecond with the one before
    assert made == sorted(set(made))


def test_threads_never_share_an_id(backend):
    out: list[list[str]] = [[] for _ in range(4)]

    def work(k: int) -> None:
        for _ in range(500):
            out[k].extend(ids.new_ulids(3))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [u for part in out for u in part]
    assert len(set(everything)) == len(everything) == 6000
    assert all(part == sorted(part) for part in out)


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    return data


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_do_not_repeat_ids(backend):
    ids.new_ulids(5, 1)  # the parent has a last ULID at time 1 before the fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        os.write(w, "".join(ids.new_ulids(50, 1) + [ids.new_ulid(1)]).encode())
        os._exit(0)
    os.close(w)
    child = _read_all(r).decode()
    os.waitpid(pid, 0)
    parent = "".join(ids.new_ulids(50, 1) + [ids.new_ulid(1)])
    theirs = {child[i:i + 26] for i in range(0, len(child), 26)}
    ours = {parent[i:i + 26] for i in range(0, len(parent), 26)}
    assert len(theirs) == 51 and not theirs & ours


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_while_another_thread_makes_ids_leaves_the_child_working(backend):
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ids.new_ulids(8)

    t = threading.Thread(target=spin)
    t.start()
    try:
        for _ in range(20):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child: the lock may have been held at the fork
                os.close(r)
                os.write(w, "".join(ids.new_ulids(4)).encode())
                os._exit(0)
            os.close(w)
            got = _read_all(r).decode()
            _, status = os.waitpid(pid, 0)
            assert status == 0 and len(got) == 4 * 26
    finally:
        stop.set()
        t.join()
