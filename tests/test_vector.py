"""Exact top-k by dot product: both backends, every SIMD level of the native one, against a float64
numpy reference (score desc, ties by lower index)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from palyra_journal.kernels import pure_vector


def _simd_levels() -> list[str]:
    """The SIMD levels this CPU can run (the native kernel is tested at each one)."""
    from palyra_journal.kernels import native_cpu
    order = ["scalar", "avx2+fma", "avx512"]
    detected = native_cpu.cpu_info()["simd_detected"]
    if detected not in order:  # e.g. NEON: the portable code is the only x86-free path
        return ["scalar", detected] if detected != "scalar" else ["scalar"]
    return order[: order.index(detected) + 1]


IMPLS = [("python", None)] + [("native", level) for level in _simd_levels()]


@pytest.fixture(params=IMPLS, ids=lambda p: p[0] if p[1] is None else f"native-{p[1]}")
def topk(request):
    """``topk`` of one backend (native: capped at one SIMD level for the test's duration)."""
    backend, level = request.param
    if backend == "python":
        yield pure_vector.topk
        return
    from palyra_journal.kernels import native_cpu, native_vector
    native_cpu.set_simd_limit(level)
    try:
        yield native_vector.topk
    finally:
        native_cpu.set_simd_limit(None)


@pytest.fixture
def native_vector():
    from palyra_journal.kernels import native_vector as mod
    return mod


def reference(matrix, query, k, mask=None):
    """Top k by float64 score with numpy's argsort: score desc, then index asc; NaN left out."""
    scores = matrix.astype(np.float64) @ np.asarray(query, dtype=np.float64)
    ids = np.arange(matrix.shape[0])
    keep = ~np.isnan(scores) if mask is None else (mask & ~np.isnan(scores))
    ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]


def assert_same(got, want):
    ids, scores = got
    assert ids.dtype == np.int64 and scores.dtype == np.float64
    np.testing.assert_array_equal(ids, want[0])
    np.testing.assert_allclose(scores, want[1], rtol=0, atol=1e-5)


@functools.lru_cache(maxsize=None)
def random_case(n, d):
    """Data, mask and float64 scores of one grid point, shared by every backend and SIMD level."""
    rng = np.random.default_rng(n * 1000 + d)
    matrix = rng.standard_normal((n, d)).astype(np.float32)
    query = rng.standard_normal(d).astype(np.float32)
    mask = rng.random(n) < 0.3
    scores = matrix.astype(np.float64) @ query.astype(np.float64)
    return matrix, query, mask, scores


def ranked(scores, k, mask=None):
    """Reference ids and scores from precomputed float64 scores (score desc, index asc)."""
    ids = np.arange(scores.shape[0]) if mask is None else np.flatnonzero(mask)
    order = np.lexsort((ids, -scores[ids]))[:k]
    return ids[order], scores[ids][order]


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 50_000])
@pytest.mark.parametrize("d", [1, 3, 16, 64, 100, 384])
def test_random_data_gives_the_reference_ids(topk, n, d):
    matrix, query, mask, scores = random_case(n, d)
    for m in (None, mask):
        for k in (1, 10, 100, n + 5):
            assert_same(topk(matrix, query, k, m), ranked(scores, k, m))


