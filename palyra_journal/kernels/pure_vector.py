"""Exact top-k by dot product in numpy: the reference for ``csrc/vector.c``.

Scores are computed in float64 from the float32 inputs (in row chunks, to bound memory), then the
k best are selected with ties broken by the lower row index, so the result is fully determined.
Rows whose score is NaN are left out.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 1 << 16


def check_inputs(matrix, query, k, mask):
    """Validate and normalize the arguments shared by both backends."""
    if not isinstance(matrix, np.ndarray) or matrix.dtype != np.float32 or matrix.ndim != 2:
        raise ValueError("matrix must be a 2-D float32 numpy array")
    if not matrix.flags.c_contiguous:
        raise ValueError("matrix must be C-contiguous")
    q = np.ascontiguousarray(query, dtype=np.float32)
    if q.ndim != 1 or q.shape[0] != matrix.shape[1]:
        raise ValueError(f"query must have shape ({matrix.shape[1]},), got {q.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    if mask is not None:
        mask = np.ascontiguousarray(mask, dtype=np.bool_)
        if mask.shape != (matrix.shape[0],):
            raise ValueError(f"mask must have shape ({matrix.shape[0]},), got {mask.shape}")
    return q, int(k), mask


def topk(matrix: np.ndarray, query, k: int, mask=None) -> tuple[np.ndarray, np.ndarray]:
    q, k, mask = check_inputs(matrix, query, k, mask)
    n = matrix.shape[0]
    q64 = q.astype(np.float64)
    scores = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        scores[start:start + _CHUNK] = matrix[start:start + _CHUNK].astype(np.float64) @ q64
    ids = np.arange(n, dtype=np.int64) if mask is None else np.flatnonzero(mask).astype(np.int64)
    if mask is not None:
        scores = scores[ids]
    scored = ~np.isnan(scores)  # a NaN score (NaN in the row or the query) never enters the result
    if not scored.all():
        ids, scores = ids[scored], scores[scored]
    k = min(k, ids.shape[0])
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    if k < ids.shape[0]:
        kth = np.partition(scores, ids.shape[0] - k)[ids.shape[0] - k]  # the k-th largest score
        keep = np.flatnonzero(scores >= kth)
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]
