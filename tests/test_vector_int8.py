"""The int8 scan tier: the same ids as the float64 reference on every input, on both backends and at
every int8 kernel level of the native one, with the rescored fraction reported and the float32 scan
taking over when the bound cannot prune."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from palyra_journal.kernels import pure_vector
from test_vector import reference  # the float64 ranking: score desc, index asc, NaN left out


def _int8_levels() -> list[str]:
    from palyra_journal.kernels import native_vector
    return native_vector.int8_levels()


#: (backend, int8 level, threads): every native level on one thread (the automatic choice for
#: these small matrices) and split across 3 threads (forced: chunks of 64 rows, each thread with
#: its own threshold, the kept rows merged).
IMPLS = [("python", None, 0)] + [("native", level, threads) for level in _int8_levels()
                                 for threads in (0, 3)]


class Impl:
    """quantize + topk_int8 of one backend (native: capped at one int8 level while in use)."""

    def __init__(self, backend: str, level: str | None, threads: int = 0):
        self.backend, self.level, self.threads = backend, level, threads
        if backend == "python":
            self.mod = pure_vector
        else:
            from palyra_journal.kernels import native_vector
            self.mod = native_vector

    def __call__(self, matrix, query, k, mask=None):
        tier = self.mod.quantize_int8(matrix)
        return self.mod.topk_int8(matrix, tier, query, k, mask)


@pytest.fixture(params=IMPLS, ids=lambda p: p[0] if p[1] is None else
                f"native-{p[1]}" + (f"-{p[2]}threads" if p[2] else ""))
def int8(request):
    backend, level, threads = request.param
    impl = Impl(backend, level, threads)
    if backend == "native":
        impl.mod.set_int8_limit(level)
        previous = impl.mod.set_int8_threads(threads)
    try:
        yield impl
    finally:
        if backend == "native":
            impl.mod.set_int8_limit(None)
            impl.mod.set_int8_threads(previous)


def assert_exact(got, matrix, query, k, mask=None):
    ids, scores, stats = got
    want_ids, want_scores = reference(matrix, query, k, mask)
    assert ids.dtype == np.int64 and scores.dtype == np.float64
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-12, atol=1e-12)
    assert set(stats) == {"rescored", "fallback", "scanned"}
    return stats


def unit_rows(rng, n, d):
    m = rng.standard_normal((n, d)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m


def clustered(rng, n, d, clusters, spread=0.05):
    centres = unit_rows(rng, clusters, d)
    m = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d))
    m = m.astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m, centres


@pytest.mark.parametrize("n,d", [(1, 1), (15, 7), (16, 64), (17, 65), (500, 100), (4099, 384),
                                 (3000, 129), (2048, 1536)])
def test_random_unit_vectors_give_the_reference_ids(int8, n, d):
    rng = np.random.default_rng(n * 7 + d)
    m = unit_rows(rng, n, d)
    for k in (1, 10, 64):
        q = unit_rows(rng, 1, d)[0]
        stats = assert_exact(int8(m, q, k), m, q, k)
        assert stats["fallback"] is False
        assert stats["scanned"] == n
        assert min(k, n) <= stats["rescored"] <= n


def test_random_data_rescore_a_small_fraction(int8):
    rng = np.random.default_rng(5)
    m = unit_rows(rng, 20_000, 384)
    q = unit_rows(rng, 1, 384)[0]
    stats = assert_exact(int8(m, q, 10), m, q, 10)
    assert not stats["fallback"]
    # Each thread prunes against the k-th bound of the rows it has seen so far, so a split scan
    # keeps more rows while its threads' bounds are still weak (how many depends on scheduling):
    # the fraction scales with the thread count.
    assert stats["rescored"] < 0.01 * 20_000 * max(1, int8.threads)


def test_clustered_data_with_queries_near_centres(int8):
    rng = np.random.default_rng(6)
    m, centres = clustered(rng, 20_000, 128, 100)
    for c in centres[:5]:
        q = (c + 0.01 * rng.standard_normal(128)).astype(np.float32)
        assert_exact(int8(m, q, 10), m, q, 10)


def test_masks_restrict_the_rows_scanned(int8):
    rng = np.random.default_rng(7)
    m = unit_rows(rng, 3001, 96)
    q = unit_rows(rng, 1, 96)[0]
    for density in (0.0, 0.001, 0.3, 1.0):
        mask = rng.random(3001) < density
        stats = assert_exact(int8(m, q, 10, mask), m, q, 10, mask)
        if not stats["fallback"]:
            assert stats["scanned"] == int(mask.sum())


def test_duplicate_rows_tie_by_lower_index_and_fall_back_to_the_float32_scan(int8):
    rng = np.random.default_rng(8)
    row = unit_rows(rng, 1, 64)[0]
    m = np.tile(row, (40_000, 1))
    m[:10] = unit_rows(rng, 10, 64)  # a different start changes nothing: the bound stays defeated
    q = unit_rows(rng, 1, 64)[0]
    stats = assert_exact(int8(m, q, 10), m, q, 10)
    assert stats["fallback"] is True  # every row ties: the bound cannot prune any
    if int8.backend == "native":
        assert stats["scanned"] < 40_000  # the scan stopped as soon as it saw the bound defeated


def test_few_duplicates_among_random_rows_tie_by_lower_index(int8):
    rng = np.random.default_rng(9)
    m = unit_rows(rng, 5000, 64)
    q = unit_rows(rng, 1, 64)[0]
    best = int(np.argmax(m @ q))
    m[[3, 700, 4999]] = m[best]
    stats = assert_exact(int8(m, q, 5), m, q, 5)
    assert not stats["fallback"]


def test_small_integer_matrices_with_many_ties(int8):
    rng = np.random.default_rng(10)
    m = rng.integers(-3, 4, size=(2000, 33)).astype(np.float32)
    q = rng.integers(-3, 4, size=33).astype(np.float32)
    assert_exact(int8(m, q, 50), m, q, 50)


def test_near_ties_below_float32_resolution(int8):
    rng = np.random.default_rng(11)
    m = unit_rows(rng, 3000, 64)
    q = unit_rows(rng, 1, 64)[0]
    best = int(np.argmax(m.astype(np.float64) @ q))
    twin = m[best].copy()
    twin[0] = np.nextafter(twin[0], np.float32(np.inf) if q[0] > 0 else np.float32(-np.inf))
    m[17] = twin  # scores one ulp-step apart: the double rescoring orders them
    assert_exact(int8(m, q, 1), m, q, 1)
    assert_exact(int8(m, q, 3), m, q, 3)


def test_non_finite_rows_and_huge_values(int8):
    rng = np.random.default_rng(12)
    m = unit_rows(rng, 1000, 40)
    m[5, 3] = np.nan
    m[6, 0] = np.inf
    m[7, 1] = -np.inf
    m[8] *= np.float32(3e37)  # finite, but its float32 score may overflow
    m[9] *= np.float32(1e-42)  # subnormal values: a zero scale
    q = unit_rows(rng, 1, 40)[0]
    assert_exact(int8(m, q, 10), m, q, 10)
    tier = int8.mod.quantize_int8(m)
    assert np.isinf(tier.err[[5, 6, 7]]).all()  # non-finite rows are always rescored


def test_queries_the_bound_cannot_use_take_the_float32_scan(int8):
    rng = np.random.default_rng(13)
    m = unit_rows(rng, 300, 16)
    for q in (np.zeros(16, np.float32), np.full(16, np.nan, np.float32)):
        stats = assert_exact(int8(m, q, 5), m, q, 5)
        assert stats["fallback"] is True


def test_quantization_bounds_hold_for_every_row(int8):
    rng = np.random.default_rng(14)
    m = np.concatenate([unit_rows(rng, 200, 77), rng.standard_normal((50, 77)).astype(np.float32)
                        * np.float32(1e-30), np.zeros((3, 77), np.float32)])
    tier = int8.mod.quantize_int8(m)
    codes = tier.codes.astype(np.float64)
    scale = tier.scale.astype(np.float64)[:, None]
    assert np.abs(tier.codes).max() <= 127
    assert (np.sqrt(((m - scale * codes) ** 2).sum(axis=1)) <= tier.err).all()
    assert (scale[:, 0] * np.sqrt((codes ** 2).sum(axis=1)) <= tier.norm).all()


def test_both_backends_build_the_same_codes_and_scales():
    from palyra_journal.kernels import native_vector
    rng = np.random.default_rng(15)
    m = unit_rows(rng, 999, 130)
    m[3] = 0.0
    a, b = pure_vector.quantize_int8(m), native_vector.quantize_int8(m)
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.scale, b.scale)
    np.testing.assert_allclose(a.norm, b.norm, rtol=1e-6)
    np.testing.assert_allclose(a.err, b.err, rtol=1e-6)


def test_bad_inputs_raise_value_error(int8):
    m = np.zeros((4, 3), np.float32)
    tier = int8.mod.quantize_int8(m)
    with pytest.raises(ValueError, match="query must have shape"):
        int8.mod.topk_int8(m, tier, np.zeros(4, np.float32), 1)
    with pytest.raises(ValueError, match="float32"):
        int8.mod.quantize_int8(m.astype(np.float64))
    with pytest.raises(ValueError, match="at most 65536"):
        int8.mod.quantize_int8(np.zeros((1, 65537), np.float32))
    with pytest.raises(ValueError, match="does not match"):
        int8.mod.topk_int8(m[:3], tier, np.zeros(3, np.float32), 1)
    with pytest.raises(ValueError, match="does not match"):
        int8.mod.topk_int8(m, tier._replace(scale=tier.scale.astype(np.float64)),
                           np.zeros(3, np.float32), 1)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_generated_matrices_give_the_reference_ids(data):
    from palyra_journal.kernels import native_vector
    n = data.draw(st.integers(1, 70))
    d = data.draw(st.integers(1, 80))
    values = st.one_of(st.integers(-4, 4).map(float),
                       st.floats(-1e3, 1e3, width=32, allow_nan=False))
    m = data.draw(hnp.arrays(np.float32, (n, d), elements=values))
    q = data.draw(hnp.arrays(np.float32, (d,), elements=values))
    k = data.draw(st.integers(0, n + 2))
    mask = data.draw(st.none() | hnp.arrays(np.bool_, (n,)))
    want_ids = reference(m, q, k, mask)[0]
    for mod, levels in ((pure_vector, [None]), (native_vector, native_vector.int8_levels())):
        for level, threads in [(lv, t) for lv in levels for t in ((0, 2) if lv else (0,))]:
            if level is not None:
                native_vector.set_int8_limit(level)
                native_vector.set_int8_threads(threads)
            try:
                ids, _, _ = mod.topk_int8(m, mod.quantize_int8(m), q, k, mask)
            finally:
                if level is not None:
                    native_vector.set_int8_limit(None)
                    native_vector.set_int8_threads(0)
            np.testing.assert_array_equal(ids, want_ids)


@pytest.mark.parametrize("kind", ["random", "clustered", "duplicates"])
def test_candidates_are_ascending_and_rank_to_the_reference(int8, kind):
    """The scan alone (the snapshot's pread path): kept rows ascending, whatever the threads; the
    top k of them by double score is the reference's."""
    rng = np.random.default_rng(5)
    m = unit_rows(rng, 3000, 48)
    if kind == "clustered":
        m = unit_rows(rng, 20, 48)[rng.integers(0, 20, 3000)] + 0.01 * m
    elif kind == "duplicates":
        m[::7] = m[0]
    q = m[0] + 0.001 * unit_rows(rng, 1, 48)[0]
    mask = rng.random(3000) < 0.8
    tier = int8.mod.quantize_int8(m)
    for k in (1, 10, 80):
        for mk in (None, mask):
            rows, stats = int8.mod.int8_candidates(tier, q, k, mk)
            if rows is None:
                assert stats["fallback"]
                continue
            assert np.all(np.diff(rows) > 0) and stats["rescored"] == rows.shape[0]
            ids, _ = int8.mod.topk_rows(m, rows, q, k)
            np.testing.assert_array_equal(ids, reference(m, q, k, mk)[0])


@pytest.mark.parametrize("n,d,nq", [(1, 3, 1), (7, 64, 5), (1001, 100, 9), (4000, 384, 16)])
def test_many_queries_give_the_answer_of_each_query(int8, n, d, nq):
    rng = np.random.default_rng(n + d + nq)
    m = unit_rows(rng, n, d)
    qs = unit_rows(rng, nq, d)
    qs[nq // 2] = 0.0  # a query the bound cannot use: the float32 scan answers it
    mask = rng.random(n) < 0.6
    tier = int8.mod.quantize_int8(m)
    for k in (1, 10):
        for mk in (None, mask):
            answers = int8.mod.topk_int8_many(m, tier, qs, k, mk)
            assert len(answers) == nq
            for q, (ids, scores, stats) in zip(qs, answers):
                assert_exact((ids, scores, stats), m, q, k, mk)
            assert answers[nq // 2][2]["fallback"] is True


def test_many_queries_where_some_defeat_the_bound(int8):
    rng = np.random.default_rng(21)
    m = unit_rows(rng, 6000, 64)
    m[::2] = m[0]  # every other row identical: a query close to them cannot prune
    away = unit_rows(rng, 3, 64)
    away *= -np.sign(away @ m[0])[:, None]  # the duplicates score low: the bound prunes them
    qs = np.stack([m[0], away[0], m[0] + 0.001, away[1], away[2]]).astype(np.float32)
    answers = int8.mod.topk_int8_many(m, int8.mod.quantize_int8(m), qs, 10)
    for q, got in zip(qs, answers):
        assert_exact(got, m, q, 10)
    assert answers[0][2]["fallback"] is True
    assert [a[2]["fallback"] for a in answers[3:]] == [False, False]
    assert answers[1][2]["fallback"] is False


def test_many_queries_refuse_a_bad_batch(int8):
    m = np.zeros((4, 3), np.float32)
    tier = int8.mod.quantize_int8(m)
    with pytest.raises(ValueError, match=r"queries must have shape \(nq, 3\)"):
        int8.mod.topk_int8_many(m, tier, np.zeros((2, 4), np.float32), 1)
    assert int8.mod.topk_int8_many(m, tier, np.zeros((0, 3), np.float32), 1) == []


def test_duplicates_at_the_start_far_from_the_query_do_not_defeat_the_bound(int8):
    rng = np.random.default_rng(22)
    m = unit_rows(rng, 40_000, 64)
    m[:4000] = m[0]  # the first tenth cannot be pruned until the threshold rises past them
    q = unit_rows(rng, 1, 64)[0]
    q *= -np.sign(q @ m[0])
    stats = assert_exact(int8(m, q, 10), m, q, 10)
    assert stats["fallback"] is False and stats["rescored"] < 4000
