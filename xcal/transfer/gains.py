"""Transfer gains: how much a system (e.g. with English intermediate-task training)
changes a metric over a baseline, per target task and language.

Two entry points:

* :func:`gains_from_table` takes an aggregated results table
  ``(system, task, language, metric, value)``, as published papers give;
* :func:`paired_gains` takes per-example results of two systems on the same
  examples and adds paired bootstrap intervals from :mod:`xcal.stats`.

``gain`` is always ``value - baseline_value``. ``improvement`` is the gain
signed so that positive is better: for lower-is-better metrics (ECE, NLL,
Brier, names ending in ``_error`` or ``_loss``) it is ``-gain``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from xcal.stats import Statistic
    from xcal.store import PredictionStore

TABLE_COLUMNS: tuple[str, ...] = ("system", "task", "language", "metric", "value")

# Lower-is-better metric names; anything ending in _error or _loss is too (house rule).
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"ece", "mce", "rmsce", "ace", "nll", "brier", "aurc", "log_loss", "error_rate"}
)


class ResultsTableError(ValueError):
    """An aggregated results table is malformed; the message names the row or column."""


def is_lower_better(metric: str, lower_is_better: Collection[str] | None = None) -> bool:
    """Whether a lower value of ``metric`` is better.

    Examples
    --------
    >>> is_lower_better("ece"), is_lower_better("f1"), is_lower_better("nll_loss")
    (True, False, True)
    """
    name = metric.lower()
    if lower_is_better is not None:
        return name in {m.lower() for m in lower_is_better}
    return name in LOWER_IS_BETTER or name.endswith(("_error", "_loss"))


#: Columns that mark a results table written by ``xcal analyze``.
ANALYSIS_MARKERS: tuple[str, ...] = ("system", "comparison", "variant", "estimate")


def is_analysis_results(columns: Collection[str]) -> bool:
    """Whether a table with these columns is ``xcal analyze``'s results.csv."""
    return all(c in columns for c in ANALYSIS_MARKERS) and "value" not in columns


def scores_from_analysis(
    results: pd.DataFrame,
    *,
    variant: str = "raw",
    perturbation: str = "none",
    source: str = "results table",
) -> pd.DataFrame:
    """Per-language scores from ``xcal analyze``'s results, in the transfer tables' columns.

    Keeps the values (``comparison == "value"``) of one calibration ``variant``
    on one ``perturbation`` (default: raw probabilities on clean inputs) and
    renames ``estimate`` to ``value``; ``system`` is also given as ``model``
    (what :func:`xcal.transfer.architecture.transfer_gap` groups by).

    Examples
    --------
    >>> r = pd.DataFrame({"system": ["A", "A"], "comparison": ["value", "difference"],
    ...                   "variant": "raw", "perturbation": "none", "task": "xnli",
    ...                   "language": "de", "metric": "ece", "estimate": [0.1, -0.02]})
    >>> scores_from_analysis(r)[["model", "system", "value"]].values.tolist()
    [['A', 'A', 0.1]]
    """
    rows = results[
        (results["comparison"] == "value")
        & (results["variant"] == variant)
        & (results["perturbation"] == perturbation)
    ]
    if rows.empty:
        raise ResultsTableError(
            f"{source}: no rows with comparison 'value', variant {variant!r} and perturbation "
            f"{perturbation!r}; variants: {sorted(set(results['variant']))}, perturbations: "
            f"{sorted(set(results['perturbation']))}"
        )
    out = rows.rename(columns={"estimate": "value"}).assign(model=rows["system"].to_numpy())
    return out.reset_index(drop=True)


def read_scores(path: str | os.PathLike[str], **options: Any) -> pd.DataFrame:
    """A scores CSV: an aggregated table, or ``xcal analyze``'s results.csv (converted).

    ``options`` go to :func:`scores_from_analysis` (variant, perturbation).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results table {str(path)!r} does not exist")
    frame = pd.read_csv(path, comment="#")
    if is_analysis_results(frame.columns):
        from xcal.analyze.results import conform

        try:
            frame = conform(frame)
        except ValueError as error:
            raise ResultsTableError(f"{path}: {error}") from None
        return scores_from_analysis(frame, source=str(path), **options)
    return frame


def read_results_table(path: str | os.PathLike[str], **options: Any) -> pd.DataFrame:
    """Read an aggregated results CSV (``#`` lines are comments) and check it.

    Required columns: ``system, task, language, metric, value``; extra columns
    are kept. Errors name the file and the (1-based, file) line. ``xcal
    analyze``'s results.csv (``system``, ``estimate``, ...) is read too, through
    :func:`scores_from_analysis` (``options``: variant, perturbation).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("# note\\nsystem,task,language,metric,value\\nA,xnli,de,accuracy,80.1\\n")
    >>> read_results_table(p)["value"].tolist()
    [80.1]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results table {str(path)!r} does not exist")
    header = pd.read_csv(path, comment="#", nrows=0).columns
    if is_analysis_results(header):
        scores = read_scores(path, **options)
        wanted = [*TABLE_COLUMNS, "model", "higher_is_better"]
        return check_results_table(scores[wanted], source=str(path))
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    kept = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and line[0] != "#"]
    if not kept:
        raise ResultsTableError(f"{path}: no header row")
    frame = pd.read_csv(
        io.StringIO("".join(line for _, line in kept)), dtype=str, keep_default_na=False
    )
    line_numbers = [n for n, _ in kept[1:]]
    return check_results_table(frame, source=str(path), line_numbers=line_numbers)


