"""Exact top-k by dot product on the native kernel (``csrc/vector.c``).

Arguments are validated by the pure backend's ``check_inputs`` so that both backends refuse the
same things with the same messages; the C kernel scans in float32 SIMD, proves or re-checks the
boundary in double, and returns the same ids as the float64 reference with double scores.
"""

from __future__ import annotations

import numpy as np

from .._native import ffi, lib
from .pure_vector import (Int8Tier, check_inputs, check_int8_dims, check_many, check_query, check_tier,
                          check_tier_arrays, topk_rows as _topk_rows)

_EMPTY_IDS = np.empty(0, dtype=np.int64)
_EMPTY_SCORES = np.empty(0, dtype=np.float64)


def topk(matrix: np.ndarray, query, k: int, mask=None) -> tuple[np.ndarray, np.ndarray]:
    q, k, mask = check_inputs(matrix, query, k, mask)
    n, d = matrix.shape
    want = min(k, n)
    if want == 0:
        return _EMPTY_IDS.copy(), _EMPTY_SCORES.copy()
    out = np.empty(2 * want, dtype=np.int64)  # ids, then the scores' bytes: one allocation
    out_ptr = ffi.from_buffer("int64_t[]", out, require_writable=True)
    mask_ptr = ffi.NULL if mask is None else ffi.from_buffer("unsigned char[]", mask.view(np.uint8))
    got = lib.pj_vector_topk(
        ffi.from_buffer("float[]", matrix), n, d, ffi.from_buffer("float[]", q), mask_ptr, want,
        out_ptr, ffi.cast("double *", out_ptr + want), want,
    )
    if got < 0:
        if got == -2:
            raise MemoryError(f"top-k over a {n}x{d} matrix: out of memory")
        raise ValueError(f"top-k kernel refused a {n}x{d} matrix with k={k} (code {got})")
    return out[:got], out[want:want + got].view(np.float64)


def set_threads(threads: int) -> int:
    """Force the scan's thread count (0 restores the automatic choice); returns the previous one."""
    return lib.pj_vector_set_threads(int(threads))


def set_int8_threads(threads: int) -> int:
    """Force the int8 scan's thread count (0 restores the automatic choice); returns the previous
    one. Tests force it on small matrices, which the automatic choice scans on one thread."""
    return lib.pj_int8_set_threads(int(threads))


def exact_passes() -> int:
    """How many top-k calls so far needed the second, exact pass (near-ties at the boundary)."""
    return int(lib.pj_vector_exact_passes())


def quantize_int8(matrix: np.ndarray) -> Int8Tier:
    """The int8 tier of a float32 matrix (``csrc/vector_int8.c``), as ``pure_vector`` builds it."""
    check_inputs(matrix, np.zeros(matrix.shape[1], np.float32), 0, None)
    check_int8_dims(matrix)
    n, d = matrix.shape
    tier = Int8Tier(np.empty((n, d), dtype=np.int8), np.empty(n, dtype=np.float32),
                    np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32))
    if n:
        rc = lib.pj_int8_quantize(ffi.from_buffer("float[]", matrix), n, d,
                                  *(ffi.from_buffer(t, a, require_writable=True) for t, a in
                                    zip(("int8_t[]", "float[]", "float[]", "float[]"), tier)))
        if rc != 0:
            raise ValueError(f"int8 quantization refused a {n}x{d} matrix (code {rc})")
    return tier


def topk_int8(matrix: np.ndarray, tier: Int8Tier, query, k: int, mask=None):
    """``topk`` through the int8 tier: ``(ids, scores, stats)`` (see ``pure_vector.topk_int8``)."""
    q, k, mask = check_inputs(matrix, query, k, mask)
    check_tier(matrix, tier)
    n, d = matrix.shape
    want = min(k, n)
    stats = np.zeros(3, dtype=np.uint64)
    if want == 0:
        return _EMPTY_IDS.copy(), _EMPTY_SCORES.copy(), _stats(stats)
    out = np.empty(2 * want, dtype=np.int64)
    out_ptr = ffi.from_buffer("int64_t[]", out, require_writable=True)
    mask_ptr = ffi.NULL if mask is None else ffi.from_buffer("unsigned char[]", mask.view(np.uint8))
    got = lib.pj_int8_topk(
        ffi.from_buffer("float[]", matrix), ffi.from_buffer("int8_t[]", tier.codes),
        ffi.from_buffer("float[]", tier.scale), ffi.from_buffer("float[]", tier.norm),
        ffi.from_buffer("float[]", tier.err), n, d, ffi.from_buffer("float[]", q), mask_ptr, want,
        out_ptr, ffi.cast("double *", out_ptr + want), want,
        ffi.from_buffer("uint64_t[]", stats, require_writable=True))
    if got < 0:
        if got == -2:
            raise MemoryError(f"int8 top-k over a {n}x{d} matrix: out of memory")
        raise ValueError(f"int8 top-k kernel refused a {n}x{d} matrix with k={k} (code {got})")
    return out[:got], out[want:want + got].view(np.float64), _stats(stats)


