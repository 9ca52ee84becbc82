"""The reliability figure of a paper: a few panels, every system overlaid.

Whatever the grid, the figure has at most :data:`MAX_PANELS` panels: one per
chosen language, or languages pooled by group (resource class by default),
the bins of a group's runs summed. In each panel every system is one line of
accuracy against mean confidence; under it a strip shows the share of
examples per confidence bin (pooled over the systems). Where bins are sparse,
each line is a kernel-smoothed curve with a pointwise 95% band instead of the
jagged bin means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xcal.analyze.display_names import DEFAULT_NAMES, DisplayNames
from xcal.analyze.figures._base import LINESTYLES, OKABE_ITO, Display, color_for
from xcal.analyze.figures._select import condition_label, language_order, single
from xcal.analyze.figures.reliability import BIN_COLUMNS

#: Panels of the figure at most (two rows of three on a page's width).
MAX_PANELS = 6
#: Width of a column and of a page of a two-column paper (inches).
COLUMN_WIDTH, PAGE_WIDTH = 3.3, 6.8
#: A panel's bins are sparse when the median occupied bin has fewer examples.
SPARSE_BIN_COUNT = 30
#: Bandwidth of the Gaussian kernel of the smoothed curve (confidence, 0-1).
BANDWIDTH = 0.06


def pool_bins(bins: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Sum the bins of several runs: counts add, means are count-weighted.

    >>> b = pd.DataFrame({"g": ["a", "a"], "bin_lower": [0.5, 0.5], "bin_upper": [1.0, 1.0],
    ...                   "count": [10, 30], "mean_confidence": [0.6, 0.8],
    ...                   "accuracy": [0.5, 0.7]})
    >>> row = pool_bins(b, ["g"]).iloc[0]
    >>> float(row["count"]), round(float(row["mean_confidence"]), 3), float(row["accuracy"])
    (40.0, 0.75, 0.65)
    """
    count = bins["count"].to_numpy(float)
    frame = bins.assign(
        count=count,
        _conf=bins["mean_confidence"].to_numpy(float) * count,
        _acc=bins["accuracy"].to_numpy(float) * count,
    )
    frame = frame.fillna({"_conf": 0.0, "_acc": 0.0})
    keys = [*by, "bin_lower", "bin_upper"]
    pooled = frame.groupby(keys, as_index=False, sort=False)[["count", "_conf", "_acc"]].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled["mean_confidence"] = pooled["_conf"] / pooled["count"]
        pooled["accuracy"] = pooled["_acc"] / pooled["count"]
    return pooled.drop(columns=["_conf", "_acc"])