def check_results_table(
    table: pd.DataFrame, *, source: str = "table", line_numbers: Sequence[int] | None = None
) -> pd.DataFrame:
    """Validate an aggregated results table; return a copy with a float ``value``."""
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ResultsTableError(
            f"{source}: missing column(s) {missing}; expected {list(TABLE_COLUMNS)}, "
            f"got {list(table.columns)}"
        )
    table = table.reset_index(drop=True).copy()

    def where(i: int) -> str:
        return f"{source} line {line_numbers[i]}" if line_numbers else f"{source} row {i}"

    for column in ("system", "task", "language", "metric"):
        empty = table[column].isna() | (table[column].astype(str).str.strip() == "")
        if empty.any():
            raise ResultsTableError(f"{where(int(np.flatnonzero(empty)[0]))}: empty `{column}`")
        table[column] = table[column].astype(str).str.strip()
    values = pd.to_numeric(table["value"], errors="coerce")
    bad = values.isna() | ~np.isfinite(values.astype(float))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ResultsTableError(f"{where(i)}: `value` {table['value'].iloc[i]!r} is not a number")
    table["value"] = values.astype(float)
    duplicated = table.duplicated(["system", "task", "language", "metric"], keep=False)
    if duplicated.any():
        i = int(np.flatnonzero(duplicated)[0])
        key = [table.at[i, c] for c in ("system", "task", "language", "metric")]
        raise ResultsTableError(f"{where(i)}: duplicate (system, task, language, metric) {key}")
    return table


def gains_from_table(
    table: pd.DataFrame,
    *,
    baseline: str,
    systems: Sequence[str] | None = None,
    lower_is_better: Collection[str] | None = None,
) -> pd.DataFrame:
    """Gain of each system over ``baseline`` per (task, language, metric).

    Parameters
    ----------
    table
        Columns ``system, task, language, metric, value`` (see :func:`read_results_table`).
    baseline
        The ``system`` value of the baseline rows.
    systems
        Systems to compare (default: every system other than the baseline).
    lower_is_better
        Metric names where lower is better; default :data:`LOWER_IS_BETTER` plus
        names ending in ``_error`` / ``_loss``.

    Returns
    -------
    pandas.DataFrame
        ``system, baseline, task, language, metric, value, baseline_value, gain,
        higher_is_better, improvement, rank`` where ``rank`` orders the tasks of
        one (system, language) by improvement (1 = largest; ties share the lower rank).

    Examples
    --------
    >>> t = pd.DataFrame({"system": ["B", "A", "B", "A"], "task": ["x", "x", "y", "y"],
    ...                   "language": "de", "metric": ["accuracy"] * 2 + ["ece"] * 2,
    ...                   "value": [80.0, 79.0, 0.05, 0.08]})
    >>> g = gains_from_table(t, baseline="A")
    >>> g[["task", "gain", "improvement", "rank"]].round(2).values.tolist()
    [['x', 1.0, 1.0, 1], ['y', -0.03, 0.03, 2]]
    """
    table = check_results_table(table)
    keys = ["task", "language", "metric"]
    base = table[table["system"] == baseline]
    if base.empty:
        known = sorted(table["system"].unique())
        raise ResultsTableError(f"baseline system {baseline!r} not in the table; systems: {known}")
    if systems is None:
        systems = sorted(s for s in table["system"].unique() if s != baseline)
    else:
        unknown = sorted(set(systems) - set(table["system"]))
        if unknown:
            raise ResultsTableError(f"system(s) {unknown} not in the table")
    if not systems:
        raise ResultsTableError("no system to compare with the baseline")
    others = table[table["system"].isin(list(systems))]
    merged = others.merge(
        base[[*keys, "value"]].rename(columns={"value": "baseline_value"}),
        on=keys,
        how="left",
        validate="many_to_one",
    )
    unmatched = merged["baseline_value"].isna()
    if unmatched.any():
        rows = merged.loc[unmatched, ["system", *keys]].head(5).values.tolist()
        raise ResultsTableError(
            f"{int(unmatched.sum())} row(s) have no baseline ({baseline!r}) value for the same "
            f"(task, language, metric), e.g. {rows}"
        )
    merged.insert(1, "baseline", baseline)
    merged["gain"] = merged["value"] - merged["baseline_value"]
    merged["higher_is_better"] = [not is_lower_better(m, lower_is_better) for m in merged["metric"]]
    merged["improvement"] = np.where(merged["higher_is_better"], merged["gain"], -merged["gain"])
    merged["rank"] = (
        merged.groupby(["system", "language"])["improvement"]
        .rank(ascending=False, method="min")
        .astype(int)
    )
    columns = [
        "system", "baseline", "task", "language", "metric", "value", "baseline_value",
        "gain", "higher_is_better", "improvement", "rank",
    ]  # fmt: skip
    extra = [c for c in merged.columns if c not in columns]
    return merged[columns + extra].reset_index(drop=True)


