"""A heatmap of a calibration metric: languages down, perturbation severities across."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xcal.analyze.figures._base import DIVERGING_CMAP, SEQUENTIAL_CMAP, Display, new_axes
from xcal.analyze.figures._select import condition_label, condition_order, language_order, single
from xcal.analyze.results import metric_info, select


class MetricHeatmapDisplay(Display):
    """One metric as a language x condition heatmap with the values written in.

    Parameters
    ----------
    matrix : DataFrame
        Rows are languages, columns conditions (e.g. ``clean``,
        ``word_shuffle 0.2``); values already in display units.
    value_label : str
        Colour-bar label with its unit, e.g. ``"ECE (%)"``.
    diverging : bool
        Centre the colours on zero (for differences).

    Examples
    --------
    >>> m = pd.DataFrame([[3.1, 5.0], [4.2, 9.7]], index=["en", "de"],
    ...                  columns=["clean", "shuffle 0.5"])
    >>> disp = MetricHeatmapDisplay(m, value_label="ECE (%)").plot()
    >>> disp.ax_.get_ylabel(), len(disp.figure_.axes)  # the heatmap and its colour bar
    ('Language', 2)
    >>> import matplotlib.pyplot as plt; plt.close(disp.figure_)
    """

    def __init__(
        self,
        matrix: pd.DataFrame,
        *,
        value_label: str,
        title: str | None = None,
        diverging: bool = False,
    ) -> None:
        if matrix.empty:
            raise ValueError("MetricHeatmapDisplay: empty matrix")
        self.matrix = matrix
        self.value_label = value_label
        self.title = title
        self.diverging = diverging

    @classmethod
    def from_results(
        cls,
        results: pd.DataFrame,
        *,
        system: str | None = None,
        metric: str = "ece",
        variant: str = "raw",
        task: str | None = None,
        comparison: str = "value",
        ax: Any = None,
    ) -> MetricHeatmapDisplay:
        """Pick one system, task, metric and variant from the results; plot.

        With ``comparison="difference"`` the cells are the paired differences
        to the baseline and the colours diverge around zero.
        """
        info = metric_info(metric)
        rows = select(results, comparison=comparison, metric=metric, variant=variant)
        task = single(rows, "task", task)
        system = single(rows, "system", system)
        rows = select(rows, task=task, system=system)
        if rows.empty:
            raise ValueError(f"no {comparison} rows for {system=}, {task=}, {metric=}, {variant=}")
        scale = 100.0 if info.percent else 1.0
        conditions = condition_order(rows)
        languages = language_order(rows["language"])
        matrix = pd.DataFrame(
            np.nan, index=languages, columns=[condition_label(*c) for c in conditions]
        )
        for _, row in rows.iterrows():
            label = condition_label(row["perturbation"], row["severity"])
            matrix.loc[row["language"], label] = row["estimate"] * scale
        unit = " (%)" if info.percent else ""
        prefix = "Δ" if comparison == "difference" else ""
        value_label = f"{prefix}{info.label}{unit}"
        title = f"{system}: {task}, {variant}"
        if comparison == "difference":
            title += f" (vs {rows['baseline'].iloc[0]})"
        display = cls(
            matrix, value_label=value_label, title=title, diverging=comparison == "difference"
        )
        return display.plot(ax=ax)

    def plot(self, ax: Any = None) -> MetricHeatmapDisplay:
        """Draw with seaborn's heatmap; return self."""
        import seaborn as sns

        if ax is None:
            n_rows, n_cols = self.matrix.shape
            _, axes = new_axes(panel_size=(1.2 + 0.75 * n_cols, 0.8 + 0.3 * n_rows))
            ax = axes[0, 0]
        self.figure_ = ax.figure
        self.axes_ = np.array([[ax]], dtype=object)
        values = self.matrix.to_numpy(float)
        kwargs: dict[str, Any] = {"cmap": SEQUENTIAL_CMAP}
        if self.diverging:
            limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
            kwargs = {"cmap": DIVERGING_CMAP, "center": 0.0, "vmin": -limit, "vmax": limit}
        sns.heatmap(
            self.matrix.astype(float),
            ax=ax,
            annot=True,
            fmt=".1f",
            linewidths=0.5,
            cbar_kws={"label": self.value_label},
            annot_kws={"fontsize": "x-small"},
            **kwargs,
        )
        ax.set_xlabel("Perturbation and severity")
        ax.set_ylabel("Language")
        ax.tick_params(axis="x", labelrotation=30)
        ax.tick_params(axis="y", labelrotation=0)
        if self.title:
            ax.set_title(self.title)
        return self
