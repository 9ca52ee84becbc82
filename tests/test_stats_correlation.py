"""Correlations equal scipy's; bootstrap and permutation parts (xcal.stats.correlation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from xcal.stats import correlation
from xcal.stats.correlation import kendall_rows, pearson_rows, spearman_rows


def _xy(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x, 0.5 * x + rng.normal(size=n)


@pytest.mark.parametrize(
    ("method", "ref"),
    [("pearson", sps.pearsonr), ("spearman", sps.spearmanr), ("kendall", sps.kendalltau)],
)
def test_estimates_and_asymptotic_pvalues_equal_scipy(method: str, ref: object) -> None:
    x, y = _xy()
    row = correlation(x, y, method, B=200, n_permutations=200, rng=0).iloc[0]
    res = ref(x, y)  # type: ignore[operator]
    assert row.estimate == res.statistic
    assert row.p_value_asymptotic == res.pvalue


def test_row_functions_equal_scipy_on_resamples_with_ties() -> None:
    x, y = _xy(n=25, seed=1)
    x = np.round(x, 1)  # ties, as bootstrap duplicates also create
    idx = np.random.default_rng(2).integers(0, 25, size=(6, 25))
    X, Y = x[idx], y[idx]
    for r in range(6):
        assert pearson_rows(X, Y)[r] == pytest.approx(sps.pearsonr(X[r], Y[r]).statistic, rel=1e-12)
        assert spearman_rows(X, Y)[r] == pytest.approx(
            sps.spearmanr(X[r], Y[r]).statistic, rel=1e-12
        )
        assert kendall_rows(X, Y)[r] == pytest.approx(
            sps.kendalltau(X[r], Y[r]).statistic, rel=1e-12
        )


def test_by_hand() -> None:
    # x = (1, 2, 3), y = (1, 3, 2): pairs (12) concordant, (13) concordant, (23) discordant
    # -> tau = (2 - 1) / 3; Spearman = 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5
    x, y = np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 3.0, 2.0]])
    assert kendall_rows(x, y)[0] == pytest.approx(1 / 3)
    assert spearman_rows(x, y)[0] == pytest.approx(0.5)
    # a constant row has no correlation
    assert np.isnan(pearson_rows(np.ones((1, 3)), y)[0])


def test_independent_data_give_no_significance_and_the_interval_covers_zero() -> None:
    rng = np.random.default_rng(5)
    t = correlation(
        rng.normal(size=40),
        rng.normal(size=40),
        ["pearson", "spearman", "kendall"],
        B=1000,
        n_permutations=1000,
        rng=1,
        x_name="task_distance",
        y_name="gain",
    )
    assert list(t.metric) == ["pearson", "spearman", "kendall"]
    assert (t.x == "task_distance").all() and (t.y == "gain").all()
    assert (t.ci_low < 0).all() and (t.ci_high > 0).all()
    assert (t.p_value > 0.05).all()
    # the permutation p-value agrees with scipy's asymptotic one within Monte Carlo error
    np.testing.assert_allclose(t.p_value, t.p_value_asymptotic, atol=0.08)


def test_strong_association_is_detected() -> None:
    x, y = _xy(n=40, seed=3)
    t = correlation(x, 3 * x + 0.3 * y, ["pearson", "kendall"], B=500, n_permutations=500, rng=0)
    assert (t.p_value == 1 / 501).all()  # no permutation as extreme
    assert (t.ci_low > 0.5).all()


def test_constant_resamples_are_left_out() -> None:
    # three pairs, two equal x values: some resamples have constant x and no correlation
    t = correlation([1.0, 1.0, 2.0], [0.0, 1.0, 2.0], B=300, n_permutations=50, rng=0).iloc[0]
    assert 0 < t.B_valid < 300
    assert np.isfinite(t.ci_low)


def test_errors() -> None:
    with pytest.raises(ValueError, match="at least 3 pairs"):
        correlation([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"`y` must be finite; found inf at index 2"):
        correlation([1.0, 2.0, 3.0], [1.0, 2.0, np.inf])
    with pytest.raises(ValueError, match="Unknown correlation 'distance'"):
        correlation([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], "distance")


@pytest.mark.parametrize("n", [6, 8, 10])
def test_fisher_z_interval_covers_pearson_at_small_n(n: int) -> None:
    # 4,000 bivariate normal samples of n pairs, rho = 0.6: the coverage's
    # standard error is 0.34 points, so 93-97% is a band of 5.8 of them.
    from xcal.stats.correlation import fisher_z_interval

    rng = np.random.default_rng(n)
    rho, reps = 0.6, 4000
    x = rng.normal(size=(reps, n))
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=(reps, n))
    r = pearson_rows(x, y)
    covered = sum(lo <= rho <= hi for lo, hi in (fisher_z_interval(float(v), n) for v in r))
    assert 0.93 <= covered / reps <= 0.97


_KENDALL_N6 = pytest.mark.xfail(
    strict=True,
    reason="over-covers: 97.4% here, 97.1% over 200,000 samples. At n = 6 tau takes the "
    "values k / 15; the interval of tau = 13/15 (P = 6.6%) just reaches the truth 0.41 and "
    "those of tau = 1 (1.8%) and tau <= -7/15 (1.1%) miss it, so this interval, a function "
    "of tau alone, covers 97.1% or (one step narrower) 90.5%",
)
_GRID = [
    pytest.param(
        method, n, rho, marks=_KENDALL_N6 if (method, n, rho) == ("kendall", 6, 0.6) else ()
    )
    for method in ("spearman", "kendall")
    for n in (6, 8, 10)
    for rho in (0.0, 0.3, 0.6)
]


@pytest.mark.parametrize(("method", "n", "rho"), _GRID)
def test_rank_fisher_z_intervals_cover_the_population_value_at_small_n(
    method: str, n: int, rho: float
) -> None:
    # Bivariate normal data (only the copula matters to a rank correlation):
    # population Spearman (6 / pi) asin(rho / 2), Kendall (2 / pi) asin(rho).
    # 4,000 samples: the coverage's standard error is 0.34 points.
    from xcal.stats.correlation import fisher_z_interval

    rng = np.random.default_rng([n, int(10 * rho), len(method)])
    reps = 4000
    x = rng.normal(size=(reps, n))
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=(reps, n))
    if method == "spearman":
        r, truth = spearman_rows(x, y), 6 / np.pi * np.arcsin(rho / 2)
    else:
        r, truth = kendall_rows(x, y), 2 / np.pi * np.arcsin(rho)
    bounds = np.array([fisher_z_interval(float(v), n, method=method) for v in r])
    coverage = float(np.mean((bounds[:, 0] <= truth) & (truth <= bounds[:, 1])))
    print(f"{method} n={n} rho={rho}: coverage {coverage:.4f}")
    assert 0.93 <= coverage <= 0.97


def test_rank_fisher_z_interval_by_hand() -> None:
    from xcal.stats.correlation import fisher_z_interval

    # Spearman 0.6 over 8 pairs: atanh(0.6) = 0.6931, half-width 1.96 sqrt(1.06 / 5)
    half = 1.959964 * np.sqrt(1.06 / 5)
    expected = (np.tanh(np.arctanh(0.6) - half), np.tanh(np.arctanh(0.6) + half))
    assert fisher_z_interval(0.6, 8, method="spearman") == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="kendall Fisher-z interval needs n >= 5"):
        fisher_z_interval(0.2, 4, method="kendall")
    with pytest.raises(ValueError, match="Unknown correlation 'distance'"):
        fisher_z_interval(0.2, 8, method="distance")
