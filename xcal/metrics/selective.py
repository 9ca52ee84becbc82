"""Selective prediction: answer only when confident, and measure the trade-off.

Sorting by confidence (most confident first) and abstaining below a threshold
gives the risk-coverage curve (Geifman & El-Yaniv, 2017); its area (AURC) is
one number for how well confidence ranks right above wrong answers. Samples of
equal confidence cannot be separated by any threshold, so they enter together:
the curve has one point per distinct confidence, and a coverage that splits a
tie group counts that group at its average accuracy (the expectation over
random tie-breaking). Results are therefore invariant to the order of samples.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from xcal.metrics._toplabel import checked_top_label
from xcal.metrics._validation import check_confidence_correct

__all__ = [
    "RiskCoverageCurve",
    "aurc_loss",
    "risk_coverage_curve",
    "selective_accuracy_score",
    "top_label_aurc_loss",
    "top_label_risk_coverage_curve",
    "top_label_selective_accuracy_score",
]


class RiskCoverageCurve(NamedTuple):
    """One point per distinct confidence, from the most confident down."""

    coverage: np.ndarray  # fraction of samples with confidence >= threshold
    risk: np.ndarray  # error rate among them
    threshold: np.ndarray  # the confidence threshold of each point


def _sorted_groups(
    conf: np.ndarray, corr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Descending distinct confidences, group sizes, cumulative sizes and errors."""
    order = np.argsort(-conf.astype(np.float64), kind="stable")
    c = conf[order]
    errors = (~corr[order]).astype(np.int64)
    last = np.empty(c.shape[0], dtype=bool)
    np.not_equal(c[1:], c[:-1], out=last[:-1])
    last[-1] = True
    ends = np.flatnonzero(last)
    cum_n = ends + 1
    cum_err = np.cumsum(errors)[ends]
    return c[ends], np.diff(cum_n, prepend=0), cum_n, cum_err


def _curve(conf: np.ndarray, corr: np.ndarray) -> RiskCoverageCurve:
    thresholds, _, cum_n, cum_err = _sorted_groups(conf, corr)
    n = conf.shape[0]
    return RiskCoverageCurve(cum_n / n, cum_err / cum_n, thresholds.astype(np.float64))


def _aurc(conf: np.ndarray, corr: np.ndarray) -> float:
    _, sizes, cum_n, cum_err = _sorted_groups(conf, corr)
    # step integral of risk over coverage; with no ties it is mean_k risk@k
    return float(np.sum(sizes * (cum_err / cum_n)) / conf.shape[0])


def _check_coverage(coverage: Any) -> float:
    if isinstance(coverage, bool) or not isinstance(coverage, int | float | np.number):
        raise TypeError(f"Expected `coverage` to be a number in (0, 1], got {coverage!r}")
    if not 0 < coverage <= 1:
        raise ValueError(f"Expected `coverage` in (0, 1], got {coverage!r}")
    return float(coverage)


def _selective_accuracy(conf: np.ndarray, corr: np.ndarray, coverage: float) -> float:
    n = conf.shape[0]
    # round before ceil so that 0.7 * 10 (= 7.000000000000001) keeps 7 samples
    k = max(1, int(np.ceil(np.round(coverage * n, 9))))
    _, sizes, cum_n, cum_err = _sorted_groups(conf, corr)
    g = int(np.searchsorted(cum_n, k))  # first group reaching k samples
    before_n = int(cum_n[g] - sizes[g])
    errors_before = int(cum_err[g - 1]) if g else 0
    before_right = before_n - errors_before
    group_right = int(sizes[g]) - (int(cum_err[g]) - errors_before)
    taken = k - before_n
    return float((before_right + taken * group_right / sizes[g]) / k)


def top_label_risk_coverage_curve(
    confidence: npt.ArrayLike, correct: npt.ArrayLike
) -> RiskCoverageCurve:
    """Risk-coverage curve of (confidence, correct) pairs.

    Parameters
    ----------
    confidence : array-like of float, shape (n_samples,)
    correct : array-like of bool or 0/1, shape (n_samples,)

    Returns
    -------
    RiskCoverageCurve
        ``coverage``, ``risk`` and ``threshold`` arrays, one entry per distinct
        confidence, most confident first.

    Examples
    --------
    >>> top_label_risk_coverage_curve([0.9, 0.8, 0.8, 0.6], [1, 1, 0, 0])
    RiskCoverageCurve(coverage=array([0.25, 0.75, 1.  ]), risk=array([0.        , 0.33333333, 0.5       ]), threshold=array([0.9, 0.8, 0.6]))
    """
    conf, corr, _ = check_confidence_correct(confidence, correct)
    return _curve(conf, corr)


