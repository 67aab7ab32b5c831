"""Monotonic ULIDs on the native module (``csrc/ulid.c``): same contract as :mod:`.pure_ulid`,
the reference, with the random part from ``getrandom`` and the 26-character encoding in C."""

from __future__ import annotations

from .._native import ffi, lib
from ..errors import IdSpaceExhaustedError
from .pure_ulid import exhausted_message


def ulids(count: int, now_ms: int, last: int) -> tuple[list[str], int]:
    """``count`` ULIDs for time ``now_ms`` following ``last`` (0 for none), and the new last one."""
    if count == 0:
        return [], last
    state = bytearray(last.to_bytes(16, "big"))
    out = ffi.new("char[]", 26 * count)
    rc = lib.pj_ulid_next(out, count, now_ms, ffi.from_buffer("uint8_t[]", state))
    if rc == lib.PJ_ULID_ERR_EXHAUSTED:
        raise IdSpaceExhaustedError(exhausted_message(now_ms, count))
    if rc != lib.PJ_ULID_OK:
        raise OSError(f"ULID generation failed (status {rc}): the kernel's random source "
                      "(getrandom, /dev/urandom) could not be read")
    text = ffi.unpack(out, 26 * count).decode("ascii")
    return [text[i:i + 26] for i in range(0, 26 * count, 26)], int.from_bytes(state, "big")
