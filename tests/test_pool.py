"""The helper thread pool of the native scan (csrc/pool.c): a job wakes only the helpers it needs,
and fork() is safe while another thread scans (pthread_atfork handlers)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

pytest.importorskip("palyra_journal._native")

from palyra_journal._native import lib  # noqa: E402
from palyra_journal.kernels import native_vector  # noqa: E402


def _reference_ids(matrix, query, k):
    scores = matrix.astype(np.float64) @ query.astype(np.float64)
    return np.lexsort((np.arange(len(scores)), -scores))[:k]


@pytest.fixture
def threads():
    """Force the scan's thread count for one test."""
    previous = native_vector.set_threads(0)
    yield native_vector.set_threads
    native_vector.set_threads(previous)


def test_a_job_wakes_only_the_helpers_it_needs(threads):
    rng = np.random.default_rng(5)
    matrix = rng.standard_normal((8192, 32)).astype(np.float32)
    query = rng.standard_normal(32).astype(np.float32)
    threads(3)
    native_vector.topk(matrix, query, 5)  # starts helpers 1 and 2
    assert lib.pj_pool_helpers() >= 2
    threads(2)
    one, two = lib.pj_pool_tasks_run(1), lib.pj_pool_tasks_run(2)
    for _ in range(10):
        np.testing.assert_array_equal(native_vector.topk(matrix, query, 5)[0],
                                      _reference_ids(matrix, query, 5))
    assert lib.pj_pool_tasks_run(1) >= one + 10  # one task per scan pass
    assert lib.pj_pool_tasks_run(2) == two  # never woken for a two-thread job
    threads(1)
    one = lib.pj_pool_tasks_run(1)
    native_vector.topk(matrix, query, 5)
    assert lib.pj_pool_tasks_run(1) == one  # a one-thread job runs on the caller alone


def _wait_child(pid: int, timeout_s: float = 60.0) -> int:
    """The child's exit code; kills it (and fails) if it hangs, e.g. on a lock inherited locked."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.005)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_another_thread_scans_gives_a_child_that_searches(threads):
    rng = np.random.default_rng(6)
    matrix = rng.standard_normal((40_000, 32)).astype(np.float32)
    query = rng.standard_normal(32).astype(np.float32)
    want = _reference_ids(matrix, query, 10)
    threads(2)
    stop = threading.Event()
    scans = [0]
    errors: list[BaseException] = []

    def scan_forever() -> None:
        try:
            while not stop.is_set():
                np.testing.assert_array_equal(native_vector.topk(matrix, query, 10)[0], want)
                scans[0] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    scanner = threading.Thread(target=scan_forever)
    scanner.start()
    try:
        while scans[0] == 0:  # the pool is busy in the parent before the first fork
            time.sleep(0.001)
        for _ in range(12):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child: search with the pool, then leave
                code = 1
                try:
                    for _ in range(3):
                        got = native_vector.topk(matrix, query, 10)[0]
                        code = 0 if np.array_equal(got, want) else 2
                        if code:
                            break
                    code = code or (0 if lib.pj_pool_helpers() >= 1 else 3)
                finally:
                    os._exit(code)
            assert _wait_child(pid) == 0
    finally:
        stop.set()
        scanner.join()
    assert not errors, errors
    assert scans[0] > 0