# ------------------------------------------------------------------ from predictions
GainKey = tuple[str, str, str]  # (system, task, language)

_GAIN_COLUMNS = [
    "system", "baseline", "task", "language", "metric", "value", "baseline_value", "gain",
    "ci_low", "ci_high", "p_value", "p_adjusted", "higher_is_better", "improvement", "rank",
    "method", "B", "seed", "level", "n",
]  # fmt: skip


def _rank(frame: pd.DataFrame) -> pd.Series:
    return (
        frame.groupby(["system", "language", "metric"])["improvement"]
        .rank(ascending=False, method="min")
        .astype(int)
    )


def paired_gains(
    statistics: Mapping[GainKey, Statistic],
    *,
    baseline: str,
    systems: Sequence[str] | None = None,
    method: str = "percentile",
    level: float = 0.95,
    B: int = 10_000,
    rng: np.random.Generator | int | None = None,
    groups: Mapping[GainKey, npt.ArrayLike] | None = None,
    p_adjust: str | None = "holm",
    lower_is_better: Collection[str] | None = None,
) -> pd.DataFrame:
    """Gain of each system over ``baseline`` with paired bootstrap intervals.

    For every (task, language) that a system and the baseline share, the two
    systems are resampled on the same examples (aligned by ``example_id`` when
    the statistics carry ids) by :func:`xcal.stats.paired_bootstrap`.

    Parameters
    ----------
    statistics
        ``(system, task, language) -> Statistic`` for one metric, built with
        :func:`xcal.stats.metric_statistic` (accuracy, ECE, NLL, Brier...) or
        :func:`xcal.stats.mean_statistic` (per-example F1, exact match...), or
        by :func:`statistics_from_store`.
    baseline
        The system every other system is compared with.
    systems
        Systems to compare (default: all but the baseline).
    method, level, B, rng, groups
        As in :func:`xcal.stats.paired_bootstrap` (``groups`` per key, in the
        order of that key's examples: e.g. all perturbed variants of one example).
        One generator serves all comparisons, so a seed fixes the whole table.
    p_adjust
        Multiple-comparison correction over all rows (:func:`xcal.stats.adjust_pvalues`);
        ``None`` leaves ``p_adjusted`` NaN.
    lower_is_better
        As in :func:`gains_from_table` (metric names are the statistics' names).

    Returns
    -------
    pandas.DataFrame
        ``system, baseline, task, language, metric, value, baseline_value, gain,
        ci_low, ci_high, p_value, p_adjusted, higher_is_better, improvement, rank,
        method, B, seed, level, n``; ``gain`` and its interval are system minus baseline.

    Examples
    --------
    >>> from xcal.stats import metric_statistic
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.random(300)
    >>> stats = {("inter", "xnli", "de"): metric_statistic("accuracy", correct=truth < 0.8),
    ...          ("base", "xnli", "de"): metric_statistic("accuracy", correct=truth < 0.7)}
    >>> row = paired_gains(stats, baseline="base", B=1000, rng=0).iloc[0]
    >>> bool(row.ci_low > 0), row.metric
    (True, 'accuracy_score')
    """
    from xcal.stats import adjust_pvalues, paired_bootstrap
    from xcal.stats.resample import as_generator

    for key in statistics:
        if not (isinstance(key, tuple) and len(key) == 3):
            raise ValueError(f"Expected keys (system, task, language), got {key!r}")
    all_systems = sorted({system for system, _, _ in statistics})
    if baseline not in all_systems:
        raise ValueError(f"baseline system {baseline!r} has no statistics; systems: {all_systems}")
    if systems is None:
        systems = [s for s in all_systems if s != baseline]
    unknown = sorted(set(systems) - set(all_systems))
    if unknown:
        raise ValueError(f"system(s) {unknown} have no statistics; systems: {all_systems}")
    if not systems:
        raise ValueError("no system to compare with the baseline")
    gen, _ = as_generator(rng)
    rows = []
    for system in systems:
        for (name, task, language), stat in sorted(statistics.items()):
            if name != system:
                continue
            base_stat = statistics.get((baseline, task, language))
            if base_stat is None:
                raise ValueError(
                    f"no baseline ({baseline!r}) statistic for task {task!r}, language "
                    f"{language!r} (system {system!r} has one)"
                )
            if base_stat.kind != stat.kind:
                raise ValueError(
                    f"{task}/{language}: {system!r} and {baseline!r} measure different "
                    f"metrics ({stat.name} vs {base_stat.name})"
                )
            try:
                frame = paired_bootstrap(
                    stat,
                    base_stat,
                    method=method,
                    level=level,
                    B=B,
                    rng=gen,
                    groups=None if groups is None else groups.get((system, task, language)),
                    names=(system, baseline),
                )
            except ValueError as exc:  # e.g. other examples: say where
                raise ValueError(f"{task}/{language}: {exc}") from exc
            result = frame.iloc[0]
            rows.append(
                {
                    "system": system,
                    "baseline": baseline,
                    "task": task,
                    "language": language,
                    "metric": str(result["metric"]),
                    "value": float(result["estimate_a"]),
                    "baseline_value": float(result["estimate_b"]),
                    "gain": float(result["estimate"]),
                    "ci_low": float(result["ci_low"]),
                    "ci_high": float(result["ci_high"]),
                    "p_value": float(result["p_value"]),
                    "p_adjusted": np.nan,
                    "method": result["method"],
                    "B": int(result["B"]),
                    "seed": result["seed"],
                    "level": float(result["level"]),
                    "n": int(result["n"]),
                }
            )
    if not rows:
        raise ValueError(f"none of the systems {list(systems)} has statistics to compare")
    out = pd.DataFrame(rows)
    out["higher_is_better"] = [not is_lower_better(m, lower_is_better) for m in out["metric"]]
    out["improvement"] = np.where(out["higher_is_better"], out["gain"], -out["gain"])
    out["rank"] = _rank(out)
    if p_adjust is not None:
        out["p_adjusted"] = adjust_pvalues(out["p_value"].to_numpy(), p_adjust)
    return out[_GAIN_COLUMNS].reset_index(drop=True)


