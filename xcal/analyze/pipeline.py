"""From a prediction store to the tidy results table, one cell of runs at a time.

A *cell* is every system's run on one task x split x language x perturbation
(x severity, seed, parameters): the runs that hold the same examples and are
compared with each other. Cells are processed one after another and only the
runs of the current cell are in memory (plus the English run of a system when
its temperature is not cached), so memory is bounded by the number of systems
and the size of one run, not by the size of the store.

For every run the pipeline computes the task metric and the calibration
metrics in three *variants*:

``raw``
    the model's own probabilities;
``ts_en``
    temperature scaling fitted on the English run of the same model, task and
    perturbation, applied to this language (zero-shot recalibration);
``ts_self``
    temperature scaling fitted on this language itself (an upper reference).

Fitting and evaluation never share an example: every example id is assigned
to the *fit* part or the *evaluation* part by a hash of the id (a fraction
``fit_fraction`` goes to fit), the same assignment in every language. XNLI,
PAWS-X and XQuAD are parallel, so the German translation of an English
fitting example is never evaluated. All three variants are evaluated on the
evaluation part only, so they are comparable; with ``recalibrate=False`` no
split is made and the raw metrics use every example.

For every system other than the baseline, each metric's paired difference
to the baseline on the same examples gets a bootstrap interval and a p-value
(:mod:`xcal.stats`), adjusted over the family of all languages, tasks and
perturbations of that system, metric and variant (Holm or Benjamini-Hochberg).
Intervals of the ``ts_*`` variants are conditional on the fitted temperatures:
they resample the evaluation examples, not the fitting ones.
Cell results are cached by the runs' identities and fingerprints, so running
again on an unchanged store recomputes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xcal.analyze import _adapters
from xcal.analyze.results import METRICS, RESULT_COLUMNS, conform, empty_results, metric_info

if TYPE_CHECKING:
    from xcal.analyze.figures import Display
    from xcal.analyze.findings import Findings
    from xcal.analyze.latex import LatexTable
    from xcal.analyze.tables import TableOptions
    from xcal.store import PredictionStore

#: Bump when what the pipeline computes changes: invalidates every cache entry.
ANALYSIS_VERSION = 3  # 2: sorted-id resampling; 3: temperature fit changes

#: Run fields that make a cell: runs that share them hold the same examples.
CELL_FIELDS: tuple[str, ...] = (
    "task",
    "split",
    "language",
    "perturbation",
    "severity",
    "perturbation_seed",
    "perturbation_params",
)
#: Run fields that pick the English run whose temperature a run borrows. The
#: perturbation's parameters are compared separately: they may name
#: language-specific tools (a word segmenter for Chinese, a stopword list).
FIT_FIELDS: tuple[str, ...] = (
    "model",
    "task",
    "split",
    "perturbation",
    "severity",
    "perturbation_seed",
)
# A run as a record of the store's runs table (manifest fields, run_id, path).
Run = Mapping[Any, Any]

#: Fewest fitting examples for which a temperature is fitted.
MIN_FIT_EXAMPLES = 20

RELIABILITY_COLUMNS: tuple[str, ...] = (
    "system",
    "task",
    "split",
    "language",
    "perturbation",
    "severity",
    "variant",
    "bin",
    "bin_lower",
    "bin_upper",
    "count",
    "mean_confidence",
    "accuracy",
)


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything that decides the numbers (and so the cache key)."""

    baseline: str
    metrics: tuple[str, ...] = tuple(METRICS)
    n_boot: int = 10_000
    seed: int = 0
    correction: str = "holm"
    n_bins: int = 15
    level: float = 0.95
    fit_fraction: float = 0.5
    recalibrate: bool = True
    english: tuple[str, ...] = ("en", "eng")
    retrieval_temperature: float = 1.0
    qa_criterion: str = "em"
    language_view: str = "syntax_knn"
    task_distance_measure: str = "textemb"
    shared_examples: bool = False  # compare runs holding other examples on the ids they share

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
        if not isinstance(self.n_boot, int) or self.n_boot < 0:
            raise ValueError(f"Expected `n_boot` to be a non-negative int, got {self.n_boot!r}")
        if self.correction not in ("holm", "bh", "bonferroni"):
            raise ValueError(
                f"Expected `correction` in ('holm', 'bh', 'bonferroni'), got {self.correction!r}"
            )
        if not 0.0 < self.fit_fraction < 1.0:
            raise ValueError(f"Expected `fit_fraction` in (0, 1), got {self.fit_fraction!r}")
        if not isinstance(self.n_bins, int) or self.n_bins < 1:
            raise ValueError(f"Expected `n_bins` to be a positive int, got {self.n_bins!r}")
        if self.qa_criterion not in ("em", "f1"):
            raise ValueError(
                f"Expected `qa_criterion` to be 'em' or 'f1', got {self.qa_criterion!r}"
            )

    def cell_key(self) -> dict[str, Any]:
        """The options a cell's numbers depend on (correction is applied later)."""
        data = asdict(self)
        for name in ("correction", "language_view", "task_distance_measure"):
            data.pop(name)
        return data


