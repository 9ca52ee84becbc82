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

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from xcal.analyze.figures._select import condition_label, condition_order, language_order
from xcal.analyze.latex import LatexTable, escape_latex, table_from_frame
from xcal.analyze.results import metric_info, select

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


def _chunks(items: list[tuple[str, float]], size: int) -> list[list[tuple[str, float]]]:
    # Keep clean in every chunk so each table has its reference column.
    clean = [c for c in items if c[0] == "none"]
    rest = [c for c in items if c[0] != "none"]
    per = max(1, size - len(clean))
    if not rest:
        return [clean]
    return [clean + rest[i : i + per] for i in range(0, len(rest), per)]


def difference_tables(
    results: pd.DataFrame,
    *,
    metric: str = "ece",
    variant: str = "raw",
    systems: Sequence[str] | None = None,
    max_conditions: int = 5,
) -> list[LatexTable]:
    """Δmetric (system minus baseline) per language x perturbation, one table per system and task.

    Conditions beyond ``max_conditions`` go to further tables (each keeps the
    clean column) so a table fits the width of a two-column paper.
    """
    info = metric_info(metric)
    rows = select(results, comparison="difference", metric=metric, variant=variant)
    if systems is not None:
        rows = select(rows, system=list(systems))
    tables = []
    scale, unit = _percent(metric)
    for (system, task), part in rows.groupby(["system", "task"], sort=True):
        baseline = str(part["baseline"].iloc[0])
        conditions = condition_order(part)
        chunks = _chunks(conditions, max_conditions)
        for k, chunk in enumerate(chunks):
            wanted = {c for c in chunk}
            sub = part[
                [
                    (str(p), float(s)) in wanted
                    for p, s in zip(part["perturbation"], part["severity"], strict=True)
                ]
            ]
            sub = sub.assign(
                condition=[
                    condition_label(p, s)
                    for p, s in zip(sub["perturbation"], sub["severity"], strict=True)
                ]
            )
            direction = "lower" if not info.higher_is_better else "higher"
            caption = (
                f"Δ{info.label}{' (percentage points)' if unit else ''} of {system} minus "
                f"{baseline} on {task}, "
                f"{_VARIANT_TEXT.get(variant, variant)}, per language and perturbation "
                f"(negative: {system} has the lower {info.label}; {direction} is better)."
            )
            suffix = f"_part{k + 1}" if len(chunks) > 1 else ""
            name = _slug("delta", metric, variant, system, task) + suffix
            tables.append(
                table_from_frame(
                    sub,
                    rows=["language"],
                    columns=["condition"],
                    best="min" if not info.higher_is_better else "max",
                    best_within="column",
                    scale=scale,
                    digits=1 if scale == 100.0 else 3,
                    caption=caption,
                    caption_notes=_correction_note(sub),
                    label=f"tab:{name}",
                    name=name,
                    row_names=["Language"],
                    orders={
                        "language": language_order(sub["language"]),
                        "condition": [condition_label(*c) for c in chunk],
                    },
                )
            )
    return tables


def metric_table(
    results: pd.DataFrame,
    *,
    metric: str = "ece",
    variant: str = "raw",
    perturbation: str = "none",
    severity: float = 0.0,
) -> list[LatexTable]:
    """The metric of each system (columns) per language (rows), one table per task."""
    info = metric_info(metric)
    rows = select(
        results, comparison="value", metric=metric, variant=variant, perturbation=perturbation
    )
    rows = rows[np.isclose(rows["severity"].to_numpy(float), severity)]
    scale, unit = _percent(metric)
    tables = []
    for task, part in rows.groupby("task", sort=True):
        cond = condition_label(perturbation, severity)
        name = _slug(metric, variant, task, cond)
        caption = (
            f"{info.label}{unit} per language on {task} ({cond}, "
            f"{_VARIANT_TEXT.get(variant, variant)})."
        )
        tables.append(
            table_from_frame(
                part,
                rows=["language"],
                columns=["system"],
                p_value=None,
                best="max" if info.higher_is_better else "min",
                best_within="row",
                scale=scale,
                digits=1 if scale == 100.0 else 3,
                caption=caption,
                caption_notes=["Bootstrap over examples."],
                label=f"tab:{name}",
                name=name,
                row_names=["Language"],
                orders={"language": language_order(part["language"])},
            )
        )
    return tables


