"""Parametric recalibration fitted by maximum likelihood with scipy.

Temperature scaling is a one-dimensional problem (the NLL is unimodal in
``log T``) solved with bounded Brent search; vector, Platt and beta calibration
are convex in their parameters and solved with L-BFGS-B on analytic gradients.
All work in float64 from logits, so float32 inputs (what the prediction store
holds) cannot stall the optimiser: netcal's ``method='mle'`` scaling uses
finite-difference gradients of a loss computed in the input dtype, and with
float32 inputs it returns the input unchanged (netcal issues #48 and #61).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit

from xcal.calibrate._base import CALIBRATORS, Calibrator
from xcal.metrics.classification import log_softmax, softmax

__all__ = ["BetaCalibration", "PlattScaling", "TemperatureScaling", "VectorScaling"]

_LBFGS_OPTIONS = {"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10}


def _logsumexp(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def _log_others(z: np.ndarray) -> np.ndarray:
    """``log sum_{i != j} exp(z_i)`` for every class ``j``, without cancellation.

    ``log(1 - p_j)`` is this minus ``logsumexp(z)``; computing it from ``1 - p_j``
    would lose everything once ``p_j`` rounds to 1.
    """
    n, k = z.shape
    out = np.empty((n, k))
    masked = z.copy()
    for j in range(k):
        masked[:, j] = -np.inf
        out[:, j] = _logsumexp(masked)
        masked[:, j] = z[:, j]
    return out


def _nll_grad(u: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of ``u`` and its gradient with respect to ``u``."""
    n = u.shape[0]
    lse = _logsumexp(u)
    rows = np.arange(n)
    loss = float(np.mean(lse - u[rows, y]))
    grad = np.exp(u - lse[:, None])
    grad[rows, y] -= 1.0
    return loss, grad / n


