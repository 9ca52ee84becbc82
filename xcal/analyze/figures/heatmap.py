"""A heatmap of a calibration metric: languages down, perturbation severities across."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xcal.analyze.display_names import DEFAULT_NAMES, DisplayNames
from xcal.analyze.figures._base import DIVERGING_CMAP, SEQUENTIAL_CMAP, Display, new_axes
from xcal.analyze.figures._select import condition_order, language_order, single
from xcal.analyze.results import metric_info, select

#: Systems side by side in one heatmap figure at most.
MAX_SYSTEMS = 10


#: Rows of a heatmap at most: more languages are grouped by resource class.
MAX_ROWS = 30


def metric_matrix(
    rows: pd.DataFrame,
    *,
    scale: float,
    max_rows: int = MAX_ROWS,
    names: DisplayNames | None = None,
) -> pd.DataFrame:
    """Languages (or, past ``max_rows``, resource classes) x conditions, in display units.

    A resource-class row is the mean over its languages (``class 3 (n=12)``).
    Cells are grouped by identifier; the rows and columns are then labelled
    with the ``names`` of the languages and conditions (default:
    :data:`DEFAULT_NAMES`).
    """
    names = names or DEFAULT_NAMES
    pairs = condition_order(rows)
    # Columns keyed by identifier: two conditions may share a printed name.
    conditions = [f"{p}\x00{s!r}" for p, s in pairs]
    key = [
        f"{p}\x00{float(s)!r}" for p, s in zip(rows["perturbation"], rows["severity"], strict=True)
    ]
    labels = {k: names.condition(p, s) for k, (p, s) in zip(conditions, pairs, strict=True)}
    frame = rows.assign(_condition=key, _value=rows["estimate"].to_numpy(float) * scale)
    languages = language_order(frame["language"])
    if len(languages) <= max_rows or "resource_class" not in frame.columns:
        matrix = frame.pivot_table(
            index="language", columns="_condition", values="_value", aggfunc="mean", dropna=False
        )
        matrix = matrix.reindex(index=languages[:max_rows], columns=conditions)
        matrix = matrix.rename(index=names.language, columns=labels)
        matrix.columns.name = None
        matrix.index.name = "Language"
        return matrix
    klass = frame["resource_class"].astype(float)
    sizes = frame.groupby(klass.fillna(-1))["language"].nunique()
    groups: dict[float, str] = {
        float(k): (f"class {int(k)} (n={n})" if float(k) >= 0 else f"unknown (n={n})")
        for k, n in zip(sizes.index, sizes.to_numpy(), strict=True)
    }
    frame = frame.assign(_group=klass.fillna(-1).map(groups))
    order = [groups[k] for k in sorted(groups, key=lambda k: (k < 0, -k))]
    matrix = frame.pivot_table(
        index="_group", columns="_condition", values="_value", aggfunc="mean"
    )
    matrix = matrix.reindex(index=order, columns=conditions).rename(columns=labels)
    matrix.columns.name = None
    matrix.index.name = "Resource class (mean over languages)"
    return matrix


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
        vmin: float | None = None,
        vmax: float | None = None,
    ) -> None:
        if matrix.empty:
            raise ValueError("MetricHeatmapDisplay: empty matrix")
        self.vmin, self.vmax = vmin, vmax
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
        max_rows: int = MAX_ROWS,
        languages: list[str] | None = None,
        vmin: float | None = None,
        vmax: float | None = None,
        names: DisplayNames | None = None,
        ax: Any = None,
    ) -> MetricHeatmapDisplay:
        """Pick one system, task, metric and variant from the results; plot.

        With ``comparison="difference"`` the cells are the paired differences
        to the baseline and the colours diverge around zero. With more than
        ``max_rows`` languages (and no ``languages`` chosen), the rows are
        resource classes, each the mean over its languages. ``vmin`` and
        ``vmax`` fix the colour scale (to share it between figures). Rows are
        picked by identifier; the system, task, languages and conditions print
        by their ``names`` (default: :data:`DEFAULT_NAMES`).
        """
        names = names or DEFAULT_NAMES
        info = metric_info(metric)
        rows = select(results, comparison=comparison, metric=metric, variant=variant)
        task = single(rows, "task", task)
        system = single(rows, "system", system)
        rows = select(rows, task=task, system=system)
        if languages is not None:
            rows = select(rows, language=list(languages))
        if rows.empty:
            raise ValueError(f"no {comparison} rows for {system=}, {task=}, {metric=}, {variant=}")
        scale = 100.0 if info.percent else 1.0
        matrix = metric_matrix(rows, scale=scale, max_rows=max_rows, names=names)
        unit = " (%)" if info.percent else ""
        prefix = "Δ" if comparison == "difference" else ""
        value_label = f"{prefix}{info.label}{unit}"
        title = f"{names.system(system)}: {names.task(task)}, {variant}"
        if comparison == "difference":
            title += f" (vs {names.system(rows['baseline'].iloc[0])})"
        display = cls(
            matrix,
            value_label=value_label,
            title=title,
            diverging=comparison == "difference",
            vmin=vmin,
            vmax=vmax,
        )
        return display.plot(ax=ax)

    def plot(self, ax: Any = None) -> MetricHeatmapDisplay:
        """Draw with seaborn's heatmap; return self."""
        import seaborn as sns

        if ax is None:
            n_rows, n_cols = self.matrix.shape
            # Rows are capped by the caller (max_rows); the height is bounded anyway.
            _, axes = new_axes(
                panel_size=(min(1.2 + 0.75 * n_cols, 6.8), min(0.8 + 0.22 * n_rows, 9.0))
            )
            ax = axes[0, 0]
        self.figure_ = ax.figure
        self.axes_ = np.array([[ax]], dtype=object)
        values = self.matrix.to_numpy(float)
        kwargs: dict[str, Any] = {"cmap": SEQUENTIAL_CMAP, "vmin": self.vmin, "vmax": self.vmax}
        if self.diverging and self.vmin is None and self.vmax is None:
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
        ax.set_ylabel(self.matrix.index.name or "Language")
        ax.tick_params(axis="x", labelrotation=30)
        ax.tick_params(axis="y", labelrotation=0)
        if self.title:
            ax.set_title(self.title)
        return self