def _stats(raw: np.ndarray) -> dict:
    return {"rescored": int(raw[0]), "fallback": bool(raw[1]), "scanned": int(raw[2])}


INT8_LEVELS = {0: "scalar", 1: "avx2", 2: "avx512bw", 3: "avx512vnni"}


def int8_level() -> str:
    """The int8 kernel in use on this CPU (``int8_levels()`` lists the ones it could use)."""
    return INT8_LEVELS[lib.pj_int8_level()]


def int8_levels() -> list[str]:
    """Every int8 kernel this CPU can run, narrowest first (tests run each of them)."""
    return [INT8_LEVELS[i] for i in range(lib.pj_int8_level_detected() + 1)]


def set_int8_limit(name: str | None) -> str:
    """Cap the int8 kernel at a level of INT8_LEVELS (tests, benchmarks); None lifts the cap."""
    if name is None:
        return INT8_LEVELS[lib.pj_int8_set_limit(-1)]
    return INT8_LEVELS[lib.pj_int8_set_limit({v: k for k, v in INT8_LEVELS.items()}[name])]


def topk_int8_many(matrix: np.ndarray, tier: Int8Tier, queries, k: int, mask=None):
    """``topk_int8`` of every row of ``queries`` in one pass over the codes: a list of
    ``(ids, scores, stats)``, one per query (see ``pure_vector.topk_int8_many``)."""
    qs, k, mask = check_many(matrix, queries, k, mask)
    check_tier(matrix, tier)
    n, d = matrix.shape
    nq, want = qs.shape[0], min(k, n)
    ids = np.empty((nq, max(want, 1)), dtype=np.int64)
    scores = np.empty((nq, max(want, 1)), dtype=np.float64)
    counts = np.zeros(nq, dtype=np.int64)
    stats = np.zeros((nq, 3), dtype=np.uint64)
    if nq:
        mask_ptr = ffi.NULL if mask is None else ffi.from_buffer("unsigned char[]",
                                                                 mask.view(np.uint8))
        rc = lib.pj_int8_topk_many(
            ffi.from_buffer("float[]", matrix), ffi.from_buffer("int8_t[]", tier.codes),
            ffi.from_buffer("float[]", tier.scale), ffi.from_buffer("float[]", tier.norm),
            ffi.from_buffer("float[]", tier.err), n, d, ffi.from_buffer("float[]", qs), nq,
            mask_ptr, want, ffi.from_buffer("int64_t[]", ids, require_writable=True),
            ffi.from_buffer("double[]", scores, require_writable=True),
            ffi.from_buffer("int64_t[]", counts, require_writable=True),
            ffi.from_buffer("uint64_t[]", stats, require_writable=True))
        if rc < 0:
            if rc == -2:
                raise MemoryError(f"int8 top-k of {nq} queries over a {n}x{d} matrix: out of memory")
            raise ValueError(f"int8 top-k kernel refused {nq} queries over a {n}x{d} matrix (code {rc})")
    return [(ids[j, :c].copy(), scores[j, :c].copy(), _stats(stats[j]))
            for j, c in enumerate(counts.tolist())]


def int8_candidates(tier: Int8Tier, query, k: int, mask=None):
    """The scan of ``topk_int8`` alone (``csrc/vector_int8.c``, ``pj_int8_candidates``): see
    ``pure_vector.int8_candidates``."""
    codes = tier.codes
    n, d = codes.shape
    q, k, mask = check_query(codes.shape, query, k, mask)
    check_tier_arrays(tier)
    stats = np.zeros(3, dtype=np.uint64)
    mask_ptr = ffi.NULL if mask is None else ffi.from_buffer("unsigned char[]", mask.view(np.uint8))
    args = [ffi.from_buffer("int8_t[]", codes), ffi.from_buffer("float[]", tier.scale),
            ffi.from_buffer("float[]", tier.norm), ffi.from_buffer("float[]", tier.err), n, d,
            ffi.from_buffer("float[]", q), mask_ptr, k]
    cap = 4 * min(k, n) + 1024
    while True:
        rows = np.empty(cap, dtype=np.int64)
        got = lib.pj_int8_candidates(*args, ffi.from_buffer("int64_t[]", rows, require_writable=True),
                                     cap, ffi.from_buffer("uint64_t[]", stats, require_writable=True))
        if got == -4:
            return None, _stats(stats)
        if got < 0:
            if got == -2:
                raise MemoryError(f"int8 scan of a {n}x{d} tier: out of memory")
            raise ValueError(f"int8 scan refused a {n}x{d} tier with k={k} (code {got})")
        if got <= cap:
            return rows[:got], _stats(stats)
        cap = int(got)


def topk_rows(matrix, rows: np.ndarray, query, k: int):
    """``topk`` among ``rows`` of ``matrix`` (the rescoring half of the int8 tier), natively."""
    return _topk_rows(matrix, rows, query, k, topk_fn=topk)
