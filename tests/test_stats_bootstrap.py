"""Bootstrap intervals and the paired bootstrap (xcal.stats.bootstrap)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from xcal.stats import (
    ArrayStatistic,
    align_pair,
    bca_interval,
    bootstrap_ci,
    bootstrap_distribution,
    bootstrap_pvalue,
    calibration_statistic,
    mean_statistic,
    metric_statistic,
    paired_bootstrap,
    paired_bootstrap_distribution,
    percentile_interval,
)
from xcal.stats.statistic import _batched_fn

COLUMNS = ["estimate", "ci_low", "ci_high", "p_value", "p_adjusted", "method", "B", "seed"]


def _scipy(x: np.ndarray, method: str, seed: int, b: int) -> tuple[float, float]:
    res = sps.bootstrap(
        (x,),
        np.mean,
        method=method,
        n_resamples=b,
        rng=np.random.default_rng(seed),
        confidence_level=0.9,
    )
    return res.confidence_interval.low, res.confidence_interval.high


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_intervals_equal_scipy_on_the_same_resamples(method: str) -> None:
    # scipy draws rng.integers(0, n, (B, n)) for a one-sample statistic, as we do,
    # so with the same seed both see the same resamples and must agree exactly.
    x = np.random.default_rng(0).exponential(size=60)  # skewed: BCa differs from percentile
    row = bootstrap_ci(mean_statistic(x), method=method.lower(), level=0.9, B=3000, rng=42).iloc[0]
    low, high = _scipy(x, method, 42, 3000)
    assert row.ci_low == pytest.approx(low, rel=1e-10)
    assert row.ci_high == pytest.approx(high, rel=1e-10)


def test_bca_of_a_callable_and_of_a_generic_statistic_equal_scipy() -> None:
    x = np.random.default_rng(1).lognormal(size=40)
    low, high = _scipy(x, "BCa", 7, 2000)

    def mean_of_indices(idx: np.ndarray) -> np.ndarray:
        return x[idx].mean(axis=1)

    row = bootstrap_ci(mean_of_indices, n=40, method="bca", level=0.9, B=2000, rng=7).iloc[0]
    assert (row.ci_low, row.ci_high) == pytest.approx((low, high), rel=1e-10)
    generic = ArrayStatistic(lambda a, w: (w @ a["x"]) / w.sum(axis=1), {"x": x}, "mean", ("m",))
    row = bootstrap_ci(generic, method="bca", level=0.9, B=2000, rng=7).iloc[0]
    assert (row.ci_low, row.ci_high) == pytest.approx((low, high), rel=1e-10)


def test_percentile_interval_by_hand() -> None:
    # 0..100: the 2.5% and 97.5% linear quantiles are 2.5 and 97.5
    assert percentile_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))
    with pytest.raises(ValueError, match="level"):
        percentile_interval([1.0, 2.0], level=95)


def test_bca_by_hand() -> None:
    d = np.arange(1.0, 1001.0)
    # estimate at the median, symmetric jackknife: z0 = 0, a = 0 -> percentile interval
    assert bca_interval(d, 500.5, [-1.0, 0.0, 1.0]) == pytest.approx(percentile_interval(d))
    # estimate below every replicate: z0 = -inf -> undefined
    assert np.isnan(bca_interval(d, 0.0, [-1.0, 0.0, 1.0])[0])
    # skewed jackknife: deviations d_i = mean - x_i of (0, 0, 3) are (1, 1, -2):
    # a = (1 + 1 - 8) / (6 * 6 ** 1.5) < 0 moves both bounds down
    low, high = bca_interval(d, 500.5, [0.0, 0.0, 3.0])
    assert low < percentile_interval(d)[0] and high < percentile_interval(d)[1]
    from scipy.special import ndtr, ndtri

    a = -6 / (6 * 6**1.5)
    z = ndtri(0.025)
    assert low == pytest.approx(np.quantile(d, ndtr(z / (1 - a * z))))


def test_bca_counts_replicates_tied_with_the_estimate_as_half_below() -> None:
    from scipy.special import ndtr, ndtri

    # 0, 1, 1, 1, 2 around an estimate of 1: one below, three tied, so the share
    # below is (1 + 3/2) / 5 = 1/2, z0 = 0, and with a = 0 BCa is the percentile
    # interval (counting the ties fully, 4/5, or not at all, 1/5, would shift it)
    d = np.array([0.0, 1.0, 1.0, 1.0, 2.0])
    assert bca_interval(d, 1.0, [-1.0, 0.0, 1.0], level=0.8) == pytest.approx(
        percentile_interval(d, 0.8), rel=1e-12
    )
    # 0, 1, 1, 2, ..., 6 around 1: share (1 + 2/2) / 8 = 1/4, z0 = Phi^-1(1/4); with
    # a = 0 the bounds are the quantiles at Phi(2 z0 -+ 1.2816) (level 0.8)
    d = np.array([0.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    z0, z = ndtri(1 / 4), ndtri(0.1)
    want = np.quantile(d, [ndtr(2 * z0 + z), ndtr(2 * z0 - z)])
    assert bca_interval(d, 1.0, [-1.0, 0.0, 1.0], level=0.8) == pytest.approx(
        tuple(want), rel=1e-12
    )


def test_bootstrap_pvalue_by_hand() -> None:
    d = np.array([0.1, 0.2, 0.3, 0.5, 0.9])
    # shift: d - 0.3 = (-0.2, -0.1, 0, 0.2, 0.6); |.| >= 0.3: only 0.6 -> (1 + 1) / 6
    assert bootstrap_pvalue(d, 0.3) == pytest.approx(2 / 6)
    # one-sided "greater": d - 0.3 >= 0.3: 0.6 -> 2/6; "less": d - 0.3 <= 0.3: four -> 5/6
    assert bootstrap_pvalue(d, 0.3, alternative="greater") == pytest.approx(2 / 6)
    assert bootstrap_pvalue(d, 0.3, alternative="less") == pytest.approx(5 / 6)
    # Koehn: share of replicates with the sign flipped, none here -> 1/6, two-sided 2/6
    assert bootstrap_pvalue(d, 0.3, null="koehn", alternative="greater") == pytest.approx(1 / 6)
    assert bootstrap_pvalue(d, 0.3, null="koehn") == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="null"):
        bootstrap_pvalue(d, 0.3, null="x")


def test_bootstrap_pvalue_counts_exact_ties_as_extreme() -> None:
    # Replicates in steps of 0.5 (exact in binary) around an estimate of 0.5.
    d = np.array([0.0, 0.5, 1.0, 1.0, 1.5, 2.0])
    # shift: d - 0.5 = (-0.5, 0, 0.5, 0.5, 1, 1.5). Two-sided |.| >= 0.5: -0.5, 0.5, 0.5,
    # 1, 1.5 (three of them ties) -> (1 + 5) / 7; counting ties out would give 3/7
    assert bootstrap_pvalue(d, 0.5) == 6 / 7
    # "greater": d - 0.5 >= 0.5: 0.5, 0.5, 1, 1.5 -> 5/7; "less": <= 0.5: -0.5, 0, 0.5, 0.5
    assert bootstrap_pvalue(d, 0.5, alternative="greater") == 5 / 7
    assert bootstrap_pvalue(d, 0.5, alternative="less") == 5 / 7
    # Koehn: d <= 0 holds for the tied 0.0 -> "greater" (1 + 1) / 7; d >= 0 for all six
    # -> "less" 7/7; two-sided twice the smaller, 4/7
    assert bootstrap_pvalue(d, 0.5, null="koehn", alternative="greater") == 2 / 7
    assert bootstrap_pvalue(d, 0.5, null="koehn", alternative="less") == 1.0
    assert bootstrap_pvalue(d, 0.5, null="koehn") == 4 / 7
    # a negative estimate mirrors it: -d around -0.5
    assert bootstrap_pvalue(-d, -0.5) == 6 / 7
    assert bootstrap_pvalue(-d, -0.5, alternative="less") == 5 / 7
    assert bootstrap_pvalue(-d, -0.5, null="koehn", alternative="less") == 2 / 7
    # an estimate of exactly 0: every replicate is at least as far from 0 -> p = 1
    # (the tie tolerance is 0 here, so only ">=" counts the ties)
    e = np.array([-1.0, 0.0, 0.0, 2.0])
    assert bootstrap_pvalue(e, 0.0) == 1.0
    # "greater": d - 0 >= 0 for 0, 0, 2 -> (1 + 3) / 5; "less": -1, 0, 0 -> 4/5
    assert bootstrap_pvalue(e, 0.0, alternative="greater") == 4 / 5
    assert bootstrap_pvalue(e, 0.0, alternative="less") == 4 / 5


def test_bootstrap_pvalue_ties_up_to_summation_order() -> None:
    # 0.3 - 0.1 is 0.19999999999999998 in floating point, a tie with 2 * 0.1 by hand:
    # shifted by 0.1 it must count as as extreme as 0.1.
    d = np.array([0.3 - 0.1, 0.1, 0.15])
    assert 0.3 - 0.1 - 0.1 < 0.1  # the tie is not exact in floating point
    assert bootstrap_pvalue(d, 0.1) == 2 / 4
    assert bootstrap_pvalue(d, 0.1, alternative="greater") == 2 / 4


@pytest.mark.parametrize(
    ("null", "alternative"),
    [
        ("shift", "two-sided"),
        ("shift", "greater"),
        ("shift", "less"),
        ("koehn", "two-sided"),
        ("koehn", "greater"),
    ],
)
def test_paired_accuracy_pvalue_on_40_examples_counts_ties(null: str, alternative: str) -> None:
    # A 40-example accuracy difference moves in steps of 1/40, so many replicates
    # tie with the estimate's boundary. Count them again in whole examples.
    rng = np.random.default_rng(21)
    ka, kb = rng.random(40) < 0.65, rng.random(40) < 0.6
    a = metric_statistic("accuracy", correct=ka)
    b = metric_statistic("accuracy", correct=kb)
    row = paired_bootstrap(a, b, B=2000, rng=3, null=null, alternative=alternative).iloc[0]
    reps = paired_bootstrap_distribution(a, b, B=2000, rng=3)
    wins = np.rint((reps[:, 0] - reps[:, 1]) * 40).astype(int)  # resampled a - b, in examples
    observed = int(ka.sum()) - int(kb.sum())
    assert observed != 0
    if null == "shift":
        centred = wins - observed
        extreme = {
            "two-sided": np.abs(centred) >= abs(observed),
            "greater": centred >= observed,
            "less": centred <= observed,
        }[alternative]
        ties = {
            "two-sided": np.abs(centred) == abs(observed),
            "greater": centred == observed,
            "less": centred == observed,
        }[alternative]
        want = (1 + extreme.sum()) / 2001
    else:
        le, ge = (1 + (wins <= 0).sum()) / 2001, (1 + (wins >= 0).sum()) / 2001
        ties = wins == 0
        want = le if alternative == "greater" else min(1.0, 2 * min(le, ge))
    assert ties.sum() > 20  # the case exercises the tie rule
    assert row.p_value == pytest.approx(want, rel=1e-12)


def test_bootstrap_ci_table_and_reproducibility() -> None:
    s = metric_statistic("accuracy", correct=np.random.default_rng(0).random(300) < 0.8)
    t = bootstrap_ci(s, B=500, system="xlmr-en", rng=None)
    assert list(t.columns[:2]) == ["metric", "system"] and set(COLUMNS) <= set(t.columns)
    row = t.iloc[0]
    assert row.metric == "accuracy_score" and row.B == 500 and row.method == "percentile"
    assert np.isnan(row.p_value) and np.isnan(row.p_adjusted)
    assert row.ci_low <= row.estimate <= row.ci_high
    # the reported seed reproduces the numbers exactly
    again = bootstrap_ci(s, B=500, system="xlmr-en", rng=int(row.seed)).iloc[0]
    assert (again.ci_low, again.ci_high) == (row.ci_low, row.ci_high)
    # and the table is the array-level composition
    dist = bootstrap_distribution(s, B=500, rng=int(row.seed))
    assert percentile_interval(dist) == (row.ci_low, row.ci_high)


def test_single_example_gives_a_degenerate_interval() -> None:
    row = bootstrap_ci(mean_statistic([0.7]), B=100, rng=0).iloc[0]
    assert (row.ci_low, row.estimate, row.ci_high) == (0.7, 0.7, 0.7)


def test_cluster_bootstrap_of_duplicated_examples_equals_the_plain_bootstrap() -> None:
    # Every example has 3 identical perturbed variants: resampling whole examples
    # (groups) must give exactly the bootstrap of the originals, while resampling
    # the variants independently would understate the variance.
    x = np.random.default_rng(2).normal(size=80)
    variants = np.repeat(x, 3)
    groups = np.repeat([f"ex-{i:03d}" for i in range(80)], 3)
    plain = bootstrap_distribution(mean_statistic(x), B=400, rng=5)
    clustered = bootstrap_distribution(mean_statistic(variants), B=400, rng=5, groups=groups)
    np.testing.assert_allclose(clustered, plain, rtol=1e-12)
    naive = bootstrap_distribution(mean_statistic(variants), B=400, rng=5)
    assert naive.std() < 0.7 * clustered.std()  # sqrt(1/3) ~ 0.58
    # groups work for a generic statistic too (group weights expanded to examples)
    generic = ArrayStatistic(
        lambda a, w: (w @ a["x"]) / w.sum(axis=1), {"x": variants}, "m", ("m",)
    )
    np.testing.assert_allclose(
        bootstrap_distribution(generic, B=400, rng=5, groups=groups), plain, rtol=1e-12
    )
    # and BCa with groups leaves whole groups out in the jackknife
    row = bootstrap_ci(mean_statistic(variants), B=400, rng=5, groups=groups, method="bca").iloc[0]
    ref = bootstrap_ci(mean_statistic(x), B=400, rng=5, method="bca").iloc[0]
    assert (row.ci_low, row.ci_high) == pytest.approx((ref.ci_low, ref.ci_high), rel=1e-10)
    assert row.n_groups == 80


def _pair(n: int = 250, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    ids = np.array([f"xnli-dev-{i:06d}" for i in range(n)])
    ca, cb = rng.uniform(0.34, 1, n), rng.uniform(0.34, 1, n)
    ka, kb = rng.random(n) < ca, rng.random(n) < cb**2
    return ids, ca, ka, cb, kb


def test_paired_bootstrap_resamples_both_systems_together() -> None:
    ids, ca, ka, cb, kb = _pair()
    a = calibration_statistic(ca, ka, example_ids=ids)
    b = calibration_statistic(cb, kb, example_ids=ids)
    reps = paired_bootstrap_distribution(a, b, B=300, rng=3)
    # column-wise these are the single-system bootstraps with the same seed
    np.testing.assert_allclose(reps[:, 0], bootstrap_distribution(a, B=300, rng=3), rtol=1e-12)
    np.testing.assert_allclose(reps[:, 1], bootstrap_distribution(b, B=300, rng=3), rtol=1e-12)
    t = paired_bootstrap(a, b, B=300, rng=3, names=("intermediate", "baseline"))
    row = t.iloc[0]
    assert set(COLUMNS) <= set(t.columns)
    assert (row.system_a, row.system_b) == ("intermediate", "baseline")
    assert row.estimate == pytest.approx(a.estimate() - b.estimate())
    diff = reps[:, 0] - reps[:, 1]
    assert (row.ci_low, row.ci_high) == percentile_interval(diff)
    assert row.p_value == bootstrap_pvalue(diff, row.estimate)


def test_paired_bootstrap_aligns_by_example_id() -> None:
    ids, ca, ka, cb, kb = _pair()
    a = calibration_statistic(ca, ka, example_ids=ids)
    b = calibration_statistic(cb, kb, example_ids=ids)
    perm = np.random.default_rng(1).permutation(len(ids))
    b_shuffled = calibration_statistic(cb[perm], kb[perm], example_ids=ids[perm])
    one = paired_bootstrap(a, b, B=200, rng=0, method="bca").iloc[0]
    two = paired_bootstrap(a, b_shuffled, B=200, rng=0, method="bca").iloc[0]
    assert (one.estimate, one.ci_low, one.ci_high, one.p_value) == pytest.approx(
        (two.estimate, two.ci_low, two.ci_high, two.p_value), rel=1e-12
    )


# Ids whose text order ("ex-1" < "ex-10" < "ex-2") is neither run's row order.
HAND_A_IDS = ["ex-10", "ex-9", "ex-2", "ex-1", "ex-11", "ex-3"]
HAND_B_IDS = ["ex-3", "ex-1", "ex-11", "ex-10", "ex-2", "ex-9"]


def test_align_pair_follows_a_pairing_done_by_hand() -> None:
    a_scores = [10.0, 9.0, 2.0, 1.0, 11.0, 3.0]  # each score names its example
    b_scores = [300.0, 100.0, 1100.0, 1000.0, 200.0, 900.0]  # 100 x the example number
    a = mean_statistic(a_scores, example_ids=HAND_A_IDS)
    b = mean_statistic(b_scores, example_ids=HAND_B_IDS)
    a2, b2, order_a = align_pair(a, b)
    # by hand: b's row for a's "ex-10" is its 4th (1000), for "ex-9" its 6th (900), ...
    np.testing.assert_array_equal(a2.contributions[:, 0], a_scores)
    np.testing.assert_array_equal(
        b2.contributions[:, 0], [1000.0, 900.0, 200.0, 100.0, 1100.0, 300.0]
    )
    np.testing.assert_array_equal(b2.example_ids, HAND_A_IDS)
    np.testing.assert_array_equal(order_a, np.arange(6))


def _shuffled_pair(n: int = 120) -> tuple[np.ndarray, ...]:
    """Two runs over ``ex-0..ex-{n-1}``, each in its own random row order."""
    rng = np.random.default_rng(11)
    ids = np.array([f"ex-{i}" for i in range(n)])
    conf_by_id, correct_a_by_id = rng.uniform(0.34, 1, n), rng.random(n) < 0.7
    correct_b_by_id = rng.random(n) < 0.5
    rows_a, rows_b = rng.permutation(n), rng.permutation(n)
    return ids, conf_by_id, correct_a_by_id, correct_b_by_id, rows_a, rows_b


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_paired_bootstrap_pairs_shuffled_runs_as_by_hand(method: str) -> None:
    ids, conf, ka, kb, rows_a, rows_b = _shuffled_pair()
    a = calibration_statistic(conf[rows_a], ka[rows_a], example_ids=ids[rows_a])
    b = calibration_statistic(conf[rows_b] ** 2, kb[rows_b], example_ids=ids[rows_b])
    # by hand: a dict from id to b's row, looked up in a's row order, no ids left
    b_row = {example: row for row, example in enumerate(ids[rows_b])}
    take = np.array([b_row[example] for example in ids[rows_a]])
    hand_a = calibration_statistic(conf[rows_a], ka[rows_a])
    hand_b = calibration_statistic((conf[rows_b] ** 2)[take], kb[rows_b][take])
    got = paired_bootstrap(a, b, B=300, rng=6, method=method).iloc[0]
    want = paired_bootstrap(hand_a, hand_b, B=300, rng=6, method=method).iloc[0]
    assert (got.estimate, got.ci_low, got.ci_high, got.p_value) == pytest.approx(
        (want.estimate, want.ci_low, want.ci_high, want.p_value), rel=1e-12
    )
    np.testing.assert_allclose(
        paired_bootstrap_distribution(a, b, B=300, rng=6),
        paired_bootstrap_distribution(hand_a, hand_b, B=300, rng=6),
        rtol=1e-12,
    )


def test_paired_groups_pair_shuffled_runs_as_by_hand() -> None:
    ids, _conf, ka, kb, rows_a, rows_b = _shuffled_pair()
    groups_by_id = np.arange(ids.size) // 4  # four variants per source example
    a = mean_statistic(ka[rows_a].astype(float), example_ids=ids[rows_a])
    b = mean_statistic(kb[rows_b].astype(float), example_ids=ids[rows_b])
    b_row = {example: row for row, example in enumerate(ids[rows_b])}
    take = np.array([b_row[example] for example in ids[rows_a]])
    hand_b = mean_statistic(kb[rows_b][take].astype(float))
    groups = groups_by_id[rows_a]
    got = paired_bootstrap_distribution(a, b, B=300, rng=2, groups=groups)
    want = paired_bootstrap_distribution(
        mean_statistic(ka[rows_a].astype(float)), hand_b, B=300, rng=2, groups=groups
    )
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_paired_inputs_with_different_ids_are_a_clear_error() -> None:
    ids, _ca, ka, _cb, kb = _pair(n=20)
    a = mean_statistic(ka, example_ids=ids)
    other = ids.copy()
    other[[3, 5, 7, 9]] = ["x1", "x2", "x3", "x4"]
    b = mean_statistic(kb, example_ids=other)
    with pytest.raises(ValueError) as err:
        paired_bootstrap(a, b, B=10, rng=0, names=("baseline", "intermediate"))
    msg = str(err.value)
    assert (
        "4 only in 'baseline' (e.g. 'xnli-dev-000003', 'xnli-dev-000005', 'xnli-dev-000007', ...)"
        in msg
    )
    assert "4 only in 'intermediate' (e.g. 'x1', 'x2', 'x3', ...)" in msg
    dup = ids.copy()
    dup[1] = dup[0]
    with pytest.raises(
        ValueError, match=r"Run 'b' holds 1 duplicated example id\(s\) \(e.g. 'xnli-dev-000000'\)"
    ):
        align_pair(a, mean_statistic(kb, example_ids=dup))
    with pytest.raises(ValueError, match="Run 'b' has no example ids"):
        align_pair(a, mean_statistic(kb))
    with pytest.raises(ValueError, match="hold 20 and 19 examples"):
        align_pair(mean_statistic(ka), mean_statistic(kb[:19]))


def test_linear_and_generic_paired_paths_agree() -> None:
    _ids, ca, ka, cb, kb = _pair()
    fn = _batched_fn(15, "width", "l1", False)

    def generic(c: np.ndarray, k: np.ndarray) -> ArrayStatistic:
        arrays = {"confidence": c, "correct": k}
        return ArrayStatistic(fn, arrays, "expected_calibration_error", ("g",))

    fast = paired_bootstrap_distribution(
        calibration_statistic(ca, ka), calibration_statistic(cb, kb), B=200, rng=1
    )
    slow = paired_bootstrap_distribution(generic(ca, ka), generic(cb, kb), B=200, rng=1)
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-14)


def test_paired_groups_follow_the_alignment() -> None:
    ids, _ca, ka, _cb, kb = _pair(n=60)
    groups = np.arange(60) // 3  # three variants per source example
    a = mean_statistic(ka, example_ids=ids)
    perm = np.random.default_rng(4).permutation(60)
    b = mean_statistic(kb[perm], example_ids=ids[perm])
    # groups are given in a's order; b's order must not matter
    one = paired_bootstrap(a, b, B=200, rng=2, groups=groups).iloc[0]
    two = paired_bootstrap(
        a, mean_statistic(kb, example_ids=ids), B=200, rng=2, groups=groups
    ).iloc[0]
    assert (one.ci_low, one.ci_high) == pytest.approx((two.ci_low, two.ci_high), rel=1e-12)
    assert one.n_groups == 20
    with pytest.raises(ValueError, match=r"groups.*shape \(60,\)"):
        paired_bootstrap(a, b, B=10, rng=0, groups=groups[:10])


def test_progress_bar_counts_every_resample(monkeypatch: pytest.MonkeyPatch) -> None:
    from xcal.stats import _progress, bootstrap

    bars: list[_progress.ChunkProgress] = []

    class Recorded(_progress.ChunkProgress):
        def __enter__(self) -> _progress.ChunkProgress:
            bars.append(self)
            return super().__enter__()

    monkeypatch.setattr(bootstrap, "ChunkProgress", Recorded)
    s = mean_statistic(np.arange(50.0))
    quiet = bootstrap_distribution(s, B=200, rng=0, progress=False, max_memory=50 * 8 * 60)
    shown = bootstrap_distribution(s, B=200, rng=0, progress=True, max_memory=50 * 8 * 60)
    np.testing.assert_array_equal(quiet, shown)  # the bar does not touch the draws
    off, on = bars
    assert off._bar is None and off.done == 200
    # several chunks (max_memory), all counted, and the bar shown reached the total
    assert on._bar is not None and on.done == 200 and on.description == "bootstrap"
    assert on._bar.tasks[0].completed == 200 and on._bar.tasks[0].total == 200


def test_argument_errors() -> None:
    s = mean_statistic([1.0, 2.0])
    with pytest.raises(ValueError, match="`B` to be a positive int, got 0"):
        bootstrap_ci(s, B=0)
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci(s, method="basic")
    with pytest.raises(ValueError, match="needs `n`"):
        bootstrap_ci(lambda idx: idx.mean(axis=1))
    with pytest.raises(ValueError, match="groups"):
        bootstrap_distribution(lambda idx: idx.mean(axis=1), n=2, groups=[0, 1])


def test_bca_of_a_large_generic_statistic_uses_a_grouped_jackknife() -> None:
    # Above JACKKNIFE_MAX_UNITS units a generic statistic is left out in random
    # blocks; the acceleration, hence the interval, stays close to the exact one.
    x = np.random.default_rng(3).exponential(size=3000)
    generic = ArrayStatistic(lambda a, w: (w @ a["x"]) / w.sum(axis=1), {"x": x}, "mean", ("m",))
    grouped = bootstrap_ci(generic, method="bca", B=2000, rng=1).iloc[0]
    exact = bootstrap_ci(mean_statistic(x), method="bca", B=2000, rng=1).iloc[0]
    width = exact.ci_high - exact.ci_low
    assert abs(grouped.ci_low - exact.ci_low) < 0.02 * width
    assert abs(grouped.ci_high - exact.ci_high) < 0.02 * width
