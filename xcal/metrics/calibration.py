"""Binned calibration errors: ECE, MCE, RMS, classwise, debiased, parts, reliability table.

Two layers. ``top_label_*`` functions take precomputed ``(confidence, correct)``
pairs (any task: classification top label, QA top span, retrieval top-1) and
are the core that bootstrap code calls; the classification functions take
``y_true`` with ``y_prob=`` or ``logits=`` and reduce to the core. Binning
conventions (equal width with numpy/netcal edges, tie-aware equal mass) are in
:mod:`xcal.metrics._binning`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from xcal.metrics._binning import (
    bin_ids,
    bin_statistics,
    error_from_statistics,
    fold_overflow_bin,
    width_bin_keys,
    width_edges,
)
from xcal.metrics._toplabel import checked_top_label, iter_top_label, top_label_arrays
from xcal.metrics._validation import (
    BINNINGS,
    NORMS,
    Binning,
    Norm,
    check_choice,
    check_confidence_correct,
    check_n_bins,
    check_scores,
    check_y_true,
)
from xcal.metrics.classification import _probabilities

__all__ = [
    "CalibrationErrorParts",
    "ReliabilityTable",
    "calibration_error_parts",
    "classwise_calibration_error",
    "debiased_calibration_error",
    "expected_calibration_error",
    "max_calibration_error",
    "reliability_table",
    "rms_calibration_error",
    "top_label_calibration_error",
    "top_label_calibration_error_parts",
    "top_label_reliability_table",
]


def _core_error(
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int,
    binning: str,
    norm: str,
    debias: bool = False,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Unchecked core: inputs already validated."""
    ids = bin_ids(confidence, n_bins, binning, sample_weight)
    stats = bin_statistics(ids, confidence, correct, n_bins, sample_weight)
    return float(error_from_statistics(*stats, norm=norm, debias=debias))


def top_label_calibration_error(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
    norm: Norm = "l1",
    debias: bool = False,
    sample_weight: npt.ArrayLike | None = None,
) -> float:
    """Binned calibration error of (confidence, correct) pairs.

    With ``norm="l1"`` this is the expected calibration error (ECE)
    ``sum_k (n_k / N) |acc_k - conf_k|``; ``"l2"`` the root-mean-square error
    ``sqrt(sum_k (n_k / N) (acc_k - conf_k)^2)``; ``"max"`` the maximum
    calibration error over non-empty bins. Empty bins contribute nothing.

    Parameters
    ----------
    confidence : array-like of float, shape (n_samples,)
        Confidence in each prediction, in [0, 1].
    correct : array-like of bool or 0/1, shape (n_samples,)
        Whether each prediction was right.
    n_bins : int, default=15
        Number of bins.
    binning : {"width", "mass"}, default="width"
        Equal-width bins on [0, 1] (``np.histogram`` edges; 1.0 is in the last
        bin) or equal-mass bins (tie groups never split).
    norm : {"l1", "l2", "max"}, default="l1"
        How per-bin gaps are combined.
    debias : bool, default=False
        With ``norm="l2"``, the debiased estimator of Kumar et al. (2019).
    sample_weight : array-like of float, shape (n_samples,), optional
        Non-negative weights (integer weights equal repeating samples).

    Returns
    -------
    float

    References
    ----------
    M. P. Naeini, G. Cooper, M. Hauskrecht. Obtaining well calibrated
    probabilities using Bayesian binning. AAAI 2015.
    A. Kumar, P. Liang, T. Ma. Verified uncertainty calibration. NeurIPS 2019.

    Examples
    --------
    Two bins of two: confidences 0.25 and 0.375 (one right) give a gap of
    |1/2 - 0.3125|; 0.75 and 0.875 (both right) give |1 - 0.8125|; each bin
    holds half the samples, so ECE = 0.5 * 0.1875 + 0.5 * 0.1875:

    >>> top_label_calibration_error([0.25, 0.375, 0.75, 0.875], [0, 1, 1, 1], n_bins=2)
    0.1875
    """
    n_bins = check_n_bins(n_bins)
    check_choice("binning", binning, BINNINGS)
    check_choice("norm", norm, NORMS)
    if debias and norm != "l2":
        raise ValueError(f"`debias=True` needs `norm='l2'`, got norm={norm!r}")
    conf, corr, weight = check_confidence_correct(confidence, correct, sample_weight)
    return _core_error(conf, corr, n_bins, binning, norm, debias, weight)