@dataclass
class AnalysisResult:
    """What :func:`analyze_store` returns: tidy frames, plus tables and figures on demand.

    Attributes
    ----------
    results : DataFrame
        One row per system x task x split x language x perturbation x
        severity x metric x variant x comparison (see :mod:`xcal.analyze.results`).
    reliability : DataFrame
        Reliability-diagram bins of every run and variant.
    correlations : DataFrame
        Correlation of the gain with task distance (empty without distances).
    runs : DataFrame
        The runs analysed (the store's manifests).
    options : AnalysisOptions
    cells_cached, cells_computed : int
        How many cells came from the cache and how many were computed.
    notes : list of str
        What could not be computed and why (e.g. no English run to fit on).
    """

    results: pd.DataFrame
    reliability: pd.DataFrame
    correlations: pd.DataFrame
    runs: pd.DataFrame
    options: AnalysisOptions
    cells_cached: int = 0
    cells_computed: int = 0
    notes: list[str] = field(default_factory=list)
    findings: Findings | None = None

    def select(self, **filters: Any) -> pd.DataFrame:
        """Rows of :attr:`results` matching every filter (a list matches any value)."""
        from xcal.analyze.results import select

        return select(self.results, **filters)

    def tables(self, options: TableOptions | None = None) -> list[LatexTable]:
        """The report's LaTeX tables (see :func:`xcal.analyze.report.build_tables`)."""
        from xcal.analyze.report import build_tables

        return build_tables(self, options)

    def figures(self) -> dict[str, Display]:
        """The report's figures, drawn (see :func:`xcal.analyze.report.build_figures`)."""
        from xcal.analyze.report import build_figures

        return build_figures(self)

    def write_report(
        self,
        out: str | os.PathLike[str],
        *,
        force: bool = False,
        table_options: TableOptions | None = None,
    ) -> Path:
        """Write the report folder (see :func:`xcal.analyze.report.write_report`)."""
        from xcal.analyze.report import write_report

        return write_report(self, out, force=force, table_options=table_options)


# ------------------------------------------------------------------ example split


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


# ------------------------------------------------------------------ one run's predictions


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


# ------------------------------------------------------------------ cache


