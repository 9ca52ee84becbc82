"""Answers to the research questions: pooled, powered differences per question.

Per-cell intervals (one language, one condition) are too wide to answer
"does the intermediate model lower ECE in non-English languages?". This
module pools each system's difference to the baseline over languages with
:func:`xcal.stats.pooled_difference`, resampling source items jointly across
languages (and XNLI's premise groups), and arranges the rows by question:

* Q1 distributional shift (character and word noise, script changes) and
  Q2 syntactic shift (word order, function words): the pooled difference per
  condition, and the slope of the difference against severity.
* Q3 architecture: a decoder-only system against an encoder-only one, and
  the interaction of that gap with URIEL distance from English.
* Q4 resource class: the difference pooled within each Joshi class, and its
  trend over classes.
* Q5 task distance: correlation of the gain with the distance of the
  intermediate task to the target task (every distance measure), and the
  NDCG and Regret@1 of choosing the intermediate task by distance.

Every row carries its estimate, interval, p-value adjusted within the
question's family (Holm), the number of languages and examples, and the
direction in words. A row whose interval is wider than a stated threshold
says so, with the number of examples per language that would bring it under
(the width shrinks as 1 / sqrt(n)). Two variants are pooled: ``raw``, and
for the calibration metrics ``ts_self`` (both runs at the temperature the
per-cell stage fitted on their fitting ids); ``ts_en`` stays per cell.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from xcal.analyze.clusters import unit_labels
from xcal.stats.mixed import random_intercept_mean

#: Metrics pooled in the findings, when the analysis computed them.
FINDING_METRICS: tuple[str, ...] = (
    "accuracy",
    "exact_match",  # QA
    "f1",  # QA
    "ece",
    "debiased_ece",
    "smooth_ece",
    "brier",
)
#: Interval width above which a row is "inconclusive at this sample size" (metric units).
WIDTH_THRESHOLD = 0.02
#: Bootstrap resamples of the pooled rows.
DEFAULT_POOLED_B = 2000
# Part of every findings cache key: bump when a unit's rows change for the same inputs.
FINDINGS_VERSION = 5  # 3: debiased ECE replicates on the squared scale; 4: variants;
# 5: QA exact match and F1

FINDING_COLUMNS: tuple[str, ...] = (
    "question",
    "quantity",
    "system",
    "baseline",
    "task",
    "perturbation",
    "severity",
    "metric",
    "variant",
    "pool",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "n_languages",
    "n_examples",
    "n_units",
    "conclusive",
    "n_needed_per_language",
    "direction",
    "method",
    "mixedlm_estimate",
    "mixedlm_ci_low",
    "mixedlm_ci_high",
)

QUESTIONS = {
    "Q0": "Clean data: the system's difference to the baseline over non-English languages",
    "Q1": "Distributional shift: does the system's advantage over the baseline hold under noise?",
    "Q2": "Syntactic shift (word order, function words): does the advantage shrink with severity?",
    "Q3": "Architecture: encoder-only vs decoder-only, and its interaction with URIEL distance",
    "Q4": "Resource class: the difference by Joshi class, and its trend over classes",
    "Q5": "Task distance: does the intermediate task's distance predict the gain?",
}


@dataclass
class Findings:
    """The findings table and what could not be answered."""

    table: pd.DataFrame
    missing: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------ helpers


def shift_kind(perturbation: str) -> str | None:
    """``"distributional"`` (Q1), ``"syntactic"`` (Q2) or None (clean / unknown)."""
    if perturbation == "none":
        return None
    try:
        from xcal.perturb import get_perturbation

        module = type(get_perturbation(perturbation)).__module__
    except Exception:
        return None
    if module.endswith("syntactic"):
        return "syntactic"
    if module.endswith("noise"):
        return "distributional"
    return None


def direction(
    system: str,
    metric: str,
    estimate: float,
    low: float,
    high: float,
    n_lang: int,
    pool: str,
    variant: str = "raw",
) -> str:
    """The row in words, e.g. "+pawsx lowers ECE by 1.2 points [0.4, 2.0] over 14 languages"."""
    from xcal.analyze.results import metric_info

    info = metric_info(metric)
    scale, unit = (100.0, " points") if info.percent else (1.0, "")
    system += _variant_suffix(variant)
    if low <= 0 <= high:
        verb = "does not clearly change"
        return (
            f"{system} {verb} {info.label} ({scale * estimate:+.2f}{unit}, "
            f"95% CI [{scale * low:+.2f}, {scale * high:+.2f}]) over {n_lang} {pool} language(s)"
        )
    verb = "raises" if estimate > 0 else "lowers"
    a, b = sorted((abs(scale * low), abs(scale * high)))
    return (
        f"{system} {verb} {info.label} by {abs(scale * estimate):.2f}{unit} "
        f"[{a:.2f}, {b:.2f}] over {n_lang} {pool} language(s)"
    )


#: How a recalibrated variant's rows name it.
_VARIANT_WORDS = {"ts_self": "both systems temperature-scaled per language"}


def _needed(width: float, n_per_language: float, threshold: float) -> float:
    """Examples per language for the interval to shrink to ``threshold`` (width ~ 1 / sqrt(n))."""
    if not (width > threshold) or n_per_language <= 0:
        return math.nan
    return float(math.ceil(n_per_language * (width / threshold) ** 2))


def _slope_rows(x: np.ndarray, values: np.ndarray) -> np.ndarray:
    """OLS slope of each row of ``values`` (c, k) on ``x`` (k,)."""
    xc = x - x.mean()
    return (values - values.mean(axis=1, keepdims=True)) @ xc / float(xc @ xc)


def _interval_p(estimate: float, dist: np.ndarray, level: float) -> tuple[float, float, float]:
    from xcal.stats import bootstrap_pvalue, percentile_interval

    dist = dist[np.isfinite(dist)]
    if dist.size < 10:
        return math.nan, math.nan, math.nan
    low, high = percentile_interval(dist, level)
    return low, high, bootstrap_pvalue(dist, estimate)


# ------------------------------------------------------------------ loading cells


@dataclass
class _Pair:
    """One language's system and baseline runs on their common evaluation examples."""

    language: str
    system: Any  # predictions (xcal.analyze.predictions._Predictions)
    baseline: Any
    system_scored: Any  # ... scored at the run's own temperature
    baseline_scored: Any
    units: np.ndarray  # resampling unit of each example