def smooth_reliability(
    confidence: np.ndarray,
    accuracy: np.ndarray,
    count: np.ndarray,
    grid: np.ndarray,
    *,
    bandwidth: float = BANDWIDTH,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kernel-smoothed accuracy at ``grid`` from binned reliability, with a 95% band.

    Every example of bin ``i`` weighs ``K((x - c_i) / h)`` at ``x`` (Gaussian
    ``K``), so the curve is the Nadaraya-Watson estimate on the examples,
    computed from the bins. The band is pointwise, ``±1.96`` standard errors
    of that weighted mean of Bernoulli outcomes under the smoothed
    probability; it ignores the smoothing bias (as such bands do).

    Returns
    -------
    curve, low, high : ndarray
        In [0, 1]; NaN where no example is within a few bandwidths.

    Examples
    --------
    >>> grid = np.array([0.6, 0.9])
    >>> curve, low, high = smooth_reliability(np.array([0.6, 0.9]), np.array([0.6, 0.9]),
    ...                                       np.array([1000, 1000]), grid, bandwidth=0.01)
    >>> np.round(curve, 3).tolist(), bool(np.all(low < curve) and np.all(curve < high))
    ([0.6, 0.9], True)
    """
    keep = count > 0
    c, a, n = confidence[keep], accuracy[keep], count[keep].astype(float)
    kernel = np.exp(-0.5 * ((grid[:, None] - c[None, :]) / bandwidth) ** 2)
    weight = kernel * n
    total = weight.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = (weight * a).sum(axis=1) / total
        variance = curve * (1 - curve) * (kernel**2 * n).sum(axis=1) / total**2
        # No bin within three bandwidths: nothing to smooth there.
        far = kernel.max(axis=1, initial=0.0) < np.exp(-4.5)
    half = 1.96 * np.sqrt(variance)
    curve[far] = np.nan
    return curve, np.clip(curve - half, 0.0, 1.0), np.clip(curve + half, 0.0, 1.0)


def resource_class_groups(classes: Mapping[str, float]) -> dict[str, str]:
    """Language -> panel label: Joshi et al.'s (2020) resource class, at most six panels.

    Classes 0 and 1 (a handful of languages with any labelled data) share a
    panel, so with the languages of unknown class there are six at most.

    >>> resource_class_groups({"en": 5.0, "sw": 2.0, "qu": 1.0, "xx": float("nan")})
    {'en': 'class 5', 'sw': 'class 2', 'qu': 'class 0-1', 'xx': 'class unknown'}
    """
    out = {}
    for language, klass in classes.items():
        if klass is None or not np.isfinite(klass):
            out[language] = "class unknown"
        else:
            out[language] = "class 0-1" if klass <= 1 else f"class {int(klass)}"
    return out


class ReliabilitySummaryDisplay(Display):
    """Reliability of every system in a few panels (chosen or pooled languages).

    Parameters
    ----------
    bins : DataFrame
        Bins with :data:`BIN_COLUMNS`, a ``panel`` column (the panel label) and
        a ``system`` column; several runs of one panel and system are pooled.
    panel_order, system_order : sequence, optional
        Panels (at most :data:`MAX_PANELS`) and systems in order.
    smooth : {"auto", True, False}
        Smoothed curves with bands: ``auto`` for every line when the median
        occupied bin of any panel's line has fewer than
        :data:`SPARSE_BIN_COUNT` examples (one rule for the whole figure).
    title : str, optional

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lo = np.linspace(0, 1, 11)[:-1]
    >>> b = pd.DataFrame({"panel": "all", "system": np.repeat(["A", "B"], 10),
    ...                   "bin_lower": np.tile(lo, 2), "bin_upper": np.tile(lo + 0.1, 2),
    ...                   "count": rng.integers(1, 50, 20), "mean_confidence": np.tile(lo + 0.05, 2),
    ...                   "accuracy": np.tile(lo, 2)})
    >>> disp = ReliabilitySummaryDisplay(b).plot()
    >>> [t.get_text() for t in disp.figure_.legends[0].get_texts()][:2]
    ['A', 'B']
    >>> import matplotlib.pyplot as plt; plt.close(disp.figure_)
    """

    def __init__(
        self,
        bins: pd.DataFrame,
        *,
        panel_order: Sequence[str] | None = None,
        system_order: Sequence[str] | None = None,
        smooth: str | bool = "auto",
        title: str | None = None,
    ) -> None:
        missing = [c for c in (*BIN_COLUMNS, "panel", "system") if c not in bins.columns]
        if missing:
            raise ValueError(f"ReliabilitySummaryDisplay: missing column(s) {missing}")
        if bins.empty:
            raise ValueError("ReliabilitySummaryDisplay: nothing to draw (no bins)")
        if smooth not in ("auto", True, False):
            raise ValueError(f"Expected `smooth` to be 'auto', True or False, got {smooth!r}")
        self.panel_order = list(panel_order or dict.fromkeys(bins["panel"]))
        if len(self.panel_order) > MAX_PANELS:
            raise ValueError(
                f"ReliabilitySummaryDisplay: {len(self.panel_order)} panels, at most "
                f"{MAX_PANELS}; pool languages into groups or choose a few"
            )
        self.system_order = list(system_order or dict.fromkeys(bins["system"]))
        self.bins = pool_bins(bins[bins["panel"].isin(self.panel_order)], ["panel", "system"])
        self.smooth = smooth
        self.title = title

    @classmethod
    def from_results(
        cls,
        reliability: pd.DataFrame,
        *,
        task: str | None = None,
        languages: Sequence[str] | None = None,
        groups: Mapping[str, str] | None = None,
        variant: str = "raw",
        perturbation: str = "none",
        severity: float | None = None,
        systems: Sequence[str] | None = None,
        smooth: str | bool = "auto",
        names: DisplayNames | None = None,
    ) -> ReliabilitySummaryDisplay:
        """Panels of chosen ``languages``, or of languages pooled by ``groups``.

        ``groups`` maps a language to its panel label (e.g. from
        :func:`resource_class_groups`); languages it does not name are left
        out. With neither, every language is pooled into one panel, or each is
        its own panel when there are at most :data:`MAX_PANELS`. Bins are
        picked by identifier; the task, condition, languages and systems print
        by their ``names`` (default: :data:`DEFAULT_NAMES`).
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
        if systems is not None:
            frame = frame[frame["system"].isin(list(systems))]
        if frame.empty:
            raise ValueError(
                f"no reliability bins for task={task!r}, variant={variant!r}, "
                f"perturbation={perturbation!r}, severity={severity!r}"
            )
        present = language_order(frame["language"])
        if languages is not None:
            chosen = [x for x in languages if x in present]
            if not chosen:
                raise ValueError(f"none of the languages {list(languages)} has a run of {task}")
            frame = frame[frame["language"].isin(chosen)]
            panel = frame["language"].map(names.language)
            order = [names.language(x) for x in chosen]
            what = ", ".join(order)
        elif groups is not None:
            panel = frame["language"].map(dict(groups))
            frame, panel = frame[panel.notna()], panel[panel.notna()]
            # Richest class first, unknown last.
            order = sorted(set(panel), key=lambda x: (x.endswith("unknown"), x), reverse=False)
            order = sorted(order, key=lambda x: (x.endswith("unknown"), -_rank(x)))
            what = "languages pooled by " + ("resource class" if _classes(order) else "group")
        elif len(present) <= MAX_PANELS:
            panel = frame["language"].map(names.language)
            order, what = [names.language(x) for x in present], "per language"
        else:
            panel = pd.Series("all languages", index=frame.index)
            order, what = ["all languages"], f"{len(present)} languages pooled"
        cond = condition_label(perturbation, float(frame["severity"].iloc[0]), names)
        system_order = list(systems) if systems else sorted(frame["system"].unique())
        return cls(
            frame.assign(panel=panel.astype(str), system=frame["system"].map(names.system)),
            panel_order=[str(x) for x in order],
            system_order=[names.system(x) for x in system_order],
            smooth=smooth,
            title=f"{names.task(task)}, {cond}, {variant}: {what}",
        ).plot()

    def _sparse(self) -> bool:
        """Smooth every line when any line's median occupied bin is sparse (one rule per figure)."""
        if self.smooth != "auto":
            return bool(self.smooth)
        occupied = self.bins[self.bins["count"] > 0]
        medians = occupied.groupby(["panel", "system"])["count"].median()
        return bool(len(medians)) and bool((medians < SPARSE_BIN_COUNT).any())

    def plot(self, ax: Any = None) -> ReliabilitySummaryDisplay:
        """Draw on a new figure (a column wide for one panel, a page for more); return self.

        ``ax`` is not supported (the figure has its own layout of reliability
        panels and count strips) and must be None.
        """
        if ax is not None:
            raise ValueError("ReliabilitySummaryDisplay.plot draws its own figure; pass ax=None")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        n = len(self.panel_order)
        n_cols = 1 if n == 1 else min(n, 3)
        n_rows = -(-n // n_cols)
        width = COLUMN_WIDTH if n == 1 else PAGE_WIDTH
        panel = width / n_cols
        fig = plt.figure(figsize=(width, n_rows * panel * 1.3 + 0.5), layout="constrained")
        spec = fig.add_gridspec(2 * n_rows, n_cols, height_ratios=[4, 1] * n_rows)
        axes = np.empty((n_rows, n_cols), dtype=object)
        strips = np.empty((n_rows, n_cols), dtype=object)
        for k in range(n_rows * n_cols):
            i, j = divmod(k, n_cols)
            axes[i, j] = fig.add_subplot(spec[2 * i, j])
            strips[i, j] = fig.add_subplot(spec[2 * i + 1, j], sharex=axes[i, j])
        self.figure_, self.axes_, self.strips_ = fig, axes, strips
        grid = np.linspace(0.0, 1.0, 101)
        smoothed = self._sparse()
        # Overlapping bands of many systems: fainter each, so the lines stay readable.
        band_alpha = max(0.3 / max(len(self.system_order), 1), 0.05)
        for k, name in enumerate(self.panel_order):
            axis, strip = axes.flat[k], strips.flat[k]
            part = self.bins[self.bins["panel"] == name]
            axis.plot([0, 100], [0, 100], linestyle=":", color="0.5", linewidth=0.8)
            for s, system in enumerate(self.system_order):
                line = part[part["system"] == system].sort_values("bin_lower")
                if line.empty:
                    continue
                count = line["count"].to_numpy(float)
                conf = line["mean_confidence"].to_numpy(float)
                acc = line["accuracy"].to_numpy(float)
                style = _style(s)
                if smoothed:
                    lo_conf, hi_conf = np.nanmin(conf[count > 0]), np.nanmax(conf[count > 0])
                    x = grid[(grid >= lo_conf) & (grid <= hi_conf)]
                    curve, low, high = smooth_reliability(conf, acc, count, x)
                    axis.plot(x * 100, curve * 100, **style)
                    axis.fill_between(
                        x * 100,
                        low * 100,
                        high * 100,
                        color=style["color"],
                        alpha=band_alpha,
                        lw=0,
                        rasterized=True,  # a dense layer: pixels in the PDF, not paths
                    )
                else:
                    kept = count > 0
                    axis.plot(conf[kept] * 100, acc[kept] * 100, marker=".", **style)
            pooled = part.groupby(["bin_lower", "bin_upper"], as_index=False)["count"].sum()
            share = pooled["count"].to_numpy(float) / max(float(pooled["count"].sum()), 1.0)
            edges = np.append(pooled["bin_lower"].to_numpy(float), pooled["bin_upper"].iloc[-1])
            strip.stairs(share * 100, edges * 100, fill=True, color="0.45")
            axis.set_xlim(0, 100)
            axis.set_ylim(0, 100)
            axis.set_aspect("auto")
            axis.set_title(name)
            axis.tick_params(labelbottom=False)
            strip.set_ylim(0, max(float(share.max()) * 100 * 1.15, 1.0))
            strip.set_xlabel("Confidence (%)")
            if k % n_cols == 0:
                axis.set_ylabel("Accuracy (%)")
                strip.set_ylabel("% ex.")
        for k in range(n, n_rows * n_cols):
            axes.flat[k].set_axis_off()
            strips.flat[k].set_axis_off()
        handles = [
            Line2D([], [], label=str(system), **_style(s))
            for s, system in enumerate(self.system_order)
        ]
        handles.append(Line2D([], [], linestyle=":", color="0.5", label="perfect calibration"))
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(len(handles), 4 if n == 1 else 6),
            frameon=False,
            fontsize="x-small",
            title=("lines smoothed (Gaussian kernel), bands: pointwise 95%" if smoothed else None),
            title_fontsize="x-small",
        )
        if self.title:
            fig.suptitle(self.title, fontsize="small")
        return self


def _style(index: int) -> dict[str, Any]:
    """Colour and, past the palette's length, line style: ten systems stay apart."""
    return {
        "color": color_for(index),
        "linestyle": LINESTYLES[(index // len(OKABE_ITO)) % len(LINESTYLES)],
        "linewidth": 1.0,
    }


def _rank(label: str) -> float:
    digits = "".join(ch for ch in label.split("-")[-1] if ch.isdigit())
    return float(digits) if digits else -1.0


def _classes(order: Sequence[str]) -> bool:
    return all(str(x).startswith("class ") for x in order)
