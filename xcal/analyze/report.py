"""Write an analysis to a report folder: numbers, tables, figures and an index.

::

    OUT/
      index.md                 every file below with a one-line caption
      results.csv, .parquet    the tidy results (one row per number)
      reliability.csv, .parquet  reliability-diagram bins of every run
      correlations.csv         gain vs task distance (when distances were given)
      tables/NAME.tex          booktabs tables, ready to \\input
      tables/preview.tex       a document that includes them all (pdflatex preview.tex)
      figures/NAME.pdf, .png   the figures
      .cache/                  per-cell results reused by the next run

Every file is written atomically. When the results have not changed since
the last report and every file is present, nothing is redrawn.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from xcal.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

    from xcal.analyze.aggregate import AnalysisResult
    from xcal.analyze.figures import Display
    from xcal.analyze.latex import LatexTable
    from xcal.analyze.tables import TableOptions


# ------------------------------------------------------------------ what goes in


def build_tables(result: AnalysisResult, options: TableOptions | None = None) -> list[LatexTable]:
    """The paper's tables for an analysis (those its data supports).

    ``options`` picks the interval style, the display names and the page
    (:class:`xcal.analyze.tables.TableOptions`; defaults when None).
    """
    from xcal.analyze import tables as t

    options = options or t.TableOptions()

    frame = result.results
    metrics = set(frame["metric"].unique()) if not frame.empty else set()
    out: list[LatexTable] = []
    if frame.empty:
        return out
    builders: list[tuple[str, Callable[[], list[LatexTable]]]] = []
    for metric in ("ece", "nll"):
        if metric in metrics:
            builders.append(
                (f"Δ{metric}", partial(t.difference_tables, frame, metric=metric, options=options))
            )
    for metric in ("accuracy", "f1", "ece"):
        if metric in metrics:
            builders.append(
                (metric, partial(t.metric_table, frame, metric=metric, options=options))
            )
    if "ece" in metrics:
        builders.append(
            ("recalibration", partial(t.recalibration_table, frame, metric="ece", options=options))
        )
    for metric in ("ece", "accuracy"):
        if metric in metrics:
            builders.append(
                (
                    f"{metric} by resource class",
                    partial(t.resource_class_table, frame, metric=metric, options=options),
                )
            )
    if {"accuracy", "ece"} & metrics and frame["architecture"].nunique() > 1:
        builders.append(
            ("architecture gap", partial(t.architecture_gap_table, frame, options=options))
        )
    if not result.correlations.empty:
        builders.append(
            ("correlation", lambda: [t.correlation_table(result.correlations, options=options)])
        )
    for what, build in builders:
        try:
            out += build()
        except ValueError as error:
            # e.g. two runs of one language that differ only in perturbation parameters
            note = f"{what} table skipped: {error}"
            if note not in result.notes:
                result.notes.append(note)
    return out


@dataclass
class FigureSpec:
    """A figure of the report: its file stem, caption, and how to draw it."""

    name: str
    caption: str
    draw: Callable[[], Display]


def figure_specs(result: AnalysisResult) -> list[FigureSpec]:
    """The report's figures, not yet drawn (those its data supports)."""
    from xcal.analyze import figures as f
    from xcal.analyze.results import select
    from xcal.analyze.tables import _slug

    frame = result.results
    specs: list[FigureSpec] = []
    if frame.empty:
        return specs
    baseline = result.options.baseline
    for task in sorted(frame["task"].unique()):
        rel = result.reliability
        clean = rel[
            (rel["task"] == task) & (rel["perturbation"] == "none") & (rel["variant"] == "raw")
        ]
        if not clean.empty:
            specs.append(
                FigureSpec(
                    _slug("reliability", task),
                    f"Reliability diagrams on {task} (clean, raw probabilities): languages x systems.",
                    partial(f.ReliabilityGridDisplay.from_results, result.reliability, task=task),
                )
            )
        diffs = select(
            frame,
            task=task,
            comparison="difference",
            metric="ece",
            variant="raw",
            perturbation="none",
        )
        if not diffs.empty:
            specs.append(
                FigureSpec(
                    _slug("forest_ece", task),
                    f"Difference in ECE to {baseline} on {task} (clean) with 95% paired bootstrap intervals.",
                    partial(f.ForestPlotDisplay.from_results, frame, metric="ece", task=task),
                )
            )
        values = select(frame, task=task, comparison="value", metric="ece", variant="raw")
        if not values.empty and values["perturbation"].nunique() > 1:
            for system in sorted(values["system"].unique()):
                specs.append(
                    FigureSpec(
                        _slug("heatmap_ece", system, task),
                        f"ECE of {system} on {task} per language and perturbation severity.",
                        partial(
                            f.MetricHeatmapDisplay.from_results,
                            frame,
                            system=system,
                            task=task,
                            metric="ece",
                        ),
                    )
                )
        confidence = select(
            frame, task=task, comparison="value", metric="confidence", variant="raw"
        )
        if not confidence.empty and (confidence["perturbation"] != "none").any():
            specs.append(
                FigureSpec(
                    _slug("severity", task),
                    f"Accuracy and mean confidence on {task} as perturbations grow (mean over languages).",
                    partial(f.SeverityCurveDisplay.from_results, frame, task=task),
                )
            )
    with_distance = select(frame, comparison="difference", variant="raw", perturbation="none")
    with_distance = with_distance[with_distance["task_distance"].notna()]
    if not with_distance.empty:
        points = with_distance.groupby(["system", "task"]).ngroups
        for metric in ("accuracy", "ece"):
            if (with_distance["metric"] == metric).any() and points >= 3:
                specs.append(
                    FigureSpec(
                        _slug("gain_vs_distance", metric),
                        f"{metric.upper() if metric == 'ece' else metric.capitalize()} gain over "
                        f"{baseline} against task distance, with the OLS fit and its 95% band.",
                        partial(f.GainDistanceDisplay.from_results, frame, metric=metric),
                    )
                )
    return specs


