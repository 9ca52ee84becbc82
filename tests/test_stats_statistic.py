"""Batched statistics equal the xcal.metrics functions and netcal on every resample."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from xcal.metrics import (
    accuracy_score,
    brier_score_loss,
    debiased_calibration_error,
    expected_calibration_error,
    max_calibration_error,
    nll_loss,
    rms_calibration_error,
    top_label_calibration_error,
)
from xcal.metrics.batched import batched_calibration_error
from xcal.stats import (
    ArrayStatistic,
    LinearStatistic,
    calibration_statistic,
    mean_statistic,
    metric_statistic,
)
from xcal.stats.resample import counts_from_indices


def _data(n: int = 400, c: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) * 2
    logits[np.arange(n), y] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, logits, probs


@pytest.mark.parametrize("source", ["y_prob", "logits"])
def test_estimates_equal_xcal_metrics(source: str) -> None:
    y, logits, probs = _data()
    kw: dict[str, Any] = {"y_prob": probs} if source == "y_prob" else {"logits": logits}
    pairs = [
        ("accuracy_score", accuracy_score(y, **kw)),
        ("nll_loss", nll_loss(y, **kw)),
        ("brier_score_loss", brier_score_loss(y, **kw)),
        ("expected_calibration_error", expected_calibration_error(y, **kw)),
        ("rms_calibration_error", rms_calibration_error(y, **kw)),
        ("max_calibration_error", max_calibration_error(y, **kw)),
        ("debiased_calibration_error", debiased_calibration_error(y, **kw)),
    ]
    for name, expected in pairs:
        got = metric_statistic(name, y, **kw).estimate()
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15), name
    for binning in ("width", "mass"):
        got = metric_statistic("ece", y, n_bins=10, binning=binning, **kw).estimate()
        want = expected_calibration_error(y, n_bins=10, binning=binning, **kw)
        assert got == pytest.approx(want, rel=1e-12), binning


def test_ece_equals_netcal() -> None:
    from netcal.metrics import ECE

    y, _, probs = _data(n=1000, seed=4)
    ours = metric_statistic("ece", y, y_prob=probs, n_bins=15).estimate()
    assert ours == pytest.approx(ECE(bins=15).measure(probs, y), rel=1e-10)


def test_ece_by_hand() -> None:
    # 10 bins of width 0.1. Bin [0.3, 0.4): 0.35, 0.35 (one right): gap |0.5 - 0.35|;
    # bin [0.9, 1]: 0.95, 1.0, 0.9 (all right): gap |1 - 0.95|; N = 5.
    s = calibration_statistic([0.35, 0.35, 0.95, 1.0, 0.9], [1, 0, 1, 1, 1], n_bins=10)
    assert s.estimate() == pytest.approx(2 / 5 * 0.15 + 3 / 5 * 0.05)
    # weights: drop the second example, double the last
    w = np.array([[1.0, 0.0, 1.0, 1.0, 2.0]])
    # bin 3: 0.35 right: |1 - 0.35| = 0.65 with weight 1; bin 9: 0.95, 1, 0.9, 0.9 all right:
    # |1 - 3.75/4| = 0.0625 with weight 4; N = 5
    assert s.on_weights(w)[0] == pytest.approx(1 / 5 * 0.65 + 4 / 5 * 0.0625)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("binning", ["width", "mass"])
def test_resamples_equal_batched_and_plain_metric(norm: Any, binning: Any) -> None:
    y, logits, _ = _data(n=300, seed=2)
    conf = 1 / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)
    correct = logits.argmax(axis=1) == y
    stat = calibration_statistic(conf, correct, n_bins=12, binning=binning, norm=norm)
    assert isinstance(stat, LinearStatistic if binning == "width" else ArrayStatistic)
    idx = np.random.default_rng(5).integers(0, 300, size=(40, 300))
    counts = counts_from_indices(idx.copy(), 300)
    got = stat.on_weights(counts)
    want = batched_calibration_error(
        conf, correct, indices=idx, n_bins=12, binning=binning, norm=norm
    )
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    for r in range(0, 40, 13):
        plain = top_label_calibration_error(
            conf[idx[r]], correct[idx[r]], n_bins=12, binning=binning, norm=norm
        )
        assert got[r] == pytest.approx(plain, rel=1e-12, abs=1e-15)


def test_confidence_on_a_bin_edge_goes_up_like_np_histogram() -> None:
    # 0.5 is the edge between the two bins: it belongs to the upper one, 1.0 to the last
    s = calibration_statistic([0.5, 1.0, 0.25], [0, 1, 1], n_bins=2)
    want = top_label_calibration_error([0.5, 1.0, 0.25], [0, 1, 1], n_bins=2)
    assert s.estimate() == pytest.approx(want)
    # by hand: bin 0 = {0.25 right}: |1 - 0.25|; bin 1 = {0.5 wrong, 1.0 right}: |0.5 - 0.75|
    assert want == pytest.approx(1 / 3 * 0.75 + 2 / 3 * 0.25)


def test_mean_statistic_weights_and_jackknife() -> None:
    s = mean_statistic([1.0, 2.0, 6.0])
    assert s.estimate() == 3.0
    np.testing.assert_allclose(
        s.on_weights(np.array([[0.0, 1.0, 1.0], [3.0, 0.0, 0.0]])), [4.0, 1.0]
    )
    # leave-one-out means: (2+6)/2, (1+6)/2, (1+2)/2
    np.testing.assert_allclose(s.jackknife(np.arange(3), 3, 10), [4.0, 3.5, 1.5])
    # leave-one-group-out with groups {0, 1} and {2}: 6 and 1.5
    np.testing.assert_allclose(s.jackknife(np.array([0, 0, 1]), 2, 10), [6.0, 1.5])


def test_linear_and_generic_jackknife_agree() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    lin = mean_statistic(x)
    gen = ArrayStatistic(lambda a, w: (w @ a["x"]) / w.sum(axis=1), {"x": x}, "mean", ("m",))
    codes = rng.integers(0, 7, 50)
    np.testing.assert_allclose(lin.jackknife(codes, 7, 3), gen.jackknife(codes, 7, 3), rtol=1e-12)


def test_take_and_pooled() -> None:
    s = mean_statistic([1.0, 2.0, 3.0], example_ids=["a", "b", "c"])
    t = s.take(np.array([2, 0]))
    assert t.example_ids is not None and list(t.example_ids) == ["c", "a"]
    assert t.estimate() == 2.0
    pooled = s.pooled(mean_statistic([5.0, 5.0, 5.0]))
    assert pooled.n == 6 and pooled.estimate() == pytest.approx(21 / 6)
    with pytest.raises(ValueError, match="Cannot pool"):
        s.pooled(calibration_statistic([0.5, 0.6, 0.7], [1, 0, 1]))


def test_bad_inputs_say_what_and_where() -> None:
    with pytest.raises(ValueError, match=r"confidence.*1.5 at index 1"):
        calibration_statistic([0.5, 1.5], [1, 0])
    with pytest.raises(ValueError, match=r"correct.*2 at index 0"):
        calibration_statistic([0.5, 0.5], [2, 0])
    with pytest.raises(ValueError, match="n_bins"):
        calibration_statistic([0.5], [1], n_bins=0)
    with pytest.raises(ValueError, match="exactly one"):
        metric_statistic("nll", [0, 1], y_prob=[[1, 0], [0, 1]], logits=[[1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\) \(5 at index 1\)"):
        metric_statistic("accuracy", [0, 5], logits=[[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(KeyError, match="unknown metric 'f2'"):
        metric_statistic("f2", scores=[1.0])
    with pytest.raises(ValueError, match=r"scores.*nan at index 1"):
        mean_statistic([1.0, np.nan])
    with pytest.raises(ValueError, match="example_ids"):
        mean_statistic([1.0, 2.0], example_ids=["a"])


def test_all_zero_columns_are_skipped_without_changing_values() -> None:
    # three classes: no confidence below 1/3, so the low bins are empty for every
    # example and left out of the matrix product
    y, _, probs = _data(n=200, seed=8)
    stat = metric_statistic("rms_calibration_error", y, y_prob=probs, n_bins=15)
    assert isinstance(stat, LinearStatistic)
    assert len(stat._columns) < stat.contributions.shape[1]
    w = np.random.default_rng(0).integers(0, 3, size=(5, 200)).astype(float)
    np.testing.assert_allclose(stat.sums(w), w @ stat.contributions, rtol=1e-12, atol=1e-12)


def test_debiased_width_error_is_linear_and_equals_the_batched_metric() -> None:
    # Per-bin weight totals, confidence sums and correct sums are all it needs,
    # so resamples (and the pooled bootstrap) are one matrix product.
    y, logits, _ = _data(n=300, seed=3)
    conf = 1 / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)
    correct = logits.argmax(axis=1) == y
    stat = calibration_statistic(conf, correct, n_bins=12, norm="l2", debias=True)
    assert isinstance(stat, LinearStatistic)
    idx = np.random.default_rng(6).integers(0, 300, size=(40, 300))
    got = stat.on_weights(counts_from_indices(idx.copy(), 300))
    want = batched_calibration_error(conf, correct, indices=idx, n_bins=12, norm="l2", debias=True)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    plain = top_label_calibration_error(conf, correct, n_bins=12, norm="l2", debias=True)
    assert stat.estimate() == pytest.approx(plain, rel=1e-12, abs=1e-15)
