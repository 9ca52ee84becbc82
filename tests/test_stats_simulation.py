"""Validity of the bootstrap and the paired tests by simulation (acceptance tests of xcal.stats).

Each test draws many independent datasets from a known truth and checks the
long-run behaviour of the public API on them: interval coverage, rejection
rate under a true null, power against a clear alternative, false discovery
rate. Datasets are generated vectorised (all at once, one row per dataset);
each dataset then goes through the public array-level functions on its own,
with its own resamples (sharing resamples across datasets would make their
outcomes dependent and the tolerances below wrong). The table-building
functions (``bootstrap_ci``, ``paired_bootstrap``, ``permutation_test``) are
exactly these compositions for the same seed, which tests/test_stats_bootstrap.py
and tests/test_stats_significance.py check; calling the array-level functions
here skips a pandas row per dataset.

Monte Carlo tolerances. With S independent datasets the observed rate of an
event of probability p has standard error sqrt(p (1 - p) / S): for S = 1,000
and p = 0.95 (coverage) or p = 0.05 (false rejection) that is 0.69 percentage
points, so the acceptance bands 93-97% and <= 6.5% sit 2.9 and 2.2 standard
errors from the nominal value: a correct procedure fails them with probability
below 0.4% and 1.4%, and the seeds are fixed so that a run is reproducible.
Modest B: a Monte Carlo p-value (1 + hits) / (B + 1) is a valid p-value for any B
(Phipson & Smyth 2010), so B = 200 resamples per test keeps the rejection rate
at or below the level and costs only a little power. The coverage test uses
B = 400: the 2.5% and 97.5% quantiles of 400 replicates are the 10th and 390th
order statistics, whose Monte Carlo noise costs a few tenths of a point of
coverage (measured: 94.8% with B = 400, 95.1% with B = 1,000 on these datasets),
well inside the band.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from xcal.stats import (
    adjust_pvalues,
    bootstrap_distribution,
    bootstrap_pvalue,
    calibration_statistic,
    mean_statistic,
    paired_bootstrap_distribution,
    percentile_interval,
    permutation_pvalue,
    swap_distribution,
)
from xcal.stats.statistic import Statistic

S = 1_000


def test_percentile_ci_for_accuracy_covers_the_truth_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(20240601)
    n, p = 200, 0.75
    correct = rng.random((S, n)) < p  # one simulated test set per row
    covered = 0
    for s in range(S):
        dist = bootstrap_distribution(mean_statistic(correct[s]), B=400, rng=s)
        low, high = percentile_interval(dist, 0.95)
        covered += low <= p <= high
    assert 0.93 <= covered / S <= 0.97, covered / S


def _accuracy_pairs(rng: np.random.Generator, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-example correctness of two systems sharing example difficulty."""
    n = 200
    difficulty = rng.beta(3.0, 1.0, size=(S, n))  # mean accuracy 0.75
    a = rng.random((S, n)) < difficulty
    b = rng.random((S, n)) < np.clip(difficulty - gap, 0, 1)
    return a, b


def _calibration_pairs(rng: np.random.Generator, overconfidence_b: float) -> tuple[np.ndarray, ...]:
    """Top-label confidence and correctness of two 3-class systems on shared examples.

    Confidence lives in [1/3, 1]; the example's ease is shared, each system adds
    its own noise; correctness is Bernoulli(confidence ** 1.3) for system a
    (mildly overconfident) and the same minus ``overconfidence_b`` for b.
    """
    n = 300
    ease = rng.normal(size=(S, n))

    def system(shift: float) -> tuple[np.ndarray, np.ndarray]:
        z = ease + 0.7 * rng.normal(size=(S, n))
        conf = 1 / 3 + (2 / 3) / (1 + np.exp(-z))
        correct = rng.random((S, n)) < np.clip(conf**1.3 - shift, 0, 1)
        return conf, correct

    ca, ka = system(0.0)
    cb, kb = system(overconfidence_b)
    return ca, ka, cb, kb