class _Cache:
    """Cell results on disk, one Parquet file per cell key (written atomically)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _path(self, key: str, part: str) -> Path:
        assert self.root is not None
        return self.root / "cells" / key[:2] / f"{key}.{part}.parquet"

    def get(self, key: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]] | None:
        if self.root is None:
            return None
        rows_path, bins_path = self._path(key, "rows"), self._path(key, "bins")
        notes_path = rows_path.with_name(f"{key}.notes.json")
        if not (rows_path.exists() and bins_path.exists() and notes_path.exists()):
            return None
        try:
            notes = [str(n) for n in json.loads(notes_path.read_text())]
            return pd.read_parquet(rows_path), pd.read_parquet(bins_path), notes
        except Exception:  # a damaged entry is recomputed, never trusted
            return None

    def put(self, key: str, rows: pd.DataFrame, bins: pd.DataFrame, notes: list[str]) -> None:
        if self.root is None:
            return
        from xcal.analyze.report import atomic_write_bytes, atomic_write_text

        for part, frame in (("bins", bins), ("rows", rows)):
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            atomic_write_bytes(self._path(key, part), buffer.getvalue())
        # written last: an entry counts only when its notes file exists
        atomic_write_text(self._path(key, "rows").with_name(f"{key}.notes.json"), json.dumps(notes))

    def get_temperature(self, key: str) -> float | None:
        if self.root is None:
            return None
        path = self.root / "temperatures" / f"{key}.json"
        try:
            return float(json.loads(path.read_text())["temperature"])
        except (OSError, ValueError, KeyError):
            return None

    def put_temperature(self, key: str, value: float) -> None:
        if self.root is None:
            return
        from xcal.analyze.report import atomic_write_text

        atomic_write_text(
            self.root / "temperatures" / f"{key}.json", json.dumps({"temperature": value})
        )


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _run_signature(run: Run) -> list[Any]:
    # What identifies the content of a stored run: its key (run_id), its inputs
    # and when it was written (a rewrite of the same key changes created_at).
    return [
        str(run["run_id"]),
        str(run["input_fingerprint"]),
        str(run.get("created_at", "")),
        str(run.get("model_revision", "")),
        int(run["n_examples"]),
    ]


def _seed_for(seed: int, cell: Run) -> int:
    """The bootstrap seed of a cell: a function of the user's seed and the cell's identity.

    Not of the runs' contents or write times, so rebuilding an identical store
    gives identical intervals, and the cells are independent of processing
    order. The value is reported in the ``seed`` column so any row can be
    recomputed with ``xcal.stats.paired_bootstrap(..., rng=seed)``.
    """
    identity = json.dumps([seed, *(str(cell[f]) for f in CELL_FIELDS)])
    digest = hashlib.blake2b(identity.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


# ------------------------------------------------------------------ one cell


@dataclass
class _CellContext:
    store: PredictionStore
    options: AnalysisOptions
    runs: pd.DataFrame  # every run of the store (for English lookups)
    cache: _Cache
    temperatures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    english: dict[tuple[Any, ...], list[Run]] | None = None  # fit key -> English runs


def _fit_key_of(run: Run) -> tuple[Any, ...]:
    return tuple(run[f] for f in FIT_FIELDS)


def _english_run(ctx: _CellContext, run: Run) -> Run | None:
    """The English run of the same model, task and perturbation, if there is exactly one.

    Runs that differ only in the perturbation's parameters (language-specific
    tools) match; an English run with identical parameters is preferred, and
    several candidates without one are ambiguous (no temperature, a note).
    """
    if ctx.english is None:
        ctx.english = {}
        english = ctx.runs[ctx.runs["language"].isin(list(ctx.options.english))]
        for record in english.to_dict("records"):
            ctx.english.setdefault(_fit_key_of(record), []).append(record)
    candidates = ctx.english.get(_fit_key_of(run), [])
    same = [c for c in candidates if c["perturbation_params"] == run["perturbation_params"]]
    if same:
        return same[0]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        ctx.notes.append(
            f"{run['model']} on {_describe(run)}: {len(candidates)} English runs with other "
            "perturbation parameters could fit its temperature; none used"
        )
    return None


def _missing_english_notes(ctx: _CellContext) -> list[str]:
    """One note per model x task x condition whose runs have no English run to fit on."""
    missing: dict[tuple[str, str], list[str]] = {}
    for run in ctx.runs.to_dict("records"):
        if run["record_kind"] == "mining":
            continue  # mining fits its own map on the same language (xcal.analyze.mining)
        if _english_run(ctx, run) is None:
            where = _describe({**run, "language": "*"})
            missing.setdefault((str(run["model"]), where), []).append(str(run["language"]))
    return [
        f"{model} on {where}: no English run to fit a temperature on, so no ts_en for "
        f"{len(langs)} language(s) ({', '.join(sorted(langs)[:8])}{', ...' if len(langs) > 8 else ''})"
        for (model, where), langs in sorted(missing.items())
    ]


def _temperature_key(run: Run, options: AnalysisOptions) -> str:
    return _digest(
        [
            ANALYSIS_VERSION,
            _run_signature(run),
            options.fit_fraction,
            options.retrieval_temperature,
            options.qa_criterion,
        ]
    )


def _english_temperature(
    ctx: _CellContext, run: Run, loaded: Mapping[str, _Predictions]
) -> float | None:
    english = _english_run(ctx, run)
    if english is None:
        return None
    key = _temperature_key(english, ctx.options)
    if key in ctx.temperatures:
        return ctx.temperatures[key]
    value = ctx.cache.get_temperature(key)
    if value is None:
        pred = loaded.get(str(english["run_id"]))
        if pred is None:
            pred = load_predictions(ctx.store, english, ctx.options)
        fit = pred.subset(fit_mask(pred.ids, ctx.options.fit_fraction))
        if len(fit.ids) < MIN_FIT_EXAMPLES:
            return None
        value = fit.fit().temperature
        ctx.cache.put_temperature(key, value)
    ctx.temperatures[key] = value
    return value


def _cell_key(ctx: _CellContext, cell_runs: pd.DataFrame) -> str:
    parts: list[Any] = [ANALYSIS_VERSION, ctx.options.cell_key()]
    for run in cell_runs.sort_values("run_id").to_dict("records"):
        english = _english_run(ctx, run) if ctx.options.recalibrate else None
        parts.append([_run_signature(run), None if english is None else _run_signature(english)])
    return _digest(parts)


def _group_values(run: Run) -> dict[str, Any]:
    tasks = run.get("intermediate_tasks") or ()
    return {
        "record_kind": run["record_kind"],
        "architecture": run.get("architecture", ""),
        "intermediate_tasks": "+".join(tasks),
    }


def _analyse_cell(ctx: _CellContext, cell_runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load the cell's runs, score every variant, bootstrap values and differences."""
    from xcal.metrics import top_label_reliability_table
    from xcal.stats import bootstrap_pvalue, percentile_interval
    from xcal.stats.pairing import align_examples

    options = ctx.options
    records = cell_runs.to_dict("records")
    loaded = {str(r["run_id"]): load_predictions(ctx.store, r, options) for r in records}
    kinds = {p.kind for p in loaded.values()}
    if len(kinds) > 1:
        raise ValueError(f"cell {_describe(records[0])} mixes record kinds {sorted(kinds)}")
    if kinds == {"mining"}:
        from xcal.analyze.mining import analyse_mining_cell

        return analyse_mining_cell(ctx, records, loaded)
    _check_same_labels(records, loaded)
    # Runs holding other examples are refused unless asked; sorted ids, whatever the storage order.
    alignment = align_examples(
        {str(r["model"]): loaded[str(r["run_id"])].ids for r in records},
        shared=options.shared_examples,
        where=_describe(records[0]),
    )
    if not alignment.complete:
        ctx.notes.append(
            f"{_describe(records[0])}: compared on the {len(alignment.ids)} examples all runs "
            f"share (--on-shared-examples); left out: {alignment.extra}"
        )
    ordered_ids = alignment.ids
    if options.recalibrate:
        in_fit = fit_mask(ordered_ids, options.fit_fraction)
        eval_ids, fit_ids = ordered_ids[~in_fit], ordered_ids[in_fit]
    else:
        eval_ids, fit_ids = ordered_ids, ordered_ids[:0]
    if len(eval_ids) == 0:
        ctx.notes.append(f"{_describe(records[0])}: no evaluation examples; skipped")
        return empty_results(), pd.DataFrame(columns=list(RELIABILITY_COLUMNS))

    # Score every run under every variant on the evaluation examples.
    per_system: dict[str, dict[str, tuple[_Predictions, _Scored]]] = {}
    run_of: dict[str, Run] = {}
    for run in records:
        pred = loaded[str(run["run_id"])]
        position = {v: i for i, v in enumerate(pred.ids.tolist())}
        eval_pred = pred.subset(np.array([position[i] for i in eval_ids], dtype=np.intp))
        temperatures: dict[str, float] = {"raw": pred.base_temperature}
        if options.recalibrate:
            if len(fit_ids) >= MIN_FIT_EXAMPLES:
                fit_pred = pred.subset(np.array([position[i] for i in fit_ids], dtype=np.intp))
                fitted = fit_pred.fit()
                temperatures["ts_self"] = fitted.temperature
                if (note := fitted.note()) is not None:
                    ctx.notes.append(f"{run['model']} on {_describe(run)}: {note}")
            t_en = _english_temperature(ctx, run, loaded)
            if t_en is not None:
                temperatures["ts_en"] = t_en
        system = str(run["model"])
        per_system[system] = {v: (eval_pred, _score(eval_pred, t)) for v, t in temperatures.items()}
        run_of[system] = run
    del loaded

    # Statistics: (system, variant, metric) -> Statistic
    stats: dict[tuple[str, str, str], Any] = {}
    for system, variants in per_system.items():
        for variant, (pred, scored) in variants.items():
            for metric in options.metrics:
                if variant != "raw" and not metric_info(metric).calibration:
                    continue
                stat = _statistic(metric, pred, scored, options.n_bins)
                if stat is not None:
                    stats[(system, variant, metric)] = stat
    estimates = {k: s.estimate() for k, s in stats.items()}
    seed = _seed_for(options.seed, records[0])
    n = len(eval_ids)
    replicates: dict[tuple[str, str, str], np.ndarray] = {}
    if options.n_boot > 0 and stats:
        replicates = _bootstrap(stats, n, options.n_boot, seed)

    rows: list[dict[str, Any]] = []
    base = {f: records[0][f] for f in CELL_FIELDS}
    for (system, variant, metric), estimate in estimates.items():
        source = run_of[system]
        info = metric_info(metric)
        temperature = per_system[system][variant][1].temperature
        low = high = math.nan
        if replicates:
            low, high = percentile_interval(replicates[(system, variant, metric)], options.level)
        rows.append(
            {
                **base,
                "system": system,
                "baseline": None,
                "comparison": "value",
                "metric": metric,
                "variant": variant,
                "estimate": estimate,
                "ci_low": low,
                "ci_high": high,
                "p_value": math.nan,
                "p_adjusted": math.nan,
                "correction": "",
                "method": "bootstrap (percentile)" if replicates else "",
                "n_examples": n,
                "n_boot": options.n_boot,
                "seed": seed,
                "higher_is_better": info.higher_is_better,
                "temperature": temperature if info.calibration else math.nan,
                "run_id": source["run_id"],
                "baseline_run_id": None,
                **_group_values(source),
            }
        )
        if system == options.baseline or (options.baseline, variant, metric) not in estimates:
            continue
        diff = estimate - estimates[(options.baseline, variant, metric)]
        low = high = p_value = math.nan
        if replicates:
            dist = (
                replicates[(system, variant, metric)]
                - replicates[(options.baseline, variant, metric)]
            )
            low, high = percentile_interval(dist, options.level)
            p_value = bootstrap_pvalue(dist, diff, null="shift")
        rows.append(
            {
                **rows[-1],
                "baseline": options.baseline,
                "comparison": "difference",
                "estimate": diff,
                "ci_low": low,
                "ci_high": high,
                "p_value": p_value,
                "method": "paired bootstrap (percentile, shift p-value)" if replicates else "",
                "temperature": math.nan,
                "baseline_run_id": run_of[options.baseline]["run_id"],
            }
        )

    bins: list[dict[str, Any]] = []
    for system, variants in per_system.items():
        for variant, (_, scored) in variants.items():
            table = top_label_reliability_table(
                scored.confidence, scored.correct, n_bins=options.n_bins
            )
            for b in range(options.n_bins):
                bins.append(
                    {
                        "system": system,
                        "task": base["task"],
                        "split": base["split"],
                        "language": base["language"],
                        "perturbation": base["perturbation"],
                        "severity": base["severity"],
                        "variant": variant,
                        "bin": b,
                        "bin_lower": float(table.bin_lower[b]),
                        "bin_upper": float(table.bin_upper[b]),
                        "count": int(table.count[b]),
                        "mean_confidence": float(table.mean_confidence[b]),
                        "accuracy": float(table.accuracy[b]),
                    }
                )
    frame = pd.DataFrame(rows)
    for column in RESULT_COLUMNS:
        if column not in frame.columns:
            frame[column] = math.nan
    return frame.loc[:, list(RESULT_COLUMNS)], pd.DataFrame(bins, columns=list(RELIABILITY_COLUMNS))