def _load_pairs(
    store: Any,
    runs: pd.DataFrame,
    options: Any,
    system: str,
    condition: Mapping[str, Any],
    baseline: str | None = None,
) -> list[_Pair]:
    """Every non-English language's (system, baseline) predictions in one condition.

    Only predictions are loaded here (a few numbers per example); the metrics'
    statistics are built one metric and one language at a time by
    :func:`_statistics`, because a smooth ECE's per-example rows are some 500
    numbers wide. ``baseline`` defaults to the analysis' baseline (Q3 compares
    two systems).
    """
    baseline = options.baseline if baseline is None else baseline
    from xcal.analyze import predictions as pl

    part = _condition_runs(runs, condition)
    part = part[~part["language"].isin(list(options.english))]
    out: list[_Pair] = []
    for language, lang_runs in part.groupby("language", sort=True):
        mine = lang_runs[lang_runs["model"] == system]
        base = lang_runs[lang_runs["model"] == baseline]
        if mine.empty or base.empty:
            continue
        ps = pl.load_predictions(store, mine.iloc[0].to_dict(), options)
        pb = pl.load_predictions(store, base.iloc[0].to_dict(), options)
        common = np.array(sorted(set(ps.ids.tolist()) & set(pb.ids.tolist())), dtype=object)
        if options.recalibrate:
            common = common[~pl.fit_mask(common, options.fit_fraction)]
        if len(common) < 2:
            continue
        pos_s = {v: i for i, v in enumerate(ps.ids.tolist())}
        pos_b = {v: i for i, v in enumerate(pb.ids.tolist())}
        es = ps.subset(np.array([pos_s[i] for i in common], dtype=np.intp))
        eb = pb.subset(np.array([pos_b[i] for i in common], dtype=np.intp))
        recorded = es.units if es.units is not None else eb.units
        units = (
            unit_labels(str(condition["task"]), common, recorded)
            if options.clusters
            else np.asarray(common, dtype=object)
        )
        out.append(
            _Pair(
                str(language),
                es,
                eb,
                pl._score(es, es.base_temperature),
                pl._score(eb, eb.base_temperature),
                units,
            )
        )
    return out


def _variants(
    pairs: Sequence[_Pair],
    system: str,
    baseline: str,
    temperatures: Mapping[tuple[str, str], float],
) -> Iterator[tuple[str, list[_Pair]]]:
    """The pairs as scored for each variant: raw, then at each run's fitted temperature.

    ``temperatures[(model, language)]`` is the per-cell stage's ``ts_self``
    fit (on the held-out fitting ids); a language without a fit for both
    runs is left out of that variant. Retrieval needs it most: one fixed
    softmax temperature over cosine similarities reads encoders whose
    similarities spread differently as differently calibrated.
    """
    from xcal.analyze import predictions as pl

    yield "raw", list(pairs)
    fitted = []
    for p in pairs:
        ts, tb = temperatures.get((system, p.language)), temperatures.get((baseline, p.language))
        if ts is None or tb is None or not (math.isfinite(ts) and math.isfinite(tb)):
            continue
        fitted.append(
            dataclasses.replace(
                p, system_scored=pl._score(p.system, ts), baseline_scored=pl._score(p.baseline, tb)
            )
        )
    if fitted:
        yield "ts_self", fitted


def _applies(pairs: Sequence[_Pair], metric: str) -> list[_Pair]:
    """The pairs both of whose runs have ``metric`` (retrieval has no Brier of classes...)."""
    from xcal.analyze.results import metric_info

    kinds = metric_info(metric).kinds
    return [p for p in pairs if p.system.kind in kinds and p.baseline.kind in kinds]


def _statistics(
    pairs: Sequence[_Pair],
    metric: str,
    n_bins: int,
    differences: dict[str, np.ndarray] | None = None,
) -> Iterator[tuple[str, tuple[Any, Any]]]:
    """(language, (system, baseline) statistic) of ``metric``, built one language at a time.

    For a per-example metric (accuracy, Brier) each example's difference is
    put in ``differences`` on the way, for the mixed-model cross-check.
    """
    from xcal.analyze import predictions as pl

    for p in pairs:
        a = pl._statistic(metric, p.system, p.system_scored, n_bins)
        b = pl._statistic(metric, p.baseline, p.baseline_scored, n_bins)
        if differences is not None and metric in ("accuracy", "brier"):
            if hasattr(a, "contributions"):
                differences[p.language] = a.contributions[:, 0] - b.contributions[:, 0]
        yield p.language, (a, b)
        del a, b  # before the next language's are built


def _condition_runs(runs: pd.DataFrame, condition: Mapping[str, Any]) -> pd.DataFrame:
    """The runs of one task x split x perturbation (x severity, seed)."""
    mask = np.ones(len(runs), dtype=bool)
    for k in ("task", "split", "perturbation", "severity", "perturbation_seed"):
        mask &= (runs[k] == condition[k]).to_numpy()
    return runs[mask]


def _mixedlm(
    differences: Mapping[str, np.ndarray], units: Mapping[str, np.ndarray], level: float
) -> tuple[float, float, float]:
    """Mixed-effects cross-check of the pooled difference of a per-example metric.

    ``differences[language]`` are the examples' differences, labelled by
    ``units[language]``. ``d ~ C(language, Sum) + (1 | item)`` by REML
    (:func:`xcal.stats.mixed.random_intercept_mean`): with sum-to-zero coding
    the intercept is the mean of the language means, the pooled estimand over
    these (fixed) languages, and the item intercept carries the correlation of
    one item's differences across languages. Crossed language and item random
    effects (one group, two variance components) took 26 s per fit on a
    5-language store, too slow to run for every row. Returns
    (estimate, ci_low, ci_high) or NaNs.
    """
    if len(differences) < 2:
        return math.nan, math.nan, math.nan
    langs = list(differences)
    fit = random_intercept_mean(
        np.concatenate([differences[lang] for lang in langs]),
        np.concatenate([np.full(len(units[lang]), lang, dtype=object) for lang in langs]),
        np.concatenate([units[lang] for lang in langs]),
        level=level,
    )
    return fit.estimate, fit.ci_low, fit.ci_high


