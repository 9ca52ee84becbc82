"""Pooled differences over languages by a cluster bootstrap of source items (xcal.stats.pooled).

The simulations draw parallel data (tests/_parallel_sim.py): 14 languages of
the same source items in premise groups of three, gold classes 80/15/5, item
and group difficulty shared by every language and both systems, and two
Dirichlet-miscalibrated systems whose noise is correlated but not equal.

Monte Carlo tolerances. With S datasets the observed coverage of a 95%
interval has standard error sqrt(0.95 * 0.05 / S): 1.09 points for S = 400,
so the band 93-97% is 1.8 standard errors wide on each side. A procedure of
true coverage 95% lands outside it with probability about 7%; the seeds are
fixed, so a run is reproducible, and a procedure of true coverage 90% lands
inside with probability 0.3% (2.7 standard errors), which is what the band
is there to catch (iid intervals on clustered data cover 85-87%). The
rejection rate under the null uses S = 1,000 (standard error 0.69 points at
5%): 6.5% is 2.2 standard errors above the level.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from xcal.stats import (
    adjust_pvalues,
    calibration_statistic,
    mean_statistic,
    paired_bootstrap,
    pooled_difference,
    pooled_differences,
)

sys.path.insert(0, str(Path(__file__).parent))
from _parallel_sim import (
    DirichletSystem,
    ParallelDesign,
    draw,
    metrics_of,
    population,
    top_label,
)

DESIGN = ParallelDesign()
SYSTEM = DirichletSystem(
    strength=2.5, W=((1.8, 0.2, 0.0), (0.0, 1.5, 0.3), (0.1, 0.0, 1.2)), b=(0.3, -0.1, -0.2)
)
BASELINE = DirichletSystem(
    strength=2.8, W=((1.4, 0.0, 0.0), (0.2, 1.2, 0.0), (0.0, 0.2, 1.0)), b=(0.2, 0.0, 0.1)
)
# The baseline sharpened until its population L2 calibration error, averaged
# over the 14 languages, equals the system's (bisection on the population;
# test_null_systems_have_equal_population_calibration checks it).
NULL_BASELINE = replace(BASELINE, temperature=0.4754)


def _statistic(metric: str, probs: np.ndarray, y: np.ndarray):
    conf, correct = top_label(probs, y)
    if metric == "accuracy":
        return mean_statistic(correct.astype(np.float64))
    if metric == "brier":
        return mean_statistic(((probs - np.eye(probs.shape[1])[y]) ** 2).sum(axis=1))
    if metric == "debiased":
        return calibration_statistic(conf, correct, norm="l2", debias=True)
    return calibration_statistic(conf, correct)  # "ece"


def _cells(data: dict, metric: str, languages: int = 14) -> dict:
    probs, y = data["probs"], data["y"]
    return {
        lang: (_statistic(metric, probs[0, lang], y), _statistic(metric, probs[1, lang], y))
        for lang in range(languages)
    }


# ------------------------------------------------------------------ exact behaviour


@pytest.mark.parametrize("metric", ["ece", "debiased"])
def test_one_cell_equals_the_paired_cluster_bootstrap(metric: str) -> None:
    data = draw(np.random.default_rng(0), DESIGN, (SYSTEM, BASELINE), 60)
    a, b = _cells(data, metric, 1)[0]
    res = pooled_difference({"de": (a, b)}, {"de": data["group"]}, B=500, rng=3)
    row = paired_bootstrap(a, b, B=500, rng=3, groups=data["group"]).iloc[0]
    assert res.estimate == pytest.approx(row.estimate, abs=1e-15)
    assert (res.ci_low, res.ci_high) == pytest.approx((row.ci_low, row.ci_high), abs=1e-12)
    assert res.p_value == pytest.approx(row.p_value)
    assert res.cell_ci_low[0] == pytest.approx(row.ci_low, abs=1e-12)
    assert res.n_units == 60 and res.n_examples == 180


def test_the_same_item_in_several_languages_is_one_item() -> None:
    # Identical cells under shared item ids: the pooled replicates are the one
    # cell's, not averages of independent draws (which would be sqrt(4) narrower).
    rng = np.random.default_rng(1)
    s = rng.random(200) < 0.8
    t = rng.random(200) < 0.7
    ids = np.arange(200)
    cells = {lang: (mean_statistic(s), mean_statistic(t)) for lang in "abcd"}
    shared = pooled_difference(cells, {lang: ids for lang in cells}, B=800, rng=0)
    single = pooled_difference({"a": cells["a"]}, {"a": ids}, B=800, rng=0)
    np.testing.assert_allclose(shared.distribution, single.distribution, rtol=1e-12)
    separate = pooled_difference(
        cells, {lang: [f"{lang}{i}" for i in ids] for lang in cells}, B=800, rng=0
    )
    assert separate.std_error == pytest.approx(shared.std_error / 2, rel=0.15)


def test_estimate_is_the_weighted_mean_of_cell_differences() -> None:
    rng = np.random.default_rng(2)
    cells, units = {}, {}
    for lang, n in (("de", 50), ("sw", 80), ("ur", 30)):
        cells[lang] = (mean_statistic(rng.random(n)), mean_statistic(rng.random(n)))
        units[lang] = np.arange(n)
    diffs = np.array([a.estimate() - b.estimate() for a, b in cells.values()])
    for weights, w in (("equal", np.ones(3) / 3), ("n", np.array([50, 80, 30]) / 160)):
        res = pooled_difference(cells, units, weights=weights, B=50, rng=0)
        assert res.estimate == pytest.approx(float(w @ diffs))
        np.testing.assert_allclose(res.cell_estimate, diffs)
    two_level = pooled_difference(cells, units, B=400, rng=0, resample_cells=True)
    assert two_level.std_error > pooled_difference(cells, units, B=400, rng=0).std_error


def test_debiased_replicates_take_their_errors_on_the_squared_scale(monkeypatch) -> None:
    # Worked from the resample counts: D the debiased squared error, P the
    # plug-in one, D* a resample's debiased one; replicate sqrt(max(D - (D* - P), 0))
    # for each system, the cell's replicates then centred on the estimate.
    from xcal.metrics._binning import squared_l2_error
    from xcal.stats import pooled

    drawn: list[np.ndarray] = []

    def recording(*args, **kwargs):
        w = pooled_draw_counts(*args, **kwargs)
        drawn.append(w.copy())
        return w

    pooled_draw_counts = pooled.draw_counts
    monkeypatch.setattr(pooled, "draw_counts", recording)
    data = draw(np.random.default_rng(4), DESIGN, (SYSTEM, BASELINE), 50)
    a, b = _cells(data, "debiased", 1)[0]
    res = pooled_difference({"x": (a, b)}, {"x": data["group"]}, B=500, rng=0)
    w = np.vstack(drawn)
    assert w.shape == (500, 50)

    def replicates(stat) -> tuple[float, np.ndarray]:
        k = stat.contributions.shape[1] // 3
        total = stat.contributions.sum(axis=0)
        d = squared_l2_error(total[:k], total[k : 2 * k], total[2 * k :], debias=True)
        p = squared_l2_error(total[:k], total[k : 2 * k], total[2 * k :])
        per_unit = np.zeros((50, 3 * k))
        np.add.at(per_unit, data["group"], stat.contributions)
        s = w @ per_unit
        d_star = squared_l2_error(s[:, :k], s[:, k : 2 * k], s[:, 2 * k :], debias=True)
        assert p > d  # the plug-in is biased upward: the resamples aim above the estimate
        return float(np.sqrt(max(d, 0.0))), np.sqrt(np.maximum(d - (d_star - p), 0.0))

    (ea, ra), (eb, rb) = replicates(a), replicates(b)
    expected = ra - rb
    expected += (ea - eb) - expected.mean()
    assert res.estimate == pytest.approx(ea - eb, abs=1e-15)
    np.testing.assert_allclose(res.distribution, expected, rtol=0, atol=1e-12)
    assert res.distribution.mean() == pytest.approx(res.estimate, abs=1e-12)
    # binned ECE keeps the plain percentile replicates (no recentring)
    e_a, e_b = _cells(data, "ece", 1)[0]
    plain = pooled_difference({"x": (e_a, e_b)}, {"x": data["group"]}, B=500, rng=0)
    assert abs(plain.distribution.mean() - plain.estimate) > 1e-6


def test_single_and_paired_bootstraps_of_the_debiased_error_use_the_same_replicates() -> None:
    from xcal.metrics._binning import squared_l2_error
    from xcal.stats import bootstrap_distribution

    data = draw(np.random.default_rng(10), DESIGN, (SYSTEM, BASELINE), 40)
    a, b = _cells(data, "debiased", 1)[0]
    n, k = a.n, a.contributions.shape[1] // 3
    # the resamples xcal.stats draws: example indices gen.integers(0, n, (B, n))
    idx = np.random.default_rng(3).integers(0, n, size=(300, n))
    counts = np.stack([np.bincount(row, minlength=n) for row in idx]).astype(float)

    def by_hand(stat) -> np.ndarray:
        total = stat.contributions.sum(axis=0)
        parts = lambda x: (x[..., :k], x[..., k : 2 * k], x[..., 2 * k :])  # noqa: E731
        d, p = squared_l2_error(*parts(total), debias=True), squared_l2_error(*parts(total))
        d_star = squared_l2_error(*parts(counts @ stat.contributions), debias=True)
        return np.sqrt(np.maximum(d - (d_star - p), 0.0))

    single = bootstrap_distribution(a, B=300, rng=3)
    np.testing.assert_allclose(single, by_hand(a), rtol=0, atol=1e-12)
    row, res = paired_bootstrap(a, b, B=300, rng=3, return_result=True)
    expected = by_hand(a) - by_hand(b)
    expected += (a.estimate() - b.estimate()) - expected.mean()
    np.testing.assert_allclose(res.distribution, expected, rtol=0, atol=1e-12)
    assert (row.iloc[0].ci_low, row.iloc[0].ci_high) == tuple(np.quantile(expected, [0.025, 0.975]))


def test_errors_name_the_cell() -> None:
    a = mean_statistic([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="cell 'de': expected 3 unit labels"):
        pooled_difference({"de": (a, a)}, {"de": [0, 1]}, B=10)
    ece = calibration_statistic([0.5, 0.7, 0.9], [1, 0, 1])
    with pytest.raises(ValueError, match="cell 'sw': the two statistics measure different"):
        pooled_difference({"sw": (a, ece)}, {"sw": [0, 1, 2]}, B=10)
    with pytest.raises(ValueError, match="at least one cell"):
        pooled_difference({}, {}, B=10)
    with pytest.raises(ValueError, match="cell weights"):
        pooled_difference({"de": (a, a)}, {"de": [0, 1, 2]}, weights=[-1.0], B=10)


def test_pools_from_one_set_of_resamples_equal_each_pool_alone_on_parallel_data() -> None:
    data = draw(np.random.default_rng(5), DESIGN, (SYSTEM, BASELINE), 40)
    pools = {"all": [0, 1, 2, 3, 4, 5], "odd": [1, 3, 5], "pair": [0, 2]}
    for metric in ("accuracy", "ece", "debiased"):
        cells = _cells(data, metric, 6)
        units = {lang: data["group"] for lang in cells}
        many = pooled_differences(iter(cells.items()), units, pools, B=300, rng=7)
        assert list(many) == list(pools)
        for pool, members in pools.items():
            alone = pooled_difference(
                {m: cells[m] for m in members}, {m: units[m] for m in members}, B=300, rng=7
            )
            got = many[pool]
            assert got.cells == alone.cells == [str(m) for m in members]
            np.testing.assert_allclose(got.distribution, alone.distribution, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(got.cell_ci_low, alone.cell_ci_low, rtol=1e-12, atol=1e-15)
            assert (got.estimate, got.ci_low, got.ci_high, got.p_value) == pytest.approx(
                (alone.estimate, alone.ci_low, alone.ci_high, alone.p_value), abs=1e-12
            )


def test_pooled_differences_keeps_no_cell_it_has_read() -> None:
    # A findings worker streams every language's statistics through here; a
    # smooth ECE's rows are n x ~500, so holding them all was most of its memory.
    import gc
    import weakref

    data = draw(np.random.default_rng(6), DESIGN, (SYSTEM, BASELINE), 30)
    read: list[weakref.ref] = []
    alive_before: list[int] = []

    def cells():
        for lang in range(5):
            gc.collect()
            alive_before.append(sum(r() is not None for r in read))
            a = _statistic("ece", data["probs"][0, lang], data["y"])
            b = _statistic("ece", data["probs"][1, lang], data["y"])
            read.extend([weakref.ref(a), weakref.ref(b)])
            yield lang, (a, b)
            del a, b

    units = {lang: data["group"] for lang in range(5)}
    res = pooled_differences(cells(), units, {"all": list(range(5))}, B=50, rng=0)["all"]
    assert alive_before == [0, 0, 0, 0, 0]
    assert res.cells == ["0", "1", "2", "3", "4"] and np.isfinite(res.estimate)


def test_cells_past_the_memory_budget_are_resampled_in_passes_with_the_same_draws(
    monkeypatch,
) -> None:
    from xcal.stats import pooled

    data = draw(np.random.default_rng(8), DESIGN, (SYSTEM, BASELINE), 30)
    cells = _cells(data, "ece", 5)
    units = {lang: data["group"] for lang in cells}
    gen = np.random.default_rng(9)
    one_pass = pooled_difference(cells, units, B=300, rng=gen, resample_cells=True)
    after_one = gen.random()
    monkeypatch.setattr(pooled, "_PASS_BYTES", 1)  # a pass per cell
    gen = np.random.default_rng(9)
    passes = pooled_difference(cells, units, B=300, rng=gen, resample_cells=True)
    assert gen.random() == after_one  # the caller's generator is advanced as by one pass
    np.testing.assert_array_equal(passes.cell_distribution, one_pass.cell_distribution)
    np.testing.assert_array_equal(passes.distribution, one_pass.distribution)


def test_pooled_differences_errors_name_the_pool_or_cell() -> None:
    a = mean_statistic([1.0, 0.0, 1.0])
    units = {"de": [0, 1, 2], "sw": [0, 1, 2]}
    with pytest.raises(ValueError, match="pool 'x': no cell named \\['fr'\\]"):
        pooled_differences(iter([]), units, {"x": ["de", "fr"]}, B=10)
    with pytest.raises(ValueError, match="in the order of `units`"):
        pooled_differences(iter([("sw", (a, a)), ("de", (a, a))]), units, {"x": ["de"]}, B=10)
    with pytest.raises(ValueError, match="units for each of the 1 cells, got 2"):
        pooled_differences(iter([("de", (a, a))]), units, {"x": ["de"]}, B=10)


# ------------------------------------------------------------------ simulations


@pytest.fixture(scope="module")
def truth() -> dict[str, float]:
    pop = population(DESIGN, (SYSTEM, BASELINE))
    return {
        "accuracy": float((pop["accuracy"][0] - pop["accuracy"][1]).mean()),
        "brier": float((pop["brier"][0] - pop["brier"][1]).mean()),
        "debiased": float((pop["l2"][0] - pop["l2"][1]).mean()),
    }


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["accuracy", "debiased", "brier"])
def test_pooled_interval_covers_the_population_difference(metric: str, truth) -> None:
    # 14 languages x 600 items (200 premise groups): at 150 items per language
    # the debiased L2 error is itself biased (0.070 for a population 0.082), so
    # no interval around it can cover; at 600 its bias is 0.1 standard errors.
    reps, groups = 400, 200
    rng = np.random.default_rng({"accuracy": 11, "debiased": 12, "brier": 13}[metric])
    covered = 0
    widths = []
    for r in range(reps):
        data = draw(rng, DESIGN, (SYSTEM, BASELINE), groups)
        units = {lang: data["group"] for lang in range(14)}
        res = pooled_difference(_cells(data, metric), units, B=400, rng=r)
        covered += res.ci_low <= truth[metric] <= res.ci_high
        widths.append(res.ci_high - res.ci_low)
    coverage = covered / reps
    print(f"{metric}: coverage {coverage:.3f}, mean width {np.mean(widths):.4f}")
    # The debiased interval is conservative: 96.9% over 2,000 other datasets
    # (seeds 100 and 101; misses 0.45% below, 2.6% above), because its
    # resampling errors D* - P come from a world whose bins' gaps are the
    # sample's, larger than the population's. At a true 96.9% an upper bound of
    # 97% would fail every other seed; 98% is still 2 standard errors above.
    upper = 0.98 if metric == "debiased" else 0.97
    assert 0.93 <= coverage <= upper


@pytest.mark.slow
def test_per_language_debiased_intervals_cover_the_population_values() -> None:
    # Each language's interval for each system's debiased L2 error and for their
    # difference, 600 items per language in premise groups (S = 100 datasets x 14
    # languages; a dataset's languages share items, so the intervals are not
    # independent). Measured over 300 other datasets (seeds 200, 201): the
    # baseline, whose population error is small (0.013-0.042), 97.6-98.3%
    # (the naive replicates sqrt(D*): 89%); the system (0.063-0.093) 93.6-94.6%
    # (naive: the same); differences 96.8-97.3% (naive: the same). Near zero the
    # interval is conservative: its lower end is often the floor 0.
    from xcal.stats import bootstrap_ci

    pop = population(DESIGN, (SYSTEM, BASELINE))
    diff_truth = pop["l2"][0] - pop["l2"][1]
    rng = np.random.default_rng(14)
    values = np.zeros(2)
    differences = 0
    reps = 100
    for r in range(reps):
        data = draw(rng, DESIGN, (SYSTEM, BASELINE), 200)
        cells = _cells(data, "debiased")
        res = pooled_difference(cells, {lang: data["group"] for lang in cells}, B=400, rng=r)
        inside = (res.cell_ci_low <= diff_truth) & (diff_truth <= res.cell_ci_high)
        differences += int(inside.sum())
        for lang, pair in cells.items():
            for s, stat in enumerate(pair):
                row = bootstrap_ci(stat, B=400, rng=r, groups=data["group"]).iloc[0]
                values[s] += bool(row.ci_low <= pop["l2"][s][lang] <= row.ci_high)
    system, baseline = values / (14 * reps)
    diff_rate = differences / (14 * reps)
    print(
        f"per-language coverage: system {system:.3f}, baseline {baseline:.3f}, "
        f"differences {diff_rate:.3f}"
    )
    assert 0.92 <= system <= 0.97
    assert 0.93 <= baseline <= 0.99
    assert 0.93 <= diff_rate <= 0.985


def test_null_systems_have_equal_population_calibration() -> None:
    pop = population(DESIGN, (SYSTEM, NULL_BASELINE), n_groups=10_000)
    assert abs(float((pop["l2"][0] - pop["l2"][1]).mean())) < 0.002
    assert abs(float((pop["accuracy"][0] - pop["accuracy"][1]).mean())) > 0.01  # not exchangeable


@pytest.mark.slow
def test_rejection_rate_under_equal_population_calibration() -> None:
    reps, groups = 1000, 100
    rng = np.random.default_rng(21)
    rejected = 0
    for r in range(reps):
        data = draw(rng, DESIGN, (SYSTEM, NULL_BASELINE), groups)
        units = {lang: data["group"] for lang in range(14)}
        res = pooled_difference(_cells(data, "debiased"), units, B=200, rng=r)
        rejected += res.p_value < 0.05
    rate = rejected / reps
    print(f"rejection rate under the null: {rate:.3f}")
    assert rate <= 0.065


def _planted(rng: np.random.Generator, temperatures: np.ndarray, groups: int) -> dict:
    """The baseline, and the system: the baseline's own logits at a per-language temperature."""
    base = draw(rng, DESIGN, (replace(SYSTEM, temperature=0.7),), groups)  # overconfident
    log_p = np.log(base["probs"][0])
    z = log_p / temperatures[:, None, None]
    sys_probs = np.exp(z - z.max(axis=2, keepdims=True))
    sys_probs /= sys_probs.sum(axis=2, keepdims=True)
    return {**base, "probs": np.stack([sys_probs, base["probs"][0]])}


