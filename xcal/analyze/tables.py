"""The paper's tables, one per research question, built from the tidy results.

Each builder takes the results frame of :func:`xcal.analyze.analyze_store`
(or :func:`xcal.analyze.read_results`) and returns :class:`LatexTable`
objects ready to ``\\input`` (see :mod:`xcal.analyze.latex` for the format).

* :func:`difference_tables`: Δmetric of each system vs the baseline per
  language x perturbation (e.g. does intermediate training lower ECE?);
* :func:`metric_table`: the metric of every system per language;
* :func:`recalibration_table`: raw vs English-fitted vs self-fitted
  temperature (does zero-shot recalibration transfer?);
* :func:`resource_class_table`: calibration by language resource class
  (retrieval, or any task);
* :func:`architecture_gap_table`: English-minus-language transfer gap per
  architecture family and system (do encoder- and decoder-only models transfer
  differently?);
* :func:`correlation_table`: correlation of the gain with task distance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from xcal.analyze.display_names import DEFAULT_NAMES, DisplayNames
from xcal.analyze.figures._select import condition_order, language_order
from xcal.analyze.latex import (
    INTERVAL_STYLES,
    TWO_COLUMN_PAGE,
    LatexTable,
    Page,
    Style,
    escape_latex,
    table_from_frame,
    tables_from_frame,
)
from xcal.analyze.results import metric_info, select


@dataclass(frozen=True)
class TableOptions:
    """How the report's tables print: interval style, display names, page.

    Parameters
    ----------
    interval_style : {"offsets", "brackets"}
        ``offsets``: ``est^{+a}_{-b}``; ``brackets``: ``est [lo, hi]``.
    names : DisplayNames
        Printed names of tasks, systems, perturbations and languages.
    page : Page
        The page every table must fit (split or transposed otherwise).

    Examples
    --------
    >>> TableOptions(interval_style="brackets").interval_style
    'brackets'
    """

    interval_style: str = "offsets"
    names: DisplayNames = field(default_factory=lambda: DEFAULT_NAMES)
    page: Page = TWO_COLUMN_PAGE

    def __post_init__(self) -> None:
        if self.interval_style not in INTERVAL_STYLES:
            raise ValueError(
                f"unknown interval style {self.interval_style!r}; expected one of "
                f"{', '.join(INTERVAL_STYLES)}"
            )


def _opts(options: TableOptions | None) -> TableOptions:
    return options if options is not None else TableOptions()


_PAIRED_NOTE = (
    "paired bootstrap against the baseline, adjusted $p<0.05$; between two other systems, "
    "non-overlapping 95\\% intervals"
)


def _paired_test(part: pd.DataFrame, results: pd.DataFrame, baseline: str | None) -> Any:
    """``separated`` for tables whose columns are systems (row key: language).

    The best and the runner-up differ significantly when one is the baseline and
    the other's paired difference to it has adjusted p < 0.05; otherwise when
    their 95% intervals do not overlap.
    """
    first = part.iloc[0]
    diffs = select(
        results,
        comparison="difference",
        metric=str(first["metric"]),
        variant=str(first["variant"]),
        task=str(first["task"]),
        perturbation=str(first["perturbation"]),
    )
    diffs = diffs[np.isclose(diffs["severity"].to_numpy(float), float(first["severity"]))]
    diffs = diffs[diffs["baseline"] == baseline]
    p_of = {
        (str(language), str(system)): float(p)
        for language, system, p in zip(
            diffs["language"], diffs["system"], diffs["p_adjusted"], strict=True
        )
    }
    bounds = {
        (str(language), str(system)): (float(low), float(high))
        for language, system, low, high in zip(
            part["language"], part["system"], part["ci_low"], part["ci_high"], strict=True
        )
    }

    def separated(best: Any, runner_up: Any) -> bool:
        (language,), (a,) = best
        (_,), (b,) = runner_up
        for system, other in ((a, b), (b, a)):
            if other == baseline and (language, system) in p_of:
                p = p_of[(language, system)]
                return bool(math.isfinite(p) and p < 0.05)
        (lo_a, hi_a), (lo_b, hi_b) = bounds[(language, a)], bounds[(language, b)]
        if not all(math.isfinite(v) for v in (lo_a, hi_a, lo_b, hi_b)):
            return False
        return hi_a < lo_b or hi_b < lo_a

    return separated


_VARIANT_LABELS = {"raw": "raw", "ts_en": "TS (en)", "ts_self": "TS (self)"}
_VARIANT_TEXT = {
    "raw": "raw probabilities",
    "ts_en": "after temperature scaling fitted on English",
    "ts_self": "after temperature scaling fitted on each language",
}
_CORRECTION_TEXT = {"holm": "Holm", "bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni"}


def _slug(*parts: object) -> str:
    """A file-name-safe stem: parts joined by ``_``; runs of other characters become ``-``.

    >>> _slug("delta", "ece", "+pawsx", "xnli"), _slug("forest_ece", "R&D model")
    ('delta_ece_pawsx_xnli', 'forest_ece_r-d-model')
    """
    cleaned = [
        re.sub(r"[^a-z0-9_]+", "-", str(p).lower()).strip("-_") for p in parts if p is not None
    ]
    return "_".join(c for c in cleaned if c)


def _percent(metric: str) -> tuple[float, str]:
    info = metric_info(metric)
    return (100.0, " (%)") if info.percent else (1.0, "")


def _correction_note(rows: pd.DataFrame) -> list[str]:
    corrections = [c for c in rows["correction"].dropna().unique() if c]
    if not corrections:
        return []
    name = _CORRECTION_TEXT.get(str(corrections[0]), str(corrections[0]))
    n_boot = int(rows["n_boot"].max())
    return [
        f"Paired bootstrap over examples (B = {n_boot}); p-values adjusted with "
        f"{escape_latex(name)} over all languages, tasks and perturbations of the system."
    ]


def _condition_column(frame: pd.DataFrame, names: DisplayNames) -> pd.DataFrame:
    return frame.assign(
        condition=[
            names.condition(p, s)
            for p, s in zip(frame["perturbation"], frame["severity"], strict=True)
        ]
    )


def difference_tables(
    results: pd.DataFrame,
    *,
    metric: str = "ece",
    variant: str = "raw",
    systems: Sequence[str] | None = None,
    options: TableOptions | None = None,
) -> list[LatexTable]:
    """Δmetric (system minus baseline) per language x perturbation, one table per system and task.

    Markers give the significance of each difference (nothing is bold: the
    markers say which differences are not noise). A table too wide or too tall
    for the page is split into parts (or transposed, see
    :func:`xcal.analyze.latex.tables_from_frame`).
    """
    opts = _opts(options)
    names = opts.names
    info = metric_info(metric)
    rows = select(results, comparison="difference", metric=metric, variant=variant)
    if systems is not None:
        rows = select(rows, system=list(systems))
    tables: list[LatexTable] = []
    scale, unit = _percent(metric)
    for (system, task), part in rows.groupby(["system", "task"], sort=True):
        baseline = str(part["baseline"].iloc[0])
        conditions = condition_order(part)
        sub = _condition_column(part, names)
        direction = "lower" if not info.higher_is_better else "higher"
        shown, base = names.system(system), names.system(baseline)
        caption = (
            f"Δ{info.label}{' (percentage points)' if unit else ''} of {shown} minus "
            f"{base} on {names.task(task)}, "
            f"{_VARIANT_TEXT.get(variant, variant)}, per language and perturbation "
            f"(negative: {shown} has the lower {info.label}; {direction} is better)."
        )
        name = _slug("delta", metric, variant, system, task)
        tables += tables_from_frame(
            sub,
            rows=["language"],
            columns=["condition"],
            style=opts.interval_style,
            scale=scale,
            digits=1 if scale == 100.0 else 3,
            caption=caption,
            caption_notes=_correction_note(sub),
            label=f"tab:{name}",
            name=name,
            row_names=["Language"],
            column_names=["Condition"],
            formatters={"language": names.language},
            orders={
                "language": language_order(sub["language"]),
                "condition": [names.condition(*c) for c in conditions],
            },
            page=opts.page,
        )
    return tables


def _system_order(systems: Iterable[Any], baseline: str | None) -> list[str]:
    # The baseline first, then the others by name.
    unique = sorted({str(s) for s in systems})
    return [s for s in unique if s == baseline] + [s for s in unique if s != baseline]


def _baseline_of(results: pd.DataFrame) -> str | None:
    if "baseline" not in results.columns:
        return None
    named = results["baseline"].dropna()
    return str(named.iloc[0]) if len(named) else None


def metric_table(
    results: pd.DataFrame,
    *,
    metric: str = "ece",
    variant: str = "raw",
    perturbation: str = "none",
    severity: float = 0.0,
    options: TableOptions | None = None,
) -> list[LatexTable]:
    """The metric of each system (columns) per language (rows), one table per task.

    The best system of a language is bold only where it differs significantly
    from the runner-up: the paired bootstrap test against the baseline when one
    of the two is the baseline, else non-overlapping intervals.
    """
    opts = _opts(options)
    names = opts.names
    info = metric_info(metric)
    rows = select(
        results, comparison="value", metric=metric, variant=variant, perturbation=perturbation
    )
    rows = rows[np.isclose(rows["severity"].to_numpy(float), severity)]
    scale, unit = _percent(metric)
    baseline = _baseline_of(results)
    tables: list[LatexTable] = []
    for task, part in rows.groupby("task", sort=True):
        cond = names.condition(perturbation, severity)
        name = _slug(metric, variant, task, "clean" if perturbation == "none" else cond)
        caption = (
            f"{info.label}{unit} per language on {names.task(task)} ({cond}, "
            f"{_VARIANT_TEXT.get(variant, variant)})."
        )
        tables += tables_from_frame(
            part,
            rows=["language"],
            columns=["system"],
            p_value=None,
            style=opts.interval_style,
            best="max" if info.higher_is_better else "min",
            best_within="row",
            separated=_paired_test(part, results, baseline),
            separation_note=_PAIRED_NOTE,
            scale=scale,
            digits=1 if scale == 100.0 else 3,
            caption=caption,
            caption_notes=["Bootstrap over examples."],
            label=f"tab:{name}",
            name=name,
            row_names=["Language"],
            column_names=["System"],
            formatters={"language": names.language, "system": names.system},
            orders={
                "language": language_order(part["language"]),
                "system": _system_order(part["system"], baseline),
            },
            page=opts.page,
        )
    return tables


_VARIANT_CAPTION = {
    "ts_en": "fitted on English and applied to every language (zero-shot)",
    "ts_self": "fitted on each language itself (upper reference)",
}


def recalibration_table(
    results: pd.DataFrame,
    *,
    metric: str = "ece",
    perturbation: str = "none",
    severity: float = 0.0,
    systems: Sequence[str] | None = None,
    options: TableOptions | None = None,
) -> list[LatexTable]:
    """Raw vs English-fitted vs self-fitted temperature, per language.

    One table per task with every system (the baseline first) and the variants
    the results hold (Tatoeba has no English run to fit on, so no TS (en));
    the caption names only those. Split into parts only when it does not fit
    the page.
    """
    opts = _opts(options)
    names = opts.names
    info = metric_info(metric)
    rows = select(results, comparison="value", metric=metric, perturbation=perturbation)
    rows = rows[np.isclose(rows["severity"].to_numpy(float), severity)]
    if systems is not None:
        rows = select(rows, system=list(systems))
    scale, unit = _percent(metric)
    baseline = _baseline_of(results)
    tables: list[LatexTable] = []
    for task, part in rows.groupby("task", sort=True):
        if part["variant"].nunique() < 2:
            continue
        part = part.assign(
            variant_label=part["variant"].map(_VARIANT_LABELS).fillna(part["variant"])
        )
        present = [v for v in _VARIANT_CAPTION if v in set(part["variant"])]
        fitted = " or ".join(_VARIANT_CAPTION[v] for v in present)
        missing_en = (
            ""
            if "ts_en" in present
            else (" No TS (en) column: the results hold no English run of this task to fit on.")
        )
        name = _slug("recalibration", metric, task)
        caption = (
            f"{info.label}{unit} on {names.task(task)} before (raw) and after temperature "
            f"scaling (TS) {fitted}. Fitting and evaluation examples are disjoint.{missing_en}"
        )
        tables += tables_from_frame(
            part,
            rows=["language"],
            columns=["system", "variant_label"],
            p_value=None,
            style=opts.interval_style,
            best="max" if info.higher_is_better else "min",
            best_within="row",
            degenerate_note=(
                "no interval: the value is the same in every bootstrap resample. For TS (self) "
                "this happens when every fitting example is correct: the fitted temperature "
                "goes to the end of its search range and makes every prediction certain, and "
                "with every evaluation example correct too the calibration error is 0."
            ),
            scale=scale,
            digits=1 if scale == 100.0 else 3,
            caption=caption,
            label=f"tab:{name}",
            name=name,
            row_names=["Language"],
            column_names=["System", "Variant"],
            formatters={"language": names.language, "system": names.system},
            orders={
                "language": language_order(part["language"]),
                "system": _system_order(part["system"], baseline),
                "variant_label": list(_VARIANT_LABELS.values()),
            },
            page=opts.page,
        )
    return tables


def resource_class_table(
    results: pd.DataFrame,
    *,
    metric: str = "ece",
    variant: str = "raw",
    record_kind: str | None = "retrieval",
    options: TableOptions | None = None,
) -> list[LatexTable]:
    """Mean of ``metric`` over the languages of each resource class, per system.

    The interval combines the per-language bootstrap intervals as independent
    normal errors: half-width ``sqrt(sum h_l^2) / L`` (languages are evaluated
    on separate examples). One table per task of ``record_kind`` (any kind if None).
    """
    opts = _opts(options)
    names = opts.names
    info = metric_info(metric)
    rows = select(results, comparison="value", metric=metric, variant=variant, perturbation="none")
    if record_kind is not None:
        rows = select(rows, record_kind=record_kind)
    rows = rows.dropna(subset=["resource_class"])
    scale, unit = _percent(metric)
    tables: list[LatexTable] = []
    for task, part in rows.groupby("task", sort=True):
        half = (part["ci_high"] - part["ci_low"]) / 2.0
        part = part.assign(_h2=half**2)
        grouped = part.groupby(["resource_class", "system"], as_index=False).agg(
            estimate=("estimate", "mean"), h2=("_h2", "sum"), n=("language", "nunique")
        )
        h = np.sqrt(grouped["h2"].to_numpy(float)) / grouped["n"].to_numpy(float)
        grouped = grouped.assign(
            ci_low=grouped["estimate"] - h,
            ci_high=grouped["estimate"] + h,
            resource=[
                f"{int(c)} ({n} lang.)"
                for c, n in zip(
                    grouped["resource_class"],
                    grouped.groupby("resource_class")["n"].transform("max"),
                    strict=True,
                )
            ],
        )
        name = _slug("resource", metric, variant, task)
        caption = (
            f"{info.label}{unit} on {names.task(task)} by resource class of the language "
            f"(Joshi et al., 2020; 0 = least resourced, 5 = most), mean over languages, "
            f"{_VARIANT_TEXT.get(variant, variant)}."
        )
        tables += tables_from_frame(
            grouped,
            rows=["resource"],
            columns=["system"],
            p_value=None,
            # The combined interval is symmetric by construction.
            style="pm" if opts.interval_style == "offsets" else opts.interval_style,
            best="max" if info.higher_is_better else "min",
            best_within="row",
            scale=scale,
            digits=1 if scale == 100.0 else 3,
            caption=caption,
            caption_notes=[
                "Intervals combine the per-language 95\\% bootstrap intervals as independent errors."
            ],
            label=f"tab:{name}",
            name=name,
            row_names=["Resource class"],
            column_names=["System"],
            formatters={"system": names.system},
            orders={
                "resource": sorted(set(grouped["resource"]), reverse=True),
                "system": _system_order(grouped["system"], _baseline_of(results)),
            },
            page=opts.page,
        )
    return tables


def architecture_gap_table(
    results: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("accuracy", "ece"),
    variant: str = "raw",
    source_language: str = "en",
    n_boot: int = 2000,
    seed: int = 0,
    options: TableOptions | None = None,
) -> list[LatexTable]:
    """Transfer gap (English minus language, mean over languages) per architecture x system.

    The gap of each non-English language comes from
    :func:`xcal.transfer.architecture.transfer_gap` on clean inputs; its mean
    per system and its interval (bootstrap over languages) from
    :func:`xcal.transfer.architecture.gap_by_architecture`. One table per task
    (columns: metrics); none when the results hold fewer than two architecture
    families or no English rows.
    """
    from xcal.transfer.architecture import gap_by_architecture, transfer_gap

    opts = _opts(options)
    names = opts.names
    rows = select(
        results, comparison="value", metric=list(metrics), variant=variant, perturbation="none"
    )
    rows = rows.dropna(subset=["architecture"])
    if rows["architecture"].nunique() < 2:
        return []
    tables: list[LatexTable] = []
    for task, part in rows.groupby("task", sort=True):
        if part["architecture"].nunique() < 2 or source_language not in set(part["language"]):
            continue
        scores = part.rename(columns={"estimate": "value"})
        keys = ("system", "architecture", "task", "metric")
        # Systems lacking an English score (or a metric in English) have no gap.
        has_source = scores[scores["language"] == source_language][list(keys)].drop_duplicates()
        scores = scores.merge(has_source, on=list(keys))
        gaps = transfer_gap(scores, source_language=source_language, group_cols=keys)
        if gaps.empty or gaps["architecture"].nunique() < 2:
            continue
        summary = gap_by_architecture(
            gaps, by=("architecture", "system", "metric"), B=n_boot, rng=seed
        )
        scale = {m: _percent(m)[0] for m in summary["metric"].unique()}
        factor = summary["metric"].map(scale).to_numpy(float)
        summary = summary.assign(
            estimate=summary["estimate"] * factor,
            ci_low=summary["ci_low"] * factor,
            ci_high=summary["ci_high"] * factor,
            metric_label=[f"{metric_info(m).label}{_percent(m)[1]}" for m in summary["metric"]],
        )
        n_languages = gaps["language"].nunique()
        name = _slug("architecture_gap", variant, task)
        caption = (
            f"Transfer gap on {names.task(task)} by architecture family: {source_language} score minus the "
            f"score in each other language, mean over {n_languages} languages, clean inputs, "
            f"{_VARIANT_TEXT.get(variant, variant)} (accuracy: positive = loss in transfer; "
            f"ECE: negative = loss)."
        )
        tables += tables_from_frame(
            summary,
            rows=["architecture", "system"],
            columns=["metric_label"],
            p_value=None,
            style=opts.interval_style,
            digits=1 if all(v == 100.0 for v in scale.values()) else 3,
            caption=caption,
            caption_notes=["Intervals: bootstrap over languages."],
            label=f"tab:{name}",
            name=name,
            row_names=["Architecture", "System"],
            column_names=["Metric"],
            formatters={"system": names.system},
            orders={
                "metric_label": [
                    f"{metric_info(m).label}{_percent(m)[1]}"
                    for m in metrics
                    if m in set(summary["metric"])
                ]
            },
            page=opts.page,
        )
    return tables


def correlation_table(
    correlations: pd.DataFrame,
    *,
    name: str = "gain_vs_task_distance",
    options: TableOptions | None = None,
) -> LatexTable:
    """Correlation of the gain with task distance: one row per metric, one column per method.

    ``correlations`` has columns ``metric``, ``method`` (pearson, spearman,
    kendall), ``estimate``, ``ci_low``, ``ci_high``, ``p_value``, ``n``.
    """
    frame = correlations.assign(
        metric_label=[metric_info(m).label if m in _known() else m for m in correlations["metric"]],
        method_label=correlations["method"].str.capitalize(),
    )
    n_points = int(frame["n"].max()) if "n" in frame.columns else 0
    caption = (
        "Correlation between the task distance (intermediate to target task) and the gain "
        f"over the baseline (positive gain = better; n = {n_points} system x task x language points)."
    )
    return table_from_frame(
        frame,
        rows=["metric_label"],
        columns=["method_label"],
        p_value="p_value",
        style=cast(Style, _opts(options).interval_style),
        digits=2,
        caption=caption,
        caption_notes=["p-values from permutation tests."],
        label=f"tab:{name}",
        name=name,
        row_names=["Gain in"],
        orders={"method_label": ["Pearson", "Spearman", "Kendall"]},
        page=_opts(options).page,
    )


def _known() -> set[str]:
    from xcal.analyze.results import METRICS

    return set(METRICS)