def _rejection_rates(
    pairs: Sequence[tuple[Statistic, Statistic]], b: int = 200
) -> tuple[float, float]:
    """Share of pairs in which the paired bootstrap and the permutation test reject at 0.05."""
    rej_boot = rej_perm = 0
    for s, (sa, sb) in enumerate(pairs):
        observed = sa.estimate() - sb.estimate()
        reps = paired_bootstrap_distribution(sa, sb, B=b, rng=s)
        rej_boot += bootstrap_pvalue(reps[:, 0] - reps[:, 1], observed) <= 0.05
        null = swap_distribution(sa, sb, n_permutations=b, rng=s)
        rej_perm += permutation_pvalue(null, observed) <= 0.05
    return rej_boot / len(pairs), rej_perm / len(pairs)


def test_paired_tests_of_accuracy_keep_their_level_and_have_power() -> None:
    rng = np.random.default_rng(7)
    a, b = _accuracy_pairs(rng, gap=0.0)
    null = [(mean_statistic(a[s]), mean_statistic(b[s])) for s in range(S)]
    boot, perm = _rejection_rates(null)
    # measured: 4.1% and 3.4%; a difference of accuracies is discrete, so a
    # test counting ties as extreme is somewhat conservative
    assert boot <= 0.065, boot
    assert perm <= 0.065, perm
    a, b = _accuracy_pairs(rng, gap=0.15)
    alt = [(mean_statistic(a[s]), mean_statistic(b[s])) for s in range(200)]
    boot, perm = _rejection_rates(alt)
    # measured: 95.5% and 93.5%
    assert boot >= 0.8 and perm >= 0.8, (boot, perm)


def test_paired_tests_of_ece_keep_their_level_and_have_power() -> None:
    # ECE is not a mean of per-example scores: the permutation test re-bins the
    # swapped systems on every permutation.
    rng = np.random.default_rng(11)
    ca, ka, cb, kb = _calibration_pairs(rng, overconfidence_b=0.0)
    null = [
        (calibration_statistic(ca[s], ka[s]), calibration_statistic(cb[s], kb[s])) for s in range(S)
    ]
    boot, perm = _rejection_rates(null)
    # measured: 1.9% (the shifted bootstrap is conservative for ECE) and 4.4%
    assert boot <= 0.065, boot
    assert perm <= 0.065, perm
    # the permutation test is exact for a continuous statistic: its size is near
    # 5%, not merely below (3% is 2.9 standard errors under 5%)
    assert perm >= 0.03, perm
    ca, ka, cb, kb = _calibration_pairs(rng, overconfidence_b=0.15)
    alt = [
        (calibration_statistic(ca[s], ka[s]), calibration_statistic(cb[s], kb[s]))
        for s in range(200)
    ]
    boot, perm = _rejection_rates(alt)
    # measured: 99% and 99%
    assert boot >= 0.8 and perm >= 0.8, (boot, perm)


@pytest.mark.parametrize("q", [0.05, 0.1])
def test_benjamini_hochberg_keeps_the_false_discovery_rate(q: float) -> None:
    # A grid of 40 languages x 5 perturbations = 200 tests, 150 true nulls; the
    # alternatives have z-scores N(3, 1). BH controls FDR at q * m0 / m <= q.
    from scipy.stats import norm

    grids, m, m0 = 2_000, 200, 150
    rng = np.random.default_rng(3)
    z = rng.normal(size=(grids, m))
    z[:, m0:] += 3.0
    p = 2 * norm.sf(np.abs(z))
    fdp = np.empty(grids)
    for g in range(grids):
        rejected = adjust_pvalues(p[g], "bh") <= q
        false = np.count_nonzero(rejected[:m0])
        fdp[g] = false / max(1, int(np.count_nonzero(rejected)))
    # FDR = E[FDP] = q * m0 / m exactly for independent tests; the standard error
    # of the mean FDP over 2,000 grids is below 0.002.
    assert fdp.mean() <= q * m0 / m + 0.006, fdp.mean()
    assert fdp.mean() >= q * m0 / m - 0.006, fdp.mean()
    # and it does discover: most alternatives are rejected at q = 0.1
    rejected = adjust_pvalues(p[0], "bh") <= q
    assert np.count_nonzero(rejected[m0:]) > 20
