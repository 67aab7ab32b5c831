"""ULIDs: 48-bit Unix-ms time + 80 random bits, Crockford base32, 26 characters.

ULIDs sort by creation time, which the list APIs use for stable pagination, and within one process
they are monotonic per millisecond (the ULID spec's monotonic variant): an id made in a millisecond
the process has already made ids in is the last of those + 1, so a process's ids of one millisecond
sort in the order it made them (cron's runs list in claim order). The random bits come from the OS
CSPRNG. Generation is a kernel (``kernels.ulids``: ``csrc/ulid.c`` or :mod:`.kernels.pure_ulid`,
the reference), so ``PALYRA_JOURNAL_BACKEND`` covers it like every other kernel.

This module holds the last ULID of each of the most recent milliseconds used, not only of the
newest: callers pass their own times (a claim's ``now_unix_ms``, an import's timestamps), so ids
of two milliseconds may interleave, and neither sequence may restart from fresh random bits. A
forked child forgets them all (and gets a fresh lock), so parent and child never continue the same
sequence.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict

from . import kernels
from .errors import InvalidPayloadError

_TIME_MASK = 2**48 - 1
#: Milliseconds whose last ULID is kept: more distinct times than a process interleaves at once.
_KEEP_MS = 64
_lock = threading.Lock()
_last: OrderedDict[int, int] = OrderedDict()  # time -> last ULID made for it (an int)


def _forget_in_child() -> None:
    global _lock, _last
    _lock = threading.Lock()  # another thread may have held it at the fork
    _last = OrderedDict()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _check_now(now_ms: int | None) -> None:
    if now_ms is not None and (not isinstance(now_ms, int) or isinstance(now_ms, bool)):
        raise InvalidPayloadError(f"now_ms must be an int, got {now_ms!r}")


def _make(count: int, now_ms: int | None) -> list[str]:
    """``count`` ULIDs for ``now_ms`` (checked by the caller), under the lock that orders them."""
    with _lock:
        t = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) & _TIME_MASK
        out, _last[t] = kernels.ulids(count, t, _last.get(t, 0))
        _last.move_to_end(t)
        if len(_last) > _KEEP_MS:
            _last.popitem(last=False)
    return out


def new_ulids(count: int, now_ms: int | None = None) -> list[str]:
    """``count`` fresh ULIDs for time ``now_ms`` (low 48 bits; default: now, read in call order)."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise InvalidPayloadError(f"count must be a non-negative int, got {count!r}")
    _check_now(now_ms)
    return _make(count, now_ms)


def new_ulid(now_ms: int | None = None) -> str:
    """A fresh ULID for time ``now_ms`` (default: now): ``append``'s one id per call."""
    _check_now(now_ms)
    return _make(1, now_ms)[0]