def default_system_name(model: str, intermediate_tasks: Sequence[str]) -> str:
    """The system name of a run: its ``model``.

    The store keys runs by model (not by ``intermediate_tasks``), so a model
    after intermediate training is stored under a model name of its own (e.g.
    ``xlmr-large+mnli``) and that name already identifies the system.

    Examples
    --------
    >>> default_system_name("xlmr-large+mnli", ("mnli",))
    'xlmr-large+mnli'
    """
    return model


# Runs of one task and language compared example by example must share these:
# example ids survive a perturbation, so ids alone cannot tell the conditions apart.
_CONDITION_FIELDS: tuple[str, ...] = (
    "split",
    "perturbation",
    "severity",
    "perturbation_seed",
    "perturbation_params",
    "record_kind",
    "n_classes",
)


def _check_comparable(runs: pd.DataFrame) -> None:
    """Refuse runs of one task and language that differ in condition or label space."""
    for (task, language), group in runs.groupby(["task", "language"], sort=True):
        for name in _CONDITION_FIELDS:
            values = group[name].astype(str)
            if values.nunique() > 1:
                listed = ", ".join(
                    f"{m!r}: {v}" for m, v in zip(group["model"], values, strict=True)
                )
                what = "label spaces (n_classes)" if name == "n_classes" else name
                raise ValueError(
                    f"{task}/{language}: the runs differ in {what} ({listed}) and cannot be "
                    f"compared example by example; select one with a filter such as {name}=..."
                )


