"""Reliability diagrams: one panel, or a grid of languages x systems.

Each panel shows, per confidence bin, the accuracy (bars) against the mean
confidence (the gap shaded), the diagonal of perfect calibration, and the
share of examples per bin as a thin histogram along the bottom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xcal.analyze.display_names import DEFAULT_NAMES, DisplayNames
from xcal.analyze.figures._base import Display, as_axes_grid, color_for, new_axes
from xcal.analyze.figures._select import condition_label, language_order, single

#: Panels (rows x columns) of one page of a paged grid, and the size of a panel
#: (inches): a page is 6.75 x 8.95 inches with its margins and legend, an appendix page.
PAGE_SHAPE: tuple[int, int] = (7, 5)
PAGE_PANEL: tuple[float, float] = (1.2, 1.1)

#: Columns of a reliability table (one row per bin).
BIN_COLUMNS: tuple[str, ...] = ("bin_lower", "bin_upper", "count", "mean_confidence", "accuracy")


def _check_bins(table: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [c for c in BIN_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; got {list(table.columns)}")
    return table.loc[:, list(BIN_COLUMNS)].sort_values("bin_lower").reset_index(drop=True)


def _ece_of(bins: pd.DataFrame) -> float:
    count = bins["count"].to_numpy(dtype=float)
    total = count.sum()
    if total == 0:
        return float("nan")
    gap = np.abs(bins["accuracy"].to_numpy(float) - bins["mean_confidence"].to_numpy(float))
    return float(np.nansum(count * gap) / total)


def _draw(ax: Any, bins: pd.DataFrame, *, color: str, title: str | None, labels: bool) -> None:
    """One reliability panel from a handful of artists, whatever the number of bins.

    Accuracy is one filled step outline (``stairs``), the gap to the mean
    confidence one ``fill_between``, the share of examples one step outline
    along the bottom: three artists instead of three bar patches per bin,
    which is what kept a 410-panel grid drawing for minutes and its PDF large.
    """
    edges, acc, conf, share = _steps(bins)
    ax.plot([0, 100], [0, 100], linestyle="--", color="0.5", linewidth=0.8, label="Perfect")
    ax.stairs(acc, edges, fill=True, color=color, alpha=0.85, label="Accuracy")
    # The gap between accuracy and confidence: light vermillion with a dark edge,
    # distinct from the accuracy bars in colour and, in greyscale, in lightness.
    x = np.repeat(edges, 2)[1:-1]
    ax.fill_between(
        x,
        np.repeat(acc, 2),
        np.repeat(conf, 2),
        facecolor=(0.835, 0.369, 0.0, 0.25),
        edgecolor="#D55E00",
        linewidth=0.6,
        label="Gap",
    )
    # Share of examples per bin, on the panel's 0-100 scale (a full bin reaches 40).
    ax.stairs(share * 40, edges, fill=True, color="0.15", alpha=0.45, label="Examples (share)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xticks([0, 50, 100])
    ax.set_yticks([0, 50, 100])
    if title:
        ax.set_title(title)
    if labels:
        ax.set_xlabel("Confidence (%)")
        ax.set_ylabel("Accuracy (%)")


def _steps(bins: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges (percent) and per-bin accuracy, confidence (percent) and share of examples.

    Empty bins get NaN accuracy and confidence (a hole in the outline), share 0.
    """
    lower = bins["bin_lower"].to_numpy(float)
    upper = bins["bin_upper"].to_numpy(float)
    edges = np.append(lower, upper[-1]) * 100 if len(lower) else np.array([0.0, 100.0])
    count = bins["count"].to_numpy(float)
    empty = count <= 0
    acc = np.where(empty, np.nan, bins["accuracy"].to_numpy(float) * 100)
    conf = np.where(empty, np.nan, bins["mean_confidence"].to_numpy(float) * 100)
    share = count / max(float(count.sum()), 1.0)
    if not len(lower):
        acc = conf = share = np.full(1, np.nan)
    return edges, acc, conf, share