def _classification_error(
    y_true: Any,
    y_prob: Any,
    logits: Any,
    n_bins: int,
    binning: str,
    norm: str,
    debias: bool = False,
) -> float:
    n_bins = check_n_bins(n_bins)
    check_choice("binning", binning, BINNINGS)
    kind, scores = check_scores(y_prob, logits, validate_values=False)
    y = check_y_true(y_true, scores.shape[0], scores.shape[1])
    if binning == "width":
        # Stream the rows: bin keys and per-key sums per cache-sized block, never a
        # full-length confidence array. ``key = 2 * bin + correct`` gets counts and
        # correct counts from one integer bincount. Keys run to 2 * n_bins + 1:
        # width_bin_keys leaves confidence 1.0 in an overflow bin that
        # fold_overflow_bin adds to the last one at the end.
        n_keys = 2 * n_bins + 2
        counts = np.zeros(n_keys, dtype=np.intp)
        conf_sums = np.zeros(n_keys)
        buffers: dict[str, np.ndarray] = {}
        for chunk in iter_top_label(scores, kind, y):
            rows = chunk.confidence.shape[0]
            if not buffers or buffers["key"].shape[0] < rows:
                buffers = {
                    "key": np.empty(rows, dtype=np.intp),
                    "bin": np.empty(rows, dtype=np.float64),
                    "edge": np.empty(rows, dtype=np.float64),
                    "flag": np.empty(rows, dtype=bool),
                    "conf64": np.empty(rows, dtype=np.float64),
                }
            view = {name: buf[:rows] for name, buf in buffers.items()}
            assert chunk.correct is not None
            conf = chunk.confidence
            if conf.dtype != np.float64:
                # exact; the keys are computed in float64, and bincount would
                # otherwise cast the weights into a fresh array
                conf = view["conf64"]
                conf[:] = chunk.confidence
            k = width_bin_keys(
                conf,
                chunk.correct,
                n_bins,
                out=view["key"],
                scratch=(view["bin"], view["edge"], view["flag"]),
            )
            counts += np.bincount(k, minlength=n_keys)
            conf_sums += np.bincount(k, weights=conf, minlength=n_keys)
        pairs = fold_overflow_bin(counts, n_bins).astype(np.float64)
        conf_sum = fold_overflow_bin(conf_sums, n_bins).sum(axis=1)
        count = pairs.sum(axis=1)
        return float(error_from_statistics(count, conf_sum, pairs[:, 1], norm, debias))
    conf, _, correct = top_label_arrays(scores, kind, y)
    assert correct is not None
    return _core_error(conf, correct, n_bins, binning, norm, debias)


_CLASSIFICATION_PARAMS = """
    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices (columns of ``y_prob`` / ``logits``).
    y_prob, logits : array-like of shape (n_samples, n_classes)
        Exactly one: probabilities (rows sum to 1) or unnormalised scores.
    n_bins : int, default=15
        Number of bins.
    binning : {"width", "mass"}, default="width"
        Equal-width bins (``np.histogram`` edges, 1.0 in the last bin) or
        equal-mass bins (tie groups never split)."""


def expected_calibration_error(
    y_true: npt.ArrayLike,
    *,
    y_prob: Any = None,
    logits: Any = None,
    n_bins: int = 15,
    binning: Binning = "width",
) -> float:
    """Top-label expected calibration error (ECE).

    The confidence is the largest probability (or the softmax of the largest
    logit) and a prediction is correct when its class is ``y_true``; the error is
    ``sum_k (n_k / N) |acc_k - conf_k|`` over confidence bins. With equal-width
    bins it equals ``netcal.metrics.ECE(n_bins).measure(y_prob, y_true)`` for three
    or more classes (netcal switches to the positive-class probability when the
    labels take two values).
    {params}

    Returns
    -------
    float

    References
    ----------
    M. P. Naeini, G. Cooper, M. Hauskrecht. Obtaining well calibrated
    probabilities using Bayesian binning. AAAI 2015.
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. On calibration of modern neural
    networks. ICML 2017.

    Examples
    --------
    Top-label confidences 0.625, 0.875, 0.75 all fall in bin 1 of 2 and two of
    the three predictions are right: ECE = |2/3 - (0.625 + 0.875 + 0.75) / 3| = 1/12

    >>> round(expected_calibration_error(
    ...     [0, 1, 1], y_prob=[[0.625, 0.375], [0.125, 0.875], [0.75, 0.25]], n_bins=2), 12)
    0.083333333333
    """
    return _classification_error(y_true, y_prob, logits, n_bins, binning, "l1")


