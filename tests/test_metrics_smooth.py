"""Smooth ECE against the authors' relplot package and hand-worked cases (xcal.metrics.smooth)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xcal.metrics import smooth_calibration_error, top_label_smooth_calibration_error
from xcal.metrics.smooth import smooth_bandwidth

relplot = pytest.importorskip("relplot")


def _pairs(n: int, seed: int, skew: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.beta(5.0, 1.5, n) * 0.67 + 0.33  # 3-class top-label confidences
    correct = rng.random(n) < np.clip(conf - skew, 0, 1)  # overconfident by `skew`
    return conf, correct


@pytest.mark.parametrize(
    ("n", "seed", "skew"), [(50, 0, 0.1), (400, 1, 0.05), (2000, 2, 0.0), (1250, 3, 0.2)]
)
def test_equals_relplot(n: int, seed: int, skew: float) -> None:
    conf, correct = _pairs(n, seed, skew)
    ours = top_label_smooth_calibration_error(conf, correct)
    theirs = float(relplot.smECE(conf, correct.astype(float)))
    assert ours == pytest.approx(theirs, abs=2e-3)
    # at a fixed bandwidth too
    assert top_label_smooth_calibration_error(conf, correct, sigma=0.05) == pytest.approx(
        float(relplot.smECE_sigma(conf, correct.astype(float), 0.05)), abs=2e-3
    )


def test_constant_predictor_by_hand() -> None:
    # Always right at confidence 0.6: the residual is 0.4 everywhere, so
    # smECE_sigma = 0.4 for every sigma and the fixed point is sigma = 0.4
    # (to the bisection's resolution of 2**-10).
    assert top_label_smooth_calibration_error([0.6] * 40, [1] * 40) == pytest.approx(0.4)
    assert smooth_bandwidth([0.6] * 40, [1] * 40) == pytest.approx(0.4, abs=2**-10)
    # Right at 0.7 half the time, at 0.7 otherwise wrong: residuals +0.3 and -0.7
    # sit at one point and cancel to the mean, 0.5 - 0.7.
    conf = [0.7] * 10
    assert top_label_smooth_calibration_error(conf, [1, 0] * 5) == pytest.approx(0.2)


def test_classifier_form_and_validation() -> None:
    p = np.array([[0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.55, 0.45]])
    y = np.array([0, 1, 1, 0])
    conf, correct = p.max(axis=1), p.argmax(axis=1) == y
    assert smooth_calibration_error(y, y_prob=p) == top_label_smooth_calibration_error(
        conf, correct
    )
    with pytest.raises(ValueError, match="confidence"):
        top_label_smooth_calibration_error([1.2], [1])
    with pytest.raises(ValueError, match="sigma"):
        top_label_smooth_calibration_error([0.5], [1], sigma=0.0)


def test_statistic_equals_the_metric_and_resamples_at_its_bandwidth() -> None:
    from xcal.stats.statistic import smooth_calibration_statistic

    conf, correct = _pairs(300, 4, 0.1)
    stat = smooth_calibration_statistic(conf, correct)
    assert stat.estimate() == pytest.approx(
        top_label_smooth_calibration_error(conf, correct), rel=1e-12
    )
    sigma = stat.kind[1]
    idx = np.random.default_rng(0).integers(0, 300, size=(5, 300))
    w = np.stack([np.bincount(r, minlength=300) for r in idx]).astype(float)
    for row, r in zip(stat.on_weights(w), idx, strict=True):
        assert row == pytest.approx(
            top_label_smooth_calibration_error(conf[r], correct[r], sigma=sigma), rel=1e-10
        )


@pytest.mark.parametrize("n", [1, 127, 128, 129, 1000])
def test_kernel_in_blocks_equals_the_plain_expression_bit_for_bit(n: int) -> None:
    from xcal.metrics.smooth import smooth_grid, smooth_kernel

    rng = np.random.default_rng(n)
    conf = rng.uniform(0, 1, n)
    conf[: min(n, 3)] = [0.0, 0.5, 1.0][: min(n, 3)]  # distances of exactly 0.5 to grid points
    for sigma in (0.3, 0.05, 0.013):
        grid = smooth_grid(sigma)
        f, t = conf[:, None], grid[None, :]
        scale = 1.0 / (math.sqrt(2.0 * math.pi) * sigma)
        plain = sum(
            np.where(np.abs(t - c) <= 0.5, scale * np.exp(-0.5 * ((t - c) / sigma) ** 2), 0.0)
            for c in (f, -f, 2.0 - f)
        )
        np.testing.assert_array_equal(smooth_kernel(conf, grid, sigma), plain)
