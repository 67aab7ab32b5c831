"""ULID generation: 48-bit Unix-ms time + 80 random bits, Crockford base32, 26 characters.

ULIDs sort by creation time, which the list APIs use for stable pagination. When the native
extension is built, batches come from C (csrc/ulid.c: one kernel random read per batch, returned
as one ASCII string sliced here), about 20x cheaper than the Python encoder below, which remains
the fallback. The Python encoder writes the 128-bit value
written with a table of every 15-bit chunk's three characters (9 lookups instead of 26; Python
3.11's ``base64.b32encode`` is pure Python and 4x slower). The random part comes from a
``random.Random`` seeded from the OS, which reseeds itself in a forked child, so processes never
share a sequence (one ``os.urandom`` call per ULID would cost more than the rest together).
"""

from __future__ import annotations

import os
import random
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TRIPLES = [a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET]
_SHIFTS = tuple(range(120, -1, -15))  # 9 chunks of 15 bits = 135 bits; the top 5 are zero
_rng = random.Random()
# A private Random is not reseeded by the random module's own fork hook: reseed it in every
# forked child, or parent and child would generate the same ULIDs.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rng.seed)


def _encode(n: int) -> str:
    t = _TRIPLES
    return "".join([t[(n >> s) & 0x7FFF] for s in _SHIFTS])[1:]


def new_ulid(now_ms: int | None = None) -> str:
    """A fresh ULID for time ``now_ms`` (default: now)."""
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    return _encode(((now_ms & 0xFFFFFFFFFFFF) << 80) | _rng.getrandbits(80))


def _py_ulids(count: int, now_ms: int) -> list[str]:
    head = (now_ms & 0xFFFFFFFFFFFF) << 80
    bits = _rng.getrandbits
    return [_encode(head | bits(80)) for _ in range(count)]


try:
    from ._native import ffi as _ffi, lib as _lib
    _native_fill = _lib.pj_ulid_fill
except (ImportError, AttributeError):  # not built (or built without ulid.c): Python only
    _native_fill = None


def _native_ulids(count: int, now_ms: int) -> list[str]:
    buf = _ffi.new("char[]", 26 * count)
    if _native_fill(buf, count, now_ms & 0xFFFFFFFFFFFF) != 0:
        return _py_ulids(count, now_ms)  # the kernel's random source failed: use ours
    s = _ffi.unpack(buf, 26 * count).decode("ascii")
    return [s[i:i + 26] for i in range(0, 26 * count, 26)]


def new_ulids(count: int, now_ms: int | None = None) -> list[str]:
    """``count`` fresh ULIDs sharing one clock read."""
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    if count >= 8 and _native_fill is not None:
        return _native_ulids(count, now_ms)
    return _py_ulids(count, now_ms)
