"""Exact top-k by dot product in numpy: the reference for ``csrc/vector.c`` and, with the int8
tier at the end of this module, for ``csrc/vector_int8.c``.

Scores are computed in float64 from the float32 inputs (in row chunks, to bound memory; each row's
products summed on their own, so a row scores the same bits whichever rows are scanned with it:
a matrix product's rounding depends on where the row falls in its blocking), then the k best are
selected with ties broken by the lower row index, so the result is fully determined.
Rows whose score is NaN are left out.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_CHUNK = 1 << 16


def check_inputs(matrix, query, k, mask):
    """Validate and normalize the arguments shared by both backends."""
    if not isinstance(matrix, np.ndarray) or matrix.dtype != np.float32 or matrix.ndim != 2:
        raise ValueError("matrix must be a 2-D float32 numpy array")
    if not matrix.flags.c_contiguous:
        raise ValueError("matrix must be C-contiguous")
    return check_query(matrix.shape, query, k, mask)


def check_query(shape: tuple[int, int], query, k, mask):
    """The query, k and mask of a search over ``shape`` = (rows, dims), normalized."""
    q = np.ascontiguousarray(query, dtype=np.float32)
    if q.ndim != 1 or q.shape[0] != shape[1]:
        raise ValueError(f"query must have shape ({shape[1]},), got {q.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    if mask is not None:
        mask = np.ascontiguousarray(mask, dtype=np.bool_)
        if mask.shape != (shape[0],):
            raise ValueError(f"mask must have shape ({shape[0]},), got {mask.shape}")
    return q, int(k), mask


def topk(matrix: np.ndarray, query, k: int, mask=None) -> tuple[np.ndarray, np.ndarray]:
    q, k, mask = check_inputs(matrix, query, k, mask)
    n = matrix.shape[0]
    q64 = q.astype(np.float64)
    scores = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        chunk = matrix[start:start + _CHUNK].astype(np.float64)
        chunk *= q64
        scores[start:start + _CHUNK] = chunk.sum(axis=1)
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


# ----------------------------------------------------------------------------- the int8 tier
# The reference of csrc/vector_int8.c (docs/recall.md): the same codes and bounds, computed with
# numpy, the same pruning rule applied with the final threshold, and the same answer.

MAX_INT8_DIMS = 65536
_BOUND_GROW = np.float32(1.0 + 2.0 ** -20)
_BOUND_ABS = np.float32(2.0 ** -118)
_NORM_GROW = 1.0 + 2.0 ** -30


class Int8Tier(NamedTuple):
    """Per row: the int8 code, its scale, and upper bounds of ``scale * ||code||`` and of the
    quantization error ``||row - scale * code||``."""

    codes: np.ndarray   # (n, d) int8
    scale: np.ndarray   # (n,) float32
    norm: np.ndarray    # (n,) float32
    err: np.ndarray     # (n,) float32


def _float_up(x: np.ndarray) -> np.ndarray:
    """The smallest float32 >= x, elementwise (+inf beyond the float32 range)."""
    with np.errstate(over="ignore"):
        f = x.astype(np.float32)
    low = f.astype(np.float64) < x
    f[low] = np.nextafter(f[low], np.float32(np.inf))
    return f


def _quantize_rows(rows: np.ndarray):
    """codes, scale, sqrt(sum code^2) and ||row - scale code|| of float32 rows (all finite)."""
    r64 = rows.astype(np.float64)
    scale = (np.abs(r64).max(axis=1, initial=0.0) / 127.0).astype(np.float32)
    s64 = scale.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        codes = np.clip(np.rint(r64 / s64), -127, 127)
    codes[scale == 0] = 0
    resid = r64 - s64 * codes
    return (codes.astype(np.int8), scale, np.sqrt((codes * codes).sum(axis=1)),
            np.sqrt((resid * resid).sum(axis=1)))


def check_int8_dims(matrix: np.ndarray) -> None:
    if matrix.shape[1] > MAX_INT8_DIMS:
        raise ValueError(f"the int8 tier holds rows of at most {MAX_INT8_DIMS} values, "
                         f"got {matrix.shape[1]}")


def check_tier(matrix: np.ndarray, tier: Int8Tier) -> None:
    """The tier belongs to this matrix: arrays of its shape and of the kernel's dtypes (the native
    kernel reads them as raw buffers)."""
    check_int8_dims(matrix)
    n, d = matrix.shape
    if tier.codes.shape != (n, d):
        raise ValueError(f"the int8 tier does not match the {n}x{d} matrix")
    check_tier_arrays(tier)


def check_tier_arrays(tier: Int8Tier) -> None:
    """A tier's arrays agree with each other: (n, d) int8 codes, (n,) float32 bounds, contiguous."""
    codes = tier.codes
    ok = (isinstance(codes, np.ndarray) and codes.ndim == 2 and codes.dtype == np.int8
          and codes.shape[1] <= MAX_INT8_DIMS
          and all(isinstance(a, np.ndarray) and a.shape == (codes.shape[0],)
                  and a.dtype == np.float32 for a in tier[1:])
          and all(a.flags.c_contiguous for a in tier))
    if not ok:
        raise ValueError(f"the int8 tier does not match the {codes.shape} codes")


