"""Monotonic ULIDs on the native module (``csrc/ulid.c``): same contract as :mod:`.pure_ulid`,
the reference, with the random part from ``getrandom`` and the 26-character encoding in C.

One buffer crosses the boundary (``pj_ulid_fill``): the ids, then the new last ULID, with the old
one passed as two 64-bit ints; ``append`` makes one id per call, so the call's own overhead is most
of what an id costs."""

from __future__ import annotations

from .._native import ffi, lib
from ..errors import IdSpaceExhaustedError
from .pure_ulid import exhausted_message

_LOW64 = 2**64 - 1
_new = ffi.new
_unpack = ffi.unpack
_fill = lib.pj_ulid_fill
_OK, _EXHAUSTED = lib.PJ_ULID_OK, lib.PJ_ULID_ERR_EXHAUSTED


def ulids(count: int, now_ms: int, last: int) -> tuple[list[str], int]:
    """``count`` ULIDs for time ``now_ms`` following ``last`` (0 for none), and the new last one."""
    if count == 0:
        return [], last
    size = 26 * count
    out = _new("char[]", size + 16)
    rc = _fill(out, count, now_ms, last >> 64, last & _LOW64)
    if rc != _OK:
        if rc == _EXHAUSTED:
            raise IdSpaceExhaustedError(exhausted_message(now_ms, count))
        raise OSError(f"ULID generation failed (status {rc}): the kernel's random source "
                      "(getrandom, /dev/urandom) could not be read")
    raw = _unpack(out, size + 16)
    text = raw[:size].decode("ascii")
    ids = [text] if count == 1 else [text[i:i + 26] for i in range(0, size, 26)]
    return ids, int.from_bytes(raw[size:], "big")