@dataclass
class _ConditionUnit:
    """One system against the baseline in one condition: a unit of the findings' work."""

    system: str
    condition: dict[str, Any]
    runs: pd.DataFrame  # the system's and the baseline's runs
    metrics: tuple[str, ...]
    lang_info: pd.DataFrame
    groupings: dict[str, dict[str, str]]  # "script" / "family" -> language -> its group
    in_gap_pair: bool  # a decoder-only system against an encoder-only baseline
    B: int
    width_threshold: float
    mixedlm: bool
    # (model, language) -> the per-cell ts_self temperature in this condition
    temperatures: dict[tuple[str, str], float] = dataclasses.field(default_factory=dict)


_SeverityKey = tuple[str, str, str, str, str]  # system, task, metric, variant, perturbation
_UnitOutput = tuple[list[dict[str, Any]], list[tuple[_SeverityKey, float, Any]]]


def _run_units(
    store: Any,
    options: Any,
    units: Sequence[_ConditionUnit],
    executor: Any | None,
    cache: Any | None = None,
) -> list[_UnitOutput]:
    """Every unit's rows, in the units' order: from the cache, inline or on the executor.

    With ``--jobs`` or a cluster the units run on the workers like the cells
    do. Each unit is cached under a key of its runs and settings
    (:func:`_unit_key`), so a second analysis of the same store pools nothing.
    """
    keys = [_unit_key(options, u) for u in units]
    out: list[_UnitOutput | None] = [
        None if cache is None else _from_cache(cache.get_entry("findings", k)) for k in keys
    ]
    todo = [i for i, o in enumerate(out) if o is None]
    pending = [units[i] for i in todo]
    if executor is None:
        done: Iterator[tuple[int, _UnitOutput]] = (
            (j, condition_findings(store, options, u)) for j, u in enumerate(pending)
        )
    else:
        names = [
            f"findings {u.system} {u.condition['task']} {u.condition['perturbation']}"
            f":{u.condition['severity']}"
            for u in pending
        ]
        before = len(executor.failures)
        done = executor.map(condition_findings, options, pending, names)
    for j, value in done:
        out[todo[j]] = value
        _to_cache(cache, keys[todo[j]], value)
    if executor is not None and executor.failures[before:]:
        from xcal.analyze.execute import AnalysisError

        failures = executor.failures[before:]
        raise AnalysisError(failures) from failures[0].error
    return [o for o in out if o is not None]


def _unit_key(options: Any, unit: _ConditionUnit) -> str:
    """What a unit's rows depend on: its runs' identities and every setting it reads."""
    from xcal.analyze.cache import _digest, _run_signature
    from xcal.analyze.options import ANALYSIS_VERSION

    condition = unit.condition
    mine = _condition_runs(unit.runs, condition)
    runs = sorted((_run_signature(r) for r in mine.to_dict("records")), key=str)
    return _digest(
        [
            ANALYSIS_VERSION,
            FINDINGS_VERSION,
            options.cell_key(),
            runs,
            unit.system,
            condition,
            unit.metrics,
            unit.lang_info.reset_index().to_dict("records"),
            unit.groupings,
            unit.in_gap_pair,
            unit.B,
            unit.width_threshold,
            unit.mixedlm,
            sorted(unit.temperatures.items()),
        ]
    )


def _to_cache(cache: Any | None, key: str, output: _UnitOutput | None) -> None:
    """Store a unit's rows (JSON) and its pooled results' arrays (npz, no pickles)."""
    if cache is None or output is None:
        return
    from xcal.stats import PooledResult

    rows, severity = output
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for i, (task_key, level, res) in enumerate(severity):
        scalars = {}
        for f in dataclasses.fields(PooledResult):
            value = getattr(res, f.name)
            if isinstance(value, np.ndarray):
                arrays[f"{i}.{f.name}"] = value
            else:
                scalars[f.name] = value
        entries.append({"key": list(task_key), "severity": level, "result": scalars})
    cache.put_entry("findings", key, {"rows": rows, "severity": entries}, arrays)


def _from_cache(entry: tuple[Any, dict[str, np.ndarray]] | None) -> _UnitOutput | None:
    if entry is None:
        return None
    from xcal.stats import PooledResult

    meta, arrays = entry
    try:
        severity = []
        for i, item in enumerate(meta["severity"]):
            fields = dict(item["result"])
            for f in dataclasses.fields(PooledResult):
                if f"{i}.{f.name}" in arrays:
                    fields[f.name] = arrays[f"{i}.{f.name}"]
            task_key = cast(_SeverityKey, tuple(str(k) for k in item["key"]))
            if len(task_key) != 5:
                return None  # an entry of another layout: recompute
            severity.append((task_key, float(item["severity"]), PooledResult(**fields)))
        return list(meta["rows"]), severity
    except (KeyError, TypeError, ValueError):  # an entry of another layout: recompute
        return None


def condition_findings(store: Any, options: Any, unit: _ConditionUnit) -> _UnitOutput:
    """The pooled rows of one system x condition, and its pooled results by severity.

    Per variant (raw, and at the per-cell fitted temperatures) and metric,
    every pool (all non-English languages, each resource class, script and
    family) comes from one set of resamples of the units
    (:func:`xcal.stats.pooled_differences`), with one language's statistics
    in memory at a time.
    """
    system, condition = unit.system, unit.condition
    rows: list[dict[str, Any]] = []
    severity: list[tuple[_SeverityKey, float, Any]] = []
    loaded = _load_pairs(store, unit.runs, options, system, condition)
    kind = shift_kind(str(condition["perturbation"]))
    for variant, pairs in _variants(loaded, system, options.baseline, unit.temperatures):
        rows += _variant_rows(options, unit, kind, variant, pairs, severity)
    return rows, severity