def _bce_grad(u: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of ``sigmoid(u)`` against soft targets, and d/du."""
    # log(1 + exp(u)) stably; loss = softplus(u) - t * u
    softplus = np.logaddexp(0.0, u)
    loss = float(np.mean(softplus - target * u))
    prob = np.exp(u - softplus)
    return loss, (prob - target) / u.shape[0]


def _minimize(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    bounds: list[tuple[float | None, float | None]] | None,
    what: str,
) -> np.ndarray:
    result = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=_LBFGS_OPTIONS)
    if not result.success:
        warnings.warn(
            f"{what}: the optimiser stopped early ({result.message})", RuntimeWarning, stacklevel=3
        )
    return np.asarray(result.x, dtype=np.float64)


@CALIBRATORS.register("temperature")
class TemperatureScaling(Calibrator):
    """Temperature scaling: ``softmax(z / T)`` with ``T`` minimising the NLL.

    ``T`` is found by bounded Brent search on ``log T`` in
    ``[log t_min, log t_max]``; the NLL is a convex function of ``1 / T``, hence
    unimodal in ``log T``, so the search finds the global minimum in the range.
    A fitted ``T`` at a bound (e.g. separable data, where the NLL keeps falling
    as ``T -> 0``) raises a warning.

    Parameters
    ----------
    t_min, t_max : float, default 0.01 and 100
        The search range for ``T``.

    Attributes
    ----------
    temperature_ : float

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. On calibration of modern neural
    networks. ICML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(scale=2.0, size=(20_000, 3))     # calibrated logits: labels are
    >>> y = (rng.uniform(size=(20_000, 1)) > np.cumsum(softmax(z, axis=1), axis=1)).sum(axis=1)
    >>> cal = TemperatureScaling().fit(3.0 * z, y)   # ... drawn from softmax(z); now 3x overconfident
    >>> round(cal.temperature_, 1)
    3.0
    """

    name = "temperature"

    def __init__(self, t_min: float = 1e-2, t_max: float = 1e2) -> None:
        if not 0 < t_min < t_max:
            raise ValueError(f"Expected 0 < t_min < t_max, got t_min={t_min!r}, t_max={t_max!r}")
        self.t_min = t_min
        self.t_max = t_max
        self.temperature_: float = 1.0

    def _fit(self, logits: np.ndarray, y: np.ndarray) -> None:
        rows = np.arange(logits.shape[0])
        true_logit = logits[rows, y]

        def nll(log_t: float) -> float:
            scaled = logits * np.exp(-log_t)
            return float(np.mean(_logsumexp(scaled) - true_logit * np.exp(-log_t)))

        lo, hi = np.log(self.t_min), np.log(self.t_max)
        result = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
        log_t = float(result.x)
        # Brent's bounded search never evaluates the end points themselves
        for edge in (lo, hi):
            if nll(edge) < nll(log_t):
                log_t = edge
        if min(abs(log_t - lo), abs(log_t - hi)) < 1e-6:
            warnings.warn(
                f"TemperatureScaling: the fitted temperature {np.exp(log_t):.4g} is at the end "
                f"of the search range [{self.t_min}, {self.t_max}]",
                RuntimeWarning,
                stacklevel=3,
            )
        self.temperature_ = float(np.exp(log_t))

    def _predict_proba(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits / self.temperature_, axis=1)


@CALIBRATORS.register("vector")
class VectorScaling(Calibrator):
    """Vector scaling: ``softmax(w * z + b)`` with a scale and a bias per class.

    Fitted by minimising the NLL (convex in ``w, b``) from ``w = 1, b = 0``.

    Attributes
    ----------
    weights_, bias_ : numpy.ndarray of shape (n_classes,)

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. On calibration of modern neural
    networks. ICML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    >>> VectorScaling().fit(z, [0, 1, 1, 1]).predict_proba(z).sum(axis=1)
    array([1., 1., 1., 1.])
    """

    name = "vector"

    def __init__(self) -> None:
        self.weights_: np.ndarray = np.empty(0)
        self.bias_: np.ndarray = np.empty(0)

    def _fit(self, logits: np.ndarray, y: np.ndarray) -> None:
        k = logits.shape[1]

        def fun(params: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = params[:k], params[k:]
            loss, g = _nll_grad(logits * w + b, y)
            return loss, np.concatenate([(g * logits).sum(axis=0), g.sum(axis=0)])

        params = _minimize(fun, np.concatenate([np.ones(k), np.zeros(k)]), None, "VectorScaling")
        self.weights_, self.bias_ = params[:k], params[k:]

    def _predict_proba(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits * self.weights_ + self.bias_, axis=1)


@CALIBRATORS.register("platt")
class PlattScaling(Calibrator):
    """Platt scaling of the log-odds, one-vs-rest for more than two classes.

    Two classes: ``p_1 = sigmoid(a f + b)`` on the logit margin ``f = z_1 - z_0``.
    More classes: a sigmoid per class on that class's log-odds
    ``f_j = log p_j - log(1 - p_j)`` (shift-invariant, unlike raw logits), then
    renormalised, as scikit-learn's ``CalibratedClassifierCV(method="sigmoid")``
    does one-vs-rest. Targets are Platt's smoothed labels ``(N+ + 1) / (N+ + 2)``
    and ``1 / (N- + 2)``, as in Platt (2000) and scikit-learn.

    Attributes
    ----------
    slope_, intercept_ : numpy.ndarray
        One entry (two classes) or one per class.

    References
    ----------
    J. Platt. Probabilistic outputs for support vector machines and comparisons
    to regularized likelihood methods. Advances in Large Margin Classifiers, 2000.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    >>> PlattScaling().fit(z, [0, 1, 1, 1]).predict_proba(z).shape
    (4, 2)
    """

    name = "platt"

    def __init__(self) -> None:
        self.slope_: np.ndarray = np.empty(0)
        self.intercept_: np.ndarray = np.empty(0)

    @staticmethod
    def _log_odds(logits: np.ndarray) -> np.ndarray:
        if logits.shape[1] == 2:
            return (logits[:, 1] - logits[:, 0])[:, None]
        return logits - _log_others(logits)

    @staticmethod
    def _fit_one(f: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
        n_pos = float(positive.sum())
        n_neg = positive.shape[0] - n_pos
        target = np.where(positive, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

        def fun(params: np.ndarray) -> tuple[float, np.ndarray]:
            loss, g = _bce_grad(params[0] * f + params[1], target)
            return loss, np.array([(g * f).sum(), g.sum()])

        a, b = _minimize(fun, np.array([1.0, 0.0]), None, "PlattScaling")
        return float(a), float(b)

    def _fit(self, logits: np.ndarray, y: np.ndarray) -> None:
        f = self._log_odds(logits)
        classes = [1] if logits.shape[1] == 2 else range(logits.shape[1])
        fitted = [self._fit_one(f[:, i], y == c) for i, c in enumerate(classes)]
        self.slope_ = np.array([a for a, _ in fitted])
        self.intercept_ = np.array([b for _, b in fitted])

    def _predict_proba(self, logits: np.ndarray) -> np.ndarray:
        u = self._log_odds(logits) * self.slope_ + self.intercept_
        q = expit(u)
        if logits.shape[1] == 2:
            return np.concatenate([1.0 - q, q], axis=1)
        total = q.sum(axis=1, keepdims=True)
        return q / total


@CALIBRATORS.register("beta")
class BetaCalibration(Calibrator):
    """Beta calibration (Kull et al., 2017), multinomial for more than two classes.

    With ``L_j = log p_j`` and ``M_j = -log(1 - p_j)`` (both from the logits,
    without rounding ``p`` first), two classes use
    ``p_1' = sigmoid(a L_1 + b M_1 + c)``; more classes use
    ``softmax_j(a_j L_j + b_j M_j + c_j)``, the multiclass form of netcal's
    ``BetaCalibration``. ``a, b >= 0`` keeps the map monotone. Fitted by L-BFGS-B
    on the exact gradient, from the identity map for two classes.

    Attributes
    ----------
    a_, b_, c_ : numpy.ndarray

    References
    ----------
    M. Kull, T. Silva Filho, P. Flach. Beta calibration: a well-founded and easily
    implemented improvement on logistic calibration for binary classifiers.
    AISTATS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    >>> BetaCalibration().fit(z, [0, 1, 1, 1]).predict_proba(z).shape
    (4, 2)
    """

    name = "beta"

    def __init__(self) -> None:
        self.a_: np.ndarray = np.empty(0)
        self.b_: np.ndarray = np.empty(0)
        self.c_: np.ndarray = np.empty(0)

    @staticmethod
    def _features(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lse = _logsumexp(logits)
        log_p = log_softmax(logits, axis=1)
        neg_log_1mp = lse[:, None] - _log_others(logits)
        if logits.shape[1] == 2:
            return log_p[:, 1:], neg_log_1mp[:, 1:]
        return log_p, neg_log_1mp

    def _fit(self, logits: np.ndarray, y: np.ndarray) -> None:
        big_l, big_m = self._features(logits)
        k = big_l.shape[1]
        binary = logits.shape[1] == 2
        target = (y == 1).astype(np.float64)[:, None]

        def fun(params: np.ndarray) -> tuple[float, np.ndarray]:
            a, b, c = params[:k], params[k : 2 * k], params[2 * k :]
            u = big_l * a + big_m * b + c
            if binary:
                loss, g1 = _bce_grad(u[:, 0], target[:, 0])
                g = g1[:, None]
            else:
                loss, g = _nll_grad(u, y)
            return loss, np.concatenate(
                [(g * big_l).sum(axis=0), (g * big_m).sum(axis=0), g.sum(axis=0)]
            )

        x0 = np.concatenate([np.ones(k), np.ones(k), np.zeros(k)])
        bounds: list[tuple[float | None, float | None]] = [(0.0, None)] * (2 * k) + [
            (None, None)
        ] * k
        params = _minimize(fun, x0, bounds, "BetaCalibration")
        self.a_, self.b_, self.c_ = params[:k], params[k : 2 * k], params[2 * k :]

    def _predict_proba(self, logits: np.ndarray) -> np.ndarray:
        big_l, big_m = self._features(logits)
        u = big_l * self.a_ + big_m * self.b_ + self.c_
        if logits.shape[1] == 2:
            q = expit(u)
            return np.concatenate([1.0 - q, q], axis=1)
        return softmax(u, axis=1)