class ReliabilityDiagramDisplay(Display):
    """A reliability diagram of one set of predictions.

    Parameters
    ----------
    bins : DataFrame
        One row per bin with :data:`BIN_COLUMNS` (confidence and accuracy as
        proportions in [0, 1]).
    name : str or None
        Title of the panel.

    Examples
    --------
    >>> bins = pd.DataFrame({"bin_lower": [0.5, 0.75], "bin_upper": [0.75, 1.0],
    ...                      "count": [40, 60], "mean_confidence": [0.6, 0.9],
    ...                      "accuracy": [0.55, 0.7]})
    >>> disp = ReliabilityDiagramDisplay(bins, name="de").plot()
    >>> disp.ax_.get_xlabel()
    'Confidence (%)'
    >>> import matplotlib.pyplot as plt; plt.close(disp.figure_)
    """

    def __init__(self, bins: pd.DataFrame, *, name: str | None = None) -> None:
        self.bins = _check_bins(bins, "ReliabilityDiagramDisplay")
        self.name = name

    @property
    def ece(self) -> float:
        """Top-label ECE implied by the bins (count-weighted mean |gap|)."""
        return _ece_of(self.bins)

    @classmethod
    def from_predictions(
        cls,
        y_true: np.ndarray,
        *,
        y_prob: np.ndarray | None = None,
        logits: np.ndarray | None = None,
        n_bins: int = 15,
        binning: str = "width",
        name: str | None = None,
        ax: Any = None,
    ) -> ReliabilityDiagramDisplay:
        """Bin predictions with :func:`xcal.metrics.reliability_table` and plot."""
        from xcal.metrics import reliability_table

        table = reliability_table(
            y_true,
            y_prob=y_prob,
            logits=logits,
            n_bins=n_bins,
            binning=binning,  # type: ignore[arg-type]
        )
        bins = table.to_frame()
        return cls(bins, name=name).plot(ax=ax)

    def plot(self, ax: Any = None, *, color: str | None = None) -> ReliabilityDiagramDisplay:
        """Draw on ``ax`` (a new figure if None) and return self."""
        if ax is None:
            _fig, axes = new_axes(1, 1, panel_size=(3.0, 3.0))
            ax = axes[0, 0]
        self.figure_ = ax.figure
        self.axes_ = np.array([[ax]], dtype=object)
        _draw(ax, self.bins, color=color or color_for(0), title=self.name, labels=True)
        ax.set_aspect("equal")
        # The ECE goes in the legend's title: a label inside the panel sat over the bars.
        ax.legend(
            loc="upper left",
            title=f"ECE {self.ece * 100:.1f}%",
            fontsize="x-small",
            title_fontsize="x-small",
            frameon=False,
        )
        return self


class ReliabilityGridDisplay(Display):
    """Reliability diagrams on a grid: one row per language, one column per system.

    Parameters
    ----------
    bins : DataFrame
        Tidy reliability bins with :data:`BIN_COLUMNS` plus the ``rows`` and
        ``cols`` key columns (as in :attr:`AnalysisResult.reliability`).
    rows, cols : str
        Key columns laid out down and across.
    row_order, col_order : sequence or None
        Which keys to show, in order (default: all, as they appear).
    page_shape : (int, int) or None
        Panel slots of the figure (default: the grid's); see :func:`grid_pages`
        to split a large grid into pages of :data:`PAGE_SHAPE`.
    """

    def __init__(
        self,
        bins: pd.DataFrame,
        *,
        rows: str = "language",
        cols: str = "system",
        row_order: Sequence[Any] | None = None,
        col_order: Sequence[Any] | None = None,
        page_shape: tuple[int, int] | None = None,
    ) -> None:
        self.page_shape = page_shape
        for key in (rows, cols):
            if key not in bins.columns:
                raise ValueError(f"ReliabilityGridDisplay: no column {key!r} in the bins")
        self.rows, self.cols = rows, cols
        self.title: str | None = None
        if row_order is not None:
            self.row_order = list(row_order)
        elif rows == "language":
            self.row_order = language_order(bins[rows])
        else:
            self.row_order = list(dict.fromkeys(bins[rows]))
        self.col_order = (
            list(col_order) if col_order is not None else list(dict.fromkeys(bins[cols]))
        )
        if not self.row_order or not self.col_order:
            raise ValueError("ReliabilityGridDisplay: nothing to draw (no bins)")
        self.panels: dict[tuple[Any, Any], pd.DataFrame] = {}
        for (r, c), group in bins.groupby([rows, cols], sort=False):
            if r in self.row_order and c in self.col_order:
                self.panels[(r, c)] = _check_bins(group, f"bins for {rows}={r}, {cols}={c}")

    @classmethod
    def from_results(
        cls,
        reliability: pd.DataFrame,
        *,
        task: str | None = None,
        variant: str = "raw",
        perturbation: str = "none",
        severity: float | None = None,
        languages: Sequence[str] | None = None,
        systems: Sequence[str] | None = None,
        page_shape: tuple[int, int] | None = None,
        names: DisplayNames | None = None,
        ax: Any = None,
    ) -> ReliabilityGridDisplay:
        """Select one task, calibration variant and perturbation, then plot.

        ``reliability`` is :attr:`AnalysisResult.reliability`; ``task``
        defaults to the only one present (an error names them if several).
        Bins are picked by identifier (``languages`` and ``systems`` too); the
        task, condition, languages and systems print by their ``names``
        (default: :data:`DEFAULT_NAMES`).
        """
        names = names or DEFAULT_NAMES
        frame = reliability
        task = single(frame, "task", task)
        mask = (
            (frame["task"] == task)
            & (frame["variant"] == variant)
            & (frame["perturbation"] == perturbation)
        )
        if severity is not None:
            mask &= np.isclose(frame["severity"].to_numpy(float), severity)
        frame = frame[mask]
        if frame.empty:
            raise ValueError(
                f"no reliability bins for task={task!r}, variant={variant!r}, "
                f"perturbation={perturbation!r}, severity={severity!r}"
            )
        if severity is None and frame["severity"].nunique() > 1:
            raise ValueError(
                f"perturbation {perturbation!r} has several severities "
                f"{sorted(frame['severity'].unique())}; pass severity="
            )
        row_order = language_order(frame["language"]) if languages is None else list(languages)
        col_order = list(dict.fromkeys(frame["system"])) if systems is None else list(systems)
        display = cls(
            frame.assign(
                language=frame["language"].map(names.language),
                system=frame["system"].map(names.system),
            ),
            row_order=[names.language(x) for x in row_order],
            col_order=[names.system(x) for x in col_order],
            page_shape=page_shape,
        )
        cond = condition_label(perturbation, frame["severity"].iloc[0], names)
        display.title = f"{names.task(task)}, {cond}, {variant}"
        return display.plot(ax=ax)

    def plot(self, ax: Any = None) -> ReliabilityGridDisplay:
        """Draw the grid (on a given 2-D array of axes, or a new figure); return self.

        With :attr:`page_shape` set (``(rows, cols)``, at least the grid's), a
        new figure has that many panel slots whatever the grid holds, so every
        page of a paged appendix figure has the same size and panel size; the
        slots left over are blank.
        """
        n_rows, n_cols = len(self.row_order), len(self.col_order)
        if ax is None:
            page_rows, page_cols = self.page_shape or (n_rows, n_cols)
            if page_rows < n_rows or page_cols < n_cols:
                raise ValueError(
                    f"ReliabilityGridDisplay: page_shape {self.page_shape} is smaller than the "
                    f"grid ({n_rows} x {n_cols})"
                )
            fig, page = _page_axes(page_rows, page_cols)
            for extra in list(page[n_rows:, :].flat) + list(page[:n_rows, n_cols:].flat):
                extra.set_axis_off()
            grid = page[:n_rows, :n_cols]
        else:
            grid = as_axes_grid(ax, n_rows, n_cols, "ReliabilityGridDisplay.plot")
            fig = grid.flat[0].figure
        self.figure_, self.axes_ = fig, grid
        for i, r in enumerate(self.row_order):
            for j, c in enumerate(self.col_order):
                axis = grid[i, j]
                bins = self.panels.get((r, c))
                if bins is None:
                    axis.set_axis_off()
                    axis.text(
                        0.5, 0.5, "no run", ha="center", va="center", transform=axis.transAxes
                    )
                    continue
                _draw(
                    axis,
                    bins,
                    color=color_for(j),
                    title=f"{c}" if i == 0 else None,
                    labels=False,
                )
                if j == 0:
                    axis.set_ylabel(f"{r}\nAccuracy (%)")
                if i == n_rows - 1:
                    axis.set_xlabel("Confidence (%)")
        if ax is None:
            # Tick labels on the outer panels only (the axes are not shared: sharing
            # 35 axes makes every limit lookup walk all of them).
            for i in range(n_rows):
                for j in range(n_cols):
                    if j > 0:
                        grid[i, j].tick_params(labelleft=False)
                    if i < n_rows - 1:
                        grid[i, j].tick_params(labelbottom=False)
        handles, labels = grid[0, 0].get_legend_handles_labels()
        if handles:
            fig.legend(
                handles[1:] + handles[:1],
                labels[1:] + labels[:1],
                loc="lower center",
                ncols=4,
                frameon=False,
                fontsize="x-small",
            )
        if self.title:
            fig.suptitle(self.title)
        return self