def _variant_rows(
    options: Any,
    unit: _ConditionUnit,
    kind: str | None,
    variant: str,
    pairs: Sequence[_Pair],
    severity: list[tuple[_SeverityKey, float, Any]],
) -> list[dict[str, Any]]:
    """One variant's pooled rows of a unit (see :func:`condition_findings`); adds to ``severity``."""
    from xcal.analyze.results import metric_info
    from xcal.stats import pooled_differences

    system, condition, lang_info = unit.system, unit.condition, unit.lang_info
    rows: list[dict[str, Any]] = []
    for metric in unit.metrics:
        if variant != "raw" and not metric_info(metric).calibration:
            continue  # a temperature changes no accuracy
        present = _applies(pairs, metric)
        if not present:
            continue
        langs = [p.language for p in present]
        pools: dict[str, list[str]] = {"non-English": langs}
        for lang in langs:
            rc = lang_info["resource_class"].get(lang, math.nan) if len(lang_info) else math.nan
            if rc == rc:
                pools.setdefault(f"class {int(rc)}", []).append(lang)
            for grouping, group_of in unit.groupings.items():
                if group_of.get(lang):
                    pools.setdefault(f"{grouping} {group_of[lang]}", []).append(lang)
        pools = {k: v for k, v in pools.items() if k == "non-English" or len(v) >= 2}
        differences: dict[str, np.ndarray] = {}
        units = {p.language: p.units for p in present}
        results = pooled_differences(
            _statistics(present, metric, options.n_bins, differences),
            units,
            pools,
            B=unit.B,
            rng=_stable_seed(options.seed, system, condition["task"], metric),
            level=options.level,
        )
        for pool, res in results.items():
            ml = (
                _mixedlm(differences, units, options.level)
                if unit.mixedlm and pool == "non-English"
                else (math.nan,) * 3
            )
            question = "Q1" if kind == "distributional" else "Q2" if kind == "syntactic" else "Q0"
            if pool.startswith("class"):
                question = "Q4"
            rows.append(
                _row(
                    question,
                    "pooled difference",
                    system,
                    options.baseline,
                    condition,
                    metric,
                    pool,
                    res,
                    unit.width_threshold,
                    ml,
                    variant,
                )
            )
        full = results["non-English"]
        key = (system, str(condition["task"]), metric, variant, str(condition["perturbation"]))
        severity.append((key, float(condition["severity"]), full))
        # Q4 trend over classes; Q3 interaction with URIEL distance
        for quantity, column, question in (
            ("trend over resource classes (per class)", "resource_class", "Q4"),
            ("slope against URIEL distance from English", "language_distance", "Q3"),
        ):
            x = np.array([lang_info[column].get(lang, math.nan) for lang in langs], dtype=float)
            ok = np.isfinite(x)
            if ok.sum() < 3 or np.unique(x[ok]).size < 2:
                continue
            if question == "Q3" and unit.in_gap_pair:
                continue
            est = float(_slope_rows(x[ok], full.cell_estimate[None, ok])[0])
            dist = _slope_rows(x[ok], full.cell_distribution[:, ok])
            low, high, p = _interval_p(est, dist, options.level)
            rows.append(
                _slope_row(
                    question,
                    quantity,
                    system,
                    options.baseline,
                    condition,
                    metric,
                    est,
                    low,
                    high,
                    p,
                    int(ok.sum()),
                    full,
                    unit.width_threshold,
                    variant,
                )
            )
    return rows


def _fitted_temperatures(results: pd.DataFrame) -> pd.DataFrame:
    """The per-cell stage's ``ts_self`` temperatures: one row per run (system x cell)."""
    if results.empty or "variant" not in results.columns:
        return pd.DataFrame()
    rows = results[(results["comparison"] == "value") & (results["variant"] == "ts_self")].dropna(
        subset=["temperature"]
    )
    keys = ["task", "split", "perturbation", "severity", "perturbation_seed", "language", "system"]
    return rows.drop_duplicates(keys)[[*keys, "temperature"]]


def _condition_temperatures(
    fitted: pd.DataFrame, condition: Mapping[str, Any], models: Sequence[str]
) -> dict[tuple[str, str], float]:
    """(model, language) -> fitted temperature of ``models``' runs in one condition."""
    if fitted.empty:
        return {}
    part = _condition_runs(fitted[fitted["system"].isin(list(models))], condition)
    return {
        (str(m), str(lang)): float(t)
        for m, lang, t in zip(part["system"], part["language"], part["temperature"], strict=True)
    }


# ------------------------------------------------------------------ the findings


