"""What every figure shares: the Display protocol, the palette, the paper style.

A Display computes what it draws once, in a ``from_...`` class method, and
draws it with ``plot(ax=None)``, which returns the Display (scikit-learn's
``CalibrationDisplay`` pattern). matplotlib and seaborn are imported inside
the methods that draw, never at module import, and nothing here changes the
global ``rcParams``: :func:`paper_style` is an opt-in context manager.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xcal.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Okabe and Ito (2008) "Color Universal Design": distinguishable with every
#: common colour-vision deficiency and in greyscale print by lightness.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
#: Sequential map for magnitudes (ECE): perceptually uniform, colour-blind safe.
SEQUENTIAL_CMAP = "viridis"
#: Diverging map for signed differences centred on zero.
DIVERGING_CMAP = "RdBu_r"
#: Line styles that keep series apart when printed in greyscale.
LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")

# The settings of :func:`paper_style`: sizes for a 3.3-inch column, Type 42
# fonts (editable text, accepted by ACL/IEEE checks), no top/right spines.
PAPER_RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
}


@contextmanager
def paper_style(**overrides: Any) -> Iterator[None]:
    """Temporarily apply print-ready matplotlib settings (restored on exit).

    Parameters
    ----------
    **overrides
        Extra rcParams, e.g. ``paper_style(**{"font.family": "serif"})``.

    Examples
    --------
    >>> import matplotlib as mpl
    >>> before = mpl.rcParams["font.size"]
    >>> with paper_style():
    ...     mpl.rcParams["font.size"]
    8.0
    >>> mpl.rcParams["font.size"] == before
    True
    """
    import matplotlib as mpl

    settings: Any = {**PAPER_RC, **overrides}
    with mpl.rc_context(settings):
        yield


def color_for(index: int) -> str:
    """The ``index``-th colour of :data:`OKABE_ITO` (cycling)."""
    return OKABE_ITO[index % len(OKABE_ITO)]


def new_axes(
    nrows: int = 1,
    ncols: int = 1,
    *,
    panel_size: tuple[float, float] = (3.2, 2.6),
    share: bool = False,
) -> tuple[Figure, np.ndarray]:
    """A figure with a ``nrows x ncols`` array of axes, sized per panel.

    pyplot is used (so figures show inline in Jupyter); callers that only
    save the figure close it (:meth:`Display.save` does).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False,
        layout="constrained",
        sharex=share,
        sharey=share,
    )
    return fig, axes


def as_axes_grid(ax: Any, nrows: int, ncols: int, what: str) -> np.ndarray:
    """Check a user-given array of axes has the shape a grid display needs."""
    grid = np.asarray(ax, dtype=object)
    if grid.ndim == 0:
        grid = grid.reshape(1, 1)
    if grid.ndim == 1:
        grid = grid.reshape(nrows, ncols) if grid.size == nrows * ncols else grid[None, :]
    if grid.shape != (nrows, ncols):
        raise ValueError(
            f"{what}: expected `ax` to be an array of {nrows} x {ncols} axes, got shape "
            f"{grid.shape}"
        )
    return grid


class Display:
    """Base class: holds the drawn ``figure_`` and ``axes_`` after ``plot``."""

    figure_: Figure
    axes_: np.ndarray  # 2-D array of Axes (1 x 1 for single-panel displays)

    @property
    def ax_(self) -> Axes:
        """The first (for single-panel displays the only) axes."""
        return self.axes_.flat[0]

    def plot(self, ax: Any = None) -> Display:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(
        self, *, formats: tuple[str, ...] = ("pdf", "png"), dpi: int = 150
    ) -> dict[str, bytes]:
        """The figure's bytes in each format (plots first if needed).

        Metadata without dates keeps the files byte-identical across runs.
        """
        if not hasattr(self, "figure_"):
            self.plot()
        import io

        out = {}
        for fmt in formats:
            buffer = io.BytesIO()
            metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
            self.figure_.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
            out[fmt] = buffer.getvalue()
        return out

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        formats: tuple[str, ...] = ("pdf", "png"),
        dpi: int = 150,
        close: bool = False,
    ) -> list[Path]:
        """Write the figure atomically as ``path.<format>`` for each format.

        Plots first if :meth:`plot` has not been called. With ``close=True``
        the figure is closed afterwards (frees memory in batch reports).
        """
        stem = Path(path)
        written = [
            atomic_write_bytes(stem.with_suffix(f".{fmt}"), payload)
            for fmt, payload in self.render(formats=formats, dpi=dpi).items()
        ]
        if close:
            import matplotlib.pyplot as plt

            plt.close(self.figure_)
        return written
