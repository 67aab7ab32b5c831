"""Monotonic ULIDs in Python: the reference for ``csrc/ulid.c``.

A ULID is 48 bits of Unix-ms time and 80 random bits, written as 26 Crockford base32 characters.
This is the ULID spec's monotonic variant. ``last`` is the last ULID the caller made in the batch's
millisecond (0 for none): the batch continues from ``last + 1``, so a process's ids of one
millisecond sort in the order they were made; without one the random part is fresh, from the OS
CSPRNG (``os.urandom``: one 10-byte read per new millisecond), and the batch counts up from there.
When the random part overflows, the + 1 carries into the time (the ULID reads one millisecond
later; ``last`` then carries that time, and still continues the millisecond), so the ids stay
strictly increasing. The caller (:mod:`palyra_journal.ids`) keeps ``last`` per millisecond and
serialises calls; this module holds no state.

The encoder writes the 128-bit value with a table of every 15-bit chunk's three characters (9
lookups instead of 26; Python 3.11's ``base64.b32encode`` is pure Python and 4x slower).
"""

from __future__ import annotations

import os

from ..errors import IdSpaceExhaustedError

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TRIPLES = [a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET]
_SHIFTS = tuple(range(120, -1, -15))  # 9 chunks of 15 bits = 135 bits; the top 7 are zero
#: The largest ULID: time 2^48 - 1 and every random bit set.
MAX_ULID = 2**128 - 1
TIME_MASK = 2**48 - 1
RANDOM_BITS = 80


def _encode(n: int) -> str:
    t = _TRIPLES
    return "".join([t[(n >> s) & 0x7FFF] for s in _SHIFTS])[1:]


def exhausted_message(now_ms: int, count: int) -> str:
    return f"no {count} ULIDs are left after the last one at time {now_ms} (the largest is time 2^48 - 1)"


def ulids(count: int, now_ms: int, last: int) -> tuple[list[str], int]:
    """``count`` ULIDs for time ``now_ms`` (low 48 bits) following ``last`` (the last ULID made in
    that millisecond, as an int; 0 for none), and the new last one."""
    if count == 0:
        return [], last
    t = now_ms & TIME_MASK
    if last == 0 or last >> RANDOM_BITS not in (t, t + 1):
        first = (t << RANDOM_BITS) | int.from_bytes(os.urandom(10), "big")
    else:
        first = last + 1
    end = first + count - 1
    if end > MAX_ULID:
        raise IdSpaceExhaustedError(exhausted_message(now_ms, count))
    return [_encode(v) for v in range(first, end + 1)], end