def compute_findings(
    store: Any,
    runs: pd.DataFrame,
    options: Any,
    results: pd.DataFrame,
    *,
    B: int = DEFAULT_POOLED_B,
    width_threshold: float = WIDTH_THRESHOLD,
    mixedlm: bool = True,
    distances: pd.DataFrame | None = None,
    executor: Any | None = None,
    cache: Any | None = None,
) -> Findings:
    """Pooled findings per research question (see the module docstring).

    Parameters
    ----------
    store : PredictionStore
    runs : DataFrame
        The runs analysed (the store's manifests).
    options : AnalysisOptions
    results : DataFrame
        The per-cell results (for the grouping columns: resource class,
        URIEL distance, architecture, task distance).
    B : int
        Resamples of every pooled row (at most the analysis' ``n_boot``).
    width_threshold : float
        Interval width (in metric units) above which a row is inconclusive.
    mixedlm : bool
        Fit the mixed-effects cross-check for per-example metrics.
    distances : DataFrame, optional
        Task distances of every measure (task_a, task_b, measure, distance)
        for Q5; without them, the results' ``task_distance`` column.
    executor : xcal.analyze.execute.Executor, optional
        Runs each system x condition as a unit (on the workers with
        ``--jobs`` or a cluster); default: inline, in order.
    cache : xcal.analyze.cache._Cache, optional
        Where units computed before are read from and new ones written.

    Returns
    -------
    Findings
    """
    from xcal.stats import adjust_pvalues

    metrics = [m for m in FINDING_METRICS if m in options.metrics]
    # Mining cells have their own scoring (F1 at a fitted threshold, Platt confidence):
    # their per-cell rows are in results, but they are not pooled here.
    runs = runs[runs["record_kind"] != "mining"]
    B = min(B, options.n_boot)  # a quick look (--n-boot 200) stays quick
    missing: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    if options.n_boot == 0 or not metrics:
        return Findings(_frame(rows), {"all": "no bootstrap (--n-boot 0) or no pooled metric"})
    lang_info = (
        results.drop_duplicates("language").set_index("language")[
            ["resource_class", "language_distance"]
        ]
        if not results.empty
        else pd.DataFrame(columns=["resource_class", "language_distance"])
    )
    groupings = _language_groupings([str(lang) for lang in lang_info.index])
    systems = sorted(set(runs["model"]) - {options.baseline})
    arch_of = (
        runs.groupby("model")["architecture"].first().astype(str).to_dict()
        if "architecture" in runs.columns
        else {}
    )
    # a decoder-only system against an encoder-only baseline: its URIEL slope
    # is the architecture gap's interaction, reported among the Q3 gap rows
    gap_pairs = {
        s
        for s in systems
        if arch_of.get(s) == "decoder-only" and arch_of.get(options.baseline) == "encoder-only"
    }
    conditions: list[dict[str, Any]] = [
        {str(k): v for k, v in record.items()}
        for record in runs[["task", "split", "perturbation", "severity", "perturbation_seed"]]
        .drop_duplicates()
        .sort_values(["task", "perturbation", "severity"])
        .to_dict("records")
    ]
    # pooled rows: (system, task, metric, perturbation) -> severity -> result (for slopes)
    by_severity: dict[_SeverityKey, dict[float, Any]] = {}
    fitted = _fitted_temperatures(results)
    units = [
        _ConditionUnit(
            system,
            condition,
            runs[runs["model"].isin([system, options.baseline])],
            tuple(metrics),
            lang_info,
            groupings,
            system in gap_pairs,
            B,
            width_threshold,
            mixedlm,
            _condition_temperatures(fitted, condition, (system, options.baseline)),
        )
        for system in systems
        for condition in conditions
    ]
    outputs = _run_units(store, options, units, executor, cache)
    for unit_rows, severity in outputs:
        rows += unit_rows
        for key, level_, res in severity:
            by_severity.setdefault(key, {})[level_] = res
    rows += _architecture_rows(
        store, runs, options, metrics, conditions, lang_info, B, width_threshold
    )
    # Q1/Q2 slopes of the pooled difference against severity (clean run at severity 0)
    for (system, task, metric, variant, perturbation), per_sev in by_severity.items():
        kind = shift_kind(perturbation)
        if kind is None:
            continue
        clean = by_severity.get((system, task, metric, variant, "none"), {})
        series = dict(per_sev)
        if clean:  # the clean run is severity 0 of every perturbation
            series[0.0] = next(iter(clean.values()))
        if len(series) < 2:
            continue
        sev = np.array(sorted(series))
        results_ = [series[s] for s in sev]
        b_min = min(r.distribution.shape[0] for r in results_)
        same_draws = len({r.n_units for r in results_}) == 1 and all(
            r.B_valid == r.B for r in results_
        )
        est = float(_slope_rows(sev, np.array([[r.estimate for r in results_]]))[0])
        if same_draws:
            reps = np.column_stack([r.distribution[:b_min] for r in results_])
            low, high, p = _interval_p(est, _slope_rows(sev, reps), options.level)
            method = "OLS slope of pooled differences; item bootstrap shared across severities"
        else:
            low = high = p = math.nan
            method = "OLS slope (conditions hold different items: no joint interval)"
        question = "Q1" if kind == "distributional" else "Q2"
        condition = {"task": task, "perturbation": perturbation, "severity": math.nan}
        row = _slope_row(
            question,
            "slope against severity",
            system,
            options.baseline,
            condition,
            metric,
            est,
            low,
            high,
            p,
            int(results_[-1].cell_n.size),
            results_[-1],
            width_threshold,
            variant,
        )
        row["method"] = method
        rows.append(row)

    rows += _task_distance_rows(rows, results, options, distances)
    table = _frame(rows)
    if not table.empty:
        table = adjust_pvalues(table, "holm", by=["question", "metric", "variant"])
        table = table.drop(columns=["reject", "correction"])
        table = table.loc[:, list(FINDING_COLUMNS)]
    present = set(table["question"]) if not table.empty else set()
    for q in ("Q1", "Q2"):
        if q not in present:
            kind = "distributional" if q == "Q1" else "syntactic"
            missing[q] = (
                f"no {kind} perturbation runs: run `xcal infer` with a {kind} perturbation "
                "(see `xcal perturb --help`) for the baseline and the system in non-English languages"
            )
    if "Q4" not in present:
        missing["Q4"] = (
            "needs at least two non-English languages of one Joshi resource class for a "
            "pooled row, and three languages over two classes for the trend: run more languages"
        )
    arch = sorted(set(str(a) for a in runs.get("architecture", pd.Series(dtype=str)).dropna()))
    if not ("decoder-only" in arch and "encoder-only" in arch):
        missing["Q3 (architecture gap)"] = (
            "needs runs of an encoder-only and a decoder-only model on the same task and "
            f"languages; the store has architecture(s) {arch or ['(none recorded)']}"
        )
    elif not any(r["quantity"].startswith("decoder-only minus encoder-only") for r in rows):
        missing["Q3 (architecture gap)"] = (
            "the store has encoder-only and decoder-only models, but no task and condition "
            "with runs of both in the same non-English languages"
        )
    if not any(r["question"] == "Q5" for r in rows):
        missing["Q5"] = (
            "needs task distances (`xcal analyze --task-distances CSV` from "
            "`xcal transfer task-distance --out`) and at least four system x target-task "
            "points (systems trained on different intermediate tasks)"
        )
    return Findings(table, missing)


