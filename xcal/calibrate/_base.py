"""The common interface of every recalibration method and the registry of names.

A calibrator is fitted on one set of logits and labels (say English dev) and
then maps logits of any other set (every other language, every perturbation)
to recalibrated probabilities; that fit-on-one, apply-to-another use is the
point of the split between ``fit`` and ``predict_proba``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from xcal.metrics._validation import check_logits, check_y_true
from xcal.registry import Registry

__all__ = [
    "CALIBRATORS",
    "Calibrator",
    "NotFittedError",
    "calibrator_names",
    "get_calibrator",
]


class NotFittedError(RuntimeError):
    """``predict_proba`` was called before ``fit``."""


class Calibrator(ABC):
    """Map logits to recalibrated probabilities; fit once, apply anywhere.

    Subclasses implement ``_fit(logits, y)`` and ``_predict_proba(logits)`` on
    validated float64 arrays; this class checks inputs and the fitted state.
    """

    name: ClassVar[str]
    n_classes_: int | None = None

    def fit(self, logits: npt.ArrayLike, y_true: npt.ArrayLike) -> Self:
        """Fit on ``logits`` (n_samples, n_classes) and class indices ``y_true``.

        Returns the calibrator itself, so ``get_calibrator(name).fit(z, y)`` chains.
        """
        z = check_logits(logits).astype(np.float64, copy=False)
        if z.shape[1] < 2:
            raise ValueError(
                f"Recalibration needs at least two classes; `logits` has {z.shape[1]} column"
            )
        y = check_y_true(y_true, z.shape[0], z.shape[1])
        self._fit(z, y)
        self.n_classes_ = z.shape[1]
        return self

    def predict_proba(self, logits: npt.ArrayLike) -> np.ndarray:
        """Recalibrated probabilities (n_samples, n_classes), float64, rows sum to 1."""
        if self.n_classes_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(logits, y) first")
        z = check_logits(logits).astype(np.float64, copy=False)
        if z.shape[1] != self.n_classes_:
            raise ValueError(
                f"{type(self).__name__} was fitted on {self.n_classes_} classes but `logits` has "
                f"{z.shape[1]} columns"
            )
        return self._predict_proba(z)

    @abstractmethod
    def _fit(self, logits: np.ndarray, y: np.ndarray) -> None: ...

    @abstractmethod
    def _predict_proba(self, logits: np.ndarray) -> np.ndarray: ...

    def __repr__(self) -> str:
        state = "fitted" if self.n_classes_ is not None else "not fitted"
        return f"{type(self).__name__}({state})"


CALIBRATORS: Registry[type[Calibrator]] = Registry("calibrator")


def get_calibrator(name: str, **kwargs: Any) -> Calibrator:
    """A new, unfitted calibrator by registry name.

    Parameters
    ----------
    name : str
        One of :func:`calibrator_names`: ``"temperature"``, ``"vector"``,
        ``"platt"``, ``"beta"``, ``"histogram"``, ``"isotonic"``, ``"beta_netcal"``.
    **kwargs
        Passed to the calibrator's constructor (e.g. ``n_bins`` for histogram binning).

    Returns
    -------
    Calibrator

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    >>> y = np.array([0, 1, 1, 1, 0])
    >>> cal = get_calibrator("temperature").fit(z, y)
    >>> cal.predict_proba(z).shape
    (5, 2)
    """
    return CALIBRATORS.get(name)(**kwargs)


def calibrator_names() -> list[str]:
    """Registered calibrator names, sorted."""
    return CALIBRATORS.names()