def top_label_aurc_loss(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> float:
    """Area under the risk-coverage curve of (confidence, correct) pairs.

    ``(1/n) sum_k risk(k)`` where ``risk(k)`` is the error rate of the ``k`` most
    confident samples (Geifman et al., 2019); a tie group counts once per member
    at the risk after the whole group.

    Parameters
    ----------
    confidence : array-like of float, shape (n_samples,)
    correct : array-like of bool or 0/1, shape (n_samples,)

    Returns
    -------
    float

    References
    ----------
    Y. Geifman, G. Uziel, R. El-Yaniv. Bias-reduced uncertainty estimation for
    deep neural classifiers. ICLR 2019.

    Examples
    --------
    Risks after 1, 2, 3 samples: 0, 1/2, 1/3; AURC = (0 + 1/2 + 1/3) / 3

    >>> round(top_label_aurc_loss([0.9, 0.8, 0.7], [1, 0, 1]), 12)
    0.277777777778
    """
    conf, corr, _ = check_confidence_correct(confidence, correct)
    return _aurc(conf, corr)


def top_label_selective_accuracy_score(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, *, coverage: float
) -> float:
    """Accuracy on the ``ceil(coverage * n)`` most confident samples.

    When the cut splits a group of equal confidence, the group contributes its
    average accuracy for the samples taken from it.

    Parameters
    ----------
    confidence : array-like of float, shape (n_samples,)
    correct : array-like of bool or 0/1, shape (n_samples,)
    coverage : float in (0, 1]

    Returns
    -------
    float

    Examples
    --------
    Keep 2 of 4: the 0.9 (right) and one of the two 0.8s (one right of two):

    >>> top_label_selective_accuracy_score([0.9, 0.8, 0.8, 0.6], [1, 1, 0, 0], coverage=0.5)
    0.75
    """
    cov = _check_coverage(coverage)
    conf, corr, _ = check_confidence_correct(confidence, correct)
    return _selective_accuracy(conf, corr, cov)


def risk_coverage_curve(
    y_true: npt.ArrayLike, *, y_prob: Any = None, logits: Any = None
) -> RiskCoverageCurve:
    """Risk-coverage curve of the top-label predictions.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    y_prob, logits : array-like of shape (n_samples, n_classes)
        Exactly one: probabilities or unnormalised scores.

    Returns
    -------
    RiskCoverageCurve

    Examples
    --------
    >>> curve = risk_coverage_curve([0, 1], y_prob=[[0.875, 0.125], [0.75, 0.25]])
    >>> curve.coverage.tolist(), curve.risk.tolist()
    ([0.5, 1.0], [0.0, 0.5])
    """
    return _curve(*checked_top_label(y_true, y_prob, logits))


def aurc_loss(y_true: npt.ArrayLike, *, y_prob: Any = None, logits: Any = None) -> float:
    """Area under the risk-coverage curve (AURC) of the top-label predictions.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    y_prob, logits : array-like of shape (n_samples, n_classes)
        Exactly one: probabilities or unnormalised scores.

    Returns
    -------
    float

    References
    ----------
    Y. Geifman, G. Uziel, R. El-Yaniv. Bias-reduced uncertainty estimation for
    deep neural classifiers. ICLR 2019.

    Examples
    --------
    Risks after 1 and 2 samples: 0 and 1/2, so AURC = (0 + 1/2) / 2

    >>> aurc_loss([0, 1], y_prob=[[0.875, 0.125], [0.75, 0.25]])
    0.25
    """
    return _aurc(*checked_top_label(y_true, y_prob, logits))


def selective_accuracy_score(
    y_true: npt.ArrayLike,
    *,
    y_prob: Any = None,
    logits: Any = None,
    coverage: float = 0.8,
) -> float:
    """Accuracy of the most confident ``coverage`` fraction of top-label predictions.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    y_prob, logits : array-like of shape (n_samples, n_classes)
        Exactly one: probabilities or unnormalised scores.
    coverage : float in (0, 1], default=0.8

    Returns
    -------
    float

    Examples
    --------
    >>> selective_accuracy_score([0, 1], y_prob=[[0.875, 0.125], [0.75, 0.25]], coverage=0.5)
    1.0
    """
    cov = _check_coverage(coverage)
    return _selective_accuracy(*checked_top_label(y_true, y_prob, logits), cov)
