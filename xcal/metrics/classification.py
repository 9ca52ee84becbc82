"""Proper scores and accuracy for classification and multiple choice.

Every function takes class-index labels ``y_true`` and exactly one of
``y_prob`` (probabilities, rows sum to 1) or ``logits`` (unnormalised scores,
e.g. a classifier head's outputs or per-choice log-likelihoods); an array is
never guessed to be one or the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from xcal.metrics._toplabel import iter_top_label, top_label_arrays
from xcal.metrics._validation import (
    check_float_array,
    check_logits,
    check_probabilities,
    check_scores,
    check_y_true,
)

__all__ = [
    "accuracy_score",
    "brier_score_loss",
    "log_softmax",
    "nll_loss",
    "softmax",
    "top_label",
]


def log_softmax(logits: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """Numerically stable ``log(softmax(logits))``.

    Subtracting the row maximum before ``exp`` keeps every exponent <= 0, so
    logits of any magnitude neither overflow nor lose the top class.

    Parameters
    ----------
    logits : array-like of float
        Unnormalised scores.
    axis : int, default=-1
        The class axis.

    Returns
    -------
    numpy.ndarray
        Log-probabilities, same shape and float dtype as ``logits``.

    Examples
    --------
    >>> import numpy as np
    >>> log_softmax(np.array([[1000.0, 1000.0]]))
    array([[-0.69314718, -0.69314718]])
    """
    z = np.asarray(logits)
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float64)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(logits: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax over ``axis``.

    Parameters
    ----------
    logits : array-like of float
        Unnormalised scores.
    axis : int, default=-1
        The class axis.

    Returns
    -------
    numpy.ndarray
        Probabilities that sum to 1 along ``axis``; same float dtype as ``logits``.

    Examples
    --------
    >>> import numpy as np
    >>> softmax(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """
    z = np.asarray(logits)
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def top_label(y_prob: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and index of the most probable class of each row.

    Ties go to the lowest class index, as with ``np.argmax``.

    Parameters
    ----------
    y_prob : array-like of shape (n_samples, n_classes)
        Probabilities; each row must sum to 1.

    Returns
    -------
    confidence : numpy.ndarray of shape (n_samples,)
        The largest probability of each row (dtype of ``y_prob``).
    predicted : numpy.ndarray of shape (n_samples,)
        Its class index (``np.intp``).

    Examples
    --------
    >>> top_label([[0.2, 0.8], [0.5, 0.5]])
    (array([0.8, 0.5]), array([1, 0]))
    """
    probs = check_float_array(y_prob, "y_prob", 2)
    conf, pred, _ = top_label_arrays(probs, "prob")
    return conf, pred


def accuracy_score(y_true: npt.ArrayLike, *, y_prob: Any = None, logits: Any = None) -> float:
    """Fraction of samples whose top-scoring class is the true class.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices (columns of ``y_prob`` / ``logits``).
    y_prob, logits : array-like of shape (n_samples, n_classes)
        Exactly one: probabilities or unnormalised scores.

    Returns
    -------
    float

    Examples
    --------
    >>> accuracy_score([0, 1, 1], logits=[[2.0, 1.0], [0.0, 3.0], [1.0, 0.5]])
    0.6666666666666666
    """
    kind, scores = check_scores(y_prob, logits, validate_values=False)
    y = check_y_true(y_true, scores.shape[0], scores.shape[1])
    hits = 0
    for chunk in iter_top_label(scores, kind, y):
        assert chunk.correct is not None
        hits += int(np.count_nonzero(chunk.correct))
    return hits / scores.shape[0]


def nll_loss(y_true: npt.ArrayLike, *, y_prob: Any = None, logits: Any = None) -> float:
    """Mean negative log-likelihood of the true class (cross-entropy, natural log).

    From ``logits`` it is ``logsumexp(z) - z_y`` computed stably in float64, exact
    even where the softmax would round the true class's probability to 0. From
    ``y_prob`` it equals ``sklearn.metrics.log_loss``: probabilities are clipped to
    ``[eps, 1 - eps]`` (``eps`` of the input dtype) so a confident mistake costs
    ``-log(eps)`` rather than infinity.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    y_prob, logits : array-like of shape (n_samples, n_classes)
        Exactly one: probabilities or unnormalised scores.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.isclose(nll_loss([1], y_prob=[[0.25, 0.75]]), -np.log(0.75)))
    True
    >>> nll_loss([0], logits=[[0.0, 0.0]])  # log 2
    0.6931471805599453
    """
    kind, scores = check_scores(y_prob, logits)
    y = check_y_true(y_true, scores.shape[0], scores.shape[1])
    rows = np.arange(scores.shape[0])
    if kind == "logits":
        z = scores.astype(np.float64, copy=False)
        top = z.max(axis=1)
        lse = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        return float(np.mean(lse - z[rows, y]))
    eps = np.finfo(scores.dtype).eps
    p_true = np.clip(scores[rows, y], eps, 1 - eps).astype(np.float64)
    return float(-np.mean(np.log(p_true)))


def brier_score_loss(y_true: npt.ArrayLike, *, y_prob: Any = None, logits: Any = None) -> float:
    """Multiclass Brier score: mean squared distance to the one-hot truth.

    ``mean_i sum_j (p_ij - [y_i = j])^2`` (Brier, 1950), in ``[0, 2]``. For three
    or more classes this is ``sklearn.metrics.brier_score_loss`` with 2-D input;
    for two classes it is twice scikit-learn's binary Brier score on the
    positive-class probability (scikit-learn halves the two-class sum).

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
    G. W. Brier. Verification of forecasts expressed in terms of probability.
    Monthly Weather Review, 78(1):1-3, 1950.

    Examples
    --------
    >>> brier_score_loss([0], y_prob=[[0.5, 0.5]])  # 0.5**2 + 0.5**2
    0.5
    """
    kind, scores = check_scores(y_prob, logits)
    y = check_y_true(y_true, scores.shape[0], scores.shape[1])
    probs = softmax(scores.astype(np.float64), axis=1) if kind == "logits" else scores
    probs = probs.astype(np.float64, copy=False)
    rows = np.arange(probs.shape[0])
    # sum_j p_j^2 - 2 p_y + 1 avoids building the one-hot matrix
    per_sample = np.einsum("ij,ij->i", probs, probs) - 2.0 * probs[rows, y] + 1.0
    return float(np.mean(per_sample))


def _probabilities(y_prob: Any, logits: Any) -> np.ndarray:
    """Validated float probabilities from either argument (softmax of logits)."""
    if (y_prob is None) == (logits is None):
        check_scores(y_prob, logits)  # raises the standard message
    if y_prob is not None:
        return check_probabilities(y_prob)
    return softmax(check_logits(logits), axis=1)