def _language_groupings(languages: Sequence[str]) -> dict[str, dict[str, str]]:
    """Each language's script and Glottolog family ("" where unknown): the pools beyond classes."""
    from xcal.transfer.language import LanguageDataError, family, script

    out: dict[str, dict[str, str]] = {"script": {}, "family": {}}
    for kind, lookup in (("script", script), ("family", family)):
        for lang in languages:
            try:
                out[kind][lang] = lookup(lang)
            except LanguageDataError:  # a code outside the tables: no such pool for it
                out[kind][lang] = ""
    return out


def _architecture_rows(
    store: Any,
    runs: pd.DataFrame,
    options: Any,
    metrics: Sequence[str],
    conditions: Sequence[Mapping[str, Any]],
    lang_info: pd.DataFrame,
    B: int,
    width_threshold: float,
) -> list[dict[str, Any]]:
    """Q3: the decoder-only minus encoder-only gap, and its interaction with URIEL distance.

    For every decoder-only model against every encoder-only model (by the
    runs' ``architecture`` field), per task and condition: their paired
    difference pooled over the non-English languages both were run on
    (:func:`xcal.stats.pooled_differences`, the same units as the other rows),
    and the OLS slope of the per-language gap against the language's URIEL
    distance from English, its interval from the same resamples (does the gap
    grow for distant languages?).
    """
    from xcal.stats import pooled_differences

    if "architecture" not in runs.columns:
        return []
    arch_of = runs.groupby("model")["architecture"].first()
    decoders = sorted(str(m) for m, a in arch_of.items() if a == "decoder-only")
    encoders = sorted(str(m) for m, a in arch_of.items() if a == "encoder-only")
    out: list[dict[str, Any]] = []
    for decoder in decoders:
        for encoder in encoders:
            for condition in conditions:
                pairs = _load_pairs(store, runs, options, decoder, condition, baseline=encoder)
                for metric in metrics:
                    present = _applies(pairs, metric)
                    if not present:
                        continue
                    langs = [p.language for p in present]
                    res = pooled_differences(
                        _statistics(present, metric, options.n_bins),
                        {p.language: p.units for p in present},
                        {"non-English": langs},
                        B=B,
                        rng=_stable_seed(options.seed, "Q3", decoder, encoder, condition, metric),
                        level=options.level,
                    )["non-English"]
                    row = _row(
                        "Q3",
                        "decoder-only minus encoder-only (pooled difference)",
                        decoder,
                        encoder,
                        condition,
                        metric,
                        "non-English",
                        res,
                        width_threshold,
                        (math.nan,) * 3,
                    )
                    row["direction"] = "decoder-only " + row["direction"].replace(
                        f"{decoder} ", f"{decoder} (vs encoder-only {encoder}) ", 1
                    )
                    out.append(row)
                    x = np.array(
                        [lang_info["language_distance"].get(lang, math.nan) for lang in langs],
                        dtype=float,
                    )
                    ok = np.isfinite(x)
                    if ok.sum() < 3 or np.unique(x[ok]).size < 2:
                        continue
                    est = float(_slope_rows(x[ok], res.cell_estimate[None, ok])[0])
                    dist = _slope_rows(x[ok], res.cell_distribution[:, ok])
                    low, high, p = _interval_p(est, dist, options.level)
                    out.append(
                        _slope_row(
                            "Q3",
                            "decoder-only minus encoder-only gap: slope against URIEL distance "
                            "from English",
                            decoder,
                            encoder,
                            condition,
                            metric,
                            est,
                            low,
                            high,
                            p,
                            int(ok.sum()),
                            res,
                            width_threshold,
                        )
                    )
    return out


def _distances_by_measure(
    results: pd.DataFrame, options: Any, distances: pd.DataFrame | None
) -> dict[str, dict[tuple[str, str], float]]:
    """measure -> (system, target task) -> distance of the system's intermediate task(s).

    From every measure of ``distances`` (task_a, task_b[, measure], distance),
    or, without it, from the results' ``task_distance`` column (the measure
    the analysis was asked for). Several intermediate tasks: their mean.
    """
    pairs = results[["system", "intermediate_tasks", "task"]].drop_duplicates()
    if distances is None:
        if "task_distance" not in results.columns or results["task_distance"].isna().all():
            return {}
        known = results.dropna(subset=["task_distance"])
        means = known.groupby(["system", "task"])["task_distance"].mean()
        return {
            options.task_distance_measure: {
                (str(key[0]), str(key[1])): float(d)  # type: ignore[index]
                for key, d in means.items()
            }
        }
    out: dict[str, dict[tuple[str, str], float]] = {}
    measure_of = (
        distances["measure"]
        if "measure" in distances.columns
        else pd.Series("distance", index=distances.index)
    )
    for measure, part in distances.groupby(measure_of, sort=True):
        lookup: dict[tuple[str, str], float] = {}
        for a, b, d in zip(part["task_a"], part["task_b"], part["distance"], strict=True):
            lookup[(str(a), str(b))] = float(d)
            lookup.setdefault((str(b), str(a)), float(d))
        table: dict[tuple[str, str], float] = {}
        for system, inter, target in pairs.itertuples(index=False):
            values = [
                lookup[(t, str(target))]
                for t in str(inter or "").split("+")
                if (t, str(target)) in lookup
            ]
            if values:
                table[(str(system), str(target))] = float(np.mean(values))
        if table:
            out[str(measure)] = table
    return out


def _performance(metric: str, value: float) -> float:
    """A non-negative, higher-is-better performance for ranking (NDCG needs one).

    Accuracy as is; a calibration error ``1 - error`` (in [0, 1] for the binned
    and smooth ECE); Brier ``1 - brier / 2`` (multi-class Brier is in [0, 2]).
    """
    if metric == "brier":
        return 1.0 - value / 2.0
    from xcal.analyze.results import metric_info

    return value if metric_info(metric).higher_is_better else 1.0 - value


