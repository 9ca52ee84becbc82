"""Analysis of a prediction store: metrics, recalibration, paired tests, tables, figures.

The same API serves ``xcal analyze`` and Jupyter::

    from xcal.analyze import analyze_store
    res = analyze_store("runs/", baseline="xlmr-base", out="reports/main")
    res.results                      # tidy DataFrame, one row per number
    res.select(metric="ece", comparison="difference", language="sw")
    res.figures()["forest_ece_xnli"]  # Display objects (plot(ax=...), save(path))
    print(res.tables()[0])           # LaTeX, ready to \\input

:func:`read_results` loads the results of an earlier report; the Display
classes (:mod:`xcal.analyze.figures`) and :func:`table_from_frame` work on
any frame of the same shape. Nothing here imports torch, and matplotlib and
seaborn load only when a figure is drawn.
"""

from xcal.analyze.display_names import DisplayNames
from xcal.analyze.execute import AnalysisError
from xcal.analyze.figures import (
    ForestPlotDisplay,
    GainDistanceDisplay,
    MetricHeatmapDisplay,
    ReliabilityDiagramDisplay,
    ReliabilityGridDisplay,
    SeverityCurveDisplay,
    paper_style,
)
from xcal.analyze.latex import LatexTable, Page, escape_latex, table_from_frame, tables_from_frame
from xcal.analyze.pipeline import AnalysisOptions, AnalysisResult, analyze_store, fit_mask
from xcal.analyze.report import write_report
from xcal.analyze.results import METRICS, RESULT_COLUMNS, read_results, select, write_results
from xcal.analyze.tables import (
    TableOptions,
    correlation_table,
    difference_tables,
    metric_table,
    recalibration_table,
    resource_class_table,
)

__all__ = [
    "METRICS",
    "RESULT_COLUMNS",
    "AnalysisError",
    "AnalysisOptions",
    "AnalysisResult",
    "DisplayNames",
    "ForestPlotDisplay",
    "GainDistanceDisplay",
    "LatexTable",
    "MetricHeatmapDisplay",
    "Page",
    "ReliabilityDiagramDisplay",
    "ReliabilityGridDisplay",
    "SeverityCurveDisplay",
    "TableOptions",
    "analyze_store",
    "correlation_table",
    "difference_tables",
    "escape_latex",
    "fit_mask",
    "metric_table",
    "paper_style",
    "read_results",
    "recalibration_table",
    "resource_class_table",
    "select",
    "table_from_frame",
    "tables_from_frame",
    "write_report",
    "write_results",
]
