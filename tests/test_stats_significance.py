"""Paired permutation (approximate randomisation) test (xcal.stats.significance)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from xcal.metrics import top_label_calibration_error
from xcal.stats import (
    ArrayStatistic,
    calibration_statistic,
    mean_statistic,
    paired_bootstrap,
    permutation_pvalue,
    permutation_test,
    swap_distribution,
)
from xcal.stats.statistic import _batched_fn


def test_swap_values_by_hand() -> None:
    # a = (1, 0, 0), b = (0, 0, 1): swapping example 0 moves 1 from a to b, swapping
    # example 2 moves 1 from b to a. Differences mean(a') - mean(b') over the 8 patterns:
    # none: (1-1)/3 = 0; {0}: -2/3; {2}: +2/3; {0,2}: 0; example 1 changes nothing.
    a, b = mean_statistic([1.0, 0.0, 0.0]), mean_statistic([0.0, 0.0, 1.0])
    null = swap_distribution(a, b, n_permutations=4000, rng=0)
    values, counts = np.unique(np.round(null, 12), return_counts=True)
    np.testing.assert_allclose(values, [-2 / 3, 0.0, 2 / 3])
    # probabilities 1/4, 1/2, 1/4 within Monte Carlo error (sd of a share <= 0.008)
    np.testing.assert_allclose(counts / 4000, [0.25, 0.5, 0.25], atol=0.03)


def test_monte_carlo_pvalue_approaches_the_exact_one() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=10), rng.normal(size=10) + 0.8
    a, b = mean_statistic(x), mean_statistic(y)
    observed = x.mean() - y.mean()
    # exact: all 2^10 swap patterns, swapping flips the sign of x_i - y_i
    d = x - y
    exact = np.mean(
        [
            abs(np.mean(np.array(s) * d)) >= abs(observed) - 1e-12
            for s in itertools.product([1, -1], repeat=10)
        ]
    )
    row = permutation_test(a, b, n_permutations=20_000, rng=1).iloc[0]
    # the Monte Carlo p-value is a share of 20,000 draws: allow 4 standard errors
    assert row.p_value == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 20_000))
    assert row.estimate == pytest.approx(observed)


def test_permutation_test_table_is_the_composition() -> None:
    rng = np.random.default_rng(0)
    a = calibration_statistic(rng.uniform(0.4, 1, 200), rng.random(200) < 0.7)
    b = calibration_statistic(rng.uniform(0.4, 1, 200), rng.random(200) < 0.7)
    t = permutation_test(a, b, n_permutations=300, rng=8, names=("de", "en"))
    row = t.iloc[0]
    null = swap_distribution(a, b, n_permutations=300, rng=8)
    assert row.p_value == permutation_pvalue(null, a.estimate() - b.estimate())
    assert (row.system_a, row.system_b, row.method, row.B, row.seed) == (
        "de",
        "en",
        "paired permutation",
        300,
        8,
    )
    assert np.isnan(row.ci_low) and np.isnan(row.p_adjusted)


def test_permutation_test_pairs_shuffled_runs_as_by_hand() -> None:
    # Both runs in their own row order, ids whose text order ("ex-1" < "ex-10" <
    # "ex-2") is neither: the swaps must exchange the same example's predictions.
    rng = np.random.default_rng(5)
    n = 90
    ids = np.array([f"ex-{i}" for i in range(n)])
    conf, ka, kb = rng.uniform(0.4, 1, n), rng.random(n) < 0.8, rng.random(n) < 0.5
    rows_a, rows_b = rng.permutation(n), rng.permutation(n)
    a = calibration_statistic(conf[rows_a], ka[rows_a], example_ids=ids[rows_a])
    b = calibration_statistic(conf[rows_b] ** 3, kb[rows_b], example_ids=ids[rows_b])
    b_row = {example: row for row, example in enumerate(ids[rows_b])}
    take = np.array([b_row[example] for example in ids[rows_a]])
    hand_a = calibration_statistic(conf[rows_a], ka[rows_a])
    hand_b = calibration_statistic((conf[rows_b] ** 3)[take], kb[rows_b][take])
    np.testing.assert_allclose(
        swap_distribution(a, b, n_permutations=300, rng=4),
        swap_distribution(hand_a, hand_b, n_permutations=300, rng=4),
        rtol=1e-12,
        atol=1e-15,
    )


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_swapped_ece_is_recomputed_from_scratch(binning: Any) -> None:
    # Each null value is ECE(a') - ECE(b') with a' taking b's (confidence, correct)
    # on swapped examples and vice versa, binned anew: check against the plain metric.
    rng = np.random.default_rng(5)
    n = 120
    ca, cb = rng.uniform(0.34, 1, n), rng.uniform(0.34, 1, n)
    ka, kb = rng.random(n) < ca, rng.random(n) < cb**3
    a = calibration_statistic(ca, ka, n_bins=10, binning=binning)
    b = calibration_statistic(cb, kb, n_bins=10, binning=binning)
    null = swap_distribution(a, b, n_permutations=50, rng=2)
    masks = np.random.default_rng(2).integers(0, 2, size=(50, n), dtype=np.int8).astype(bool)
    for r in (0, 17, 49):
        s = masks[r]
        ca2, ka2 = np.where(s, cb, ca), np.where(s, kb, ka)
        cb2, kb2 = np.where(s, ca, cb), np.where(s, ka, kb)
        want = top_label_calibration_error(ca2, ka2, n_bins=10, binning=binning) - (
            top_label_calibration_error(cb2, kb2, n_bins=10, binning=binning)
        )
        assert null[r] == pytest.approx(want, rel=1e-10, abs=1e-14)


def test_linear_and_generic_swap_paths_agree() -> None:
    rng = np.random.default_rng(6)
    n = 150
    ca, cb = rng.uniform(0.34, 1, n), rng.uniform(0.34, 1, n)
    ka, kb = rng.random(n) < ca, rng.random(n) < cb
    fn = _batched_fn(15, "width", "l1", False)
    ga = ArrayStatistic(fn, {"confidence": ca, "correct": ka}, "ece", ("g",))
    gb = ArrayStatistic(fn, {"confidence": cb, "correct": kb}, "ece", ("g",))
    fast = swap_distribution(
        calibration_statistic(ca, ka), calibration_statistic(cb, kb), n_permutations=300, rng=4
    )
    slow = swap_distribution(ga, gb, n_permutations=300, rng=4)
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-14)


def test_group_swaps_move_whole_groups() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=40), rng.normal(size=40)
    groups = np.repeat(np.arange(40), 3)
    dup = swap_distribution(
        mean_statistic(np.repeat(x, 3)),
        mean_statistic(np.repeat(y, 3)),
        n_permutations=500,
        rng=3,
        groups=groups,
    )
    base = swap_distribution(mean_statistic(x), mean_statistic(y), n_permutations=500, rng=3)
    np.testing.assert_allclose(dup, base, rtol=1e-10, atol=1e-15)


def test_different_metrics_cannot_be_compared() -> None:
    a = mean_statistic([1.0, 0.0])
    b = calibration_statistic([0.5, 0.9], [1, 0])
    with pytest.raises(ValueError, match="one metric on two systems"):
        permutation_test(a, b, n_permutations=10, rng=0)
    with pytest.raises(ValueError, match="n_permutations"):
        permutation_test(a, a, n_permutations=0)
    with pytest.raises(ValueError, match="alternative"):
        permutation_pvalue([0.1], 0.1, alternative="both")


def test_the_null_is_exchangeability_not_equal_calibration() -> None:
    # Two systems with the *same* population ECE (0.1) that are not exchangeable:
    # one overconfident (confidence 0.7, accuracy 0.6), one underconfident (0.7,
    # accuracy 0.8), wrong on nested sets of examples. Swapping their predictions
    # mixes the two miscalibrations into a calibrated pair, so the permutation
    # null sits near 0 and the test "finds" a difference in ECE that the
    # populations do not have: it tests exchangeability. The paired bootstrap
    # (what xcal analyze uses) tests the difference itself. 200 datasets: the
    # share's standard error is at most 0.035.
    rng = np.random.default_rng(0)
    n, reps = 100, 200
    perm = boot = 0
    for r in range(reps):
        u = rng.random(n)
        a = calibration_statistic(np.full(n, 0.7), u < 0.6)
        b = calibration_statistic(np.full(n, 0.7), u < 0.8)
        perm += permutation_test(a, b, n_permutations=400, rng=r).p_value.iloc[0] < 0.05
        boot += paired_bootstrap(a, b, B=400, rng=r).p_value.iloc[0] < 0.05
    assert perm / reps > 0.2  # measured 0.30 (n = 1,000: 0.34)
    assert boot / reps < 0.12  # measured 0.085 (n = 1,000: 0.07)
    assert "exchangeab" in (permutation_test.__doc__ or "")