def _random_order_reference(
    performance: np.ndarray, scores: np.ndarray, seed: int
) -> tuple[float, float, float, float, float, float]:
    """NDCG and Regret@1 of the distance ranking, against random rankings.

    Returns ``(ndcg, p_ndcg, ndcg_random, regret, p_regret, regret_random)``:
    each p-value is the share of orderings of the candidates that do at least
    as well (all orderings up to 8 candidates, else 10,000 random ones), and
    ``*_random`` is the mean over those orderings (the value of a random choice).
    """
    import itertools

    from xcal.transfer import ndcg_at_k_score, regret_at_k_loss

    k = performance.size
    ndcg = ndcg_at_k_score(performance, scores)
    regret = regret_at_k_loss(performance, scores, 1)
    if k <= 8:
        orders = np.array(list(itertools.permutations(range(k))))
    else:
        gen = np.random.default_rng(seed)
        orders = np.stack([gen.permutation(k) for _ in range(10_000)])
    # candidate orders[o, j] gets the j-th highest score
    random_scores = np.empty(orders.shape, dtype=np.float64)
    random_scores[np.arange(len(orders))[:, None], orders] = np.arange(k, 0, -1)[None, :]
    ndcgs = np.array([ndcg_at_k_score(performance, r) for r in random_scores])
    regrets = np.array([regret_at_k_loss(performance, r, 1) for r in random_scores])
    tol = 1e-12
    return (
        ndcg,
        float(np.mean(ndcgs >= ndcg - tol)),
        float(ndcgs.mean()),
        regret,
        float(np.mean(regrets <= regret + tol)),
        float(regrets.mean()),
    )


