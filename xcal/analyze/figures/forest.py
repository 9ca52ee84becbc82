"""Forest plot: paired differences to the baseline with their intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xcal.analyze.display_names import DEFAULT_NAMES, DisplayNames
from xcal.analyze.figures._base import MARKERS, Display, color_for, new_axes
from xcal.analyze.figures._select import condition_label, language_order, single
from xcal.analyze.results import metric_info, select


class ForestPlotDisplay(Display):
    """Differences with 95% intervals, one line per language (and system).

    Filled markers are significant after multiple-comparison correction
    (``p_adjusted < alpha``), hollow markers are not.

    Parameters
    ----------
    frame : DataFrame
        Columns ``label``, ``group`` (one colour per group, e.g. system),
        ``estimate``, ``ci_low``, ``ci_high``, ``p_adjusted``; values in
        display units.
    value_label : str
        x-axis label with its unit.

    Examples
    --------
    >>> f = pd.DataFrame({"label": ["de", "sw"], "group": ["B", "B"], "estimate": [-1.0, 4.0],
    ...                   "ci_low": [-2.5, 2.0], "ci_high": [0.4, 6.1], "p_adjusted": [0.2, 0.001]})
    >>> disp = ForestPlotDisplay(f, value_label="ΔECE (points)").plot()
    >>> disp.ax_.get_xlabel(), [t.get_text() for t in disp.ax_.get_yticklabels()]
    ('ΔECE (points)', ['de', 'sw'])
    >>> import matplotlib.pyplot as plt; plt.close(disp.figure_)
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        value_label: str,
        title: str | None = None,
        alpha: float = 0.05,
    ) -> None:
        needed = ["label", "group", "estimate", "ci_low", "ci_high", "p_adjusted"]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"ForestPlotDisplay: missing column(s) {missing}")
        if frame.empty:
            raise ValueError("ForestPlotDisplay: nothing to draw")
        self.frame = frame.reset_index(drop=True)
        self.value_label = value_label
        self.title = title
        self.alpha = alpha

    @classmethod
    def from_results(
        cls,
        results: pd.DataFrame,
        *,
        metric: str = "ece",
        variant: str = "raw",
        task: str | None = None,
        perturbation: str = "none",
        severity: float | None = None,
        systems: Sequence[str] | None = None,
        alpha: float = 0.05,
        names: DisplayNames | None = None,
        ax: Any = None,
    ) -> ForestPlotDisplay:
        """Differences of ``metric`` to the baseline for one task and condition.

        Rows are picked by identifier; languages, systems, the task and the
        condition print by their ``names`` (default: :data:`DEFAULT_NAMES`).
        """
        names = names or DEFAULT_NAMES
        info = metric_info(metric)
        rows = select(
            results,
            comparison="difference",
            metric=metric,
            variant=variant,
            perturbation=perturbation,
        )
        task = single(rows, "task", task)
        rows = select(rows, task=task)
        if severity is not None:
            rows = rows[np.isclose(rows["severity"].to_numpy(float), severity)]
        elif rows["severity"].nunique() > 1:
            raise ValueError(
                f"perturbation {perturbation!r} has several severities; pass severity="
            )
        if systems is not None:
            rows = select(rows, system=list(systems))
        if rows.empty:
            raise ValueError(f"no differences for {task=}, {metric=}, {variant=}, {perturbation=}")
        scale = 100.0 if info.percent else 1.0
        order = {lang: i for i, lang in enumerate(language_order(rows["language"]))}
        system_order = list(systems) if systems is not None else sorted(rows["system"].unique())
        rows = rows.assign(
            _lang=rows["language"].map(order),
            _sys=rows["system"].map({s: i for i, s in enumerate(system_order)}),
        ).sort_values(["_lang", "_sys"])
        frame = pd.DataFrame(
            {
                "label": [names.language(x) for x in rows["language"]],
                "group": [names.system(x) for x in rows["system"]],
                "estimate": rows["estimate"].to_numpy(float) * scale,
                "ci_low": rows["ci_low"].to_numpy(float) * scale,
                "ci_high": rows["ci_high"].to_numpy(float) * scale,
                "p_adjusted": rows["p_adjusted"].to_numpy(float),
            }
        )
        unit = " (points)" if info.percent else ""
        baseline = rows["baseline"].iloc[0]
        value_label = f"Δ{info.label} vs {names.system(baseline)}{unit}"
        cond = condition_label(perturbation, float(rows["severity"].iloc[0]), names)
        title = f"{names.task(task)}, {cond}, {variant}"
        return cls(frame, value_label=value_label, title=title, alpha=alpha).plot(ax=ax)

    def plot(self, ax: Any = None) -> ForestPlotDisplay:
        """Draw the intervals (one row per label, groups side by side); return self."""
        from matplotlib.lines import Line2D

        frame = self.frame
        labels = list(dict.fromkeys(frame["label"]))
        groups = list(dict.fromkeys(frame["group"]))
        if ax is None:
            _, axes = new_axes(
                # At most a page high whatever the languages and systems.
                panel_size=(3.6, min(0.6 + 0.28 * len(labels) * max(len(groups), 1) ** 0.5, 8.5))
            )
            ax = axes[0, 0]
        self.figure_ = ax.figure
        self.axes_ = np.array([[ax]], dtype=object)
        # Groups share a label's row, offset a little so intervals do not overlap.
        offsets = np.linspace(-0.25, 0.25, len(groups)) if len(groups) > 1 else np.zeros(1)
        y_of = {label: i for i, label in enumerate(labels)}
        handles = []
        for g, group in enumerate(groups):
            part = frame[frame["group"] == group]
            y = np.array([y_of[x] for x in part["label"]], dtype=float) + offsets[g]
            est = part["estimate"].to_numpy(float)
            err = np.vstack(
                [est - part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float) - est]
            )
            significant = part["p_adjusted"].to_numpy(float) < self.alpha
            color = color_for(g)
            marker = MARKERS[g % len(MARKERS)]
            ax.errorbar(est, y, xerr=err, fmt="none", ecolor=color, elinewidth=1.0, capsize=2)
            ax.scatter(est[significant], y[significant], marker=marker, color=color, zorder=3)
            ax.scatter(
                est[~significant],
                y[~significant],
                marker=marker,
                facecolors="white",
                edgecolors=color,
                zorder=3,
            )
            handles.append(
                Line2D([], [], marker=marker, color=color, linestyle="none", label=str(group))
            )
        ax.axvline(0.0, color="0.4", linewidth=0.8, linestyle="--")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)  # first label on top
        ax.set_ylabel("Language")
        ax.set_xlabel(self.value_label)
        if self.title:
            ax.set_title(self.title)
        ax.legend(
            handles=handles,
            title=f"hollow: adjusted p ≥ {self.alpha:g}",
            fontsize="x-small",
            title_fontsize="x-small",
            frameon=False,
            # "best" searches every data point for a free spot: slow on a large grid.
            loc="upper right",
        )
        return self
