"""What the native backend runs on: the SIMD level it reports (only paths that exist) and the
thread budget (affinity, cgroup quota, PALYRA_JOURNAL_THREADS)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"


@pytest.fixture
def lib():
    from palyra_journal._native import lib
    return lib


def _threads_in_child(env: dict[str, str], cpus: set[int] | None = None) -> int:
    """``cpu_info()["threads"]`` of a fresh interpreter (the budget is decided once per process)."""
    code = "import json; from palyra_journal.kernels import native_cpu; print(json.dumps(native_cpu.cpu_info()))"
    full = {**os.environ, **env}
    preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None
    out = subprocess.run([sys.executable, "-c", code], env=full, check=True, capture_output=True,
                         text=True, preexec_fn=preexec, cwd=ROOT).stdout
    return json.loads(out)["threads"]


def test_quota_allows_its_cpus_rounded_up(lib):
    assert lib.pj_cpu_quota_cpus(100_000, 100_000) == 1
    assert lib.pj_cpu_quota_cpus(150_000, 100_000) == 2
    assert lib.pj_cpu_quota_cpus(50_000, 100_000) == 1
    assert lib.pj_cpu_quota_cpus(400_000, 100_000) == 4
    assert lib.pj_cpu_quota_cpus(-1, 100_000) == 0  # cgroup v1: no quota
    assert lib.pj_cpu_quota_cpus(100_000, 0) == 0


@pytest.mark.parametrize("text, cpus", [
    (b"max 100000\n", 0), (b"200000 100000\n", 2), (b"250000 100000", 3), (b"", 0),
    (b"garbage", 0), (b"100000\n", 0), (b"99999999999999999999999 100000", 0),
])
def test_cgroup_v2_cpu_max_text(lib, text, cpus):
    assert lib.pj_cpu_parse_cpu_max(text) == cpus


def test_cgroup_quota_is_read_from_v2_then_v1(lib, tmp_path):
    root = str(tmp_path).encode()
    assert lib.pj_cpu_cgroup_cpus(root) == 0  # no cgroup files: no limit
    v1 = tmp_path / "cpu,cpuacct"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert lib.pj_cpu_cgroup_cpus(root) == 3
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert lib.pj_cpu_cgroup_cpus(root) == 0
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert lib.pj_cpu_cgroup_cpus(root) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert lib.pj_cpu_cgroup_cpus(root) == 0


@pytest.mark.parametrize("text, threads", [
    (b"3", 3), (b"1", 1), (b" 12 ", 12), (b"0", 0), (b"-2", 0), (b"two", 0), (b"3x", 0), (b"", 0),
])
def test_thread_override_text(lib, text, threads):
    assert lib.pj_cpu_parse_threads(text) == threads


def test_environment_overrides_the_thread_count(native_backend):
    assert _threads_in_child({"PALYRA_JOURNAL_THREADS": "3"}) == 3
    assert _threads_in_child({"PALYRA_JOURNAL_THREADS": "1"}, cpus={0}) == 1


def test_thread_count_follows_the_affinity_mask(native_backend):
    env = {"PALYRA_JOURNAL_THREADS": ""}
    assert _threads_in_child(env, cpus={next(iter(os.sched_getaffinity(0)))}) == 1
    # an unusable override is ignored: the affinity mask decides
    assert _threads_in_child({"PALYRA_JOURNAL_THREADS": "many"}, cpus={min(os.sched_getaffinity(0))}) == 1


def test_thread_count_without_override_is_at_most_the_affinity_mask(native_backend):
    threads = _threads_in_child({"PALYRA_JOURNAL_THREADS": ""})
    assert 1 <= threads <= len(os.sched_getaffinity(0))


ARM_CC, QEMU = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")


@pytest.mark.skipif(not (ARM_CC and QEMU), reason="needs aarch64-linux-gnu-gcc and qemu-aarch64 "
                    "(Debian: gcc-aarch64-linux-gnu qemu-user; .ci/run installs them)")
def test_arm64_build_reports_the_scalar_path_and_scans(tmp_path):
    """No NEON or ARMv8-SHA kernels exist, so an arm64 build must report the portable paths (doctor
    prints them) and its portable scan must rank like the reference."""
    main = tmp_path / "main.c"
    main.write_text(r"""
#include <stdio.h>
#include "cpu.h"
#include "vector.h"
int main(void) {
    float m[8] = {1, 0, 0, 1, 1, 1, -1, 0}, q[2] = {1, 2};
    int64_t ids[2];
    double sc[2];
    long long n = (long long)pj_vector_topk(m, 4, 2, q, NULL, 2, ids, sc, 2);
    printf("%d %d %lld %lld %lld\n", pj_cpu_simd_level(), pj_cpu_sha_path(), n,
           (long long)ids[0], (long long)ids[1]);
    return 0;
}
""")
    exe = tmp_path / "arm64"
    subprocess.run([ARM_CC, "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread",
                    f"-I{CSRC}", str(CSRC / "cpu.c"), str(CSRC / "vector.c"), str(CSRC / "pool.c"),
                    str(CSRC / "sha256.c"),
                    str(main), "-o", str(exe), "-lm"], check=True)
    out = subprocess.run([QEMU, "-L", "/usr/aarch64-linux-gnu", str(exe)], check=True,
                         capture_output=True, text=True).stdout.split()
    from palyra_journal.kernels.native_cpu import SHA_NAMES, SIMD_NAMES
    assert SIMD_NAMES[int(out[0])] == "scalar"
    assert SHA_NAMES[int(out[1])] == "portable"
    # scores of rows 0..3 against q = (1, 2): 1, 2, 3, -1
    assert [int(x) for x in out[2:]] == [2, 2, 1]


def test_reported_simd_level_is_one_the_kernels_run(lib):
    from palyra_journal.kernels import native_cpu
    info = native_cpu.cpu_info()
    assert info["simd"] in native_cpu.SIMD_NAMES.values()
    assert info["simd_detected"] in native_cpu.SIMD_NAMES.values()
    assert info["sha"] in native_cpu.SHA_NAMES.values()
