"""One run's predictions: the example split, loading a run, scoring it, its statistics.

This is the only module that reads run data (:func:`load_predictions`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xcal.analyze import _adapters
from xcal.analyze.options import AnalysisOptions, Run
from xcal.analyze.results import metric_info

if TYPE_CHECKING:
    from xcal.store import PredictionStore


def fit_mask(example_ids: np.ndarray, fraction: float) -> np.ndarray:
    """True for the examples that fit temperatures; the same for an id in every language.

    An id goes to the fit part when the first 8 bytes of its BLAKE2b hash,
    read as a fraction of 2**64, are below ``fraction``.

    Examples
    --------
    >>> ids = np.array([f"xnli-dev-{i:06d}" for i in range(1000)])
    >>> mask = fit_mask(ids, 0.5)
    >>> 450 < int(mask.sum()) < 550, bool((fit_mask(ids[::-1], 0.5) == mask[::-1]).all())
    (True, True)
    """
    threshold = int(fraction * 2**64)
    values = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "big")
            for i in example_ids
        ),
        dtype=np.uint64,
        count=len(example_ids),
    )
    return values < np.uint64(min(threshold, 2**64 - 1))


@dataclass
class _Predictions:
    """A run reduced to what the metrics need, for any record kind."""

    kind: str
    ids: np.ndarray
    logits: np.ndarray | None = None  # (n, C) classification / multiple choice
    labels: np.ndarray | None = None
    scores: np.ndarray | None = None  # (n, k) QA spans / retrieval candidates, -inf padded
    top: np.ndarray | None = None  # index of the top entry in each row of scores
    correct: np.ndarray | None = None  # top entry right (QA, retrieval)
    exact_match: np.ndarray | None = None
    f1: np.ndarray | None = None
    n_gold: np.ndarray | None = None  # gold pairs per query (mining)
    base_temperature: float = 1.0  # raw temperature of the top-1 softmax
    units: np.ndarray | None = None  # recorded clusters (QA paragraphs), xcal.analyze.clusters

    def subset(self, mask_or_index: np.ndarray) -> _Predictions:
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[mask_or_index]

        return _Predictions(
            kind=self.kind,
            ids=self.ids[mask_or_index],
            logits=pick(self.logits),
            labels=pick(self.labels),
            scores=pick(self.scores),
            top=pick(self.top),
            correct=pick(self.correct),
            exact_match=pick(self.exact_match),
            f1=pick(self.f1),
            n_gold=pick(self.n_gold),
            base_temperature=self.base_temperature,
            units=pick(self.units),
        )

    def fit(self) -> _adapters.TemperatureFit:
        """Temperature fitted on these predictions (with the fitter's range)."""
        if self.kind in ("classification", "multiple_choice"):
            assert self.logits is not None and self.labels is not None
            return _adapters.fit_temperature(self.logits, self.labels)
        assert self.scores is not None and self.top is not None and self.correct is not None
        return _adapters.fit_top1_temperature(self.scores, self.top, self.correct)


def _padded(rows: Sequence[Sequence[float]]) -> np.ndarray:
    width = max((len(r) for r in rows), default=1)
    out = np.full((len(rows), max(width, 1)), -np.inf)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def load_predictions(store: PredictionStore, run: Run, options: AnalysisOptions) -> _Predictions:
    """Load one run and reduce it to arrays (the only place that reads run data)."""
    kind = str(run["record_kind"])
    run_id = str(run["run_id"])
    if kind in ("classification", "multiple_choice"):
        arrays = (
            store.load_classification(run_id)
            if kind == "classification"
            else store.load_multiple_choice(run_id)
        )
        return _Predictions(
            kind=kind,
            ids=np.asarray(arrays.example_ids, dtype=object),
            logits=np.asarray(arrays.logits, dtype=np.float64),
            labels=np.asarray(arrays.labels, dtype=np.int64),
        )
    records = store.load_records(run_id)
    ids = np.asarray(list(records["example_id"]), dtype=object)
    if kind == "qa":
        from xcal.metrics.qa import qa_confidence_correctness, qa_exact_match_f1

        nbest, answers = records["nbest"], records["answers"]
        # MLQA has its own answer normalisation per language; SQuAD's otherwise.
        language = str(run["language"]) if str(run["task"]).startswith("mlqa") else None
        em, f1 = qa_exact_match_f1(nbest, answers, language=language)
        criterion: Any = options.qa_criterion
        _, correct = qa_confidence_correctness(
            nbest, answers, language=language, criterion=criterion
        )
        scores = _padded([[float(span["score"]) for span in row] for row in nbest])
        return _Predictions(
            kind=kind,
            ids=ids,
            scores=scores,
            top=np.argmax(scores, axis=1),
            correct=np.asarray(correct, dtype=bool),
            exact_match=np.asarray(em, dtype=np.float64),
            f1=np.asarray(f1, dtype=np.float64),
            units=np.asarray(records["unit"], dtype=object) if "unit" in records else None,
        )
    if kind == "retrieval":
        from xcal.metrics.retrieval import retrieval_confidence_correctness

        scores = np.asarray(records["scores"], dtype=np.float64)
        _, correct = retrieval_confidence_correctness(
            scores,
            records["candidate_ids"],
            records["gold_ids"],
            temperature=options.retrieval_temperature,
        )
        return _Predictions(
            kind=kind,
            ids=ids,
            scores=scores,
            top=np.argmax(scores, axis=1),
            correct=np.asarray(correct, dtype=bool),
            base_temperature=options.retrieval_temperature,
        )
    if kind == "mining":
        from xcal.analyze.mining import mining_predictions

        return mining_predictions(records, ids)
    raise ValueError(f"run {run_id}: unknown record kind {kind!r}")


@dataclass
class _Scored:
    """One run under one temperature, on the cell's evaluation examples."""

    confidence: np.ndarray
    correct: np.ndarray
    temperature: float
    logits: np.ndarray | None = None  # scaled by the temperature
    labels: np.ndarray | None = None
    probs: np.ndarray | None = None


def _score(pred: _Predictions, temperature: float) -> _Scored:
    from xcal.metrics import softmax, top_label

    if pred.kind in ("classification", "multiple_choice"):
        assert pred.logits is not None and pred.labels is not None
        z = pred.logits / temperature
        probs = softmax(z, axis=1)
        confidence, predicted = top_label(probs)
        return _Scored(
            confidence=np.asarray(confidence, dtype=np.float64),
            correct=np.asarray(predicted) == pred.labels,
            temperature=temperature,
            logits=z,
            labels=pred.labels,
            probs=probs,
        )
    assert pred.scores is not None and pred.top is not None and pred.correct is not None
    return _Scored(
        confidence=_adapters.top1_confidence(pred.scores, pred.top, temperature),
        correct=pred.correct,
        temperature=temperature,
    )


def _statistic(metric: str, pred: _Predictions, scored: _Scored, n_bins: int) -> Any:
    """The batched statistic of ``metric`` (None when it does not apply to the run)."""
    from xcal.stats import mean_statistic, metric_statistic

    kind = pred.kind
    if kind not in metric_info(metric).kinds:
        return None
    cls = kind in ("classification", "multiple_choice")
    conf, correct = scored.confidence, scored.correct
    if metric == "accuracy":
        return metric_statistic("accuracy", correct=correct)
    if metric == "exact_match":
        assert pred.exact_match is not None
        return mean_statistic(pred.exact_match, name="exact_match_score")
    if metric == "f1":
        assert pred.f1 is not None
        return mean_statistic(pred.f1, name="f1_score")
    if metric in ("ece", "ece_mass", "mce"):
        name = {"ece": "ece", "ece_mass": "ece", "mce": "mce"}[metric]
        binning = "mass" if metric == "ece_mass" else "width"
        return metric_statistic(
            name, confidence=conf, correct=correct, n_bins=n_bins, binning=binning
        )
    if metric == "debiased_ece":
        return metric_statistic(
            "debiased_calibration_error", confidence=conf, correct=correct, n_bins=n_bins
        )
    if metric == "smooth_ece":
        from xcal.stats.statistic import smooth_calibration_statistic

        return smooth_calibration_statistic(conf, correct)
    if metric == "classwise_ece":
        assert scored.probs is not None and scored.labels is not None
        return _adapters.classwise_statistic(scored.probs, scored.labels, n_bins=n_bins)
    if metric in ("brier", "nll"):
        if cls:
            return metric_statistic(metric, scored.labels, logits=scored.logits)
        # QA and retrieval: the event "the top answer is right" with probability conf.
        c = correct.astype(np.float64)
        if metric == "brier":
            return mean_statistic((conf - c) ** 2, name="brier_score_loss")
        p = np.clip(conf, 1e-12, 1 - 1e-12)
        return mean_statistic(-(c * np.log(p) + (1 - c) * np.log1p(-p)), name="nll_loss")
    if metric == "aurc":
        return _adapters.AurcStatistic(conf, correct)
    if metric == "confidence":
        return mean_statistic(conf, name="mean_confidence")
    raise KeyError(metric)  # pragma: no cover - guarded by AnalysisOptions
