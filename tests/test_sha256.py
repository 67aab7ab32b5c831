"""SHA-256 of the native module equals hashlib on every path this CPU can run (portable, SHA-NI)."""

from __future__ import annotations

import hashlib
import random

import pytest

from palyra_journal._native import ffi, lib
from palyra_journal.kernels import native_chain, pure_chain
from palyra_journal.kernels.native_cpu import SHA_NAMES, set_sha_limit

#: The SHA paths this machine can run: always the portable code, and the CPU's own when it has one.
PATHS = sorted({"portable", SHA_NAMES[lib.pj_cpu_sha_detected()]})

DATA = random.Random(20240229).randbytes((1 << 20) + 7)


@pytest.fixture(params=PATHS)
def sha_path(request):
    """Force one SHA path for the test, then lift the cap."""
    used = set_sha_limit("portable" if request.param == "portable" else None)
    assert used == request.param
    try:
        yield request.param
    finally:
        set_sha_limit(None)


def test_every_length_up_to_4096_matches_hashlib(sha_path):
    for n in range(4097):
        assert native_chain.sha256(DATA[:n]) == hashlib.sha256(DATA[:n]).digest(), n


def test_one_mebibyte_plus_seven_matches_hashlib(sha_path):
    assert native_chain.sha256(DATA) == hashlib.sha256(DATA).digest()


def test_streaming_in_uneven_pieces_matches_one_shot(sha_path):
    rng = random.Random(7)
    for total in (0, 1, 63, 64, 65, 1000, 70_001):
        ctx = ffi.new("pj_sha256_ctx *")
        lib.pj_sha256_init(ctx)
        pos = 0
        while pos < total:
            step = min(total - pos, rng.choice((1, 3, 63, 64, 65, 200, 4096)))
            piece = DATA[pos:pos + step]
            lib.pj_sha256_update(ctx, piece, len(piece))
            pos += step
        out = ffi.new("uint8_t[32]")
        lib.pj_sha256_final(ctx, out)
        assert bytes(out) == hashlib.sha256(DATA[:total]).digest(), total


def test_hex_is_lowercase_and_matches_hexdigest():
    out = ffi.new("uint8_t[32]")
    lib.pj_sha256(b"abc", 3, out)
    hexbuf = ffi.new("char[64]")
    lib.pj_sha256_hex(out, hexbuf)
    assert ffi.unpack(hexbuf, 64).decode() == hashlib.sha256(b"abc").hexdigest()


def test_accepts_any_bytes_like_and_equals_the_reference():
    data = bytearray(b"palyra" * 100)
    assert native_chain.sha256(data) == pure_chain.sha256(bytes(data))
    assert native_chain.sha256(memoryview(data)[3:]) == hashlib.sha256(bytes(data[3:])).digest()