def build_figures(result: AnalysisResult) -> dict[str, Display]:
    """Draw every figure of the report (for Jupyter: ``result.figures()["..."]``)."""
    return {spec.name: spec.draw() for spec in figure_specs(result)}


# ------------------------------------------------------------------ writing


def _frame_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return frame.to_csv(index=False, float_format="%.10g").encode("utf-8")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _preview_document(tables: list[LatexTable], options: TableOptions | None = None) -> str:
    from xcal.analyze.latex import PREAMBLE, TWO_COLUMN_PAGE

    page = options.page if options is not None else TWO_COLUMN_PAGE
    body = "\n".join(f"\\input{{{t.name}.tex}}\n\\clearpage" for t in tables)
    return (
        "% Compile with `pdflatex preview.tex` in this folder to see every table,\n"
        "% on the two-column page the tables are laid out for.\n"
        "\\documentclass[twocolumn]{article}\n"
        + PREAMBLE
        + page.preamble()
        + "\\begin{document}\n"
        + body
        + "\n\\end{document}\n"
    )


def write_report(
    result: AnalysisResult,
    out: str | os.PathLike[str],
    *,
    force: bool = False,
    table_options: TableOptions | None = None,
) -> Path:
    """Write the report folder for ``result`` into ``out`` and return the index path.

    ``table_options`` picks the tables' interval style, display names and page.
    """
    from xcal.analyze.recorded import write_settings
    from xcal.analyze.results import write_results

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = write_results(result.results, out)
    data = {
        "reliability.csv": _frame_bytes(result.reliability, "csv"),
        "reliability.parquet": _frame_bytes(result.reliability, "parquet"),
    }
    if not result.correlations.empty:
        data["correlations.csv"] = _frame_bytes(result.correlations, "csv")
    for name, payload in data.items():
        atomic_write_bytes(out / name, payload)
    # What changes the numbers, for a later re-analysis of this folder to reuse.
    write_settings(out, result.options)

    # Skip redrawing when nothing changed since the last report.
    digest = hashlib.sha256()
    digest.update(csv_path.read_bytes())
    digest.update(data["reliability.csv"])
    digest.update(data.get("correlations.csv", b""))
    from xcal.analyze.findings_report import findings_digest_bytes, write_findings

    digest.update(findings_digest_bytes(result.findings))
    digest.update(json.dumps(result.options.cell_key(), sort_keys=True, default=str).encode())
    digest.update(repr(table_options).encode())
    stamp_path = out / ".cache" / "report.json"
    index_path = out / "index.md"
    if not force and stamp_path.exists() and index_path.exists():
        try:
            stamp = json.loads(stamp_path.read_text())
        except ValueError:
            stamp = {}
        files = stamp.get("files", [])
        if stamp.get("digest") == digest.hexdigest() and all((out / f).exists() for f in files):
            return index_path

    import matplotlib.pyplot as plt

    from xcal.analyze.figures import paper_style

    tables = build_tables(result, table_options)
    for table in tables:
        table.save(out / "tables" / f"{table.name}.tex")
    if tables:
        atomic_write_text(out / "tables" / "preview.tex", _preview_document(tables, table_options))
    figure_lines = []
    written = [csv_path.name, parquet_path.name, *data, *(f"tables/{t.name}.tex" for t in tables)]
    for spec in figure_specs(result):
        with paper_style():
            try:
                display = spec.draw()
            except ValueError as error:
                note = f"figure {spec.name} skipped: {error}"
                if note not in result.notes:
                    result.notes.append(note)
                continue
            display.save(out / "figures" / spec.name, close=True)
        plt.close("all")
        figure_lines.append(
            f"- [`figures/{spec.name}.pdf`](figures/{spec.name}.pdf) "
            f"([png](figures/{spec.name}.png)): {spec.caption}"
        )
        written += [f"figures/{spec.name}.pdf", f"figures/{spec.name}.png"]

    lines = [
        "# Analysis report",
        "",
        f"Baseline: `{result.options.baseline}`. Systems: "
        + ", ".join(f"`{s}`" for s in sorted(result.runs["model"].unique()))
        + f". Runs: {len(result.runs)}. Bootstrap resamples: {result.options.n_boot} "
        f"(seed {result.options.seed}); p-values adjusted with {result.options.correction}.",
        "",
        "## Data",
        "",
        f"- [`{csv_path.name}`]({csv_path.name}) / [`{parquet_path.name}`]({parquet_path.name}): "
        "every number, one row per system x task x language x perturbation x metric x "
        "calibration variant, with its 95% interval and (adjusted) p-value.",
        "- [`reliability.csv`](reliability.csv) / [`reliability.parquet`](reliability.parquet): "
        "reliability-diagram bins of every run and variant.",
    ]
    if "correlations.csv" in data:
        lines.append(
            "- [`correlations.csv`](correlations.csv): correlation of the gain with task distance."
        )
    if result.findings is not None:
        lines += ["", *write_findings(result.findings, out)]
        written += ["findings.csv", "findings.parquet", "findings.tex"]
    lines += ["", "## Tables", ""]
    if tables:
        lines.append(
            "Each needs `\\usepackage{booktabs}` and `\\usepackage{siunitx}` in the preamble."
        )
        lines.append("")
        lines += [f"- [`tables/{t.name}.tex`](tables/{t.name}.tex): {t.caption}" for t in tables]
        lines.append(
            "- [`tables/preview.tex`](tables/preview.tex): a document that includes every "
            "table above (`pdflatex preview.tex` in that folder)."
        )
    else:
        lines.append("(none: no data for any table)")
    lines += ["", "## Figures", ""]
    lines += figure_lines or ["(none: no data for any figure)"]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    atomic_write_text(index_path, "\n".join(lines) + "\n")
    written.append("index.md")
    atomic_write_text(stamp_path, json.dumps({"digest": digest.hexdigest(), "files": written}))
    return index_path