def _page_axes(n_rows: int, n_cols: int) -> tuple[Any, np.ndarray]:
    """A page of panel slots with fixed margins (inches) and no layout engine.

    A layout engine measures every tick label of every panel at each save:
    most of the time of a 35-panel page. The margins here fit the row labels,
    the column titles, the x label and the legend below.
    """
    import matplotlib.pyplot as plt

    left, right, top, bottom = 0.65, 0.1, 0.5, 0.75
    width = left + right + n_cols * PAGE_PANEL[0]
    height = top + bottom + n_rows * PAGE_PANEL[1]
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(width, height),
        squeeze=False,
        gridspec_kw={
            "left": left / width,
            "right": 1 - right / width,
            "top": 1 - top / height,
            "bottom": bottom / height,
            "wspace": 0.15,
            "hspace": 0.25,
        },
    )
    return fig, axes


def grid_pages(
    rows: Sequence[Any], cols: Sequence[Any], page_shape: tuple[int, int] = PAGE_SHAPE
) -> list[tuple[list[Any], list[Any]]]:
    """Split a rows x cols grid into pages of at most ``page_shape`` panels.

    Pages go down the rows first, then across the columns.

    >>> pages = grid_pages(list("abcdefghij"), ["s1", "s2", "s3"], page_shape=(4, 2))
    >>> len(pages), pages[0], pages[-1]
    (6, (['a', 'b', 'c', 'd'], ['s1', 's2']), (['i', 'j'], ['s3']))
    """
    n_rows, n_cols = page_shape
    if n_rows < 1 or n_cols < 1:
        raise ValueError(f"Expected `page_shape` of positive ints, got {page_shape}")
    return [
        (list(rows[i : i + n_rows]), list(cols[j : j + n_cols]))
        for j in range(0, len(cols), n_cols)
        for i in range(0, len(rows), n_rows)
    ]