class MetricHeatmapGridDisplay(Display):
    """Several systems' heatmaps side by side on one colour scale, one colour bar.

    Parameters
    ----------
    matrices : dict of str to DataFrame
        System -> matrix (rows x conditions, display units), e.g. from
        :func:`metric_matrix`; drawn in order, at most :data:`MAX_SYSTEMS`.
    value_label : str

    Examples
    --------
    >>> a = pd.DataFrame([[3.0, 5.0]], index=["en"], columns=["clean", "noise 0.1"])
    >>> disp = MetricHeatmapGridDisplay({"A": a, "B": a * 4}, value_label="ECE (%)").plot()
    >>> {im.get_clim() for im in disp.images_}
    {(3.0, 20.0)}
    >>> import matplotlib.pyplot as plt; plt.close(disp.figure_)
    """

    def __init__(
        self,
        matrices: dict[str, pd.DataFrame],
        *,
        value_label: str,
        title: str | None = None,
    ) -> None:
        if not matrices:
            raise ValueError("MetricHeatmapGridDisplay: no matrices")
        if len(matrices) > MAX_SYSTEMS:
            raise ValueError(
                f"MetricHeatmapGridDisplay: {len(matrices)} systems, at most {MAX_SYSTEMS}"
            )
        self.matrices = matrices
        self.value_label = value_label
        self.title = title
        values = np.concatenate([m.to_numpy(float).ravel() for m in matrices.values()])
        finite = values[np.isfinite(values)]
        self.vmin = float(finite.min()) if finite.size else 0.0
        self.vmax = float(finite.max()) if finite.size else 1.0

    @classmethod
    def from_results(
        cls,
        results: pd.DataFrame,
        *,
        task: str | None = None,
        metric: str = "ece",
        variant: str = "raw",
        systems: list[str] | None = None,
        max_rows: int = 12,
        names: DisplayNames | None = None,
    ) -> MetricHeatmapGridDisplay:
        """Every system's (or the chosen ``systems``') values of one task and metric.

        Rows are picked by identifier; systems, the task, languages and
        conditions print by their ``names`` (default: :data:`DEFAULT_NAMES`).
        """
        names = names or DEFAULT_NAMES
        info = metric_info(metric)
        rows = select(results, comparison="value", metric=metric, variant=variant)
        task = single(rows, "task", task)
        rows = select(rows, task=task)
        if rows.empty:
            raise ValueError(f"no value rows for {task=}, {metric=}, {variant=}")
        order = systems or sorted(rows["system"].unique())
        scale = 100.0 if info.percent else 1.0
        matrices = {
            names.system(s): metric_matrix(
                select(rows, system=s), scale=scale, max_rows=max_rows, names=names
            )
            for s in order[:MAX_SYSTEMS]
            if (rows["system"] == s).any()
        }
        unit = " (%)" if info.percent else ""
        title = f"{names.task(task)}, {variant}"
        return cls(matrices, value_label=f"{info.label}{unit}", title=title).plot()

    def plot(self, ax: Any = None) -> MetricHeatmapGridDisplay:
        """Draw on a new figure a page wide (``ax`` must be None); return self."""
        if ax is not None:
            raise ValueError("MetricHeatmapGridDisplay.plot draws its own figure; pass ax=None")
        import matplotlib.pyplot as plt

        n = len(self.matrices)
        n_cols = min(n, 5)
        n_rows = -(-n // n_cols)
        first = next(iter(self.matrices.values()))
        height = min(0.6 + 0.16 * first.shape[0] + 0.5, 4.0)
        fig, axes = plt.subplots(
            n_rows,
            n_cols,
            figsize=(6.8, n_rows * height + 0.4),
            squeeze=False,
            sharey=True,
            layout="constrained",
        )
        self.figure_, self.axes_ = fig, axes
        self.images_ = []
        # Numbers in the cells only while they stay few: each is a text to lay out and draw.
        annotate = sum(m.size for m in self.matrices.values()) <= 120
        for k, (system, matrix) in enumerate(self.matrices.items()):
            axis = axes.flat[k]
            values = matrix.to_numpy(float)
            image = axis.imshow(
                values, cmap=SEQUENTIAL_CMAP, vmin=self.vmin, vmax=self.vmax, aspect="auto"
            )
            self.images_.append(image)
            if annotate:
                for (i, j), v in np.ndenumerate(values):
                    if np.isfinite(v):
                        axis.text(
                            j,
                            i,
                            f"{v:.0f}",
                            ha="center",
                            va="center",
                            fontsize=5,
                            color="white" if v < (self.vmin + self.vmax) / 2 else "black",
                        )
            axis.set_xticks(
                range(matrix.shape[1]), list(matrix.columns), rotation=60, ha="right", fontsize=5
            )
            axis.set_yticks(range(matrix.shape[0]), list(matrix.index), fontsize=5)
            axis.set_title(str(system), fontsize="x-small")
        for k in range(n, n_rows * n_cols):
            axes.flat[k].set_axis_off()
        fig.colorbar(self.images_[0], ax=axes, label=self.value_label, shrink=0.8)
        if self.title:
            fig.suptitle(self.title, fontsize="small")
        return self
