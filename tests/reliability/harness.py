"""Helpers shared by the reliability tests: forked workers that can be SIGKILLed, and snapshots.

Workers are forked from the test process rather than spawned: the child inherits the imported
package (and the kernel backend chosen by the ``backend`` fixture), so a kill round costs a few
milliseconds instead of an interpreter start. The parent must hold no open SQLite connection when
it forks; every helper here opens and closes its own.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

import raw_db


@dataclass
class Child:
    """A forked worker: its pid and the read end of the pipe it reports on, one line per fact."""

    pid: int
    fd: int
    lines: list[str] = field(default_factory=list)
    _buf: bytes = b""
    status: int | None = None

    def _pump(self, timeout: float) -> bool:
        """Read what is available within ``timeout``; False at end of file."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        chunk = os.read(self.fd, 65536)
        if not chunk:
            return False
        self._buf += chunk
        *complete, self._buf = self._buf.split(b"\n")
        self.lines.extend(c.decode() for c in complete)
        return True

    def wait_lines(self, count: int, timeout: float = 20.0) -> None:
        """Block until the child reported ``count`` lines (or ended, or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            if not self._pump(0.05):
                break

    def kill(self) -> list[str]:
        """SIGKILL the child, reap it, and return every line it reported (complete lines only)."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, self.status = os.waitpid(self.pid, 0)
        while self._pump(1.0):
            pass
        os.close(self.fd)
        return self.lines

    def join(self, timeout: float = 120.0) -> list[str]:
        """Read until the child closes its pipe, then reap it; the lines it reported."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._pump(0.2):
            pass
        if time.monotonic() >= deadline:
            os.kill(self.pid, signal.SIGKILL)
        _, self.status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return self.lines

    @property
    def failed(self) -> bool:
        """True when the child ended by itself with an error (not by our SIGKILL)."""
        assert self.status is not None
        if os.WIFSIGNALED(self.status):
            return os.WTERMSIG(self.status) != signal.SIGKILL
        return os.WEXITSTATUS(self.status) != 0


def fork_child(body: Callable[..., Any], *args: Any) -> Child:
    """Run ``body(out, *args)`` in a forked child; ``out`` is a line-buffered text pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(r)
            out: TextIO = os.fdopen(w, "w", buffering=1)
            body(out, *args)
            out.flush()
        except BaseException:  # noqa: BLE001 - reported on stderr, exit code 1
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    return Child(pid, r)


def report(out: TextIO, obj: Any) -> None:
    """One JSON line on the pipe (a single short write, so never torn by a kill)."""
    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    out.flush()


def table_snapshot(path: "str | os.PathLike[str]") -> dict[str, list[tuple]]:
    """Every row of every table (FTS shadow tables included), read on a separate connection, on
    either engine (tests/raw_db.py)."""
    return raw_db.table_rows(path)


def raw_connection(path: "str | os.PathLike[str]") -> Any:
    """A plain connection "behind the store's back" (autocommit): sqlite3, or psycopg on a URL."""
    return raw_db.connect(path, autocommit=True)
