"""Property tests (hypothesis) and simulations for the calibration estimators."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xcal.metrics import (
    debiased_calibration_error,
    expected_calibration_error,
    top_label_calibration_error,
    top_label_calibration_error_parts,
)
from xcal.metrics._binning import mass_bin_ids, reference_width_bin_ids, width_bin_ids
from xcal.metrics._validation import Binning

binnings = st.sampled_from(["width", "mass"])


@st.composite
def pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 60))
    # a mix of exact edge values, 0, 1 and arbitrary floats, with repeats
    special = st.sampled_from([0.0, 1.0, 0.5, 0.3, 0.6, 0.7, 1 / 3, 2 / 3])
    values = st.one_of(special, st.floats(0, 1, allow_nan=False))
    conf = draw(arrays(np.float64, n, elements=values))
    correct = draw(arrays(np.bool_, n))
    return conf, correct


@settings(max_examples=150, deadline=None)
@given(data=pairs(), n_bins=st.integers(1, 20), binning=binnings)
def test_bounds_and_ordering(
    data: tuple[np.ndarray, np.ndarray], n_bins: int, binning: Binning
) -> None:
    conf, correct = data
    ece = top_label_calibration_error(conf, correct, n_bins=n_bins, binning=binning)
    rms = top_label_calibration_error(conf, correct, n_bins=n_bins, binning=binning, norm="l2")
    mce = top_label_calibration_error(conf, correct, n_bins=n_bins, binning=binning, norm="max")
    debiased = top_label_calibration_error(
        conf, correct, n_bins=n_bins, binning=binning, norm="l2", debias=True
    )
    tol = 1e-12
    assert 0 <= ece <= 1 and 0 <= mce <= 1 and 0 <= rms <= 1
    # weighted mean |gap| <= root mean square gap <= max |gap| (Jensen)
    assert ece <= rms + tol and rms <= mce + tol
    # the debiased estimate only subtracts non-negative variance terms
    assert 0 <= debiased <= rms + tol
    over, under = top_label_calibration_error_parts(conf, correct, n_bins=n_bins, binning=binning)
    assert over >= 0 and under >= 0 and over + under == pytest.approx(ece, abs=tol)


@settings(max_examples=100, deadline=None)
@given(data=pairs(), n_bins=st.integers(1, 20), binning=binnings, seed=st.integers(0, 2**32 - 1))
def test_invariant_to_shuffling(
    data: tuple[np.ndarray, np.ndarray], n_bins: int, binning: Binning, seed: int
) -> None:
    conf, correct = data
    perm = np.random.default_rng(seed).permutation(conf.shape[0])
    for norm in ("l1", "l2", "max"):
        a = top_label_calibration_error(conf, correct, n_bins=n_bins, binning=binning, norm=norm)
        b = top_label_calibration_error(
            conf[perm],
            correct[perm],
            n_bins=n_bins,
            binning=binning,
            norm=norm,
        )
        assert a == pytest.approx(b, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    conf=arrays(np.float64, st.integers(1, 80), elements=st.floats(0, 1, allow_nan=False)),
    n_bins=st.integers(1, 30),
)
def test_mass_bins_are_monotone_and_keep_ties(conf: np.ndarray, n_bins: int) -> None:
    ids = mass_bin_ids(conf, n_bins)
    assert ids.min() >= 0 and ids.max() < n_bins
    order = np.argsort(conf, kind="stable")
    assert (np.diff(ids[order]) >= 0).all()  # a threshold rule: bins follow confidence
    for value in np.unique(conf):
        assert np.unique(ids[conf == value]).size == 1  # ties never split


@settings(max_examples=150, deadline=None)
@given(
    conf=arrays(
        st.sampled_from([np.float32, np.float64]),
        st.integers(1, 50),
        elements=st.floats(0, 1, allow_nan=False, width=32),
    ),
    n_bins=st.integers(1, 200),
)
def test_width_bins_equal_searchsorted(conf: np.ndarray, n_bins: int) -> None:
    np.testing.assert_array_equal(
        width_bin_ids(conf, n_bins), reference_width_bin_ids(conf, n_bins)
    )


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 6), n=st.integers(1, 50))
def test_classification_ece_equals_a_loop_over_bins(seed: int, k: int, n: int) -> None:
    # From logits: softmax, top label, then 15 equal-width bins, one at a time.
    from scipy.special import softmax

    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3, size=(n, k))
    y_true = rng.integers(0, k, size=n)
    prob = softmax(logits, axis=1)
    conf, correct = prob.max(axis=1), prob.argmax(axis=1) == y_true
    bins = reference_width_bin_ids(conf, 15)
    want = sum(
        np.mean(bins == j) * abs(correct[bins == j].mean() - conf[bins == j].mean())
        for j in np.unique(bins)
    )
    assert expected_calibration_error(y_true, logits=logits) == pytest.approx(want, abs=1e-12)


# ----------------------------------------------------------- simulations


def test_perfectly_calibrated_data_gives_ece_near_zero_as_n_grows() -> None:
    # correct ~ Bernoulli(confidence): calibrated by construction. The plug-in ECE
    # is biased upward by sampling noise that shrinks like sqrt(n_bins / n).
    rng = np.random.default_rng(0)
    means = []
    for n in (1_000, 10_000, 100_000):
        values = []
        for _ in range(20):
            conf = rng.uniform(1 / 3, 1, size=n)
            correct = rng.uniform(size=n) < conf
            values.append(top_label_calibration_error(conf, correct))
        means.append(float(np.mean(values)))
    assert means[0] > means[1] > means[2]
    assert means[2] < 0.01
    # and a miscalibrated model stays far from zero at the same n
    conf = rng.uniform(1 / 3, 1, size=100_000)
    correct = rng.uniform(size=100_000) < conf - 0.1
    assert top_label_calibration_error(conf, correct) == pytest.approx(0.1, abs=0.01)


def test_debiased_estimator_is_closer_to_the_truth_than_plug_in() -> None:
    # Confidences take ten values, one per bin of width 0.025 in (0.5, 1), and the
    # model is overconfident by 0.03 everywhere, so the true (binned) L2
    # calibration error is sqrt(sum_k 1/10 * 0.03^2) = 0.03 exactly. With ~100
    # samples per bin the plug-in's upward bias (the sampling variance of each
    # bin accuracy) dominates. (With few bins and many samples per bin that bias
    # is small and the debiased estimate's extra spread can cost more than it
    # saves on the absolute scale; on the squared scale it is unbiased.)
    rng = np.random.default_rng(1)
    levels = 0.5 + 0.5 * (np.arange(10) + 0.5) / 10
    truth = np.sqrt(np.sum(np.full(10, 1 / 10) * 0.03**2))
    plug_in, debiased = [], []
    for _ in range(300):
        conf = rng.choice(levels, size=1000)
        correct = rng.uniform(size=1000) < conf - 0.03
        plug_in.append(top_label_calibration_error(conf, correct, n_bins=20, norm="l2"))
        debiased.append(
            top_label_calibration_error(conf, correct, n_bins=20, norm="l2", debias=True)
        )
    plug, deb = np.array(plug_in), np.array(debiased)
    assert np.abs(deb - truth).mean() < np.abs(plug - truth).mean()
    assert np.mean((deb**2 - truth**2) ** 2) < np.mean((plug**2 - truth**2) ** 2)
    # the plug-in is biased upward; the debiased one much less
    assert plug.mean() - truth > 0.01
    assert abs(deb.mean() - truth) < (plug.mean() - truth) / 3


def test_debiased_classification_wrapper_agrees_with_core() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=2, size=(3000, 3))
    y_true = rng.integers(0, 3, size=3000)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    for binning in ("width", "mass"):
        want = top_label_calibration_error(conf, correct, norm="l2", debias=True, binning=binning)
        got = debiased_calibration_error(y_true, logits=logits, binning=binning)
        assert got == pytest.approx(want, abs=1e-12)