@pytest.fixture(scope="module")
def planted_temperatures() -> np.ndarray:
    """Per-language temperatures lowering the population ECE by 1.5 points.

    The overconfident system's ECE falls as its temperature rises from 1 up to
    the temperature of least ECE, then grows again: bisection within [1, that].
    """
    data = _planted(np.random.default_rng(99), np.ones(14), 10_000)
    y, log_p = data["y"], np.log(data["probs"][1])

    def delta(t: np.ndarray) -> np.ndarray:
        z = log_p / t[:, None, None]
        p = np.exp(z - z.max(axis=2, keepdims=True))
        p /= p.sum(axis=2, keepdims=True)
        ece = metrics_of(np.stack([p, data["probs"][1]]), y)["ece"]
        return ece[0] - ece[1]

    grid = np.linspace(1.0, 2.5, 31)
    values = np.stack([delta(np.full(14, t)) for t in grid])
    lo, hi = np.ones(14), grid[values.argmin(axis=0)]
    assert (values.min(axis=0) < -0.015).all()
    for _ in range(25):
        mid = (lo + hi) / 2
        too_far = delta(mid) < -0.015
        hi = np.where(too_far, mid, hi)
        lo = np.where(too_far, lo, mid)
    return (lo + hi) / 2


def _planted_run(temperatures: np.ndarray, metric: str, groups: int, seed: int, B: int):
    """One planted dataset: (the pooled row finds the effect, cells significant after Holm)."""
    data = _planted(np.random.default_rng(seed), temperatures, groups)
    units = {lang: data["group"] for lang in range(14)}
    res = pooled_difference(_cells(data, metric), units, B=B, rng=seed)
    cells = adjust_pvalues(res.cell_p_value, "holm")
    return bool(res.p_value < 0.05 and res.ci_high < 0), int((cells < 0.05).sum())


