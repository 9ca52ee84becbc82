"""Small bridges from the analysis to the metric, stats, calibration and transfer packages.

Everything the pipeline needs from another package goes through here, so a
change of interface touches one file. Two statistics are defined here because
the stats package has no batched form of them: classwise ECE (a linear
statistic: per class, fixed equal-width bins) and AURC (a function of
cumulative sums along one fixed confidence order). Both equal the
:mod:`xcal.metrics` functions on the unweighted sample (tested).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from xcal.stats import LinearStatistic, Statistic

# ------------------------------------------------------------------ temperature


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)`` (Guo et al., 2017).

    Fitted by :mod:`xcal.calibrate` (``get_calibrator("temperature")``); the
    pipeline applies ``softmax(logits / T)`` itself, which is that
    calibrator's ``predict_proba``.
    """
    import warnings

    from xcal.calibrate import get_calibrator

    with warnings.catch_warnings():
        # A temperature at the search bound becomes a note of the analysis (pipeline).
        warnings.simplefilter("ignore", RuntimeWarning)
        calibrator: Any = get_calibrator("temperature").fit(logits, labels)
    return float(calibrator.temperature_)


def top1_confidence(scores: np.ndarray, top: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax probability of the top entry among a row's scores at a temperature.

    ``scores`` is ``(n, k)`` padded with ``-inf``; the same formula as
    :func:`xcal.metrics.qa.qa_confidence_correctness` and
    :func:`xcal.metrics.retrieval.retrieval_confidence_correctness`.
    """
    rows = np.arange(scores.shape[0])
    z = scores / temperature
    return 1.0 / np.exp(z - z[rows, top][:, None]).sum(axis=1)


def fit_top1_temperature(scores: np.ndarray, top: np.ndarray, correct: np.ndarray) -> float:
    """Temperature of the top-1 confidence minimising the NLL of being correct.

    For QA spans and retrieval candidates the gold is not one of a fixed set
    of classes, so the temperature is fitted to the event that calibration
    metrics score: "the top answer is right".
    """
    from scipy.optimize import minimize_scalar

    c = np.asarray(correct, dtype=np.float64)
    eps = 1e-12

    def nll(log_t: float) -> float:
        p = np.clip(top1_confidence(scores, top, math.exp(log_t)), eps, 1 - eps)
        return float(-np.mean(c * np.log(p) + (1 - c) * np.log1p(-p)))

    res = minimize_scalar(nll, bounds=(-7.0, 7.0), method="bounded", options={"xatol": 1e-8})
    return float(math.exp(res.x))


# ------------------------------------------------------------------ statistics


def classwise_statistic(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    n_bins: int = 15,
    example_ids: np.ndarray | None = None,
) -> LinearStatistic:
    """Batched classwise ECE (equal-width bins, L1), as :func:`xcal.metrics.classwise_calibration_error`.

    For class ``k`` the bin of ``p_k`` is fixed under resampling, so the error
    needs only per-bin sums of ``[y = k] - p_k``: an ``(n, K * n_bins)``
    contribution matrix.
    """
    from xcal.metrics._binning import width_bin_ids

    n, k = probs.shape
    m = np.zeros((n, k * n_bins))
    rows = np.arange(n)
    for j in range(k):
        pj = np.ascontiguousarray(probs[:, j])
        ids = width_bin_ids(pj, n_bins)
        m[rows, j * n_bins + ids] = (labels == j).astype(np.float64) - pj

    def finalize(sums: np.ndarray, total: np.ndarray) -> np.ndarray:
        return np.abs(sums).sum(axis=1) / total / k

    return LinearStatistic(
        m, finalize, "classwise_calibration_error", ("classwise", n_bins, k), example_ids
    )


class AurcStatistic(Statistic):
    """Batched AURC, equal to :func:`xcal.metrics.top_label_aurc_loss` on the unweighted sample.

    Tie groups of equal confidence enter together (as in
    :mod:`xcal.metrics.selective`); a resample only changes each group's
    weighted size and error count along one fixed descending order, so a
    chunk of resamples is a few cumulative sums of ``(c, n_groups)`` arrays.
    """

    def __init__(
        self, confidence: np.ndarray, correct: np.ndarray, example_ids: np.ndarray | None = None
    ) -> None:
        self.confidence = np.asarray(confidence, dtype=np.float64)
        self.correct = np.asarray(correct, dtype=bool)
        self.n = self.confidence.shape[0]
        if self.n == 0:
            raise ValueError("A statistic needs at least one example, got 0")
        self.name = "aurc_loss"
        self.kind = ("aurc",)
        self._with_ids(example_ids)
        self._order = np.argsort(-self.confidence, kind="stable")
        sorted_conf = self.confidence[self._order]
        new_group = np.empty(self.n, dtype=bool)
        new_group[0] = True
        np.not_equal(sorted_conf[1:], sorted_conf[:-1], out=new_group[1:])
        self._starts = np.flatnonzero(new_group)
        self._errors = (~self.correct[self._order]).astype(np.float64)

    def on_weights(self, weights: np.ndarray) -> np.ndarray:
        w = weights[:, self._order]
        err = w * self._errors[None, :]
        if self._starts.shape[0] == self.n:
            size = w  # no ties (the usual case with float confidences): groups are examples
        else:
            size = np.add.reduceat(w, self._starts, axis=1)
            err = np.add.reduceat(err, self._starts, axis=1)
        cum_n = np.cumsum(size, axis=1)
        cum_e = np.cumsum(err, axis=1, out=err)
        # a group with zero weight has size 0 and adds nothing, whatever its risk
        np.maximum(cum_n, np.finfo(np.float64).tiny, out=cum_n)
        np.divide(cum_e, cum_n, out=cum_e)
        return np.einsum("ij,ij->i", size, cum_e) / w.sum(axis=1)

    def estimate(self) -> float:
        return float(self.on_weights(np.ones((1, self.n)))[0])

    def take(self, order: np.ndarray) -> AurcStatistic:
        ids = None if self.example_ids is None else self.example_ids[order]
        return AurcStatistic(self.confidence[order], self.correct[order], ids)

    def pooled(self, other: Statistic) -> AurcStatistic:
        if not isinstance(other, AurcStatistic):
            raise ValueError("Cannot pool an AURC statistic with another kind of statistic")
        return AurcStatistic(
            np.concatenate([self.confidence, other.confidence]),
            np.concatenate([self.correct, other.correct]),
        )


# ------------------------------------------------------------------ languages


def language_info(
    languages: Iterable[str], *, view: str = "syntax_knn"
) -> dict[str, tuple[float, float]]:
    """``language -> (resource class, URIEL distance from English)``; NaN where unknown.

    From :mod:`xcal.transfer.language` (Joshi et al. 2020 classes; lang2vec
    URIEL features). A language missing from either table, or a missing
    lang2vec install, gives NaN rather than an error: the analysis still runs.
    """
    out: dict[str, tuple[float, float]] = {}
    try:
        from xcal.transfer.language import language_distance, resource_class
    except ImportError:  # pragma: no cover - xcal.transfer is part of xcal
        return {lang: (math.nan, math.nan) for lang in languages}
    for lang in languages:
        try:
            klass = float(resource_class(lang))
        except Exception:
            klass = math.nan
        try:
            distance = float(language_distance(lang, "en", view))
        except Exception:
            distance = math.nan
        out[lang] = (klass, distance)
    return out
