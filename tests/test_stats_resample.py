"""Resample draws: seeds, chunking, counts, groups (xcal.stats.resample)."""

from __future__ import annotations

import numpy as np
import pytest

from xcal.stats import bootstrap_distribution, mean_statistic
from xcal.stats.resample import (
    as_generator,
    chunk_rows,
    counts_from_indices,
    group_codes,
    iter_index_chunks,
)


def test_as_generator_seeds_and_reports() -> None:
    gen, seed = as_generator(5)
    assert seed == 5
    assert gen.integers(0, 1000) == np.random.default_rng(5).integers(0, 1000)
    g = np.random.default_rng(1)
    assert as_generator(g) == (g, None)
    gen_none, seed_none = as_generator(None)
    assert isinstance(seed_none, int)
    # the reported seed reproduces the draws
    assert gen_none.integers(0, 10**9) == np.random.default_rng(seed_none).integers(0, 10**9)
    with pytest.raises(TypeError, match="rng"):
        as_generator("7")
    with pytest.raises(TypeError, match="rng"):
        as_generator(True)
    with pytest.raises(ValueError, match="non-negative"):
        as_generator(-1)


def test_chunk_rows_bounds_memory() -> None:
    # 24 bytes per cell: 1 MiB holds 43 rows of 1,000
    assert chunk_rows(1_000, 10_000, max_memory=2**20) == 2**20 // 24_000
    assert chunk_rows(10**9, 5) == 1  # never zero rows
    assert chunk_rows(10, 7) == 7  # never more rows than asked
    with pytest.raises(ValueError, match="max_memory"):
        chunk_rows(10, 10, max_memory=0)


def test_index_chunks_do_not_depend_on_the_chunk_size() -> None:
    whole = np.vstack(list(iter_index_chunks(np.random.default_rng(3), 50, 20, 20)))
    pieces = np.vstack(list(iter_index_chunks(np.random.default_rng(3), 50, 20, 3)))
    np.testing.assert_array_equal(whole, pieces)
    # and they are the draws scipy.stats.bootstrap makes: rng.integers(0, n, (B, n))
    np.testing.assert_array_equal(whole, np.random.default_rng(3).integers(0, 50, (20, 50)))


def test_bootstrap_distribution_does_not_depend_on_max_memory() -> None:
    stat = mean_statistic(np.random.default_rng(0).normal(size=300))
    big = bootstrap_distribution(stat, B=500, rng=9)
    small = bootstrap_distribution(stat, B=500, rng=9, max_memory=300 * 24 * 7)  # 7 rows a chunk
    # same resamples; only BLAS's summation order may differ with the chunk shape
    np.testing.assert_allclose(big, small, rtol=1e-13, atol=0)


def test_counts_from_indices_by_hand() -> None:
    idx = np.array([[0, 0, 3, 1], [2, 2, 2, 2]])
    counts = counts_from_indices(idx.copy(), 4)
    np.testing.assert_array_equal(counts, [[2, 1, 0, 1], [0, 0, 4, 0]])
    assert counts.dtype == np.float64
    # every row of counts sums to the resample size
    rng = np.random.default_rng(0)
    many = rng.integers(0, 30, size=(40, 30))
    np.testing.assert_array_equal(counts_from_indices(many.copy(), 30).sum(axis=1), 30)
    for r in range(40):
        np.testing.assert_array_equal(
            counts_from_indices(many[r : r + 1].copy(), 30)[0], np.bincount(many[r], minlength=30)
        )


def test_group_codes() -> None:
    codes, k = group_codes(np.array(["x-2", "x-1", "x-2", "x-3", "x-1"]), 5)
    assert k == 3
    np.testing.assert_array_equal(codes, [1, 0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        group_codes([1, 2, 3], 4)
    with pytest.raises(ValueError, match="NaN at index 1"):
        group_codes([1.0, np.nan], 2)


def test_row_by_row_counts_equal_the_flat_bincount() -> None:
    # Large n takes the row-by-row path; it must consume the generator exactly as
    # one (c, n) draw and give the same counts.
    from xcal.stats.resample import ROWWISE_MIN_UNITS, draw_counts

    n = ROWWISE_MIN_UNITS + 5
    rowwise = draw_counts(np.random.default_rng(4), n, np.empty((3, n)))
    flat = counts_from_indices(np.random.default_rng(4).integers(0, n, size=(3, n)), n)
    np.testing.assert_array_equal(rowwise, flat)