# Bytes of fused contribution matrix per group of linear statistics.
_FUSED_BYTES = 64 * 2**20
# Columns per fused group, and bytes of the (chunk x columns) product it gives.
_FUSED_COLUMNS = 1024
_PRODUCT_BYTES = 64 * 2**20


def _bootstrap(stats: Mapping[Any, Any], n: int, n_boot: int, seed: int) -> dict[Any, np.ndarray]:
    """Bootstrap replicates of every statistic under the *same* resamples.

    Weights are drawn as :func:`xcal.stats.paired_bootstrap` draws them (same
    generator, same order; the draws do not depend on the chunk size), so a
    difference row equals ``paired_bootstrap(a, b, B=n_boot, rng=seed)``
    exactly. Memory is bounded by the chunk of weights, the fused matrices and
    their products (about 64 MB each), whatever ``n_boot`` and the number of
    statistics. Linear statistics (means, equal-width
    calibration errors) are fused into one matrix product per chunk instead of
    one narrow product each: on this machine that is the difference between
    memory-bound and compute-bound BLAS.
    """
    from xcal.stats import LinearStatistic
    from xcal.stats.resample import as_generator, chunk_rows, iter_count_chunks

    linear = [(k, s) for k, s in stats.items() if isinstance(s, LinearStatistic)]
    other = [(k, s) for k, s in stats.items() if not isinstance(s, LinearStatistic)]
    # Groups of linear statistics whose fused matrix stays under _FUSED_BYTES.
    groups: list[tuple[np.ndarray, list[tuple[Any, Any, slice]]]] = []
    current: list[tuple[Any, Any]] = []
    width = 0
    for k, s in [*linear, (None, None)]:
        k_cols = 0 if s is None else s.contributions.shape[1]
        too_big = (width + k_cols) * n * 8 > _FUSED_BYTES or width + k_cols > _FUSED_COLUMNS
        if current and (s is None or too_big):
            matrix = np.hstack([st.contributions for _, st in current])
            members, start = [], 0
            for key, st in current:
                cols = st.contributions.shape[1]
                members.append((key, st, slice(start, start + cols)))
                start += cols
            groups.append((matrix, members))
            current, width = [], 0
        if s is not None:
            current.append((k, s))
            width += k_cols
    gen, _ = as_generator(seed)
    widest = max((matrix.shape[1] for matrix, _ in groups), default=1)
    # Chunk rows bounded by the weights (xcal.stats' budget) and by the products.
    chunk = min(chunk_rows(n, n_boot), max(1, _PRODUCT_BYTES // (8 * widest)))
    out = {k: np.empty(n_boot) for k in stats}
    start = 0
    for weights in iter_count_chunks(gen, n, n_boot, chunk):
        c = weights.shape[0]
        w = weights[:c]
        total = w.sum(axis=1)
        for matrix, members in groups:
            sums = w @ matrix
            for key, st, cols in members:
                out[key][start : start + c] = st.finalize(sums[:, cols], total)
        for key, st in other:
            out[key][start : start + c] = st.on_weights(w)
        start += c
    return out


def _check_same_labels(records: Sequence[Run], loaded: Mapping[str, _Predictions]) -> None:
    """Runs compared example by example must share the label space and the gold labels."""
    labelled = [(r, loaded[str(r["run_id"])]) for r in records]
    labelled = [(r, p) for r, p in labelled if p.labels is not None and p.logits is not None]
    if not labelled:
        return
    widths = {str(r["model"]): p.logits.shape[1] for r, p in labelled if p.logits is not None}
    if len(set(widths.values())) > 1:
        listed = ", ".join(f"{m!r}: {c} classes" for m, c in widths.items())
        raise ValueError(
            f"cell {_describe(records[0])}: the runs have different label spaces ({listed}) "
            "and cannot be compared"
        )
    first, p0 = labelled[0]
    assert p0.labels is not None
    for run, p in labelled[1:]:
        assert p.labels is not None
        common, ia, ib = np.intersect1d(p0.ids, p.ids, assume_unique=True, return_indices=True)
        bad = np.flatnonzero(p0.labels[ia] != p.labels[ib])
        if bad.size:
            j = bad[0]
            raise ValueError(
                f"cell {_describe(records[0])}: runs {first['model']!r} and {run['model']!r} give "
                f"different gold labels to {bad.size} of the {common.size} examples they share "
                f"(e.g. {common[j]!r}: {p0.labels[ia[j]]} vs {p.labels[ib[j]]}); they do not "
                "label the same data the same way"
            )


def _describe(run: Run) -> str:
    text = f"{run['task']}/{run['split']}/{run['language']}"
    if run["perturbation"] != "none":
        text += f" ({run['perturbation']} {float(run['severity']):g})"
    return text


# ------------------------------------------------------------------ progress


@contextmanager
def _progress(total: int, enabled: bool | None) -> Iterator[Any]:
    """A rich progress bar over runs (on stderr; off when not a terminal unless asked)."""
    import sys

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:

        class _Null:
            def advance(self, n: int, description: str | None = None) -> None:
                pass

        yield _Null()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]analysing runs[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("", total=total)

        class _Bar:
            def advance(self, n: int, description: str | None = None) -> None:
                bar.update(task, advance=n, description=description or "")

        yield _Bar()


# ------------------------------------------------------------------ the entry point


def analyze_store(
    store: PredictionStore | str | os.PathLike[str],
    *,
    baseline: str,
    out: str | os.PathLike[str] | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 10_000,
    seed: int = 0,
    correction: str = "holm",
    n_bins: int = 15,
    fit_fraction: float = 0.5,
    recalibrate: bool = True,
    task_distances: pd.DataFrame | str | os.PathLike[str] | None = None,
    task_distance_measure: str = "textemb",
    filters: Mapping[str, Any] | None = None,
    retrieval_temperature: float = 1.0,
    english: Sequence[str] = ("en", "eng"),
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    table_options: TableOptions | None = None,
    shared_examples: bool = False,
    pooled: bool = True,
) -> AnalysisResult:
    """Analyse every run of a prediction store against a baseline system.

    Parameters
    ----------
    store : PredictionStore or path
        The store ``xcal infer`` wrote.
    baseline : str
        The ``model`` name of the baseline system; every other model is
        compared with it on the same examples.
    out : path, optional
        Also write the report folder there (results, tables, figures, index.md).
    table_options : TableOptions, optional
        Interval style, display names and page of the report's tables.
    metrics : sequence of str, optional
        Subset of :data:`xcal.analyze.results.METRICS` (default: all).
    n_boot : int, default=10,000
        Bootstrap resamples per cell (0: point estimates only).
    seed : int, default=0
        Every cell draws from its own stream derived from this seed and the
        cell's identity (reported in the ``seed`` column).
    correction : {"holm", "bh", "bonferroni"}
        Multiple-comparison correction over each (system, metric, variant) family.
    n_bins : int, default=15
        Bins of the calibration errors and reliability diagrams.
    fit_fraction : float, default=0.5
        Share of example ids that fit temperatures (never evaluated).
    recalibrate : bool, default=True
        Compute the ``ts_en`` and ``ts_self`` variants (and split examples).
    task_distances : DataFrame or path, optional
        Distances from :func:`xcal.transfer.task_distances` (columns
        ``task_a, task_b, measure, distance``; a CSV path also works), for the
        gain-vs-distance analysis; ``task_a`` is an intermediate task.
    task_distance_measure : str, default="textemb"
        Which ``measure`` of ``task_distances`` to use.
    filters : mapping, optional
        Manifest filters for :meth:`PredictionStore.runs`, e.g. ``{"task": "xnli"}``.
    retrieval_temperature : float, default=1.0
        Temperature of the raw retrieval confidence (softmax over top-k scores).
    english : sequence of str
        Language codes of English (the source language).
    cache : bool, default=True
        Reuse and store per-cell results.
    cache_dir : path, optional
        Where (default ``OUT/.cache``, or ``xcal.paths.cache_dir()/analyze``).
    progress : bool or None
        Progress bar over runs (default: when stderr is a terminal).
    shared_examples : bool, default=False
        When the runs of a cell hold different examples (a truncated run,
        renamed ids), compare them on the ids they all share and say so in
        ``notes``; by default such a cell is an error
        (:class:`xcal.stats.pairing.ExampleMismatchError`).
    pooled : bool, default=True
        Also compute the findings per research question
        (:mod:`xcal.analyze.findings`: pooled differences over languages).

    Returns
    -------
    AnalysisResult

    Examples
    --------
    >>> import tempfile
    >>> from xcal.analyze.synthetic import make_synthetic_store
    >>> store = make_synthetic_store(tempfile.mkdtemp(), languages=["en", "de"], n_examples=200)
    >>> res = analyze_store(store, baseline="baseline", n_boot=200, metrics=["accuracy", "ece"])
    >>> sorted(res.results["comparison"].unique()), sorted(res.results["variant"].unique())
    (['difference', 'value'], ['raw', 'ts_en', 'ts_self'])
    """
    from xcal.store import PredictionStore, open_store

    options = AnalysisOptions(
        baseline=baseline,
        metrics=tuple(metrics) if metrics else tuple(METRICS),
        n_boot=n_boot,
        seed=seed,
        correction=correction,
        n_bins=n_bins,
        fit_fraction=fit_fraction,
        recalibrate=recalibrate,
        english=tuple(english),
        retrieval_temperature=retrieval_temperature,
        task_distance_measure=task_distance_measure,
        shared_examples=shared_examples,
    )
    if not isinstance(store, PredictionStore):
        root = Path(store)
        if not root.is_dir():
            raise FileNotFoundError(
                f"no prediction store at {str(root)!r} (a directory written by `xcal infer`)"
            )
        store = open_store(root)
    runs = store.runs(**dict(filters or {}))
    if runs.empty:
        where = f" matching {dict(filters)}" if filters else ""
        raise ValueError(f"the store {store.root} has no runs{where}")
    systems = sorted(runs["model"].unique())
    if baseline not in systems:
        raise ValueError(
            f"baseline {baseline!r} is not a model in the store; models: {', '.join(systems)}"
        )
    distances = _task_distance_table(task_distances, task_distance_measure)

    if not cache:
        cache_root = None
    elif cache_dir is not None:
        cache_root = Path(cache_dir)
    elif out is not None:
        cache_root = Path(out) / ".cache"
    else:
        from xcal.paths import cache_dir as user_cache_dir

        cache_root = user_cache_dir() / "analyze" / _digest(str(Path(store.root).resolve()))[:16]
    ctx = _CellContext(store=store, options=options, runs=runs, cache=_Cache(cache_root))

    if recalibrate:
        ctx.notes.extend(_missing_english_notes(ctx))
    frames: list[pd.DataFrame] = []
    bin_frames: list[pd.DataFrame] = []
    cached = computed = 0
    groups = list(runs.groupby(list(CELL_FIELDS), sort=True, dropna=False))
    with _progress(len(runs), progress) as bar:
        for _, cell_runs in groups:
            key = _cell_key(ctx, cell_runs)
            hit = ctx.cache.get(key)
            if hit is None:
                before = len(ctx.notes)
                rows, bins = _analyse_cell(ctx, cell_runs)
                ctx.cache.put(key, rows, bins, ctx.notes[before:])
                computed += 1
            else:
                rows, bins, cell_notes = hit
                ctx.notes.extend(cell_notes)
                cached += 1
            frames.append(rows)
            bin_frames.append(bins)
            bar.advance(len(cell_runs), _describe(cell_runs.iloc[0].to_dict()))

    with warnings.catch_warnings():
        # Empty cells (no evaluation examples) contribute all-NA frames.
        warnings.simplefilter("ignore", FutureWarning)
        kept = [f for f in frames if not f.empty]
        results = pd.concat(kept, ignore_index=True) if kept else empty_results()
        reliability = (
            pd.concat([b for b in bin_frames if not b.empty], ignore_index=True)
            if any(not b.empty for b in bin_frames)
            else pd.DataFrame(columns=list(RELIABILITY_COLUMNS))
        )
    results = _add_groups(results, options, distances)
    results = _adjust(results, options.correction)
    results = conform(results)
    correlations = _correlations(results, options)
    findings = None
    if pooled:
        from xcal.analyze.findings import compute_findings

        findings = compute_findings(store, runs, options, results)
    result = AnalysisResult(
        results=results,
        reliability=reliability,
        correlations=correlations,
        runs=runs,
        options=options,
        cells_cached=cached,
        cells_computed=computed,
        notes=list(dict.fromkeys(ctx.notes)),
        findings=findings,
    )
    if out is not None:
        result.write_report(out, table_options=table_options)
    return result


# ------------------------------------------------------------------ after the cells


def _task_distance_table(
    task_distances: pd.DataFrame | str | os.PathLike[str] | None, measure: str
) -> pd.DataFrame | None:
    if task_distances is None:
        return None
    frame = (
        task_distances
        if isinstance(task_distances, pd.DataFrame)
        else pd.read_csv(task_distances, comment="#")
    )
    needed = ["task_a", "task_b", "distance"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(
            f"task distances: missing column(s) {missing}; expected the output of "
            f"xcal.transfer.task_distances (task_a, task_b, measure, distance)"
        )
    if "measure" in frame.columns:
        frame = frame[frame["measure"] == measure]
        if frame.empty:
            raise ValueError(f"task distances: no rows with measure {measure!r}")
    return frame


def _add_groups(
    results: pd.DataFrame, options: AnalysisOptions, distances: pd.DataFrame | None
) -> pd.DataFrame:
    if results.empty:
        return results
    info = _adapters.language_info(sorted(results["language"].unique()), view=options.language_view)
    results = results.assign(
        resource_class=results["language"].map(lambda x: info[x][0]),
        language_distance=results["language"].map(lambda x: info[x][1]),
    )
    if distances is not None:
        lookup: dict[tuple[str, str], float] = {}
        for a, b, d in zip(
            distances["task_a"], distances["task_b"], distances["distance"], strict=True
        ):
            lookup[(str(a), str(b))] = float(d)
            lookup.setdefault((str(b), str(a)), float(d))

        def distance(row: tuple[str, str]) -> float:
            inter, target = row
            values = [lookup[(t, target)] for t in inter.split("+") if t and (t, target) in lookup]
            # Several intermediate tasks: their mean distance to the target.
            return float(np.mean(values)) if values else math.nan

        results = results.assign(
            task_distance=[
                distance((i, t))
                for i, t in zip(results["intermediate_tasks"], results["task"], strict=True)
            ]
        )
    return results


def _adjust(results: pd.DataFrame, correction: str) -> pd.DataFrame:
    from xcal.stats import adjust_pvalues

    if results.empty:
        return results
    results = results.copy()
    diff = (results["comparison"] == "difference") & results["p_value"].notna()
    results["correction"] = results["correction"].fillna("").astype(str)
    import gc

    # statsmodels' Holm calls gc.collect() on every call, which walks every live
    # object (pandas, matplotlib): freezing them first makes that walk empty.
    gc.freeze()
    try:
        for _, index in results[diff].groupby(["system", "metric", "variant"]).groups.items():
            p = results.loc[index, "p_value"].to_numpy(float)
            results.loc[index, "p_adjusted"] = adjust_pvalues(p, correction)
            results.loc[index, "correction"] = correction
    finally:
        gc.unfreeze()
    return results


def _correlations(results: pd.DataFrame, options: AnalysisOptions) -> pd.DataFrame:
    """Correlation of the gain (positive = better) with task distance, per metric.

    One point per system x target task (mean over languages, clean runs, raw
    variant): the languages of one system share its task distance, so they
    are not independent observations of the distance effect.
    """
    columns = ["metric", "method", "estimate", "ci_low", "ci_high", "p_value", "n", "B", "seed"]
    if results.empty or results["task_distance"].isna().all():
        return pd.DataFrame(columns=columns)
    from xcal.stats import correlation

    rows = results[
        (results["comparison"] == "difference")
        & (results["variant"] == "raw")
        & (results["perturbation"] == "none")
        & results["task_distance"].notna()
    ]
    out = []
    for metric, part in rows.groupby("metric", sort=False):
        sign = 1.0 if metric_info(str(metric)).higher_is_better else -1.0
        points = part.groupby(["system", "task"], as_index=False).agg(
            gain=("estimate", "mean"), distance=("task_distance", "mean")
        )
        if len(points) < 3 or points["distance"].nunique() < 2:
            continue
        table = correlation(
            points["distance"].to_numpy(float),
            sign * points["gain"].to_numpy(float),
            ["pearson", "spearman", "kendall"],
            B=max(options.n_boot, 1),
            n_permutations=max(options.n_boot, 1),
            rng=options.seed,
            progress=False,
        )
        for _, row in table.iterrows():
            out.append(
                {
                    "metric": metric,
                    "method": str(row["metric"]),
                    "estimate": float(row["estimate"]),
                    "ci_low": float(row["ci_low"]),
                    "ci_high": float(row["ci_high"]),
                    "p_value": float(row["p_value"]),
                    "n": int(row["n"]),
                    "B": int(row["B"]),
                    "seed": options.seed,
                }
            )
    return pd.DataFrame(out, columns=columns)