def quantize_int8(matrix: np.ndarray) -> Int8Tier:
    """The int8 tier of a float32 matrix; a row with a non-finite value is always rescored."""
    check_inputs(matrix, np.zeros(matrix.shape[1], np.float32), 0, None)
    check_int8_dims(matrix)
    n, d = matrix.shape
    codes = np.zeros((n, d), dtype=np.int8)
    scale = np.zeros(n, dtype=np.float32)
    norm = np.zeros(n, dtype=np.float32)
    err = np.full(n, np.inf, dtype=np.float32)
    for start in range(0, n, _CHUNK):
        block = matrix[start:start + _CHUNK]
        ok = np.flatnonzero(np.isfinite(block).all(axis=1))
        c, s, cn, en = _quantize_rows(block[ok])
        at = start + ok
        codes[at], scale[at] = c, s
        norm[at] = _float_up(s.astype(np.float64) * cn * _NORM_GROW)
        err[at] = _float_up(en * _NORM_GROW)
    return Int8Tier(codes, scale, norm, err)


def int8_budget(n: int, k: int) -> int:
    """Rows kept for rescoring beyond which the tier runs the float32 scan instead."""
    return max(n // 32, 4 * k + 1024)


def int8_candidates(tier: Int8Tier, query, k: int, mask=None):
    """The scan of :func:`topk_int8` alone: ``(rows, stats)``, the rows the bound cannot exclude
    in ascending order (the exact top k is theirs by double score, ties to the lower row), or
    ``(None, stats)`` when the bound cannot prune (run the float32 scan instead)."""
    check_tier_arrays(tier)
    codes = tier.codes
    q, k, mask = check_query(codes.shape, query, k, mask)
    n, d = codes.shape
    stats = {"rescored": 0, "fallback": False, "scanned": 0}
    k = min(k, n)
    if k == 0:
        return np.empty(0, dtype=np.int64), stats
    rows = np.arange(n) if mask is None else np.flatnonzero(mask)
    qc = _quantize_rows(q[None, :]) if d and np.isfinite(q).all() else None
    if qc is None or qc[1][0] == 0:
        stats["fallback"] = True
        return None, stats
    qp, t, pn, fn = qc[0][0].astype(np.int64), qc[1][0], qc[2][0], qc[3][0]
    Q = float(np.sqrt(q.astype(np.float64) @ q.astype(np.float64))) * _NORM_GROW
    F, P = fn * _NORM_GROW, float(t) * pn * _NORM_GROW
    G = _float_up(np.array([F + 2.0 ** -18 * (P + Q)]))[0]
    Qf = _float_up(np.array([Q]))[0]
    dots = np.empty(rows.shape[0], dtype=np.int64)
    for start in range(0, rows.shape[0], _CHUNK):
        dots[start:start + _CHUNK] = codes[rows[start:start + _CHUNK]].astype(np.int64) @ qp
    with np.errstate(over="ignore", invalid="ignore"):
        est = dots.astype(np.float32) * (tier.scale[rows] * t)
        bound = (tier.norm[rows] * G + tier.err[rows] * Qf) * _BOUND_GROW + _BOUND_ABS
        upper, lower = est + bound, est - bound
    stats["scanned"] = int(rows.shape[0])
    lower = lower[~np.isnan(lower)]
    thr = np.partition(lower, lower.shape[0] - k)[lower.shape[0] - k] if lower.shape[0] >= k \
        else np.float32(-np.inf)
    kept = rows[~(upper < thr)].astype(np.int64)
    if kept.shape[0] > int8_budget(n, k):
        stats["fallback"] = True
        return None, stats
    stats["rescored"] = int(kept.shape[0])
    return kept, stats


def topk_rows(matrix, rows: np.ndarray, query, k: int, topk_fn=None):
    """``topk`` among ``rows`` (ascending) of ``matrix``, any indexable of float32 rows (an array,
    or a reader of the snapshot file): the rescoring half of the int8 tier."""
    sub = np.ascontiguousarray(matrix[rows], dtype=np.float32)
    ids, scores = (topk_fn or topk)(sub, query, k)
    return rows[ids].astype(np.int64), scores


def topk_int8(matrix: np.ndarray, tier: Int8Tier, query, k: int, mask=None):
    """``topk`` read through the int8 tier: ``(ids, scores, stats)``; stats holds ``rescored``,
    ``fallback`` (the float32 scan ran instead) and ``scanned``."""
    q, k, mask = check_inputs(matrix, query, k, mask)
    check_tier(matrix, tier)
    kept, stats = int8_candidates(tier, q, k, mask)
    if kept is None:
        return (*topk(matrix, q, k, mask), stats)
    if kept.shape[0] == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), stats
    return (*topk_rows(matrix, kept, q, k), stats)


def check_many(matrix, queries, k, mask):
    """``check_inputs`` for a batch: ``queries`` as a C-contiguous float32 (nq, d) array."""
    q0 = np.zeros(matrix.shape[1], np.float32) if isinstance(matrix, np.ndarray) and matrix.ndim == 2 \
        else None
    _, k, mask = check_inputs(matrix, q0, k, mask)
    qs = np.ascontiguousarray(queries, dtype=np.float32)
    if qs.ndim != 2 or qs.shape[1] != matrix.shape[1]:
        raise ValueError(f"queries must have shape (nq, {matrix.shape[1]}), got {qs.shape}")
    return qs, k, mask


def topk_int8_many(matrix: np.ndarray, tier: Int8Tier, queries, k: int, mask=None):
    """``topk_int8`` of every row of ``queries``: a list of ``(ids, scores, stats)``."""
    qs, k, mask = check_many(matrix, queries, k, mask)
    return [topk_int8(matrix, tier, q, k, mask) for q in qs]