@pytest.mark.parametrize("d", [16, 96, 120, 135])
def test_unit_vectors_as_the_store_holds_them(topk, d):
    rng = np.random.default_rng(d)
    matrix = rng.standard_normal((20_000, d)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    query = matrix[123] + 0.01 * rng.standard_normal(d).astype(np.float32)
    got = topk(matrix, query, 64)
    assert_same(got, reference(matrix, query, 64))
    assert got[0][0] == 123


def test_duplicate_rows_tie_by_lower_index(topk):
    rng = np.random.default_rng(7)
    base = rng.standard_normal((20, 64)).astype(np.float32)
    matrix = base[rng.integers(0, 20, 3000)]
    query = rng.standard_normal(64).astype(np.float32)
    base_scores = base.astype(np.float64) @ query.astype(np.float64)
    row_of = {row.tobytes(): i for i, row in enumerate(base)}
    scores = np.array([base_scores[row_of[r.tobytes()]] for r in matrix])
    for k in (1, 10, 100, 3005):
        want = np.lexsort((np.arange(3000), -scores))[:k]
        ids, got = topk(matrix, query, k)
        np.testing.assert_array_equal(ids, want)
        np.testing.assert_allclose(got, scores[want], rtol=0, atol=1e-5)


def test_small_integer_matrices_with_many_ties(topk):
    rng = np.random.default_rng(11)
    for trial in range(20):
        n, d = int(rng.integers(1, 400)), int(rng.integers(1, 40))
        matrix = rng.integers(-2, 3, (n, d)).astype(np.float32)
        query = rng.integers(-2, 3, d).astype(np.float32)
        mask = rng.random(n) < 0.7 if trial % 2 else None
        k = int(rng.integers(0, n + 3))
        assert_same(topk(matrix, query, k, mask), reference(matrix, query, k, mask))


def test_near_ties_below_float32_resolution_are_ranked_in_double(topk):
    """Rows that differ from one another by one float32 ulp in one element: the float32 scan cannot
    order them, the double rescoring must."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal(64).astype(np.float32)
    matrix = np.tile(base, (2000, 1))
    cols = rng.integers(0, 64, 2000)
    steps = rng.choice([-1, 1], 2000).astype(np.float32)
    vals = matrix[np.arange(2000), cols]
    matrix[np.arange(2000), cols] = np.nextafter(vals, vals + steps * np.inf)
    query = rng.standard_normal(64).astype(np.float32)
    for k in (1, 10, 100):
        assert_same(topk(matrix, query, k), reference(matrix, query, k))


def test_nan_scores_never_enter_the_result(topk):
    rng = np.random.default_rng(5)
    matrix = rng.standard_normal((500, 24)).astype(np.float32)
    matrix[[3, 77, 401], [0, 5, 23]] = np.nan
    query = rng.standard_normal(24).astype(np.float32)
    ids, _ = topk(matrix, query, 500)
    assert set(ids.tolist()) == set(range(500)) - {3, 77, 401}
    assert_same(topk(matrix, query, 10), reference(matrix, query, 10))
    query[2] = np.nan
    ids, scores = topk(matrix, query, 10)
    assert ids.shape == (0,) and scores.shape == (0,)


def test_scores_beyond_float32_range_are_ranked_in_double(topk):
    """Products that overflow float32 (1e25 * 1e20) are finite in double and ranked by it."""
    rng = np.random.default_rng(9)
    matrix = rng.standard_normal((300, 8)).astype(np.float32)
    matrix[rng.integers(0, 300, 40)] *= np.float32(1e25)
    query = (rng.standard_normal(8) * 1e20).astype(np.float32)
    for k in (1, 10, 300):
        ids, scores = topk(matrix, query, k)
        want = reference(matrix, query, k)
        np.testing.assert_array_equal(ids, want[0])
        np.testing.assert_allclose(scores, want[1], rtol=1e-12)


def test_empty_and_degenerate_inputs(topk):
    matrix = np.ones((5, 4), dtype=np.float32)
    query = np.ones(4, dtype=np.float32)
    assert topk(matrix, query, 0)[0].shape == (0,)
    assert topk(np.empty((0, 4), np.float32), query, 3)[0].shape == (0,)
    assert topk(matrix, query, 3, np.zeros(5, bool))[0].shape == (0,)
    ids, scores = topk(np.empty((3, 0), np.float32), np.empty(0, np.float32), 5)
    np.testing.assert_array_equal(ids, [0, 1, 2])
    np.testing.assert_array_equal(scores, [0.0, 0.0, 0.0])
    ids, _ = topk(matrix, query, 10, np.array([0, 1, 0, 1, 1], bool))
    np.testing.assert_array_equal(ids, [1, 3, 4])


@pytest.mark.parametrize("args, message", [
    (lambda m, q: (m.astype(np.float64), q, 3, None), "float32"),
    (lambda m, q: (m[:, :4].copy()[:, ::2], q[:2], 3, None), "C-contiguous"),
    (lambda m, q: (m.T, q, 3, None), "C-contiguous"),
    (lambda m, q: (m, q[:5], 3, None), "query must have shape"),
    (lambda m, q: (m, q, 3, np.ones(9, bool)), "mask must have shape"),
    (lambda m, q: (m, q, -1, None), "k must be an int >= 0"),
    (lambda m, q: (m, q, 2.5, None), "k must be an int >= 0"),
    (lambda m, q: (m[0], q, 3, None), "2-D float32"),
])
def test_bad_inputs_raise_value_error_naming_the_problem(topk, args, message):
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((10, 8)).astype(np.float32)
    query = rng.standard_normal(8).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        topk(*args(matrix, query))


def test_threaded_scan_merges_to_the_same_result(native_vector):
    rng = np.random.default_rng(21)
    matrix = rng.standard_normal((5000, 40)).astype(np.float32)
    query = rng.standard_normal(40).astype(np.float32)
    mask = rng.random(5000) < 0.5
    previous = native_vector.set_threads(3)
    try:
        for k in (1, 10, 100, 5000):
            for m in (None, mask):
                assert_same(native_vector.topk(matrix, query, k, m), reference(matrix, query, k, m))
    finally:
        native_vector.set_threads(previous)


def test_random_data_is_settled_by_the_error_bound_and_ties_by_the_exact_pass(native_vector):
    rng = np.random.default_rng(4)
    matrix = rng.standard_normal((20_000, 64)).astype(np.float32)
    query = rng.standard_normal(64).astype(np.float32)
    before = native_vector.exact_passes()
    native_vector.topk(matrix, query, 10)
    assert native_vector.exact_passes() == before
    duplicated = np.repeat(matrix[:100], 50, axis=0)
    assert_same(native_vector.topk(duplicated, query, 10), reference(duplicated, query, 10))
    assert native_vector.exact_passes() == before + 1


def test_kernel_refuses_lengths_that_overflow_and_short_outputs():
    from palyra_journal._native import ffi, lib
    buf = np.zeros(16, np.float32)
    ids = np.zeros(4, np.int64)
    scores = np.zeros(4, np.float64)
    ptr = ffi.from_buffer("float[]", buf)
    out_i = ffi.from_buffer("int64_t[]", ids)
    out_s = ffi.from_buffer("double[]", scores)
    assert lib.pj_vector_topk(ptr, 1 << 62, 8, ptr, ffi.NULL, 4, out_i, out_s, 4) == -1
    assert lib.pj_vector_topk(ptr, 4, 4, ptr, ffi.NULL, 4, out_i, out_s, 3) == -3
    assert lib.pj_vector_topk(ffi.NULL, 4, 4, ptr, ffi.NULL, 4, out_i, out_s, 4) == -1
    assert lib.pj_vector_topk(ptr, 4, 4, ptr, ffi.NULL, 4, out_i, out_s, 4) == 4


def test_concurrent_callers_share_the_thread_pool_safely(native_vector):
    """cffi releases the GIL: several Python threads may scan at once (one uses the pool, the
    others scan on their own thread) and each must get its own exact result."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(31)
    matrix = rng.standard_normal((20_000, 48)).astype(np.float32)
    queries = rng.standard_normal((12, 48)).astype(np.float32)
    previous = native_vector.set_threads(2)
    try:
        with ThreadPoolExecutor(4) as ex:
            got = list(ex.map(lambda q: native_vector.topk(matrix, q, 25), queries))
    finally:
        native_vector.set_threads(previous)
    for q, result in zip(queries, got):
        assert_same(result, reference(matrix, q, 25))


def test_a_forked_child_scans_with_its_own_threads(native_vector):
    import multiprocessing
    rng = np.random.default_rng(32)
    matrix = rng.standard_normal((4000, 32)).astype(np.float32)
    query = rng.standard_normal(32).astype(np.float32)
    previous = native_vector.set_threads(2)
    try:
        native_vector.topk(matrix, query, 5)  # the parent's pool exists before the fork
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as pool:
            ids = pool.apply_async(_child_topk, (matrix, query)).get(timeout=60)
    finally:
        native_vector.set_threads(previous)
    np.testing.assert_array_equal(ids, reference(matrix, query, 5)[0])


def _child_topk(matrix, query):
    from palyra_journal.kernels import native_vector
    return native_vector.topk(matrix, query, 5)[0]
