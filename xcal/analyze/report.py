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

import numpy as np

from xcal.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

    from xcal.analyze.aggregate import AnalysisResult
    from xcal.analyze.display_names import DisplayNames
    from xcal.analyze.execute import Executor
    from xcal.analyze.figures import Display
    from xcal.analyze.latex import LatexTable
    from xcal.analyze.options import AnalysisOptions
    from xcal.analyze.tables import TableOptions
    from xcal.store import PredictionStore


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


#: What ``--figures`` accepts: nothing, the bounded main figures, or also the paged appendix.
FIGURE_LEVELS: tuple[str, ...] = ("none", "main", "all")


def _check_level(figures: str) -> str:
    if figures not in FIGURE_LEVELS:
        raise ValueError(f"Expected `figures` to be one of {FIGURE_LEVELS}, got {figures!r}")
    return figures


def figure_specs(
    result: AnalysisResult, figures: str = "main", names: DisplayNames | None = None
) -> list[FigureSpec]:
    """The report's figures, not yet drawn (those its data supports).

    ``figures="main"`` gives figures whose size does not grow with the grid:
    per task a reliability figure (languages pooled by resource class, systems
    overlaid), the forest plot, the systems' heatmaps side by side on one
    colour scale, and the severity curves. ``"all"`` adds the appendix: the
    languages x systems reliability grid in pages of
    :data:`~xcal.analyze.figures.reliability.PAGE_SHAPE` panels, and one heatmap
    per system with every language (one colour scale for all systems of a
    task). ``"none"`` gives none. Each spec holds only the rows it draws.

    Rows are picked by identifier; titles, legends, tick labels and captions
    print the ``names`` of tasks, systems, conditions and languages (the
    tables' :attr:`TableOptions.names <xcal.analyze.tables.TableOptions.names>`
    in a report; default :data:`~xcal.analyze.display_names.DEFAULT_NAMES`).
    """
    from xcal.analyze import figures as f
    from xcal.analyze.display_names import DEFAULT_NAMES
    from xcal.analyze.figures._select import language_order
    from xcal.analyze.figures.reliability import PAGE_SHAPE, grid_pages
    from xcal.analyze.figures.reliability_summary import MAX_PANELS, resource_class_groups
    from xcal.analyze.results import select
    from xcal.analyze.tables import _slug

    frame = result.results
    specs: list[FigureSpec] = []
    if frame.empty or _check_level(figures) == "none":
        return specs
    appendix = figures == "all"
    names = names or DEFAULT_NAMES
    baseline = names.system(result.options.baseline)
    classes = frame.drop_duplicates("language").set_index("language")["resource_class"]
    groups = resource_class_groups(
        {str(k): float(v) for k, v in zip(classes.index, classes.astype(float), strict=True)}
    )
    rel = result.reliability
    for task in sorted(frame["task"].unique()):
        shown = names.task(task)
        clean = rel[
            (rel["task"] == task) & (rel["perturbation"] == "none") & (rel["variant"] == "raw")
        ]
        if not clean.empty:
            n_languages = clean["language"].nunique()
            pooled = n_languages > MAX_PANELS
            specs.append(
                FigureSpec(
                    _slug("reliability", task),
                    f"Reliability on {shown} (clean, raw probabilities), systems overlaid, "
                    + (
                        f"{n_languages} languages pooled by resource class (Joshi et al. 2020)"
                        if pooled
                        else "one panel per language"
                    )
                    + "; the strips give the share of examples per confidence bin.",
                    partial(
                        f.ReliabilitySummaryDisplay.from_results,
                        clean,
                        task=task,
                        groups=groups if pooled else None,
                        names=names,
                    ),
                )
            )
            if appendix:
                languages = language_order(clean["language"])
                systems = sorted(clean["system"].unique())
                pages = grid_pages(languages, systems, PAGE_SHAPE)
                for k, (rows, cols) in enumerate(pages, start=1):
                    specs.append(
                        FigureSpec(
                            _slug("reliability_grid", task) + f"_p{k:02d}",
                            f"Appendix: reliability diagrams on {shown} (clean, raw), page {k} "
                            f"of {len(pages)}: {', '.join(map(names.language, rows))} x "
                            f"{', '.join(map(names.system, cols))}.",
                            partial(
                                f.ReliabilityGridDisplay.from_results,
                                clean[clean["language"].isin(rows) & clean["system"].isin(cols)],
                                task=task,
                                languages=rows,
                                systems=cols,
                                page_shape=PAGE_SHAPE,
                                names=names,
                            ),
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
                    f"Difference in ECE to {baseline} on {shown} (clean) with 95% paired "
                    "bootstrap intervals.",
                    partial(
                        f.ForestPlotDisplay.from_results,
                        diffs,
                        metric="ece",
                        task=task,
                        names=names,
                    ),
                )
            )
        values = select(frame, task=task, comparison="value", metric="ece", variant="raw")
        if not values.empty and values["perturbation"].nunique() > 1:
            specs.append(
                FigureSpec(
                    _slug("heatmap_ece", task),
                    f"ECE on {shown} per perturbation severity (columns) and language or "
                    "resource class (rows), every system on one colour scale.",
                    partial(
                        f.MetricHeatmapGridDisplay.from_results, values, task=task, names=names
                    ),
                )
            )
            if appendix:
                finite = values["estimate"].to_numpy(float) * 100
                low, high = float(np.nanmin(finite)), float(np.nanmax(finite))
                for system in sorted(values["system"].unique()):
                    specs.append(
                        FigureSpec(
                            _slug("heatmap_ece", system, task),
                            f"Appendix: ECE of {names.system(system)} on {shown} per language "
                            "and perturbation "
                            "severity (one colour scale for every system of the task).",
                            partial(
                                f.MetricHeatmapDisplay.from_results,
                                values[values["system"] == system],
                                system=system,
                                task=task,
                                metric="ece",
                                max_rows=60,
                                vmin=low,
                                vmax=high,
                                names=names,
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
                    f"Accuracy and mean confidence on {shown} as perturbations grow (mean over "
                    "languages; one y axis for every panel).",
                    partial(
                        f.SeverityCurveDisplay.from_results,
                        select(frame, task=task, comparison="value"),
                        task=task,
                        names=names,
                    ),
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
                        partial(
                            f.GainDistanceDisplay.from_results, frame, metric=metric, names=names
                        ),
                    )
                )
    return specs


def build_figures(
    result: AnalysisResult, figures: str = "main", names: DisplayNames | None = None
) -> dict[str, Display]:
    """Draw the report's figures (for Jupyter: ``result.figures()["..."]``).

    ``names`` gives the printed names (default: the defaults of :class:`DisplayNames`).
    """
    return {spec.name: spec.draw() for spec in figure_specs(result, figures, names)}


# ------------------------------------------------------------------ drawing


def draw_figure(
    store: PredictionStore | None, options: AnalysisOptions, spec: FigureSpec
) -> dict[str, bytes] | str:
    """A unit of work: draw one figure in the paper style, return its PDF and PNG bytes.

    A figure the data cannot support returns the reason (a str) instead.
    """
    import matplotlib.pyplot as plt

    from xcal.analyze.figures import paper_style

    with paper_style():
        try:
            display = spec.draw()
        except ValueError as error:
            return str(error)
        try:
            return display.render()
        finally:
            plt.close(display.figure_)


def _draw_all(
    specs: list[FigureSpec], result: AnalysisResult, executor: Executor | None
) -> list[tuple[int, dict[str, bytes] | str]]:
    """Every spec drawn, in spec order: on the executor's workers when it has any."""
    if executor is None or executor.client is None or len(specs) < 2:
        # Each figure is closed once rendered; a notebook's own figures stay open.
        return [(i, draw_figure(None, result.options, spec)) for i, spec in enumerate(specs)]
    before = len(executor.failures)
    drawn = list(executor.map(draw_figure, result.options, specs, [s.name for s in specs]))
    # A worker that died twice on a figure: the figure is skipped, the report written.
    for failure in executor.failures[before:]:
        drawn.append((failure.index, f"{type(failure.error).__name__}: {failure.error}"))
    del executor.failures[before:]
    return sorted(drawn, key=lambda pair: pair[0])


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
    figures: str = "main",
    tables: bool = True,
    executor: Executor | None = None,
) -> Path:
    """Write the report folder for ``result`` into ``out`` and return the index path.

    Parameters
    ----------
    result : AnalysisResult
    out : path
    force : bool, default=False
        Redraw even when nothing changed since the last report.
    table_options : TableOptions, optional
        The tables' interval style and page, and the display names that both
        the tables and the figures print.
    figures : {"main", "all", "none"}
        Which figures (see :func:`figure_specs`); the index says what was
        skipped and how to make it.
    tables : bool, default=True
        Write the LaTeX tables (``False``: the index says how to make them).
    executor : Executor, optional
        The analysis engine's (:func:`xcal.analyze.execute.open_executor`):
        with worker processes or a cluster, the figures are drawn there, each
        a unit of work, and only their bytes come back. Without, here.
    """
    _check_level(figures)
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
    digest.update(f"figures={figures} tables={tables}".encode())
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

    made_tables = build_tables(result, table_options) if tables else []
    for table in made_tables:
        table.save(out / "tables" / f"{table.name}.tex")
    if made_tables:
        atomic_write_text(
            out / "tables" / "preview.tex", _preview_document(made_tables, table_options)
        )
    figure_lines = []
    written = [
        csv_path.name,
        parquet_path.name,
        *data,
        *(f"tables/{t.name}.tex" for t in made_tables),
    ]
    names = table_options.names if table_options is not None else None
    specs = figure_specs(result, figures, names)
    for i, drawn in _draw_all(specs, result, executor):
        spec = specs[i]
        if isinstance(drawn, str):
            note = f"figure {spec.name} skipped: {drawn}"
            if note not in result.notes:
                result.notes.append(note)
            continue
        for fmt, payload in drawn.items():
            atomic_write_bytes(out / "figures" / f"{spec.name}.{fmt}", payload)
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
    lines.append(
        "- [`settings.json`](settings.json): the settings that decided these numbers; "
        "`xcal analyze` with this folder as `--out` reuses them unless an option overrides."
    )
    written.append("settings.json")
    if result.findings is not None:
        lines += ["", *write_findings(result.findings, out)]
        written += ["findings.csv", "findings.parquet", "findings.tex"]
    lines += ["", "## Tables", ""]
    if not tables:
        lines.append(
            "(skipped: `--no-tables`; run `xcal analyze` again without it to write them, "
            "or `result.tables()` in Python)"
        )
    elif made_tables:
        lines.append(
            "Each needs `\\usepackage{booktabs}` and `\\usepackage{siunitx}` in the preamble."
        )
        lines.append("")
        lines += [
            f"- [`tables/{t.name}.tex`](tables/{t.name}.tex): {t.caption}" for t in made_tables
        ]
        lines.append(
            "- [`tables/preview.tex`](tables/preview.tex): a document that includes every "
            "table above (`pdflatex preview.tex` in that folder)."
        )
    else:
        lines.append("(none: no data for any table)")
    lines += ["", "## Figures", ""]
    if figures == "none":
        lines.append(
            "(skipped: `--figures none`; `--figures main` draws the main figures, "
            "`--figures all` also the per-language appendix)"
        )
    else:
        lines += figure_lines or ["(none: no data for any figure)"]
    if figures == "main":
        extra = len(figure_specs(result, "all", names)) - len(specs)
        if extra:
            lines += [
                "",
                f"Skipped: {extra} appendix figure(s) (the languages x systems reliability "
                "grid in pages, one heatmap per system with every language); "
                "`--figures all` draws them.",
            ]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    atomic_write_text(index_path, "\n".join(lines) + "\n")
    written.append("index.md")
    atomic_write_text(stamp_path, json.dumps({"digest": digest.hexdigest(), "files": written}))
    return index_path
