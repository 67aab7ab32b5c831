"""Exact top-k by dot product on the native kernel (``csrc/vector.c``).

Arguments are validated by the pure backend's ``check_inputs`` so that both backends refuse the
same things with the same messages; the C kernel scans in float32 SIMD, proves or re-checks the
boundary in double, and returns the same ids as the float64 reference with double scores.
"""

from __future__ import annotations

import numpy as np

from .._native import ffi, lib
from .pure_vector import check_inputs

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


def exact_passes() -> int:
    """How many top-k calls so far needed the second, exact pass (near-ties at the boundary)."""
    return int(lib.pj_vector_exact_passes())