def max_calibration_error(
    y_true: npt.ArrayLike,
    *,
    y_prob: Any = None,
    logits: Any = None,
    n_bins: int = 15,
    binning: Binning = "width",
) -> float:
    """Top-label maximum calibration error (MCE): the largest bin gap.

    ``max_k |acc_k - conf_k|`` over non-empty bins; always ``>= ECE``.
    {params}

    Returns
    -------
    float

    References
    ----------
    M. P. Naeini, G. Cooper, M. Hauskrecht. AAAI 2015.

    Examples
    --------
    Confidence 0.875 (right) and 0.75 (wrong) in bins 7 and 6 of 8: gaps 1 - 0.875
    and 0.75 - 0:

    >>> max_calibration_error([0, 1], y_prob=[[0.875, 0.125], [0.75, 0.25]], n_bins=8)
    0.75
    """
    return _classification_error(y_true, y_prob, logits, n_bins, binning, "max")


def rms_calibration_error(
    y_true: npt.ArrayLike,
    *,
    y_prob: Any = None,
    logits: Any = None,
    n_bins: int = 15,
    binning: Binning = "width",
) -> float:
    """Top-label root-mean-square (L2) calibration error (plug-in estimate).

    ``sqrt(sum_k (n_k / N) (acc_k - conf_k)^2)``. The plug-in estimate is biased
    upwards; see :func:`debiased_calibration_error`.
    {params}

    Returns
    -------
    float

    References
    ----------
    A. Kumar, P. Liang, T. Ma. Verified uncertainty calibration. NeurIPS 2019.

    Examples
    --------
    One bin, accuracy 1/2, mean confidence (0.875 + 0.75) / 2 = 0.8125:

    >>> rms_calibration_error([0, 1], y_prob=[[0.875, 0.125], [0.75, 0.25]], n_bins=1)
    0.3125
    """
    return _classification_error(y_true, y_prob, logits, n_bins, binning, "l2")


def debiased_calibration_error(
    y_true: npt.ArrayLike,
    *,
    y_prob: Any = None,
    logits: Any = None,
    n_bins: int = 15,
    binning: Binning = "width",
) -> float:
    """Debiased top-label L2 calibration error (Kumar et al., 2019).

    Each bin's squared gap ``(acc_k - conf_k)^2`` overestimates the true squared
    gap by the sampling variance of ``acc_k``; subtracting its unbiased estimate
    ``acc_k (1 - acc_k) / (n_k - 1)`` removes the bias. Bins with fewer than two
    samples are dropped, and the total is clipped at 0 before the square root (as
    in the authors' ``calibration`` library).
    {params}

    Returns
    -------
    float

    References
    ----------
    A. Kumar, P. Liang, T. Ma. Verified uncertainty calibration. NeurIPS 2019.

    Examples
    --------
    One bin, confidences 0.875 and 0.875, accuracy 1/2:
    (0.5 - 0.875)^2 - 0.5 * 0.5 / (2 - 1) < 0, clipped to 0:

    >>> debiased_calibration_error([0, 0], y_prob=[[0.875, 0.125], [0.125, 0.875]], n_bins=1)
    0.0
    """
    return _classification_error(y_true, y_prob, logits, n_bins, binning, "l2", debias=True)


