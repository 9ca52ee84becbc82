"""Bitext mining cells (BUCC) in ``xcal analyze``: F1 at a chosen threshold, calibrated confidence.

A mining run holds every source sentence as a query with its top-k English
candidates, their cosines and the margin's neighbourhood means; most queries
have no gold partner. For each run of a cell:

* every query proposes its best candidate by the ratio margin
  (:func:`xcal.metrics.mining.mining_proposals`);
* the ids are split by the same hash as everywhere in the analysis
  (:func:`xcal.analyze.predictions.fit_mask`): on the *fit* part the threshold
  that maximises F1 is chosen (XTREME chooses it on dev and reports test) and
  a Platt map ``sigmoid(a * margin + b)`` is fitted from the margin to "the
  proposed pair is a gold pair";
* on the *evaluation* part: ``f1`` (the task metric), ``precision`` and
  ``recall`` of the pairs mined at that threshold (variant ``raw``: they do
  not depend on the confidence; variant ``cosine``: the same with pairs
  proposed and thresholded by plain cosine, the reference the margin
  improves on), and the calibration of the Platt confidence
  over **all** evaluation queries, those without a partner included (their
  proposal is never right): ``ece``, ``ece_mass``, ``mce``, ``brier``,
  ``nll``, ``aurc`` (area under the risk-coverage curve) and ``confidence``,
  variant ``platt_self``.

Bootstrap intervals resample evaluation queries (F1 is a ratio of per-query
sums, so it resamples like a mean), and paired differences to the baseline
use the same resamples, as for every other task.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xcal.analyze.results import empty_results, metric_info

if TYPE_CHECKING:
    from xcal.analyze.options import AnalysisOptions, Run
    from xcal.analyze.predictions import _Predictions
    from xcal.metrics.selective import RiskCoverageCurve
    from xcal.stats import Statistic
    from xcal.store import PredictionStore

#: Name of the recalibrated variant of mining confidences.
PLATT_VARIANT = "platt_self"
_TASK_METRICS = ("f1", "precision", "recall")
#: How proposals are scored, and the variant name of the task metrics under each:
#: the ratio margin is the method (``raw``), plain cosine the reference.
_SCORES = ("ratio", "cosine")
_SCORE_VARIANTS = {"ratio": "raw", "cosine": "cosine"}


@dataclass(frozen=True)
class PlattMap:
    """``confidence = sigmoid(slope * score + intercept)``, fitted on the fit queries."""

    slope: float
    intercept: float

    def __call__(self, score: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        return np.asarray(expit(self.slope * np.asarray(score, dtype=np.float64) + self.intercept))


def fit_platt(score: np.ndarray, correct: np.ndarray) -> PlattMap:
    """Platt scaling (:class:`xcal.calibrate.PlattScaling`) of proposal scores.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.normal(1.0, 0.1, 2000)
    >>> y = rng.random(2000) < 1 / (1 + np.exp(-(20 * s - 22)))
    >>> m = fit_platt(s, y)
    >>> 15 < m.slope < 25, -27 < m.intercept < -17
    (True, True)
    """
    from xcal.calibrate import PlattScaling

    s = np.asarray(score, dtype=np.float64)
    platt = PlattScaling().fit(np.column_stack([np.zeros_like(s), s]), correct.astype(np.int64))
    return PlattMap(float(platt.slope_[0]), float(platt.intercept_[0]))


def mining_predictions(records: Mapping[str, Any], ids: np.ndarray) -> _Predictions:
    """A mining run's records reduced to each query's proposal (for the pipeline)."""
    from xcal.analyze.predictions import _Predictions
    from xcal.metrics.mining import mining_proposals

    by_score = [
        mining_proposals(
            np.asarray(records["scores"], dtype=np.float64),
            records["candidate_ids"],
            records["gold_ids"],
            query_knn_mean=records["query_knn_mean"],
            candidate_knn_mean=records["candidate_knn_mean"],
            score=score,
        )
        for score in _SCORES
    ]
    # One column per way of scoring a pair (_SCORES): the proposal's score and correctness.
    return _Predictions(
        kind="mining",
        ids=ids,
        scores=np.column_stack([p.score for p in by_score]),
        top=np.zeros(len(ids), dtype=np.int64),
        correct=np.column_stack([p.correct for p in by_score]),
        n_gold=by_score[0].n_gold,
    )


def _threshold_counts(fit: _Predictions, ev: _Predictions, column: int) -> tuple[float, np.ndarray]:
    """Threshold from the fit queries; per-query counts of the others at it."""
    from xcal.metrics.mining import best_mining_threshold, mining_counts

    assert fit.scores is not None and fit.correct is not None and fit.n_gold is not None
    assert ev.scores is not None and ev.correct is not None and ev.n_gold is not None
    s, c = fit.scores[:, column], fit.correct[:, column]
    threshold = best_mining_threshold(s, c, fit.n_gold)
    return threshold, mining_counts(
        ev.scores[:, column], ev.correct[:, column], ev.n_gold, threshold
    )


def _platt_confidence(fit: _Predictions, ev: _Predictions) -> tuple[PlattMap, np.ndarray]:
    """The Platt map of the margin (column 0) from the fit queries, applied to the others."""
    assert fit.scores is not None and fit.correct is not None and ev.scores is not None
    platt = fit_platt(fit.scores[:, 0], fit.correct[:, 0])
    return platt, platt(ev.scores[:, 0])


@dataclass(frozen=True)
class MiningScore:
    """One mining run scored as ``xcal analyze`` scores it, for scripts and notebooks.

    Attributes
    ----------
    threshold : float
        Chosen on the fit queries (F1-optimal); pairs with margin ``>=`` it are mined.
    platt : PlattMap
        From the margin to the probability that the proposed pair is gold.
    precision, recall, f1 : float
        Of the pairs mined among the evaluation queries.
    example_ids, margin, confidence, correct, n_gold : numpy.ndarray
        Per evaluation query (every one, with or without a partner).
    """

    threshold: float
    platt: PlattMap
    precision: float
    recall: float
    f1: float
    example_ids: np.ndarray
    margin: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray
    n_gold: np.ndarray

    def calibration_error(self, n_bins: int = 15) -> float:
        """Top-label ECE of the confidence over all evaluation queries."""
        from xcal.metrics import top_label_calibration_error

        return top_label_calibration_error(self.confidence, self.correct, n_bins=n_bins)

    def brier_loss(self) -> float:
        """Brier score of "the proposed pair is gold" over all evaluation queries."""
        return float(np.mean((self.confidence - self.correct) ** 2))

    def risk_coverage(self) -> RiskCoverageCurve:
        """Error rate of the proposals kept as the confidence threshold goes down."""
        from xcal.metrics import top_label_risk_coverage_curve

        return top_label_risk_coverage_curve(self.confidence, self.correct)


def score_mining_run(
    store: PredictionStore | str | os.PathLike[str], run_id: str, *, fit_fraction: float = 0.5
) -> MiningScore:
    """Score one stored mining run: threshold and Platt map on fit ids, the rest on the others.

    The id split is :func:`xcal.analyze.predictions.fit_mask`'s, as in ``xcal analyze``.

    Examples
    --------
    >>> score = score_mining_run("preds", run_id)  # doctest: +SKIP
    >>> score.f1, score.calibration_error(), score.risk_coverage().risk[:5]  # doctest: +SKIP
    """
    from xcal.analyze.predictions import fit_mask
    from xcal.metrics.mining import _prf
    from xcal.store import PredictionStore, open_store

    if not isinstance(store, PredictionStore):
        store = open_store(store)
    records = store.load_records(run_id)
    if "query_knn_mean" not in records:
        raise ValueError(f"run {run_id} is not a mining run")
    ids = np.asarray(list(records["example_id"]), dtype=object)
    pred = mining_predictions(records, ids)
    in_fit = fit_mask(ids, fit_fraction)
    fit, ev = pred.subset(in_fit), pred.subset(~in_fit)
    assert fit.correct is not None and ev.scores is not None
    assert ev.correct is not None and ev.n_gold is not None
    if not fit.correct[:, 0].any():
        raise ValueError(
            f"run {run_id}: no correct proposal among the {int(in_fit.sum())} fitting queries; "
            "no threshold or confidence map can be fitted"
        )
    threshold, counts = _threshold_counts(fit, ev, 0)
    platt, conf = _platt_confidence(fit, ev)
    precision, recall, f1 = (float(v) for v in _prf(*counts.sum(axis=0)))
    return MiningScore(
        threshold,
        platt,
        precision,
        recall,
        f1,
        ev.ids,
        ev.scores[:, 0],
        conf,
        ev.correct[:, 0],
        ev.n_gold,
    )


def _counts_statistic(counts: np.ndarray, metric: str) -> Statistic:
    from xcal.metrics.mining import _prf
    from xcal.stats import LinearStatistic

    position = ("precision", "recall", "f1").index(metric)  # the order _prf returns

    def finalize(sums: np.ndarray, total: np.ndarray) -> np.ndarray:
        return np.asarray(_prf(sums[:, 0], sums[:, 1], sums[:, 2])[position], dtype=np.float64)

    return LinearStatistic(counts, finalize, f"mining_{metric}", ("mining", metric))


def _calibration_statistic(metric: str, conf: np.ndarray, correct: np.ndarray, n_bins: int) -> Any:
    from xcal.analyze._adapters import AurcStatistic
    from xcal.stats import mean_statistic, metric_statistic

    c = correct.astype(np.float64)
    if metric in ("ece", "ece_mass", "mce"):
        return metric_statistic(
            "mce" if metric == "mce" else "ece",
            confidence=conf,
            correct=correct,
            n_bins=n_bins,
            binning="mass" if metric == "ece_mass" else "width",
        )
    if metric == "brier":
        return mean_statistic((conf - c) ** 2, name="brier_score_loss")
    if metric == "nll":
        p = np.clip(conf, 1e-12, 1 - 1e-12)
        return mean_statistic(-(c * np.log(p) + (1 - c) * np.log1p(-p)), name="nll_loss")
    if metric == "aurc":
        return AurcStatistic(conf, correct)
    if metric == "confidence":
        return mean_statistic(conf, name="mean_confidence")
    return None


def analyse_mining_cell(
    options: AnalysisOptions,
    records: Sequence[Run],
    loaded: Mapping[str, _Predictions],
    notes: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows and reliability bins of one cell of mining runs (see the module docstring).

    Notes for the report are appended to ``notes``.
    """
    from xcal.analyze.bootstrap import _bootstrap
    from xcal.analyze.cell import cell_frames, comparison_rows, reliability_rows
    from xcal.analyze.options import CELL_FIELDS, MIN_FIT_EXAMPLES, RELIABILITY_COLUMNS
    from xcal.analyze.plan import _describe, _seed_for
    from xcal.analyze.predictions import fit_mask

    where = _describe(records[0])
    id_sets = [set(p.ids.tolist()) for p in loaded.values()]
    common = set.intersection(*id_sets)
    if any(len(s) != len(common) for s in id_sets):
        notes.append(
            f"{where}: runs hold different queries; compared on the {len(common)} they share"
        )
    reference = next(
        (loaded[str(r["run_id"])] for r in records if r["model"] == options.baseline),
        next(iter(loaded.values())),
    )
    ordered = np.array([i for i in reference.ids if i in common], dtype=object)
    # The threshold and the Platt map are always fitted on other queries than
    # those evaluated, whatever `recalibrate` says: F1 at a threshold chosen on
    # the evaluated pairs would be optimistic.
    in_fit = fit_mask(ordered, options.fit_fraction)
    eval_ids, fit_ids = ordered[~in_fit], ordered[in_fit]
    if len(eval_ids) == 0 or len(fit_ids) < MIN_FIT_EXAMPLES:
        notes.append(
            f"{where}: {len(fit_ids)} fitting and {len(eval_ids)} evaluation queries; a mining "
            f"cell needs at least {MIN_FIT_EXAMPLES} fitting queries and one to evaluate; skipped"
        )
        return empty_results(), pd.DataFrame(columns=list(RELIABILITY_COLUMNS))

    stats: dict[tuple[str, str, str], Any] = {}
    confidences: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    run_of: dict[str, Run] = {}
    for run in records:
        pred = loaded[str(run["run_id"])]
        position = {v: i for i, v in enumerate(pred.ids.tolist())}
        fit = pred.subset(np.array([position[i] for i in fit_ids], dtype=np.intp))
        ev = pred.subset(np.array([position[i] for i in eval_ids], dtype=np.intp))
        assert fit.scores is not None and fit.correct is not None and fit.n_gold is not None
        assert ev.scores is not None and ev.correct is not None and ev.n_gold is not None
        system = str(run["model"])
        run_of[system] = run
        if not fit.correct[:, 0].any():
            notes.append(
                f"{system} on {where}: no correct proposal among the {len(fit_ids)} fitting "
                "queries, so no threshold or confidence map could be fitted; skipped"
            )
            continue
        if ev.n_gold.sum() == 0:
            notes.append(
                f"{system} on {where}: no gold pair among the {len(eval_ids)} evaluation queries; "
                "recall and F1 are undefined"
            )
        _, conf = _platt_confidence(fit, ev)
        confidences[system] = (conf, ev.correct[:, 0])
        counts = {
            _SCORE_VARIANTS[score]: _threshold_counts(fit, ev, column)[1]
            for column, score in enumerate(_SCORES)
            if fit.correct[:, column].any()
        }
        for metric in options.metrics:
            info = metric_info(metric)
            if "mining" not in info.kinds:
                continue
            if metric in _TASK_METRICS:
                for variant, variant_counts in counts.items():
                    stats[(system, variant, metric)] = _counts_statistic(variant_counts, metric)
            else:
                stat = _calibration_statistic(metric, conf, ev.correct[:, 0], options.n_bins)
                if stat is not None:
                    stats[(system, PLATT_VARIANT, metric)] = stat
    estimates = {k: s.estimate() for k, s in stats.items()}
    seed = _seed_for(options.seed, records[0])
    n = len(eval_ids)
    replicates: dict[tuple[str, str, str], np.ndarray] = {}
    if options.n_boot > 0 and stats:
        replicates = _bootstrap(stats, n, options.n_boot, seed)

    base = {f: records[0][f] for f in CELL_FIELDS}
    rows = comparison_rows(
        base, estimates, replicates, run_of, options, seed=seed, n=n, finite_only=True
    )

    bins: list[dict[str, Any]] = []
    for system, (conf, correct) in confidences.items():
        bins += reliability_rows(system, PLATT_VARIANT, base, conf, correct, options.n_bins)
    return cell_frames(rows, bins)
