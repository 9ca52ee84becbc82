"""Smooth calibration error (smECE): kernel-smoothed residuals instead of bins.

Binned ECE depends on where the bin edges fall and is biased upward at small
n. The smooth ECE of Blasiok & Nakkiran (2023) smooths the residuals
``correct - confidence`` with a Gaussian kernel of bandwidth ``sigma``
(reflected at 0 and 1 so no mass leaves [0, 1]) and integrates their absolute
value against the smoothed density of confidences:

    smECE_sigma = sum_t |sum_i K(t, f_i) (y_i - f_i)| / sum_t sum_i K(t, f_i)

over an evaluation grid ``t`` of [0, 1]. The bandwidth is the fixed point
``sigma = smECE_sigma``, found by bisection; the result is consistent (a
calibrated predictor scores near 0 at any n, up to sampling noise) and
continuous in the predictions.

This follows the authors' ``relplot`` package (``relplot.smECE``) exactly
where it matters: the same kernel (reflected once at each end, truncated at
distance 0.5), evaluation grid (``max(200, round(10 / sigma))`` points) and
bandwidth search (10 halvings of [0, 1]); relplot rounds the confidences to a
grid before smoothing, this module evaluates the kernel at each confidence, so
values agree to about 1e-3 (``tests/test_metrics_smooth.py``).

References
----------
J. Blasiok, P. Nakkiran. Smooth ECE: principled reliability diagrams via
kernel smoothing. ICLR 2024 (arXiv:2309.12236, 2023).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from xcal.metrics._toplabel import checked_top_label
from xcal.metrics._validation import check_confidence_correct

__all__ = [
    "smooth_bandwidth",
    "smooth_calibration_error",
    "smooth_kernel",
    "top_label_smooth_calibration_error",
]

#: Fewest evaluation points of [0, 1] (relplot's ``smECE_mesh_pts``).
MIN_GRID = 200
#: Examples per block when the kernel matrix is built (bounds memory to ~block x grid).
_BLOCK = 8192
_KERNEL_ROWS = 128  # rows of the kernel computed at once: ~0.5 MB temporaries at 500 points


def smooth_grid(sigma: float) -> np.ndarray:
    """Evaluation points of [0, 1] for bandwidth ``sigma``: ``max(200, round(10 / sigma))``."""
    return np.linspace(0.0, 1.0, max(MIN_GRID, round(10.0 / sigma)))


def smooth_kernel(confidence: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """Reflected Gaussian kernel ``K[i, j]`` between ``confidence[i]`` and ``grid[j]``.

    Each confidence ``f`` is mirrored to ``-f`` and ``2 - f``; each of the three
    Gaussian bumps is cut at distance 0.5 from its centre, as relplot's
    discretised convolution does.

    Examples
    --------
    >>> k = smooth_kernel(np.array([0.5]), np.array([0.5, 1.0]), 0.1)
    >>> bool(k[0, 0] > k[0, 1] > 0)
    True
    """
    f = np.asarray(confidence, dtype=np.float64)[:, None]
    t = np.asarray(grid, dtype=np.float64)[None, :]
    scale = 1.0 / (math.sqrt(2.0 * math.pi) * sigma)
    out = np.zeros((f.shape[0], t.shape[1]))
    # Computed in blocks of rows, in place, with the same operations in the same
    # order as the plain expression ``where(|d| <= 0.5, scale * exp(-0.5 * (d /
    # sigma) ** 2), 0)`` (so bit for bit equal): whole-matrix temporaries made it
    # bound by memory bandwidth, twice as slow alone and slower still beside
    # another worker.
    d = np.empty((min(_KERNEL_ROWS, f.shape[0]), t.shape[1]))
    near = np.empty(d.shape, dtype=bool)
    for start in range(0, f.shape[0], _KERNEL_ROWS):
        fb = f[start : start + _KERNEL_ROWS]
        ob, db, nb = out[start : start + _KERNEL_ROWS], d[: fb.shape[0]], near[: fb.shape[0]]
        for centre in (fb, -fb, 2.0 - fb):
            np.subtract(t, centre, out=db)
            np.less_equal(np.abs(db), 0.5, out=nb)
            np.divide(db, sigma, out=db)
            np.square(db, out=db)
            np.multiply(-0.5, db, out=db)
            np.exp(db, out=db)
            np.multiply(scale, db, out=db)
            np.multiply(db, nb, out=db)
            ob += db
    return out


def _error_at(conf: np.ndarray, residual: np.ndarray, sigma: float) -> float:
    grid = smooth_grid(sigma)
    num = np.zeros(grid.shape[0])
    den = 0.0
    for start in range(0, conf.shape[0], _BLOCK):
        k = smooth_kernel(conf[start : start + _BLOCK], grid, sigma)
        num += residual[start : start + _BLOCK] @ k
        den += float(k.sum())
    return float(np.abs(num).sum() / den) if den > 0 else 0.0


def smooth_bandwidth(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, eps: float = 0.001
) -> float:
    """The bandwidth ``sigma`` with ``smECE_sigma = sigma``, by relplot's bisection.

    ``sigma`` is the smallest of ``1, 1/2, ...`` refined 10 times by halving at
    which ``sigma >= smECE_sigma`` (or ``sigma < eps``).

    Examples
    --------
    A predictor that is always right with confidence 0.6 is off by 0.4:

    >>> round(smooth_bandwidth([0.6] * 50, [1] * 50), 2)
    0.4
    """
    conf = np.asarray(confidence, dtype=np.float64)
    residual = np.asarray(correct, dtype=np.float64) - conf

    def too_small(sigma: float) -> bool:
        return sigma < eps or sigma < _error_at(conf, residual, sigma)

    if too_small(1.0):
        return 1.0
    high, low = 1.0, 0.0
    for _ in range(10):
        mid = (high + low) / 2
        if too_small(mid):
            low = mid
        else:
            high = mid
    return high


def top_label_smooth_calibration_error(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    sigma: float | None = None,
) -> float:
    """Smooth ECE of ``(confidence, correct)`` pairs (Blasiok & Nakkiran 2023).

    Parameters
    ----------
    confidence : array-like of float in [0, 1], shape (n,)
    correct : array-like of bool or 0/1, shape (n,)
    sigma : float, optional
        Kernel bandwidth; default the fixed point of :func:`smooth_bandwidth`.

    Returns
    -------
    float

    Examples
    --------
    >>> round(top_label_smooth_calibration_error([0.6] * 50, [1] * 50), 2)
    0.4
    """
    conf, corr, _ = check_confidence_correct(confidence, correct)
    if conf.shape[0] == 0:
        raise ValueError("Expected at least one example, got 0")
    conf = conf.astype(np.float64, copy=False)
    if sigma is None:
        sigma = smooth_bandwidth(conf, corr)
    elif not sigma > 0:
        raise ValueError(f"Expected `sigma` > 0, got {sigma!r}")
    return _error_at(conf, corr.astype(np.float64) - conf, float(sigma))


def smooth_calibration_error(
    y_true: npt.ArrayLike, *, y_prob: Any = None, logits: Any = None, sigma: float | None = None
) -> float:
    """Top-label smooth ECE of a classifier (Blasiok & Nakkiran 2023).

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
    y_prob, logits : array-like of shape (n_samples, n_classes)
        Exactly one: probabilities or unnormalised scores.
    sigma : float, optional
        Kernel bandwidth (default: the fixed point ``sigma = smECE_sigma``).

    Returns
    -------
    float

    Examples
    --------
    >>> p = [[0.6, 0.4]] * 50
    >>> round(smooth_calibration_error([0] * 50, y_prob=p), 2)
    0.4
    """
    confidence, correct = checked_top_label(y_true, y_prob, logits)
    return top_label_smooth_calibration_error(confidence, correct, sigma=sigma)
