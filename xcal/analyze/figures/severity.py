"""Accuracy and confidence as a perturbation grows: one panel per perturbation.

Where the dashed confidence line sits above the solid accuracy line the model
is overconfident; the gap growing with severity is the calibration failure
under shift that the perturbation experiments look for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xcal.analyze.display_names import DEFAULT_NAMES, DisplayNames
from xcal.analyze.figures._base import MARKERS, Display, as_axes_grid, color_for
from xcal.analyze.figures._select import single
from xcal.analyze.results import select


class SeverityCurveDisplay(Display):
    """Accuracy (solid) and mean confidence (dashed) against severity.

    Parameters
    ----------
    frame : DataFrame
        Columns ``perturbation``, ``severity``, ``system``, ``accuracy`` and
        ``confidence`` (percent). Severity 0 is the clean run, drawn at the
        start of every perturbation's curve.

    Examples
    --------
    >>> f = pd.DataFrame({"perturbation": ["shuffle"] * 3, "severity": [0.0, 0.3, 0.6],
    ...                   "system": ["A"] * 3, "accuracy": [80.0, 70.0, 55.0],
    ...                   "confidence": [82.0, 79.0, 77.0]})
    >>> disp = SeverityCurveDisplay(f).plot()
    >>> disp.axes_.shape, disp.ax_.get_xlabel()
    ((1, 1), 'Severity (0 = clean)')
    >>> import matplotlib.pyplot as plt; plt.close(disp.figure_)
    """

    def __init__(
        self, frame: pd.DataFrame, *, title: str | None = None, sharey: bool = True
    ) -> None:
        self.sharey = sharey
        needed = ["perturbation", "severity", "system", "accuracy", "confidence"]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"SeverityCurveDisplay: missing column(s) {missing}")
        if frame.empty:
            raise ValueError("SeverityCurveDisplay: nothing to draw")
        self.frame = frame.sort_values(["perturbation", "system", "severity"]).reset_index(
            drop=True
        )
        self.perturbations = sorted(self.frame["perturbation"].unique())
        self.systems = list(dict.fromkeys(frame["system"]))
        self.title = title

    @classmethod
    def from_results(
        cls,
        results: pd.DataFrame,
        *,
        task: str | None = None,
        systems: Sequence[str] | None = None,
        variant: str = "raw",
        language: str | None = None,
        accuracy_metric: str | None = None,
        sharey: bool = True,
        names: DisplayNames | None = None,
        ax: Any = None,
    ) -> SeverityCurveDisplay:
        """Mean over languages (or one ``language``) of accuracy and confidence.

        ``accuracy_metric`` defaults to ``accuracy`` (``exact_match`` for QA).
        Rows are picked by identifier; the task, perturbations, systems and
        language print by their ``names`` (default: :data:`DEFAULT_NAMES`).
        """
        names = names or DEFAULT_NAMES
        rows = select(results, comparison="value", variant=variant)
        task = single(rows, "task", task)
        rows = select(rows, task=task)
        if accuracy_metric is None:
            accuracy_metric = "accuracy" if (rows["metric"] == "accuracy").any() else "exact_match"
        # Accuracy does not change under recalibration; take it from the raw rows.
        acc = select(results, comparison="value", variant="raw", task=task, metric=accuracy_metric)
        conf = select(rows, metric="confidence")
        if language is not None:
            acc, conf = select(acc, language=language), select(conf, language=language)
        if systems is not None:
            acc, conf = select(acc, system=list(systems)), select(conf, system=list(systems))
        keys = ["system", "perturbation", "severity"]
        merged = pd.merge(
            acc.groupby(keys, as_index=False).agg(accuracy=("estimate", "mean")),
            conf.groupby(keys, as_index=False).agg(confidence=("estimate", "mean")),
            on=keys,
        )
        if merged.empty:
            raise ValueError(f"no accuracy and confidence rows for {task=}, {variant=}")
        merged[["accuracy", "confidence"]] *= 100.0
        clean = merged[merged["perturbation"] == "none"]
        perturbed = merged[merged["perturbation"] != "none"]
        if perturbed.empty:
            raise ValueError(
                f"no perturbed runs for task {task!r}: nothing to plot against severity"
            )
        # Every perturbation's curve starts from the clean run at severity 0.
        parts = [perturbed]
        for name in perturbed["perturbation"].unique():
            parts.append(clean.assign(perturbation=name, severity=0.0))
        frame = pd.concat(parts, ignore_index=True)
        frame = frame.assign(
            perturbation=frame["perturbation"].map(names.perturbation),
            system=frame["system"].map(names.system),
        )
        where = names.language(language) if language is not None else "mean over languages"
        title = f"{names.task(task)}, {variant}, {where}"
        return cls(frame, title=title, sharey=sharey).plot(ax=ax)

    def plot(self, ax: Any = None) -> SeverityCurveDisplay:
        """One panel per perturbation (a new row of axes, or the given ones); return self."""
        n = len(self.perturbations)
        if ax is None:
            # One y axis for every panel (a small effect is not stretched to fill its
            # panel); at most three panels a row keep the figure a page wide.
            import matplotlib.pyplot as plt

            n_cols = min(n, 3)
            fig, page = plt.subplots(
                -(-n // n_cols),
                n_cols,
                figsize=(min(2.3 * n_cols, 6.8), 2.2 * -(-n // n_cols) + 0.3),
                squeeze=False,
                sharey=self.sharey,
                layout="constrained",
            )
            for extra in list(page.flat)[n:]:
                extra.set_axis_off()
            grid = np.array([list(page.flat)[:n]], dtype=object)
        else:
            grid = as_axes_grid(ax, 1, n, "SeverityCurveDisplay.plot")
            fig = grid.flat[0].figure
        self.figure_, self.axes_ = fig, grid
        for j, name in enumerate(self.perturbations):
            axis = grid[0, j]
            part = self.frame[self.frame["perturbation"] == name]
            for s, system in enumerate(self.systems):
                line = part[part["system"] == system]
                if line.empty:
                    continue
                color, marker = color_for(s), MARKERS[s % len(MARKERS)]
                axis.plot(
                    line["severity"],
                    line["accuracy"],
                    "-",
                    color=color,
                    marker=marker,
                    label=f"{system} accuracy",
                )
                axis.plot(
                    line["severity"],
                    line["confidence"],
                    "--",
                    color=color,
                    marker=marker,
                    markerfacecolor="white",
                    label=f"{system} confidence",
                )
            axis.set_title(str(name))
            axis.set_xlabel("Severity (0 = clean)")
            if j % 3 == 0 or ax is not None:
                axis.set_ylabel("Accuracy / mean confidence (%)")
        handles, labels = grid[0, 0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=4,
            fontsize="x-small",
            frameon=False,
        )
        if self.title:
            fig.suptitle(self.title)
        return self
