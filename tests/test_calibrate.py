"""Recalibration methods: each must change the probabilities and lower held-out NLL."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.calibration import _sigmoid_calibration

from xcal.calibrate import (
    BetaCalibration,
    Calibrator,
    NotFittedError,
    PlattScaling,
    TemperatureScaling,
    VectorScaling,
    calibrator_names,
    get_calibrator,
)
from xcal.metrics import expected_calibration_error, nll_loss, softmax

FAST_METHODS = ["temperature", "vector", "platt", "beta", "histogram", "isotonic"]


def calibrated_logits(
    rng: np.random.Generator, n: int, k: int, scale: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is the true label distribution (labels drawn from it)."""
    z = rng.normal(scale=scale, size=(n, k))
    cum = np.cumsum(softmax(z, axis=1), axis=1)
    y = (rng.uniform(size=(n, 1)) > cum).sum(axis=1)
    return z, np.minimum(y, k - 1)


def miscalibrated(
    seed: int, n: int, k: int, factor: float = 3.0, scale: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Known miscalibration: calibrated logits multiplied by ``factor`` (overconfident)."""
    z, y = calibrated_logits(np.random.default_rng(seed), n, k, scale)
    return (factor * z).astype(np.float32), y  # float32, as the prediction store holds them


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("method", FAST_METHODS)
def test_method_changes_probabilities_and_lowers_heldout_nll(method: str, k: int) -> None:
    # fit on one set ("English dev"), evaluate on another drawn with a different
    # signal strength ("another language") but the same 3x overconfidence
    fit_z, fit_y = miscalibrated(seed=1, n=4000, k=k)
    test_z, test_y = miscalibrated(seed=2, n=4000, k=k, scale=1.5)
    before = softmax(test_z.astype(np.float64), axis=1)
    cal = get_calibrator(method).fit(fit_z, fit_y)
    after = cal.predict_proba(test_z)
    assert after.shape == before.shape and after.dtype == np.float64
    assert np.all((after >= 0) & (after <= 1))
    np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-12)
    # netcal's mle scaling returned the input unchanged on float32 input: not here
    assert np.abs(after - before).max() > 0.1
    nll_before = nll_loss(test_y, y_prob=before)
    nll_after = nll_loss(test_y, y_prob=after)
    assert nll_after < 0.9 * nll_before, (method, nll_before, nll_after)
    ece_before = expected_calibration_error(test_y, y_prob=before)
    ece_after = expected_calibration_error(test_y, y_prob=after)
    assert ece_after < 0.5 * ece_before, (method, ece_before, ece_after)


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 3])
def test_netcal_beta_wrapper_and_own_beta_agree(k: int) -> None:
    fit_z, fit_y = miscalibrated(seed=3, n=1500, k=k, scale=1.0)
    test_z, _ = miscalibrated(seed=4, n=1500, k=k, scale=1.0)
    ours = BetaCalibration().fit(fit_z, fit_y)
    theirs = get_calibrator("beta_netcal").fit(fit_z, fit_y)
    p_ours, p_theirs = ours.predict_proba(test_z), theirs.predict_proba(test_z)
    before = softmax(test_z.astype(np.float64), axis=1)
    assert np.abs(p_theirs - before).max() > 0.1  # float64 input: netcal really fits
    # same model, same data: our exact-gradient fit reaches at least netcal's likelihood
    train_ours = nll_loss(fit_y, y_prob=ours.predict_proba(fit_z))
    train_theirs = nll_loss(fit_y, y_prob=theirs.predict_proba(fit_z))
    assert train_ours <= train_theirs + 1e-6
    assert np.abs(p_ours - p_theirs).max() < 5e-3


def test_temperature_matches_grid_search() -> None:
    z, y = miscalibrated(seed=5, n=3000, k=3)
    z64 = z.astype(np.float64)
    cal = TemperatureScaling().fit(z, y)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 4001))
    nll = np.array([nll_loss(y, logits=z64 / t) for t in grid])
    best = grid[np.argmin(nll)]
    spacing = grid[1] / grid[0]
    assert best / spacing <= cal.temperature_ <= best * spacing
    assert nll_loss(y, logits=z64 / cal.temperature_) <= nll.min() + 1e-12
    # the known miscalibration: logits 3x too large
    assert cal.temperature_ == pytest.approx(3.0, rel=0.1)


def test_temperature_recovers_the_factor_on_large_data() -> None:
    for factor in (0.5, 1.0, 3.0):
        z, y = miscalibrated(seed=6, n=50_000, k=3, factor=factor)
        assert TemperatureScaling().fit(z, y).temperature_ == pytest.approx(factor, rel=0.03)


def test_float32_and_float64_logits_fit_the_same_temperature() -> None:
    z, y = miscalibrated(seed=7, n=3000, k=3)
    t32 = TemperatureScaling().fit(z, y).temperature_
    t64 = TemperatureScaling().fit(z.astype(np.float64), y).temperature_
    assert t32 == pytest.approx(t64, rel=1e-9)


def test_temperature_at_bound_warns() -> None:
    # separable data: the NLL keeps falling as T -> 0 (a small margin keeps it
    # from underflowing to exactly 0 inside the range)
    z = np.array([[0.01, 0.0], [0.0, 0.01]] * 20)
    y = np.array([0, 1] * 20)
    with pytest.warns(RuntimeWarning, match="end of the search range"):
        cal = TemperatureScaling().fit(z, y)
    assert cal.temperature_ == pytest.approx(0.01)


def test_platt_matches_scikit_learn_sigmoid_calibration() -> None:
    z, y = miscalibrated(seed=8, n=3000, k=2)
    margin = (z[:, 1] - z[:, 0]).astype(np.float64)
    a_sk, b_sk = _sigmoid_calibration(margin, y)
    cal = PlattScaling().fit(z, y)
    # scikit-learn writes p = 1 / (1 + exp(a f + b)); we write sigmoid(a f + b)
    assert cal.slope_[0] == pytest.approx(-a_sk, abs=1e-5)
    assert cal.intercept_[0] == pytest.approx(-b_sk, abs=1e-5)


def _training_nll(cal: Calibrator, z: np.ndarray, y: np.ndarray) -> float:
    return nll_loss(y, y_prob=np.clip(cal.predict_proba(z), 1e-300, None))


@pytest.mark.parametrize("k", [2, 3])
def test_fitted_parameters_are_a_local_optimum(k: int) -> None:
    # nudging any fitted parameter must not lower the training NLL (the analytic
    # gradients drove the optimiser to a stationary point of the right objective)
    z, y = miscalibrated(seed=9, n=2000, k=k)
    z64 = z.astype(np.float64)
    vector = VectorScaling().fit(z, y)
    beta = BetaCalibration().fit(z, y)
    checks: list[tuple[Calibrator, list[str]]] = [
        (vector, ["weights_", "bias_"]),
        (beta, ["a_", "b_", "c_"]),
    ]
    for cal, attributes in checks:
        base = _training_nll(cal, z64, y)
        for attribute in attributes:
            values = getattr(cal, attribute)
            for i in range(values.shape[0]):
                if attribute in ("a_", "b_") and values[i] < 1e-6:
                    continue  # at the a, b >= 0 bound: only one direction is allowed
                for step in (-1e-3, 1e-3):
                    values[i] += step
                    assert _training_nll(cal, z64, y) >= base - 1e-10, (attribute, i, step)
                    values[i] -= step


def test_fit_is_deterministic() -> None:
    z, y = miscalibrated(seed=10, n=1000, k=3)
    for name in FAST_METHODS:
        a = get_calibrator(name).fit(z, y).predict_proba(z)
        b = get_calibrator(name).fit(z, y).predict_proba(z)
        np.testing.assert_array_equal(a, b)


def test_extreme_logits_stay_finite() -> None:
    z, y = miscalibrated(seed=11, n=500, k=3, factor=200.0)  # p rounds to exactly 1
    for name in ("temperature", "vector", "platt", "beta"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # bounds may be hit
            probs = get_calibrator(name).fit(z, y).predict_proba(z)
        assert np.isfinite(probs).all(), name


def test_registry_and_errors() -> None:
    assert set(FAST_METHODS) | {"beta_netcal"} == set(calibrator_names())
    with pytest.raises(KeyError, match="unknown calibrator 'dirichlet'; known: beta"):
        get_calibrator("dirichlet")
    with pytest.raises(NotFittedError, match="call fit"):
        get_calibrator("temperature").predict_proba([[0.0, 1.0]])
    cal = get_calibrator("temperature").fit([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2]], [1, 1, 0])
    with pytest.raises(ValueError, match="fitted on 2 classes but `logits` has 3 columns"):
        cal.predict_proba([[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match="at least two classes"):
        get_calibrator("vector").fit([[0.0], [1.0]], [0, 0])
    with pytest.raises(ValueError, match="`y_true` row 0 is 5"):
        get_calibrator("platt").fit([[0.0, 1.0]], [5])
    with pytest.raises(ValueError, match="n_bins"):
        get_calibrator("histogram", n_bins=0)
    assert "not fitted" in repr(get_calibrator("beta"))
