"""The hash chain kernels on their own (benchmarks/README.md sections 1 and 2, below the store).

Workloads, each implementation on the same rows in the same run:
``chain_hashes 10000``: hash 10 000 events with ~330-byte canonical payloads: ours native (rows
packed into column buffers, hashed in C), ours python, and a plain ``hashlib`` loop over preimages
built beforehand (the hashing alone, no envelope work);
``verify_chain 100000``: the kernel of ``verify()``'s one-connection pass over 100 000 rows (rows
as tuples), native and python, and the kernel of its ranges (``verify_joined``: the same rows as
SQLite's joined columns, chain and tile leaves hashed), native and python;
``sha256 <size>``: one digest of 64 B, 1 KiB, 1 MiB: native SHA-NI (when the CPU has it), native
portable, ``hashlib``.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from .common import describe
from palyra_journal.kernels import GENESIS_HASH, native_chain, pure_chain, pure_chain_joined
from palyra_journal.kernels.native_cpu import SHA_NAMES, set_sha_limit
from palyra_journal._native import lib

N_HASH = 10_000
N_VERIFY = 100_000


def make_rows(n: int) -> list[tuple]:
    """Events shaped like benchmarks/README.md's workload: ~330-byte payloads, 10 % non-ASCII text."""
    rows = []
    for i in range(n):
        note = "résumé envoyé à l'équipe ✓" if i % 10 == 0 else "summary sent to the team"
        payload = {
            "tool": "web.fetch", "status": 200 + i % 3, "elapsed_ms": 183.25,
            "url": f"https://example.com/docs/page/{i}?lang=en",
            "note": note, "tags": ["docs", "fetch"],
            "request": {"method": "GET", "retries": i % 2, "cache": True, "agent": "palyra/1.0"},
            "summary": "The page explains installation, configuration and first steps of the CLI.",
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        rows.append((i + 1, f"01HZX{i:021d}", "tool.called", f"agent-{i % 7}",
                     f"sess-{i % 50}", None, None, None, "cli", 1_700_000_000_000 + i, text))
    return rows


ROWS = make_rows(N_HASH)


@pytest.fixture(scope="module")
def verify_rows() -> list[tuple]:
    rows = make_rows(N_VERIFY)
    hashes = native_chain.chain_hashes(GENESIS_HASH, rows)
    return [r + (h, p) for r, h, p in zip(rows, hashes, [GENESIS_HASH] + hashes[:-1])]


def test_payloads_are_the_described_size():
    sizes = sorted(len(r[10].encode()) for r in ROWS)
    assert 300 <= sizes[len(sizes) // 2] <= 360


@pytest.mark.benchmark(group="chain_hashes 10000")
@pytest.mark.parametrize("impl", ["native", "python"])
def test_chain_hashes(benchmark, impl):
    fn = {"native": native_chain.chain_hashes, "python": pure_chain.chain_hashes}[impl]
    describe(benchmark, section=0, workload="chain_hashes 10000", impl=f"palyra {impl}",
             role="ours", items=N_HASH)
    if impl == "python":
        out = benchmark.pedantic(fn, args=(GENESIS_HASH, ROWS), rounds=5, iterations=1)
    else:
        out = benchmark(fn, GENESIS_HASH, ROWS)
    assert out[-1] == native_chain.chain_hashes(GENESIS_HASH, ROWS)[-1]


@pytest.mark.benchmark(group="chain_hashes 10000")
def test_chain_hashes_hashlib_loop(benchmark):
    hashes = native_chain.chain_hashes(GENESIS_HASH, ROWS)
    preimages = [p.encode() + b"\n" + pure_chain.envelope_text(r).encode()
                 for r, p in zip(ROWS, [GENESIS_HASH] + hashes[:-1])]
    describe(benchmark, section=0, workload="chain_hashes 10000", impl="hashlib loop (prebuilt preimages)",
             role="peer", items=N_HASH)
    sha = hashlib.sha256
    out = benchmark(lambda: [sha(p).hexdigest() for p in preimages])
    assert out == hashes


@pytest.mark.benchmark(group="verify_chain 100000")
@pytest.mark.parametrize("impl", ["native", "python"])
def test_verify_chain(benchmark, verify_rows, impl):
    describe(benchmark, section=0, workload=f"verify_chain {N_VERIFY}", impl=f"palyra {impl} kernel",
             role="ours", items=N_VERIFY)
    if impl == "python":
        res = benchmark.pedantic(pure_chain.verify_chain, args=(GENESIS_HASH, 1, verify_rows),
                                 rounds=3, iterations=1)
    else:
        res = benchmark(native_chain.verify_chain, GENESIS_HASH, 1, verify_rows)
    assert res is None


def _joined(rows: list[tuple]) -> list[bytes]:
    """The rows' columns as verify()'s ranges read them: json_group_array(column) (SQLite writes
    strings as RFC 8785 does), the payloads joined by NUL (group_concat)."""
    payload = len(rows[0]) - 3
    return [b"\x00".join(r[k].encode() for r in rows) if k == payload else
            json.dumps([r[k] for r in rows], ensure_ascii=False, separators=(",", ":")).encode()
            for k in range(len(rows[0]))]


@pytest.mark.benchmark(group="verify_chain 100000")
@pytest.mark.parametrize("impl", ["native", "python"])
def test_verify_joined(benchmark, verify_rows, impl):
    columns = _joined(verify_rows)
    fn = {"native": native_chain.verify_joined, "python": pure_chain_joined.verify_joined}[impl]
    describe(benchmark, section=0, workload=f"verify_chain {N_VERIFY}",
             impl=f"palyra {impl} joined kernel (with leaves)", role="ours", items=N_VERIFY)
    args = (GENESIS_HASH, 1, N_VERIFY, columns, N_VERIFY)
    if impl == "python":
        res = benchmark.pedantic(fn, args=args, rounds=1, iterations=1)
    else:
        res = benchmark(fn, *args)
    assert res is not None and len(res) == 32 * N_VERIFY


SIZES = {"64 B": 64, "1 KiB": 1024, "1 MiB": 1 << 20}
PATHS = sorted({"portable", SHA_NAMES[lib.pj_cpu_sha_detected()]})


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("path", PATHS)
def test_sha256_native(benchmark, size, path):
    data = bytes(range(256)) * (SIZES[size] // 256) or bytes(SIZES[size])
    benchmark.group = f"sha256 {size}"
    describe(benchmark, section=0, workload=f"sha256 {size}", impl=f"palyra native {path}",
             role="ours", items=1)
    set_sha_limit("portable" if path == "portable" else None)
    try:
        out = benchmark(native_chain.sha256, data)
    finally:
        set_sha_limit(None)
    assert out == hashlib.sha256(data).digest()


@pytest.mark.parametrize("size", list(SIZES))
def test_sha256_hashlib(benchmark, size):
    data = bytes(range(256)) * (SIZES[size] // 256) or bytes(SIZES[size])
    benchmark.group = f"sha256 {size}"
    describe(benchmark, section=0, workload=f"sha256 {size}", impl="hashlib", role="peer", items=1)
    sha = hashlib.sha256
    benchmark(lambda: sha(data).digest())
