"""Transfer gain against task distance, with the OLS line and its 95% band."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xcal.analyze.display_names import DEFAULT_NAMES, DisplayNames
from xcal.analyze.figures._base import MARKERS, Display, color_for, new_axes
from xcal.analyze.figures._select import condition_label
from xcal.analyze.results import metric_info, select


class GainDistanceDisplay(Display):
    """Scatter of gain vs distance, the least-squares line and its 95% confidence band.

    The fit is computed once here (statsmodels OLS, ``gain ~ distance``); the
    band is the 95% interval of the fitted mean, not of new observations.

    Parameters
    ----------
    frame : DataFrame
        Columns ``distance``, ``gain`` and ``group`` (one colour each: the
        system, when built from results).
    x_label, y_label : str
        Axis labels with units.

    Examples
    --------
    >>> f = pd.DataFrame({"distance": [0.1, 0.2, 0.3, 0.4], "gain": [2.0, 1.6, 0.9, 0.5],
    ...                   "group": ["a", "a", "b", "b"]})
    >>> disp = GainDistanceDisplay(f, x_label="Task distance", y_label="Gain (points)")
    >>> round(disp.slope, 6), disp.band.shape[1]
    (-5.2, 3)
    >>> import matplotlib.pyplot as plt; plt.close(disp.plot().figure_)
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        x_label: str,
        y_label: str,
        title: str | None = None,
        n_grid: int = 100,
    ) -> None:
        missing = [c for c in ("distance", "gain", "group") if c not in frame.columns]
        if missing:
            raise ValueError(f"GainDistanceDisplay: missing column(s) {missing}")
        frame = frame.dropna(subset=["distance", "gain"]).reset_index(drop=True)
        if len(frame) < 3:
            raise ValueError(
                f"GainDistanceDisplay: need at least 3 points with a distance and a gain, got {len(frame)}"
            )
        self.frame = frame
        self.x_label, self.y_label, self.title = x_label, y_label, title
        import statsmodels.api as sm

        x = frame["distance"].to_numpy(float)
        fit = sm.OLS(frame["gain"].to_numpy(float), sm.add_constant(x)).fit()
        self.intercept, self.slope = (float(v) for v in fit.params)
        self.r_squared = float(fit.rsquared)
        grid = np.linspace(x.min(), x.max(), n_grid)
        prediction = fit.get_prediction(sm.add_constant(grid, has_constant="add"))
        low, high = prediction.conf_int(alpha=0.05).T
        #: (n_grid, 3): distance, lower and upper bound of the fitted mean.
        self.band = np.column_stack([grid, low, high])
        self.line = np.column_stack([grid, prediction.predicted_mean])

    @classmethod
    def from_results(
        cls,
        results: pd.DataFrame,
        *,
        metric: str = "accuracy",
        variant: str = "raw",
        perturbation: str = "none",
        aggregate: bool = True,
        names: DisplayNames | None = None,
        ax: Any = None,
    ) -> GainDistanceDisplay:
        """Gains of every system over the baseline against the task distance.

        The gain is the improvement over the baseline (the difference with
        its sign flipped for lower-is-better metrics such as ECE), one point
        per system x target task (mean over languages) with
        ``aggregate=True``, else one per language. Systems and the condition
        print by their ``names`` (default: :data:`DEFAULT_NAMES`).
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
        rows = rows.dropna(subset=["task_distance"])
        if rows.empty:
            raise ValueError(
                "no differences with a task distance: pass task_distances= to analyze_store "
                "(intermediate task x target task distances from xcal.transfer)"
            )
        sign = 1.0 if info.higher_is_better else -1.0
        scale = 100.0 if info.percent else 1.0
        rows = rows.assign(gain=sign * rows["estimate"].to_numpy(float) * scale)
        if aggregate:
            points = rows.groupby(["system", "task"], as_index=False).agg(
                gain=("gain", "mean"), distance=("task_distance", "mean")
            )
        else:
            points = rows.rename(columns={"task_distance": "distance"})
        frame = pd.DataFrame(
            {
                "distance": points["distance"].to_numpy(float),
                "gain": points["gain"].to_numpy(float),
                "group": [names.system(x) for x in points["system"]],
            }
        )
        unit = " (points)" if info.percent else ""
        change = "gain" if info.higher_is_better else "reduction"
        y_label = f"{info.label} {change} vs baseline{unit}"
        title = f"{condition_label(perturbation, 0.0, names)}, {variant}" + (
            ", mean over languages" if aggregate else ""
        )
        return cls(
            frame, x_label="Task distance (intermediate to target)", y_label=y_label, title=title
        ).plot(ax=ax)

    def plot(self, ax: Any = None) -> GainDistanceDisplay:
        """Draw points, line and band; return self."""
        if ax is None:
            _, axes = new_axes(panel_size=(3.4, 2.6))
            ax = axes[0, 0]
        self.figure_ = ax.figure
        self.axes_ = np.array([[ax]], dtype=object)
        ax.fill_between(
            self.band[:, 0], self.band[:, 1], self.band[:, 2], color="0.8", label="95% CI of fit"
        )
        ax.plot(
            self.line[:, 0],
            self.line[:, 1],
            color="0.2",
            linewidth=1.2,
            label=f"OLS, slope {self.slope:.3g}",
        )
        for g, (group, part) in enumerate(self.frame.groupby("group", sort=True)):
            ax.scatter(
                part["distance"],
                part["gain"],
                color=color_for(g),
                marker=MARKERS[g % len(MARKERS)],
                zorder=3,
                label=str(group),
            )
        ax.axhline(0.0, color="0.5", linewidth=0.6, linestyle=":")
        ax.set_xlabel(self.x_label)
        ax.set_ylabel(self.y_label)
        if self.title:
            ax.set_title(self.title)
        ax.legend(fontsize="x-small", frameon=False)
        return self
