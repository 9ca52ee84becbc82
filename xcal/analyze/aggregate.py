"""Aggregating cell results: one table, groups, adjusted p-values, correlations.

Runs in the process that planned the analysis, after the cells
(:mod:`xcal.analyze.execute`); the result is an :class:`AnalysisResult`,
which :mod:`xcal.analyze.report` renders.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xcal.analyze import _adapters
from xcal.analyze.options import RELIABILITY_COLUMNS, AnalysisOptions
from xcal.analyze.results import conform, empty_results, metric_info

if TYPE_CHECKING:
    from xcal.analyze.display_names import DisplayNames
    from xcal.analyze.execute import Executor
    from xcal.analyze.figures import Display
    from xcal.analyze.findings import Findings
    from xcal.analyze.latex import LatexTable
    from xcal.analyze.tables import TableOptions


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
    findings : Findings or None
        Pooled findings per research question (:mod:`xcal.analyze.findings`).
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

    def figures(self, which: str = "main", names: DisplayNames | None = None) -> dict[str, Display]:
        """The report's figures, drawn (see :func:`xcal.analyze.report.build_figures`).

        ``names`` (:class:`~xcal.analyze.display_names.DisplayNames`) gives the
        printed names of tasks, systems, conditions and languages (default:
        the defaults, e.g. XNLI, "char. noise 5%").
        """
        from xcal.analyze.report import build_figures

        return build_figures(self, which, names)

    def write_report(
        self,
        out: str | os.PathLike[str],
        *,
        force: bool = False,
        table_options: TableOptions | None = None,
        figures: str = "main",
        tables: bool = True,
        executor: Executor | None = None,
    ) -> Path:
        """Write the report folder (see :func:`xcal.analyze.report.write_report`)."""
        from xcal.analyze.report import write_report

        return write_report(
            self,
            out,
            force=force,
            table_options=table_options,
            figures=figures,
            tables=tables,
            executor=executor,
        )


def aggregate(
    frames: Sequence[pd.DataFrame],
    bin_frames: Sequence[pd.DataFrame],
    options: AnalysisOptions,
    distances: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cell results (in plan order) to the results, reliability and correlation tables."""
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
    return results, reliability, correlations


def _task_distance_table(
    task_distances: pd.DataFrame | str | os.PathLike[str] | None, measure: str | None
) -> pd.DataFrame | None:
    """The distances of ``measure`` (None: of every measure), checked."""
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
    if "measure" in frame.columns and measure is not None:
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