def _check_same_gold(
    first: dict[tuple[str, str], tuple[str, np.ndarray, np.ndarray]],
    key: GainKey,
    ids: np.ndarray,
    labels: np.ndarray,
) -> None:
    """Refuse a run whose gold labels differ from another system's on shared examples."""
    system, task, language = key
    seen = first.setdefault((task, language), (system, ids, labels))
    if seen[0] == system:
        return
    common, ia, ib = np.intersect1d(seen[1], ids, assume_unique=True, return_indices=True)
    bad = np.flatnonzero(seen[2][ia] != labels[ib])
    if bad.size:
        j = bad[0]
        raise ValueError(
            f"{task}/{language}: runs {seen[0]!r} and {system!r} give different gold labels to "
            f"{bad.size} of the {common.size} examples they share (e.g. {common[j]!r}: "
            f"{seen[2][ia[j]]} vs {labels[ib[j]]}); they do not label the same data the same way"
        )


def statistics_from_store(
    store: PredictionStore,
    metric: str = "accuracy",
    *,
    n_bins: int = 15,
    binning: str = "width",
    system_name: Callable[[str, Sequence[str]], str] = default_system_name,
    **filters: Any,
) -> dict[GainKey, Statistic]:
    """Per-run statistics of one metric, keyed ``(system, task, language)``.

    Parameters
    ----------
    store
        A :class:`xcal.store.PredictionStore`.
    metric
        For classification and multiple-choice runs any name
        :func:`xcal.stats.metric_statistic` knows (``accuracy``, ``ece``, ``nll``,
        ``brier``...); for QA runs ``f1``, ``exact_match`` or a calibration metric
        (top span correct by exact match); for retrieval runs ``accuracy`` (top-1)
        or a calibration metric.
    system_name
        ``(model, intermediate_tasks) -> system``; by default the model name.
    filters
        Manifest fields passed to ``store.runs`` (e.g. ``split="test"``,
        ``perturbation="none"``). Two runs may not map to the same key.

    Raises
    ------
    ValueError
        Runs of one task and language that cannot be compared example by
        example: they differ in split, perturbation (name, severity, seed or
        parameters), record kind or number of classes, or give different gold
        labels to an example they share. The message names the runs and why.
    """
    from xcal.stats import mean_statistic, metric_statistic

    runs = store.runs(**filters)
    if runs.empty:
        raise ValueError(f"no runs in the store match {filters or 'the (empty) filters'}")
    _check_comparable(runs)
    out: dict[GainKey, Statistic] = {}
    # (task, language) -> (system, example ids, gold labels) of its first labelled run
    first_labels: dict[tuple[str, str], tuple[str, np.ndarray, np.ndarray]] = {}
    for run in runs.to_dict("records"):
        run_id = str(run["run_id"])
        key = (
            system_name(str(run["model"]), tuple(run["intermediate_tasks"])),
            str(run["task"]),
            str(run["language"]),
        )
        if key in out:
            raise ValueError(
                f"several runs map to {key}; narrow them with filters such as "
                "split=..., perturbation=..., severity=..."
            )
        kind = str(run["record_kind"])
        if kind in ("classification", "multiple_choice"):
            arrays = (
                store.load_classification(run_id)
                if kind == "classification"
                else store.load_multiple_choice(run_id)
            )
            _check_same_gold(first_labels, key, arrays.example_ids, arrays.labels)
            out[key] = metric_statistic(
                metric,
                arrays.labels,
                logits=arrays.logits,
                n_bins=n_bins,
                binning=binning,
                example_ids=arrays.example_ids,
            )
            continue
        records = store.load_records(run_id)
        ids = np.asarray(records["example_id"], dtype=object)
        if kind == "qa":
            from xcal.metrics.qa import qa_confidence_correctness, qa_exact_match_f1

            language = str(run["language"]) if str(run["task"]) == "mlqa" else None
            if metric in ("f1", "exact_match", "em"):
                em, f1 = qa_exact_match_f1(records["nbest"], records["answers"], language=language)
                scores = f1 if metric == "f1" else em
                name = "f1_score" if metric == "f1" else "exact_match_score"
                out[key] = mean_statistic(scores, name=name, example_ids=ids)
                continue
            confidence, correct = qa_confidence_correctness(
                records["nbest"], records["answers"], language=language
            )
        elif kind == "retrieval":
            from xcal.metrics.retrieval import retrieval_confidence_correctness

            confidence, correct = retrieval_confidence_correctness(
                records["scores"], records["candidate_ids"], records["gold_ids"]
            )
        else:
            raise ValueError(f"run {run_id}: unsupported record kind {kind!r}")
        out[key] = metric_statistic(
            metric,
            confidence=confidence,
            correct=correct,
            n_bins=n_bins,
            binning=binning,
            example_ids=ids,
        )
    return out
