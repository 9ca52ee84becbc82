"""Non-parametric recalibration wrapped from netcal: histogram binning and isotonic regression.

netcal works on probabilities, so the logits are turned into float64 softmax
probabilities first. For more than two classes both methods fit one
calibration map per class (one-vs-rest) and netcal renormalises the rows; for
two classes they map the positive-class probability. netcal (and its torch
dependency) is imported only when a calibrator is fitted.

``beta_netcal`` wraps netcal's own beta calibration for cross-checking
:class:`xcal.calibrate.scaling.BetaCalibration`; it is correct when given
float64 input (as here) but slow, since netcal's ``'mle'`` fit uses
finite-difference gradients through pyro.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from xcal.calibrate._base import CALIBRATORS, Calibrator
from xcal.metrics._validation import check_n_bins
from xcal.metrics.classification import softmax

__all__ = ["HistogramBinning", "IsotonicCalibration", "NetcalBetaCalibration"]


def _probabilities(logits: np.ndarray) -> np.ndarray:
    # float64 on purpose: netcal's optimisers misbehave on float32 input
    return softmax(logits.astype(np.float64), axis=1)


def _as_matrix(out: Any, n_classes: int) -> np.ndarray:
    """netcal returns the positive-class column alone for two classes; rebuild rows."""
    arr = np.asarray(out, dtype=np.float64)
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1 and n_classes == 2):
        q = np.clip(arr.reshape(-1), 0.0, 1.0)
        return np.stack([1.0 - q, q], axis=1)
    arr = np.clip(arr, 0.0, 1.0)
    total = arr.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    if empty.any():
        # every class mapped to 0 by its one-vs-rest map: nothing to prefer
        arr[empty] = 1.0 / n_classes
        total[empty] = 1.0
    return arr / total


class _NetcalCalibrator(Calibrator):
    def __init__(self) -> None:
        self._model: Any = None

    def _make(self) -> Any:
        raise NotImplementedError

    def _fit(self, logits: np.ndarray, y: np.ndarray) -> None:
        model = self._make()
        with warnings.catch_warnings():
            # netcal/pyro emit deprecation chatter on import and fit
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            model.fit(_probabilities(logits), y)
        self._model = model

    def _predict_proba(self, logits: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            out = self._model.transform(_probabilities(logits))
        return _as_matrix(out, logits.shape[1])


@CALIBRATORS.register("histogram")
class HistogramBinning(_NetcalCalibrator):
    """Histogram binning (Zadrozny & Elkan, 2001) via ``netcal.binning.HistogramBinning``.

    Each equal-width probability bin is mapped to the frequency of the positive
    class among the fitting samples in it.

    Parameters
    ----------
    n_bins : int, default=15

    References
    ----------
    B. Zadrozny, C. Elkan. Obtaining calibrated probability estimates from
    decision trees and naive Bayesian classifiers. ICML 2001.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    >>> HistogramBinning(n_bins=2).fit(z, [0, 1, 1, 1]).predict_proba(z)[:, 1]
    array([0.5, 1. , 0.5, 1. ])
    """

    name = "histogram"

    def __init__(self, n_bins: int = 15) -> None:
        super().__init__()
        self.n_bins = check_n_bins(n_bins)

    def _make(self) -> Any:
        from netcal.binning import HistogramBinning as NetcalHistogramBinning

        return NetcalHistogramBinning(bins=self.n_bins)


@CALIBRATORS.register("isotonic")
class IsotonicCalibration(_NetcalCalibrator):
    """Isotonic regression (Zadrozny & Elkan, 2002) via ``netcal.binning.IsotonicRegression``.

    A monotone step function from probability to frequency, one per class.

    References
    ----------
    B. Zadrozny, C. Elkan. Transforming classifier scores into accurate multiclass
    probability estimates. KDD 2002.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    >>> IsotonicCalibration().fit(z, [0, 1, 1, 1]).predict_proba(z)[:, 1]
    array([0.5, 1. , 0.5, 1. ])
    """

    name = "isotonic"

    def _make(self) -> Any:
        from netcal.binning import IsotonicRegression

        return IsotonicRegression()


@CALIBRATORS.register("beta_netcal")
class NetcalBetaCalibration(_NetcalCalibrator):
    """netcal's ``BetaCalibration(method="mle")`` on float64 probabilities.

    The same model as :class:`xcal.calibrate.scaling.BetaCalibration` (netcal
    clips probabilities to ``[eps, 1 - eps]`` before taking logs); kept as a
    cross-check. Fitting takes seconds even for a few thousand samples.
    """

    name = "beta_netcal"

    def _make(self) -> Any:
        from netcal.scaling import BetaCalibration as NetcalBeta

        return NetcalBeta(method="mle")
