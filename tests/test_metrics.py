"""Classification and calibration metrics: reference implementations, hand-worked cases, edges."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from netcal import metrics as netcal_metrics
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss as sk_brier
from sklearn.metrics import log_loss

import xcal.metrics._toplabel as toplabel
from xcal.metrics import (
    _binning,
    accuracy_score,
    brier_score_loss,
    calibration_error_parts,
    classwise_calibration_error,
    debiased_calibration_error,
    expected_calibration_error,
    log_softmax,
    max_calibration_error,
    nll_loss,
    reliability_table,
    rms_calibration_error,
    softmax,
    top_label,
    top_label_calibration_error,
    top_label_reliability_table,
)
from xcal.metrics._binning import (
    fold_overflow_bin,
    mass_bin_ids,
    reference_width_bin_ids,
    width_bin_ids,
    width_bin_keys,
)

# ---------------------------------------------------------------- data


def random_probs(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    y_prob = rng.dirichlet(np.ones(k), size=n)
    y_true = rng.integers(0, k, size=n)
    return y_prob, y_true


def realistic_probs(rng: np.random.Generator, n: int, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """An overconfident NLI-like classifier, with the awkward values real outputs contain.

    Accuracy around 75%, logits scaled by 3 (overconfident), some rows saturated
    so the top probability is exactly 1.0, some exact logit ties (confidence 0.5
    or 1/3), and some rows whose top probability sits exactly on a bin edge.
    """
    y_true = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y_true] += 1.5
    logits *= 3.0
    saturated = rng.uniform(size=n) < 0.05
    logits[saturated, y_true[saturated]] += 60.0  # exp(-60) vanishes: p == 1.0 exactly
    tied = rng.uniform(size=n) < 0.02
    logits[tied, :] = 0.0  # all classes equal: confidence exactly 1/k
    y_prob = softmax(logits, axis=1)
    on_edge = rng.uniform(size=n) < 0.03
    edge_rows = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.8, 0.1, 0.1], [0.4, 0.4, 0.2]])
    if k == 3:
        y_prob[on_edge] = edge_rows[rng.integers(0, len(edge_rows), size=int(on_edge.sum()))]
    return y_prob, y_true


# ------------------------------------------------------- reference: netcal


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15, 20])
@pytest.mark.parametrize("k", [3, 4, 10])
def test_ece_equals_netcal_random(n_bins: int, k: int) -> None:
    rng = np.random.default_rng(n_bins * 100 + k)
    y_prob, y_true = random_probs(rng, 3000, k)
    theirs = netcal_metrics.ECE(n_bins).measure(y_prob, y_true)
    assert expected_calibration_error(y_true, y_prob=y_prob, n_bins=n_bins) == pytest.approx(
        theirs, abs=1e-9
    )


@pytest.mark.parametrize("n_bins", [10, 15])
def test_ece_and_mce_equal_netcal_realistic(n_bins: int) -> None:
    rng = np.random.default_rng(7)
    y_prob, y_true = realistic_probs(rng, 20_000)
    assert (y_prob.max(axis=1) == 1.0).any()  # the data really has saturated rows
    theirs = netcal_metrics.ECE(n_bins).measure(y_prob, y_true)
    ours = expected_calibration_error(y_true, y_prob=y_prob, n_bins=n_bins)
    assert ours == pytest.approx(theirs, abs=1e-9)
    assert ours > 0.05  # overconfident by construction, so the comparison is not 0 == 0
    theirs_mce = netcal_metrics.MCE(n_bins).measure(y_prob, y_true)
    assert max_calibration_error(y_true, y_prob=y_prob, n_bins=n_bins) == pytest.approx(
        theirs_mce, abs=1e-9
    )


def test_ece_float32_bins_like_float64() -> None:
    # float32 inputs are binned with edges rounded to float32 exactly, so they land
    # where netcal (float64 comparisons) puts the same values.
    rng = np.random.default_rng(8)
    y_prob, y_true = realistic_probs(rng, 20_000)
    p32 = y_prob.astype(np.float32)
    p32 /= p32.sum(axis=1, keepdims=True)
    theirs = netcal_metrics.ECE(15).measure(p32.astype(np.float64), y_true)
    assert expected_calibration_error(y_true, y_prob=p32, n_bins=15) == pytest.approx(
        theirs, abs=1e-9
    )


def test_binary_core_equals_netcal_positive_class() -> None:
    # With two label values netcal measures the positive-class probability, not the
    # top label; the core on (p1, y) is that quantity.
    rng = np.random.default_rng(9)
    y_prob, y_true = random_probs(rng, 5000, 2)
    theirs = netcal_metrics.ECE(10).measure(y_prob, y_true)
    ours = top_label_calibration_error(y_prob[:, 1], y_true, n_bins=10)
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_logits_and_probabilities_agree() -> None:
    rng = np.random.default_rng(10)
    logits = rng.normal(scale=3.0, size=(4000, 3))
    y_true = rng.integers(0, 3, size=4000)
    for fn in (expected_calibration_error, max_calibration_error, rms_calibration_error):
        assert fn(y_true, logits=logits) == pytest.approx(
            fn(y_true, y_prob=softmax(logits, axis=1)), abs=1e-12
        )


# ------------------------------------------------ reference: scikit-learn


@pytest.mark.parametrize("k", [2, 3, 7])
def test_nll_equals_sklearn_log_loss(k: int) -> None:
    rng = np.random.default_rng(11 + k)
    y_prob, y_true = random_probs(rng, 2000, k)
    want = log_loss(y_true, y_prob, labels=list(range(k)))
    assert nll_loss(y_true, y_prob=y_prob) == pytest.approx(want, abs=1e-9)
    logits = rng.normal(scale=2.0, size=(2000, k))
    want_logits = log_loss(y_true, softmax(logits, axis=1), labels=list(range(k)))
    assert nll_loss(y_true, logits=logits) == pytest.approx(want_logits, abs=1e-9)


def test_nll_clips_like_sklearn() -> None:
    y_prob = np.array([[1.0, 0.0], [0.5, 0.5]])
    y_true = np.array([1, 0])
    eps = np.finfo(np.float64).eps
    # a confident mistake costs -log(eps), not infinity
    assert nll_loss(y_true, y_prob=y_prob) == pytest.approx((-np.log(eps) - np.log(0.5)) / 2)
    assert nll_loss(y_true, y_prob=y_prob) == pytest.approx(log_loss(y_true, y_prob), abs=1e-9)


def test_nll_from_huge_logits_is_exact() -> None:
    # softmax would round p_true to 0; the log-sum-exp form gives the exact 1000.
    assert nll_loss([1], logits=[[1000.0, 0.0]]) == pytest.approx(1000.0)
    assert nll_loss([0], logits=[[1000.0, 0.0]]) == pytest.approx(0.0, abs=1e-300)
    assert np.isfinite(log_softmax(np.array([[1e4, -1e4]]))).all()


@pytest.mark.parametrize("k", [3, 5])
def test_brier_equals_sklearn_multiclass(k: int) -> None:
    rng = np.random.default_rng(20 + k)
    y_prob, y_true = random_probs(rng, 2000, k)
    want = sk_brier(y_true, y_prob, labels=list(range(k)))
    assert brier_score_loss(y_true, y_prob=y_prob) == pytest.approx(want, abs=1e-9)


def test_brier_binary_is_twice_sklearn() -> None:
    rng = np.random.default_rng(30)
    y_prob, y_true = random_probs(rng, 2000, 2)
    want = sk_brier(y_true, y_prob[:, 1])
    assert brier_score_loss(y_true, y_prob=y_prob) == pytest.approx(2 * want, abs=1e-9)


@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_reliability_table_equals_sklearn_calibration_curve(n_bins: int) -> None:
    rng = np.random.default_rng(40 + n_bins)
    conf = rng.beta(4, 2, size=3000)  # continuous: no value exactly on an inner edge
    correct = rng.uniform(size=3000) < conf
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=n_bins, strategy="uniform")
    table = top_label_reliability_table(conf, correct, n_bins=n_bins)
    nonempty = table.count > 0
    np.testing.assert_allclose(table.accuracy[nonempty], prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(table.mean_confidence[nonempty], prob_pred, rtol=0, atol=1e-12)


def test_inner_edge_convention_differs_from_sklearn_on_purpose() -> None:
    # calibration_curve puts a value equal to an inner edge in the lower bin;
    # numpy.histogram and netcal (and xcal) put it in the upper bin.
    conf = np.array([0.5, 0.5])
    assert width_bin_ids(conf, 2).tolist() == [1, 1]
    assert np.histogram(conf, bins=2, range=(0, 1))[0].tolist() == [0, 2]
    assert np.searchsorted(np.linspace(0, 1, 3)[1:-1], conf).tolist() == [0, 0]


def test_accuracy_matches_argmax() -> None:
    rng = np.random.default_rng(50)
    y_prob, y_true = random_probs(rng, 1000, 4)
    assert accuracy_score(y_true, y_prob=y_prob) == np.mean(y_prob.argmax(axis=1) == y_true)


# ------------------------------------------------------------ hand-worked


def test_hand_worked_width_bins() -> None:
    conf = np.array([0.1, 0.3, 0.35, 0.8, 0.95])
    correct = np.array([0, 1, 0, 1, 1])
    # 5 bins of width 0.2: {0.1}, {0.3, 0.35}, {0.8, 0.95}
    gaps = np.array([0.1 - 0, 0.5 - (0.3 + 0.35) / 2, 1 - (0.8 + 0.95) / 2])
    weights = np.array([1 / 5, 2 / 5, 2 / 5])
    ece = 1 / 5 * 0.1 + 2 / 5 * 0.175 + 2 / 5 * 0.125
    assert top_label_calibration_error(conf, correct, n_bins=5) == pytest.approx(ece, abs=1e-15)
    assert ece == pytest.approx(0.14)
    assert top_label_calibration_error(conf, correct, n_bins=5, norm="max") == pytest.approx(
        0.175, abs=1e-15
    )
    rms = np.sqrt(np.sum(weights * gaps**2))
    assert rms == pytest.approx(np.sqrt(1 / 5 * 0.01 + 2 / 5 * 0.175**2 + 2 / 5 * 0.125**2))
    assert top_label_calibration_error(conf, correct, n_bins=5, norm="l2") == pytest.approx(
        rms, abs=1e-15
    )
    # debiased: bin {0.1} has one sample and is dropped; bin 1 has acc 1/2, n 2:
    # 2/5 * (0.175^2 - 0.5 * 0.5 / 1) < 0; bin 4 has acc 1: variance 0
    squared = 2 / 5 * (0.175**2 - 0.25) + 2 / 5 * (0.125**2 - 0.0)
    assert squared < 0
    assert top_label_calibration_error(
        conf, correct, n_bins=5, norm="l2", debias=True
    ) == pytest.approx(0.0)


def test_hand_worked_debiased_positive() -> None:
    # one bin of twenty at confidence 0.9 with ten right: gap 0.5 - 0.9 = -0.4,
    # variance of the bin accuracy 0.5 * 0.5 / (20 - 1)
    conf = np.full(20, 0.9)
    correct = np.repeat([1, 0], 10)
    want = np.sqrt(0.4**2 - 0.5 * 0.5 / 19)
    got = top_label_calibration_error(conf, correct, n_bins=1, norm="l2", debias=True)
    assert got == pytest.approx(want, abs=1e-15)


def test_hand_worked_mass_bins() -> None:
    conf = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    correct = np.array([0, 0, 1, 0, 1, 1])
    assert mass_bin_ids(conf, 3).tolist() == [0, 0, 1, 1, 2, 2]
    ece = 2 / 6 * abs(0 - 0.15) + 2 / 6 * abs(0.5 - 0.35) + 2 / 6 * abs(1 - 0.55)
    assert top_label_calibration_error(conf, correct, n_bins=3, binning="mass") == pytest.approx(
        ece, abs=1e-15
    )


def test_mass_bins_keep_tie_groups_together() -> None:
    # positions 0-2 are a tie at 0.2: its midpoint (1.5 of 4) is in bin 0 of 2
    assert mass_bin_ids(np.array([0.2, 0.2, 0.2, 0.9]), 2).tolist() == [0, 0, 0, 1]
    assert mass_bin_ids(np.array([0.9, 0.2, 0.9, 0.9]), 2).tolist() == [1, 0, 1, 1]
    # a tie spanning several bins empties the ones beyond its own
    ids = mass_bin_ids(np.array([0.1, 0.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]), 4)
    assert ids.tolist() == [0, 0, 2, 2, 2, 2, 2, 2]
    # no ties and n divisible by n_bins: exactly n / n_bins per bin
    rng = np.random.default_rng(60)
    assert np.bincount(mass_bin_ids(rng.uniform(size=150), 15)).tolist() == [10] * 15


def test_hand_worked_parts_and_classwise() -> None:
    y_prob = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    y_true = np.array([0, 1, 1])
    # top label: 0.8 right (bin 1 of 2), 0.6 wrong (bin 1), 0.7 right (bin 1):
    # one bin, acc 2/3, conf 0.7 -> overconfident by 0.7 - 2/3
    parts = calibration_error_parts(y_true, y_prob=y_prob, n_bins=2)
    assert parts.overconfidence == pytest.approx(0.7 - 2 / 3, abs=1e-15)
    assert parts.underconfidence == 0.0
    # classwise, 2 bins: class 0 probs 0.8 (y=0), 0.6 (y=1), 0.3 (y=1):
    #   bin 0 {0.3}: |0 - 0.3|; bin 1 {0.8, 0.6}: |1/2 - 0.7|  -> (0.3 + 2 * 0.2) / 3
    # class 1 probs 0.2 (no), 0.4 (yes), 0.7 (yes):
    #   bin 0 {0.2, 0.4}: |1/2 - 0.3|; bin 1 {0.7}: |1 - 0.7|  -> (2 * 0.2 + 0.3) / 3
    want = ((0.3 + 2 * 0.2) / 3 + (2 * 0.2 + 0.3) / 3) / 2
    assert classwise_calibration_error(y_true, y_prob=y_prob, n_bins=2) == pytest.approx(
        want, abs=1e-15
    )


def test_classwise_matches_per_class_netcal_binary() -> None:
    rng = np.random.default_rng(61)
    y_prob, y_true = random_probs(rng, 3000, 4)
    per_class = [
        netcal_metrics.ECE(10).measure(
            np.stack([1 - y_prob[:, j], y_prob[:, j]], axis=1), (y_true == j).astype(int)
        )
        for j in range(4)
    ]
    got = classwise_calibration_error(y_true, y_prob=y_prob, n_bins=10)
    assert got == pytest.approx(np.mean(per_class), abs=1e-9)


# ------------------------------------------------------------------ edges


def test_confidence_zero_and_one_land_in_first_and_last_bin() -> None:
    table = top_label_reliability_table([0.0, 1.0, 1.0], [0, 1, 1], n_bins=10)
    assert table.count.shape == (10,)  # no hidden extra bin
    assert table.count.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert top_label_calibration_error([0.0, 1.0, 1.0], [0, 1, 1]) == 0.0


def _at_and_around_edges(n_bins: int) -> np.ndarray:
    """Every edge, its float64 neighbours, i / n_bins, and random values, all in [0, 1]."""
    edges = np.linspace(0, 1, n_bins + 1)
    values = np.concatenate(
        [
            edges,
            np.nextafter(edges, -1),
            np.nextafter(edges, 2),
            np.arange(n_bins + 1) / n_bins,
            np.random.default_rng(n_bins).uniform(size=1000),
        ]
    )
    return np.clip(values, 0, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 10, 15, 20, 100, 5000])
def test_width_bins_equal_searchsorted_at_and_around_edges(dtype: Any, n_bins: int) -> None:
    values = _at_and_around_edges(n_bins).astype(dtype)
    np.testing.assert_array_equal(
        width_bin_ids(values, n_bins), reference_width_bin_ids(values, n_bins)
    )


def test_a_value_on_an_upper_edge_moves_up_when_its_product_rounds_down() -> None:
    # With 7 bins the edge 5/7 is 0.7142857142857142 in float64, and that times 7 is
    # 4.999999999999999: the candidate floor(c * 7) = 4 is one bin low, and the
    # upper-edge test (c >= upper edge of bin 4) must move it to bin 5, as
    # np.histogram does. The float64 value just below the edge stays in bin 4.
    edge = np.linspace(0, 1, 8)[5]
    assert edge == 0.7142857142857142 and int(edge * 7) == 4
    below = np.nextafter(edge, 0)
    conf = np.array([edge, below, 1.0])  # 1.0 is on the last upper edge: the last bin
    assert np.histogram(conf, bins=7, range=(0, 1))[0].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert width_bin_ids(conf, 7).tolist() == [5, 4, 6]
    # the arithmetic-edge path: keys 2 * bin + correct, 1.0 in the overflow key 2 * 7
    assert _bin_keys(conf, np.array([1, 0, 1]), 7).tolist() == [11, 8, 15]
    # and the metric sees it: the edge example (correct) and the one below (wrong)
    # are in different bins, so neither averages with the other
    table = top_label_reliability_table(conf[:2], [1, 0], n_bins=7)
    assert table.count.tolist() == [0, 0, 0, 0, 1, 1, 0]


def _keys_reference(values: np.ndarray, correct: np.ndarray, n_bins: int) -> np.ndarray:
    return 2 * reference_width_bin_ids(values, n_bins) + correct


def _bin_keys(values: np.ndarray, correct: np.ndarray, n_bins: int) -> np.ndarray:
    m = values.size
    scratch = (np.empty(m), np.empty(m), np.empty(m, dtype=bool))
    return width_bin_keys(values, correct, n_bins, out=np.empty(m, dtype=np.intp), scratch=scratch)


@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 10, 15, 20, 100, 5000])
def test_width_bin_keys_equal_searchsorted_at_and_around_edges(n_bins: int) -> None:
    values = _at_and_around_edges(n_bins)
    correct = np.random.default_rng(1).integers(0, 2, size=values.size).astype(bool)
    keys = _bin_keys(values, correct, n_bins)
    # the overflow bin n_bins is folded into the last bin by the caller
    folded = np.where(keys >= 2 * n_bins, keys - 2, keys)
    np.testing.assert_array_equal(folded, _keys_reference(values, correct, n_bins))
    per_key = np.bincount(keys, minlength=2 * n_bins + 2)
    np.testing.assert_array_equal(
        fold_overflow_bin(per_key, n_bins).ravel(),
        np.bincount(_keys_reference(values, correct, n_bins), minlength=2 * n_bins),
    )


def test_classification_ece_without_arithmetic_edges_uses_the_table_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # numpy could one day build linspace edges another way; the table path must
    # then give the same number
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=3, size=(5000, 3))
    y_true = rng.integers(0, 3, size=5000)
    expected = expected_calibration_error(y_true, logits=logits)
    monkeypatch.setattr(_binning, "_uniform_step", lambda n_bins: None)
    values = _at_and_around_edges(15)
    correct = np.random.default_rng(1).integers(0, 2, size=values.size).astype(bool)
    # the table path never uses the overflow bin
    np.testing.assert_array_equal(
        _bin_keys(values, correct, 15), _keys_reference(values, correct, 15)
    )
    assert expected_calibration_error(y_true, logits=logits) == expected


def test_empty_bins_do_not_count() -> None:
    conf = np.array([0.91, 0.93, 0.12])
    correct = np.array([1, 0, 0])
    # two non-empty bins of 15: gaps |1/2 - 0.92| and |0 - 0.12|
    assert top_label_calibration_error(conf, correct) == pytest.approx(
        2 / 3 * 0.42 + 1 / 3 * 0.12, abs=1e-15
    )
    assert top_label_calibration_error(conf, correct, norm="max") == pytest.approx(0.42)
    table = top_label_reliability_table(conf, correct)
    assert int(np.isnan(table.accuracy).sum()) == 13


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_single_example(binning: Any) -> None:
    for fn in (expected_calibration_error, max_calibration_error, rms_calibration_error):
        assert fn([1], y_prob=[[0.3, 0.7]], binning=binning) == pytest.approx(0.3)
        assert fn([0], y_prob=[[0.3, 0.7]], binning=binning) == pytest.approx(0.7)
    assert debiased_calibration_error([0], y_prob=[[0.3, 0.7]], binning=binning) == 0.0


def test_one_class() -> None:
    # a single column: every prediction is that class with confidence 1
    assert expected_calibration_error([0, 0, 0], y_prob=np.ones((3, 1))) == 0.0
    assert expected_calibration_error([0, 0], logits=[[2.0], [-1.0]]) == 0.0
    assert nll_loss([0, 0], y_prob=np.ones((2, 1))) == pytest.approx(0.0, abs=1e-15)
    assert brier_score_loss([0], y_prob=[[1.0]]) == 0.0
    # only one class present in y_true among three columns: still defined
    y_prob = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
    assert expected_calibration_error([0, 0], y_prob=y_prob, n_bins=1) == pytest.approx(
        abs(0.5 - 0.6)
    )


@pytest.mark.parametrize("k", [2, 3, 5, 40])
def test_top_label_matches_argmax_with_ties(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toplabel, "CHUNK_ROWS", 97)  # many blocks, ragged last one
    rng = np.random.default_rng(k)
    # few distinct values: many exact ties, which must go to the lowest index
    raw = rng.integers(1, 4, size=(1000, k)).astype(np.float64)
    y_prob = raw / raw.sum(axis=1, keepdims=True)
    conf, pred = top_label(y_prob)
    np.testing.assert_array_equal(pred, np.argmax(y_prob, axis=1))
    np.testing.assert_array_equal(conf, y_prob.max(axis=1))


@pytest.mark.parametrize("k", [3, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_ece_equals_core(k: int, dtype: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # the fused, chunked path must give what the plain definition gives
    monkeypatch.setattr(toplabel, "CHUNK_ROWS", 1000)
    rng = np.random.default_rng(70 + k)
    logits = (rng.normal(size=(5500, k)) * 2).astype(dtype)
    y_true = rng.integers(0, k, size=5500)
    y_prob = softmax(logits, axis=1)
    cases: list[dict[str, Any]] = [{"y_prob": y_prob}, {"logits": logits}]
    for kwargs in cases:
        probs = softmax(logits.astype(np.float64), axis=1)
        conf = probs.max(axis=1)
        correct = probs.argmax(axis=1) == y_true
        want = top_label_calibration_error(conf, correct)
        got = expected_calibration_error(y_true, **kwargs)
        tol = 1e-12 if dtype == np.float64 else 1e-5
        assert got == pytest.approx(want, abs=tol)


def test_reliability_table_sums_to_ece() -> None:
    rng = np.random.default_rng(80)
    y_prob, y_true = realistic_probs(rng, 5000)
    for binning in ("width", "mass"):
        table = reliability_table(y_true, y_prob=y_prob, binning=binning)
        nonempty = table.count > 0
        ece = np.sum(table.count[nonempty] * np.abs(table.gap[nonempty])) / table.count.sum()
        assert ece == pytest.approx(
            expected_calibration_error(y_true, y_prob=y_prob, binning=binning),
            abs=1e-12,
        )
        frame = table.to_frame()
        assert list(frame.columns) == [
            "bin_lower",
            "bin_upper",
            "count",
            "mean_confidence",
            "accuracy",
            "gap",
        ]


# ------------------------------------------------------------- validation

METRICS: list[Callable[..., Any]] = [
    accuracy_score,
    nll_loss,
    brier_score_loss,
    expected_calibration_error,
    max_calibration_error,
    rms_calibration_error,
    debiased_calibration_error,
    classwise_calibration_error,
    calibration_error_parts,
    reliability_table,
]


@pytest.mark.parametrize("fn", METRICS)
def test_exactly_one_of_probabilities_and_logits(fn: Callable[..., Any]) -> None:
    p = np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match="exactly one of `y_prob=`"):
        fn([0], y_prob=p, logits=p)
    with pytest.raises(ValueError, match="exactly one of `y_prob=`"):
        fn([0])


@pytest.mark.parametrize("fn", METRICS)
def test_logits_passed_as_probabilities_are_refused(fn: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match=r"did you mean to pass `logits=`"):
        fn([0, 1], y_prob=[[2.0, -1.0], [0.3, 0.1]])


@pytest.mark.parametrize("fn", METRICS)
def test_rows_not_summing_to_one_name_the_row(fn: Callable[..., Any]) -> None:
    y_prob = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.3]])
    with pytest.raises(ValueError, match=r"row 2 sums to 0\.5"):
        fn([0, 1, 1], y_prob=y_prob)


def test_bad_labels_and_arguments() -> None:
    p = np.array([[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(TypeError, match="integer class indices"):
        expected_calibration_error(np.array([0.0, 1.0]), y_prob=p)
    with pytest.raises(
        ValueError, match=r"`y_true` row 1 is 2, expected a class index in \[0, 2\)"
    ):
        expected_calibration_error([0, 2], y_prob=p)
    with pytest.raises(ValueError, match="`y_true` has 3 samples but the predictions have 2"):
        nll_loss([0, 1, 1], y_prob=p)
    with pytest.raises(ValueError, match="Expected `n_bins` to be a positive int, got 0"):
        expected_calibration_error([0, 1], y_prob=p, n_bins=0)
    with pytest.raises(ValueError, match="Expected `binning` to be one of"):
        expected_calibration_error([0, 1], y_prob=p, binning="quantile")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be finite"):
        nll_loss([0], logits=[[np.nan, 1.0]])
    with pytest.raises(ValueError, match=r"`logits` must be finite; found inf at index \(1, 0\)"):
        expected_calibration_error([0, 0], logits=[[1.0, 0.0], [np.inf, 1.0]])
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_classes\)"):
        expected_calibration_error([0], y_prob=[0.5, 0.5])
    with pytest.raises(ValueError, match="`correct` to be 0 or 1; row 1 is 2"):
        top_label_calibration_error([0.5, 0.5], [1, 2])
    with pytest.raises(ValueError, match="debias"):
        top_label_calibration_error([0.5], [1], debias=True)
    with pytest.raises(ValueError, match="`sample_weight` sums to 0"):
        top_label_calibration_error([0.5], [1], sample_weight=[0.0])


def test_no_warnings_on_ordinary_input() -> None:
    rng = np.random.default_rng(90)
    y_prob, y_true = realistic_probs(rng, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in METRICS:
            fn(y_true, y_prob=y_prob)