def recalibration_table(
    results: pd.DataFrame,
    *,
    metric: str = "ece",
    perturbation: str = "none",
    severity: float = 0.0,
    systems: Sequence[str] | None = None,
    systems_per_table: int = 2,
) -> list[LatexTable]:
    """Raw vs English-fitted vs self-fitted temperature, per language.

    One table per task and group of ``systems_per_table`` systems (three
    columns each), so that a table fits the width of a page.
    """
    info = metric_info(metric)
    rows = select(results, comparison="value", metric=metric, perturbation=perturbation)
    rows = rows[np.isclose(rows["severity"].to_numpy(float), severity)]
    if systems is not None:
        rows = select(rows, system=list(systems))
    scale, unit = _percent(metric)
    tables = []
    for task, part in rows.groupby("task", sort=True):
        if part["variant"].nunique() < 2:
            continue
        part = part.assign(
            variant_label=part["variant"].map(_VARIANT_LABELS).fillna(part["variant"])
        )
        names = sorted(part["system"].unique())
        groups = [names[i : i + systems_per_table] for i in range(0, len(names), systems_per_table)]
        for k, group in enumerate(groups):
            sub = part[part["system"].isin(group)]
            suffix = f"_part{k + 1}" if len(groups) > 1 else ""
            name = _slug("recalibration", metric, task) + suffix
            caption = (
                f"{info.label}{unit} on {task} before and after temperature scaling (TS): "
                f"fitted on English and applied to every language (zero-shot), or fitted on "
                f"each language itself (upper reference). Fitting and evaluation examples are "
                f"disjoint."
            )
            tables.append(
                table_from_frame(
                    sub,
                    rows=["language"],
                    columns=["system", "variant_label"],
                    p_value=None,
                    best="max" if info.higher_is_better else "min",
                    best_within="row",
                    scale=scale,
                    digits=1 if scale == 100.0 else 3,
                    caption=caption,
                    label=f"tab:{name}",
                    name=name,
                    row_names=["Language"],
                    orders={
                        "language": language_order(sub["language"]),
                        "variant_label": list(_VARIANT_LABELS.values()),
                    },
                )
            )
    return tables


def resource_class_table(
    results: pd.DataFrame,
    *,
    metric: str = "ece",
    variant: str = "raw",
    record_kind: str | None = "retrieval",
) -> list[LatexTable]:
    """Mean of ``metric`` over the languages of each resource class, per system.

    The interval combines the per-language bootstrap intervals as independent
    normal errors: half-width ``sqrt(sum h_l^2) / L`` (languages are evaluated
    on separate examples). One table per task of ``record_kind`` (any kind if None).
    """
    info = metric_info(metric)
    rows = select(results, comparison="value", metric=metric, variant=variant, perturbation="none")
    if record_kind is not None:
        rows = select(rows, record_kind=record_kind)
    rows = rows.dropna(subset=["resource_class"])
    scale, unit = _percent(metric)
    tables = []
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
            f"{info.label}{unit} on {task} by resource class of the language "
            f"(Joshi et al., 2020; 0 = least resourced, 5 = most), mean over languages, "
            f"{_VARIANT_TEXT.get(variant, variant)}."
        )
        tables.append(
            table_from_frame(
                grouped,
                rows=["resource"],
                columns=["system"],
                p_value=None,
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
                orders={"resource": sorted(set(grouped["resource"]), reverse=True)},
            )
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

    rows = select(
        results, comparison="value", metric=list(metrics), variant=variant, perturbation="none"
    )
    rows = rows.dropna(subset=["architecture"])
    if rows["architecture"].nunique() < 2:
        return []
    tables = []
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
            f"Transfer gap on {task} by architecture family: {source_language} score minus the "
            f"score in each other language, mean over {n_languages} languages, clean inputs, "
            f"{_VARIANT_TEXT.get(variant, variant)} (accuracy: positive = loss in transfer; "
            f"ECE: negative = loss)."
        )
        tables.append(
            table_from_frame(
                summary,
                rows=["architecture", "system"],
                columns=["metric_label"],
                p_value=None,
                digits=1 if all(v == 100.0 for v in scale.values()) else 3,
                caption=caption,
                caption_notes=["Intervals: bootstrap over languages."],
                label=f"tab:{name}",
                name=name,
                row_names=["Architecture", "System"],
                orders={
                    "metric_label": [
                        f"{metric_info(m).label}{_percent(m)[1]}"
                        for m in metrics
                        if m in set(summary["metric"])
                    ]
                },
            )
        )
    return tables


def correlation_table(
    correlations: pd.DataFrame, *, name: str = "gain_vs_task_distance"
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
        style="interval",
        digits=2,
        caption=caption,
        caption_notes=["p-values from permutation tests."],
        label=f"tab:{name}",
        name=name,
        row_names=["Gain in"],
        orders={"method_label": ["Pearson", "Spearman", "Kendall"]},
    )


def _known() -> set[str]:
    from xcal.analyze.results import METRICS

    return set(METRICS)