def classwise_calibration_error(
    y_true: npt.ArrayLike,
    *,
    y_prob: Any = None,
    logits: Any = None,
    n_bins: int = 15,
    binning: Binning = "width",
    norm: Norm = "l1",
) -> float:
    """Classwise calibration error (classwise-ECE, Kull et al., 2019).

    For every class ``j``, the binned calibration error of ``p_j`` against the
    indicator ``y == j`` over all samples; the result is the mean over classes.
    With ``binning="mass"`` each class gets its own equal-mass bins.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    y_prob, logits : array-like of shape (n_samples, n_classes)
        Exactly one: probabilities or unnormalised scores.
    n_bins : int, default=15
        Bins per class.
    binning : {"width", "mass"}, default="width"
    norm : {"l1", "l2", "max"}, default="l1"

    Returns
    -------
    float

    References
    ----------
    M. Kull, M. Perello-Nieto, M. Kängsepp, T. Silva Filho, H. Song, P. Flach.
    Beyond temperature scaling: obtaining well-calibrated multiclass
    probabilities with Dirichlet calibration. NeurIPS 2019.

    Examples
    --------
    One bin per class: class 0 has gap |1/2 - (0.875 + 0.25) / 2| = 0.0625,
    class 1 has gap |1/2 - (0.125 + 0.75) / 2| = 0.0625:

    >>> classwise_calibration_error([0, 1], y_prob=[[0.875, 0.125], [0.25, 0.75]], n_bins=1)
    0.0625
    """
    n_bins = check_n_bins(n_bins)
    check_choice("binning", binning, BINNINGS)
    check_choice("norm", norm, NORMS)
    probs = _probabilities(y_prob, logits)
    n, k = probs.shape
    y = check_y_true(y_true, n, k)
    errors = np.empty(k)
    for j in range(k):
        # one class at a time keeps memory at O(n); K is small in this field
        pj = np.ascontiguousarray(probs[:, j])
        errors[j] = _core_error(pj, y == j, n_bins, binning, norm)
    return float(errors.mean())


class CalibrationErrorParts(NamedTuple):
    """ECE split by the sign of each bin's gap: the two parts sum to the ECE."""

    overconfidence: float  # sum_k (n_k/N) max(conf_k - acc_k, 0)
    underconfidence: float  # sum_k (n_k/N) max(acc_k - conf_k, 0)


def top_label_calibration_error_parts(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
) -> CalibrationErrorParts:
    """Over- and under-confidence parts of the ECE of (confidence, correct) pairs.

    Parameters
    ----------
    confidence : array-like of float, shape (n_samples,)
    correct : array-like of bool or 0/1, shape (n_samples,)
    n_bins : int, default=15
    binning : {"width", "mass"}, default="width"

    Returns
    -------
    CalibrationErrorParts
        ``(overconfidence, underconfidence)``; their sum is the ECE.

    Examples
    --------
    >>> top_label_calibration_error_parts([0.25, 0.375, 0.75, 0.875], [0, 1, 1, 1], n_bins=2)
    CalibrationErrorParts(overconfidence=0.0, underconfidence=0.1875)
    """
    n_bins = check_n_bins(n_bins)
    check_choice("binning", binning, BINNINGS)
    conf, corr, _ = check_confidence_correct(confidence, correct)
    return _parts(conf, corr, n_bins, binning)


def _parts(conf: np.ndarray, corr: np.ndarray, n_bins: int, binning: str) -> CalibrationErrorParts:
    ids = bin_ids(conf, n_bins, binning)
    count, conf_sum, correct_sum = bin_statistics(ids, conf, corr, n_bins)
    total = count.sum()
    gap_sum = conf_sum - correct_sum  # n_k (conf_k - acc_k): > 0 is overconfident
    over = float(np.clip(gap_sum, 0, None).sum() / total)
    under = float(np.clip(-gap_sum, 0, None).sum() / total)
    return CalibrationErrorParts(over, under)


def calibration_error_parts(
    y_true: npt.ArrayLike,
    *,
    y_prob: Any = None,
    logits: Any = None,
    n_bins: int = 15,
    binning: Binning = "width",
) -> CalibrationErrorParts:
    """Over- and under-confidence parts of the top-label ECE.

    A bin is overconfident when its mean confidence exceeds its accuracy.
    ``overconfidence + underconfidence == expected_calibration_error(...)``.
    {params}

    Returns
    -------
    CalibrationErrorParts

    Examples
    --------
    >>> calibration_error_parts([0, 1], y_prob=[[0.875, 0.125], [0.75, 0.25]], n_bins=1)
    CalibrationErrorParts(overconfidence=0.3125, underconfidence=0.0)
    """
    n_bins = check_n_bins(n_bins)
    check_choice("binning", binning, BINNINGS)
    return _parts(*checked_top_label(y_true, y_prob, logits), n_bins, binning)


