"""A tiny dependency-free progress bar on stderr, for long ingests and verifications.

It draws only when stderr is a terminal (pipes and logs stay clean), redraws at most ~10 times a
second so that it costs nothing measurable in a hot loop, and shows the count, the rate and, when
the total is known, a bar and the time left.
"""

from __future__ import annotations

import sys
import time
from typing import IO


def _human(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.2f}M"
    if n >= 10_000:
        return f"{n / 1_000:.1f}k"
    return f"{n:.0f}"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``with Progress("ingest", total=n, enabled=True) as bar: bar.update(k)``.

    ``enabled=False`` (or a stderr that is not a terminal) makes every method a no-op.
    """

    WIDTH = 28
    INTERVAL = 0.1

    def __init__(self, label: str, total: int | None = None, *, enabled: bool = True,
                 unit: str = "events", stream: IO[str] | None = None):
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.active = bool(enabled and isatty is not None and isatty())
        self.label = label
        self.total = total
        self.unit = unit
        self.count = 0
        self._start = time.monotonic()
        self._last_draw = 0.0

    def update(self, n: int = 1) -> None:
        self.count += n
        if not self.active:
            return
        now = time.monotonic()
        if now - self._last_draw >= self.INTERVAL:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float, final: bool = False) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.count / elapsed
        parts = [self.label]
        if self.total:
            frac = min(1.0, self.count / self.total)
            filled = int(frac * self.WIDTH)
            parts.append("[" + "#" * filled + "." * (self.WIDTH - filled) + f"] {frac * 100:5.1f}%")
            parts.append(f"{_human(self.count)}/{_human(self.total)} {self.unit}")
        else:
            parts.append(f"{_human(self.count)} {self.unit}")
        parts.append(f"{_human(rate)}/s")
        if final:
            parts.append(f"in {_clock(elapsed)}")
        elif self.total and rate > 0:
            parts.append(f"ETA {_clock((self.total - self.count) / rate)}")
        self.stream.write("\r" + "  ".join(parts) + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.active:
            self._draw(time.monotonic(), final=True)
            self.stream.write("\n")
            self.stream.flush()
            self.active = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