def _task_distance_rows(
    rows: list[dict[str, Any]],
    results: pd.DataFrame,
    options: Any,
    distances: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Q5: does the intermediate task's distance to the target predict the gain?

    One point per system x target task: the clean gain (positive = better)
    pooled over non-English languages, against the distance of the system's
    intermediate task(s), for every distance measure. Pearson, Spearman and
    Kendall with Fisher-z intervals (the rank correlations with the standard
    errors of Fieller, Hartley & Pearson 1957; coverage tested at n = 6-10)
    and permutation p-values. Then, per target task with at least two
    candidate systems: the NDCG and the Regret@1 of choosing the intermediate
    task by distance (nearest first; :mod:`xcal.transfer.selection`), with
    the share of random orderings that do at least as well as p-value.
    """
    from xcal.analyze.results import metric_info
    from xcal.stats import correlation
    from xcal.stats.correlation import fisher_z_interval

    measures = _distances_by_measure(results, options, distances)
    if not measures:
        return []
    clean = [
        r
        for r in rows
        if r["question"] == "Q0"
        and r["pool"] == "non-English"
        and r["quantity"] == "pooled difference"
        and r.get("variant", "raw") == "raw"
    ]
    values = results[
        (results["comparison"] == "value")
        & (results["variant"] == "raw")
        & (results["perturbation"] == "none")
        & ~results["language"].isin(list(options.english))
    ]
    mean_value = values.groupby(["system", "task", "metric"])["estimate"].mean()
    blank = {
        "baseline": options.baseline,
        "perturbation": "none",
        "severity": 0.0,
        "pool": "non-English",
        "n_needed_per_language": math.nan,
        "mixedlm_estimate": math.nan,
        "mixedlm_ci_low": math.nan,
        "mixedlm_ci_high": math.nan,
    }
    out: list[dict[str, Any]] = []
    for measure, distance in measures.items():
        for metric in sorted({r["metric"] for r in clean}):
            sign = 1.0 if metric_info(metric).higher_is_better else -1.0
            points = [
                (distance[(r["system"], r["task"])], sign * r["estimate"], r)
                for r in clean
                if r["metric"] == metric and (r["system"], r["task"]) in distance
            ]
            n_points = len(points)
            if n_points >= 4 and len({p[0] for p in points}) >= 2:
                x = np.array([p[0] for p in points])
                y = np.array([p[1] for p in points])
                table = correlation(
                    x,
                    y,
                    ["pearson", "spearman", "kendall"],
                    B=1,
                    n_permutations=max(options.n_boot, 1),
                    rng=_stable_seed(options.seed, "Q5", measure, metric),
                    progress=False,
                )
                for t in table.to_dict("records"):
                    est, method = float(t["estimate"]), str(t["metric"])
                    low = high = math.nan
                    if np.isfinite(est) and n_points >= (5 if method == "kendall" else 4):
                        low, high = fisher_z_interval(est, n_points, options.level, method)
                    width = high - low
                    interval = (
                        f"[{low:+.2f}, {high:+.2f}]"
                        if np.isfinite(width)
                        else "(no interval: Kendall's needs 5 points)"
                        if method == "kendall" and n_points < 5
                        else "(no interval)"
                    )
                    words = (
                        f"{method} correlation of the {metric} gain with {measure} task distance "
                        f"{est:+.2f} {interval} over {n_points} system x task points"
                    )
                    if not width <= 0.5:
                        words += "; inconclusive at this sample size"
                    out.append(
                        {
                            **blank,
                            "question": "Q5",
                            "quantity": f"{method} correlation of gain with {measure} task distance",
                            "system": "all",
                            "task": "all",
                            "metric": metric,
                            "estimate": est,
                            "ci_low": low,
                            "ci_high": high,
                            "p_value": float(t["p_value"]),
                            "n_languages": int(max(p[2]["n_languages"] for p in points)),
                            "n_examples": int(sum(p[2]["n_examples"] for p in points)),
                            "n_units": n_points,
                            "conclusive": bool(width <= 0.5),
                            "direction": words,
                            "method": "Fisher z interval"
                            + ("" if method == "pearson" else " (Fieller et al. 1957 variance)")
                            + "; permutation p-value",
                        }
                    )
            # choosing the intermediate task by distance, per target task
            by_target: dict[str, list[tuple[float, float, dict[str, Any]]]] = {}
            for d, _gain, r in points:
                value = mean_value.get((r["system"], r["task"], metric), math.nan)
                if value == value:
                    by_target.setdefault(str(r["task"]), []).append(
                        (d, _performance(metric, float(value)), r)
                    )
            for target, cands in sorted(by_target.items()):
                perf = np.array([c[1] for c in cands])
                if len(cands) < 2 or not (perf > 0).all():
                    continue
                scores = -np.array([c[0] for c in cands])
                ndcg, p_ndcg, ndcg_random, regret, p_regret, regret_random = (
                    _random_order_reference(perf, scores, _stable_seed(options.seed, target))
                )
                nearest = cands[int(np.argmax(scores))][2]["system"]
                best = cands[int(np.argmax(perf))][2]["system"]
                for quantity, est, p, reference in (
                    ("NDCG", ndcg, p_ndcg, ndcg_random),
                    ("Regret@1", regret, p_regret, regret_random),
                ):
                    words = (
                        f"choosing the intermediate task by {measure} distance for {target}: "
                        f"{quantity} {est:.3f} on {metric} over {len(cands)} candidate systems "
                        f"(random order: {reference:.3f} on average; nearest {nearest}, best {best})"
                    )
                    out.append(
                        {
                            **blank,
                            "question": "Q5",
                            "quantity": f"{quantity} of choosing the intermediate task by "
                            f"{measure} distance",
                            "system": "all",
                            "task": target,
                            "metric": metric,
                            "estimate": est,
                            "ci_low": math.nan,
                            "ci_high": math.nan,
                            "p_value": p,
                            "n_languages": int(max(c[2]["n_languages"] for c in cands)),
                            "n_examples": int(sum(c[2]["n_examples"] for c in cands)),
                            "n_units": len(cands),
                            "conclusive": False,
                            "direction": words,
                            "method": "xcal.transfer.selection on pooled non-English values; "
                            "p-value: share of orderings of the candidates doing at least as well",
                        }
                    )
    return out


def _stable_seed(seed: int, *parts: Any) -> int:
    import hashlib
    import json

    digest = hashlib.blake2b(json.dumps([seed, *map(str, parts)]).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _variant_suffix(variant: str) -> str:
    return "" if variant == "raw" else f" ({_VARIANT_WORDS.get(variant, variant)})"


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in FINDING_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=float)
    # rows of no variant of their own (Q3 gaps, Q5 correlations) are of raw probabilities
    frame["variant"] = frame["variant"].astype(object).where(frame["variant"].notna(), "raw")
    return frame.loc[:, list(FINDING_COLUMNS)]


def _row(
    question: str,
    quantity: str,
    system: str,
    baseline: str,
    condition: Mapping[str, Any],
    metric: str,
    pool: str,
    res: Any,
    threshold: float,
    ml: tuple[float, float, float],
    variant: str = "raw",
) -> dict[str, Any]:
    width = res.ci_high - res.ci_low
    n_lang = int(res.cell_n.size)
    row = {
        "question": question,
        "quantity": quantity,
        "system": system,
        "baseline": baseline,
        "task": condition["task"],
        "perturbation": condition["perturbation"],
        "severity": float(condition["severity"]),
        "metric": metric,
        "variant": variant,
        "pool": pool,
        "estimate": res.estimate,
        "ci_low": res.ci_low,
        "ci_high": res.ci_high,
        "p_value": res.p_value,
        "n_languages": n_lang,
        "n_examples": res.n_examples,
        "n_units": res.n_units,
        "conclusive": bool(width <= threshold),
        "n_needed_per_language": _needed(width, res.n_examples / max(n_lang, 1), threshold),
        "method": "pooled paired difference, cluster bootstrap of source items (percentile"
        + (", errors on the squared scale" if metric == "debiased_ece" else "")
        + ")",
        "mixedlm_estimate": ml[0],
        "mixedlm_ci_low": ml[1],
        "mixedlm_ci_high": ml[2],
    }
    text = direction(system, metric, res.estimate, res.ci_low, res.ci_high, n_lang, pool, variant)
    if not row["conclusive"]:
        text += (
            f"; inconclusive at this sample size (interval wider than {threshold:g}; about "
            f"{int(row['n_needed_per_language'])} examples per language would be needed)"
        )
    row["direction"] = text
    return row


def _slope_row(
    question: str,
    quantity: str,
    system: str,
    baseline: str,
    condition: Mapping[str, Any],
    metric: str,
    est: float,
    low: float,
    high: float,
    p: float,
    n_lang: int,
    res: Any,
    threshold: float,
    variant: str = "raw",
) -> dict[str, Any]:
    width = high - low
    conclusive = bool(width <= threshold) if np.isfinite(width) else False
    if np.isfinite(low) and not (low <= 0 <= high):
        words = f"the difference {'grows' if est > 0 else 'falls'} by {abs(est):.4f} per unit ({quantity}) [{low:.4f}, {high:.4f}]"
    else:
        words = f"no clear {quantity} ({est:+.4f}, 95% CI [{low:.4f}, {high:.4f}])"
    if not conclusive:
        needed = _needed(width, res.n_examples / max(n_lang, 1), threshold)
        words += "; inconclusive at this sample size" + (
            f" (about {int(needed)} examples per language would be needed)"
            if needed == needed
            else ""
        )
    return {
        "question": question,
        "quantity": quantity,
        "system": system,
        "baseline": baseline,
        "task": condition["task"],
        "perturbation": condition["perturbation"],
        "severity": float(condition.get("severity", math.nan)),
        "metric": metric,
        "variant": variant,
        "pool": "non-English",
        "estimate": est,
        "ci_low": low,
        "ci_high": high,
        "p_value": p,
        "n_languages": n_lang,
        "n_examples": res.n_examples,
        "n_units": res.n_units,
        "conclusive": conclusive,
        "n_needed_per_language": _needed(width, res.n_examples / max(n_lang, 1), threshold),
        "direction": f"{system} vs {baseline}, {metric}{_variant_suffix(variant)}: {words}",
        "method": "OLS slope of per-language differences; item bootstrap",
        "mixedlm_estimate": math.nan,
        "mixedlm_ci_low": math.nan,
        "mixedlm_ci_high": math.nan,
    }