@dataclass(frozen=True)
class ReliabilityTable:
    """Per-bin summary behind a reliability diagram (one entry per bin, empty ones included).

    ``bin_lower``/``bin_upper`` are the nominal edges for equal-width bins and the
    smallest/largest confidence inside the bin for equal-mass bins (NaN when empty);
    ``mean_confidence``, ``accuracy`` and ``gap = accuracy - mean_confidence`` are
    NaN for empty bins.
    """

    bin_lower: np.ndarray
    bin_upper: np.ndarray
    count: np.ndarray
    mean_confidence: np.ndarray
    accuracy: np.ndarray
    gap: np.ndarray
    binning: str

    def to_dict(self) -> dict[str, np.ndarray]:
        return {
            "bin_lower": self.bin_lower,
            "bin_upper": self.bin_upper,
            "count": self.count,
            "mean_confidence": self.mean_confidence,
            "accuracy": self.accuracy,
            "gap": self.gap,
        }

    def to_frame(self) -> Any:
        """The table as a pandas DataFrame (pandas is imported only here)."""
        import pandas as pd

        return pd.DataFrame(self.to_dict())


def top_label_reliability_table(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    n_bins: int = 15,
    binning: Binning = "width",
) -> ReliabilityTable:
    """Reliability-diagram table of (confidence, correct) pairs.

    Parameters
    ----------
    confidence : array-like of float, shape (n_samples,)
    correct : array-like of bool or 0/1, shape (n_samples,)
    n_bins : int, default=15
    binning : {"width", "mass"}, default="width"

    Returns
    -------
    ReliabilityTable

    Examples
    --------
    >>> t = top_label_reliability_table([0.25, 0.375, 0.75, 0.875], [0, 1, 1, 1], n_bins=2)
    >>> t.count.tolist(), t.accuracy.tolist()
    ([2, 2], [0.5, 1.0])
    """
    n_bins = check_n_bins(n_bins)
    check_choice("binning", binning, BINNINGS)
    conf, corr, _ = check_confidence_correct(confidence, correct)
    return _table(conf, corr, n_bins, binning)


def _table(conf: np.ndarray, corr: np.ndarray, n_bins: int, binning: str) -> ReliabilityTable:
    ids = bin_ids(conf, n_bins, binning)
    count, conf_sum, correct_sum = bin_statistics(ids, conf, corr, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / count, np.nan)
        acc = np.where(count > 0, correct_sum / count, np.nan)
    if binning == "width":
        edges = width_edges(n_bins)
        lower, upper = edges[:-1].copy(), edges[1:].copy()
    else:
        lower = np.full(n_bins, np.nan)
        upper = np.full(n_bins, np.nan)
        c64 = conf.astype(np.float64)
        nonempty = count > 0
        mins = np.full(n_bins, np.inf)
        maxs = np.full(n_bins, -np.inf)
        np.minimum.at(mins, ids, c64)
        np.maximum.at(maxs, ids, c64)
        lower[nonempty], upper[nonempty] = mins[nonempty], maxs[nonempty]
    return ReliabilityTable(
        bin_lower=lower,
        bin_upper=upper,
        count=count.astype(np.int64),
        mean_confidence=mean_conf,
        accuracy=acc,
        gap=acc - mean_conf,
        binning=binning,
    )


def reliability_table(
    y_true: npt.ArrayLike,
    *,
    y_prob: Any = None,
    logits: Any = None,
    n_bins: int = 15,
    binning: Binning = "width",
) -> ReliabilityTable:
    """Per-bin count, mean confidence, accuracy and gap of the top-label predictions.

    The table behind a reliability diagram; ``sum(count * |gap|) / N`` is the ECE.
    {params}

    Returns
    -------
    ReliabilityTable

    Examples
    --------
    >>> t = reliability_table([0, 1], y_prob=[[0.875, 0.125], [0.75, 0.25]], n_bins=2)
    >>> t.count.tolist(), t.mean_confidence.tolist(), t.accuracy.tolist()
    ([0, 2], [nan, 0.8125], [nan, 0.5])
    """
    n_bins = check_n_bins(n_bins)
    check_choice("binning", binning, BINNINGS)
    return _table(*checked_top_label(y_true, y_prob, logits), n_bins, binning)


for _f in (
    expected_calibration_error,
    max_calibration_error,
    rms_calibration_error,
    debiased_calibration_error,
    calibration_error_parts,
    reliability_table,
):
    assert _f.__doc__ is not None
    _f.__doc__ = _f.__doc__.replace("{params}", _CLASSIFICATION_PARAMS.strip("\n").lstrip())
