"""What the native backend runs on: SIMD level and SHA-256 path chosen at run time."""

from __future__ import annotations

from .._native import lib

#: The SIMD levels csrc/cpu.c can report: one per family of kernels that exists (x86 only; other
#: CPUs, arm64 included, run the portable "scalar" code).
SIMD_NAMES = {0: "scalar", 1: "avx2+fma", 2: "avx512"}
SHA_NAMES = {0: "portable", 1: "sha-ni"}


def cpu_info() -> dict:
    return {
        "backend": "native",
        "simd": SIMD_NAMES.get(lib.pj_cpu_simd_level(), "unknown"),
        "simd_detected": SIMD_NAMES.get(lib.pj_cpu_simd_detected(), "unknown"),
        "sha": SHA_NAMES.get(lib.pj_cpu_sha_path(), "unknown"),
        "int8": _int8_level(),
        "threads": lib.pj_cpu_count(),
    }


def _int8_level() -> str:
    from .native_vector import int8_level
    return int8_level()


def set_simd_limit(name: str | None) -> str:
    """Cap the SIMD level (tests and benchmarks): a name of SIMD_NAMES, or None for no cap."""
    if name is None:
        return SIMD_NAMES[lib.pj_cpu_set_limit(-1)]
    level = {v: k for k, v in SIMD_NAMES.items()}[name]
    return SIMD_NAMES[lib.pj_cpu_set_limit(level)]


def set_sha_limit(name: str | None) -> str:
    """Force the portable SHA-256 (``"portable"``) or lift the cap (None)."""
    if name is None:
        return SHA_NAMES[lib.pj_cpu_set_sha_limit(-1)]
    path = {v: k for k, v in SHA_NAMES.items()}[name]
    return SHA_NAMES[lib.pj_cpu_set_sha_limit(path)]
