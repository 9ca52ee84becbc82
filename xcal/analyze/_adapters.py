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
from dataclasses import dataclass
from typing import Any

import numpy as np

from xcal.stats import LinearStatistic, Statistic

# ------------------------------------------------------------------ temperature


@dataclass(frozen=True)
class TemperatureFit:
    """A fitted temperature with what the fitter knows about it.

    Attributes
    ----------
    temperature : float
    bounds : (float, float)
        The fitter's own search range for ``T`` (classification and retrieval
        fitters search different ranges).
    all_correct : bool
        Every fitting example is right: the NLL keeps falling as ``T -> 0``, so
        no finite temperature minimises it and the fit lands on the lower bound.
    """

    temperature: float
    bounds: tuple[float, float]
    all_correct: bool = False

    @property
    def at_bound(self) -> bool:
        """Whether ``T`` is at an end of the search range (relative 1e-6 in log T)."""
        log_t = math.log(self.temperature)
        return any(abs(log_t - math.log(b)) < 1e-6 for b in self.bounds)

    def note(self) -> str | None:
        """Why this temperature should not be trusted, or None."""
        if self.all_correct:
            return (
                "every fitting example is correct, so no finite temperature minimises the NLL "
                f"(fit stopped at {self.temperature:.3g}, the lower end of its search range)"
            )
        if self.at_bound:
            low, high = self.bounds
            return (
                f"the fitted temperature {self.temperature:.3g} is at the end of the search "
                f"range [{low:.3g}, {high:.3g}]"
            )
        return None


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> TemperatureFit:
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
    all_correct = bool(np.all(np.argmax(logits, axis=1) == labels))
    return TemperatureFit(
        float(calibrator.temperature_),
        (float(calibrator.t_min), float(calibrator.t_max)),
        all_correct,
    )


def top1_confidence(scores: np.ndarray, top: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax probability of the top entry among a row's scores at a temperature.

    ``scores`` is ``(n, k)`` padded with ``-inf``; the same formula as
    :func:`xcal.metrics.qa.qa_confidence_correctness` and
    :func:`xcal.metrics.retrieval.retrieval_confidence_correctness`.
    """
    rows = np.arange(scores.shape[0])
    z = scores / temperature
    return 1.0 / np.exp(z - z[rows, top][:, None]).sum(axis=1)


#: Search range of ``log T`` for the top-1 temperature (QA spans, retrieval).
TOP1_LOG_T_BOUNDS = (-7.0, 7.0)


def top1_nll(scores: np.ndarray, top: np.ndarray, correct: np.ndarray, temperature: float) -> float:
    """Mean NLL of "the top entry is right" at a temperature, without clipping.

    ``log p`` and ``log(1 - p)`` come from log-sum-exps of the scaled gaps to the
    top score, so the loss stays exact as ``p -> 1`` (clipping ``p`` at
    ``1 - 1e-12`` made it flat near ``T = 0``, a plateau a bounded search could
    settle on). Rows with a single candidate (``p = 1`` at every ``T``) carry
    no information about ``T`` and are left out.
    """
    from scipy.special import logsumexp

    rows = np.arange(scores.shape[0])
    gaps = (scores - scores[rows, top][:, None]) / temperature  # <= 0; -inf for padding
    others = gaps.copy()
    others[rows, top] = -np.inf
    log_rest = logsumexp(others, axis=1)  # log sum_{j != top} exp(gap_j)
    keep = np.isfinite(log_rest)
    log_norm = np.logaddexp(0.0, log_rest[keep])
    c = np.asarray(correct, dtype=bool)[keep]
    log_p = -log_norm
    log_not_p = log_rest[keep] - log_norm
    if not keep.any():
        return 0.0
    return float(-np.mean(np.where(c, log_p, log_not_p)))


def fit_top1_temperature(
    scores: np.ndarray, top: np.ndarray, correct: np.ndarray
) -> TemperatureFit:
    """Temperature of the top-1 confidence minimising the NLL of being correct.

    For QA spans and retrieval candidates the gold is not one of a fixed set
    of classes, so the temperature is fitted to the event that calibration
    metrics score: "the top answer is right". Bounded Brent search on ``log T``
    in :data:`TOP1_LOG_T_BOUNDS`, then the two end points themselves (Brent's
    bounded search never evaluates them).
    """
    from scipy.optimize import minimize_scalar

    c = np.asarray(correct, dtype=bool)

    def nll(log_t: float) -> float:
        return top1_nll(scores, top, c, math.exp(log_t))

    lo, hi = TOP1_LOG_T_BOUNDS
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-8})
    log_t = float(res.x)
    for edge in (lo, hi):
        if nll(edge) < nll(log_t):
            log_t = edge
    return TemperatureFit(math.exp(log_t), (math.exp(lo), math.exp(hi)), bool(c.all()))


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
