"""Figures for calibration under cross-lingual transfer, as Display objects.

Each Display computes what it draws once (``from_results``, ``from_predictions``
or its constructor) and draws with ``plot(ax=None)``, which returns the Display;
``save(path)`` writes PDF and PNG. matplotlib and seaborn load only when a
figure is drawn, and the global style is never changed: wrap plotting in
:func:`paper_style` for print sizes.
"""

from xcal.analyze.figures._base import OKABE_ITO, PAPER_RC, Display, paper_style
from xcal.analyze.figures.forest import ForestPlotDisplay
from xcal.analyze.figures.gain import GainDistanceDisplay
from xcal.analyze.figures.heatmap import MetricHeatmapDisplay, MetricHeatmapGridDisplay
from xcal.analyze.figures.reliability import ReliabilityDiagramDisplay, ReliabilityGridDisplay
from xcal.analyze.figures.reliability_summary import ReliabilitySummaryDisplay
from xcal.analyze.figures.severity import SeverityCurveDisplay

__all__ = [
    "OKABE_ITO",
    "PAPER_RC",
    "Display",
    "ForestPlotDisplay",
    "GainDistanceDisplay",
    "MetricHeatmapDisplay",
    "MetricHeatmapGridDisplay",
    "ReliabilityDiagramDisplay",
    "ReliabilityGridDisplay",
    "ReliabilitySummaryDisplay",
    "SeverityCurveDisplay",
    "paper_style",
]