@pytest.mark.slow
def test_planted_pooled_effect_at_600_per_cell_found_by_the_pooled_row_and_no_cell(
    planted_temperatures,
) -> None:
    # The population ECE 1.5 points lower in each of 14 languages (debiased L2
    # error: 1.27 points lower), 600 examples per language as the round-2 study
    # evaluates. Measured over 140 other datasets (seeds 1000-1139): pooled
    # power 0.81, some cell after Holm 0.7%; 900 per language: 0.95 and 0%.
    # With S = 100 the power's standard error is 0.04: 0.7 is 2.7 below.
    outcomes = [
        _planted_run(planted_temperatures, "debiased", 200, seed, B=1000) for seed in range(100)
    ]
    pooled_power = np.mean([f for f, _ in outcomes])
    any_cell = np.mean([c > 0 for _, c in outcomes])
    print(
        f"planted -1.5 points, 600 per cell: pooled power {pooled_power:.2f}, "
        f"some cell after Holm {any_cell:.2f}"
    )
    assert pooled_power >= 0.7
    assert any_cell <= 0.05


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the issue's example size, infeasible: measured over 40 datasets at 37-39 examples "
    "per cell, the plug-in ECE difference averages -0.5 points for a population -1.5 (its "
    "small-n bias swamps the effect), pooled power 7% (debiased L2 error: -0.47 for -1.27, "
    "power 7%; Brier 72%), and with 13 premise groups per cell some cell rejects after Holm "
    "in 20-40% of datasets; the 600-per-cell version above passes",
)
def test_planted_pooled_effect_found_by_the_pooled_row_and_no_cell(planted_temperatures) -> None:
    check = _planted(np.random.default_rng(7), planted_temperatures, 10_000)
    ece = metrics_of(check["probs"], check["y"])["ece"]
    np.testing.assert_allclose(ece[0] - ece[1], -0.015, atol=0.003)  # in every language

    def run(seed: int) -> tuple[bool, int]:
        data = _planted(np.random.default_rng(seed), planted_temperatures, 13)
        n = 37
        data = {**data, "probs": data["probs"][:, :, :n], "y": data["y"][:n]}
        units = {lang: data["group"][:n] for lang in range(14)}
        res = pooled_difference(_cells(data, "ece"), units, B=2000, rng=seed)
        cells = adjust_pvalues(res.cell_p_value, "holm")
        return bool(res.p_value < 0.05 and res.ci_high < 0), int((cells < 0.05).sum())

    found, cells_found = run(0)
    assert found and cells_found == 0
    # power over 100 datasets
    outcomes = [run(seed) for seed in range(1, 101)]
    pooled_power = np.mean([f for f, _ in outcomes])
    any_cell = np.mean([c > 0 for _, c in outcomes])
    print(
        f"planted -1.5 points: pooled power {pooled_power:.2f}, some cell after Holm {any_cell:.2f}"
    )
    assert pooled_power >= 0.8
    assert any_cell <= 0.1
