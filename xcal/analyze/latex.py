"""LaTeX tables that go into a paper unedited.

Every table uses booktabs rules and siunitx ``S`` columns (decimal-aligned
numbers, ``±`` uncertainties, significance markers aligned after the number),
escapes every piece of text it did not write itself, bolds the best value and
explains its markers in the caption. The preamble a paper needs is
:data:`PREAMBLE` (``booktabs`` and ``siunitx``; nothing else).

The generic renderer is :func:`table_from_frame` (a tidy DataFrame in, one
table out); the research-question tables the report writes are built from the
analysis results in :mod:`xcal.analyze.tables`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from xcal.atomic import atomic_write_text

#: The packages a document needs to include the generated tables.
PREAMBLE = "\\usepackage{booktabs}\n\\usepackage{siunitx}\n"

# Characters that are special to LaTeX in text mode, and what prints them.
# ``<``, ``>`` and ``|`` print as other glyphs in the default OT1 encoding.
_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    # Symbols pdflatex's default UTF-8 input does not know, as math.
    "Δ": r"$\Delta$",
    "±": r"$\pm$",
    "×": r"$\times$",
    "−": r"$-$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "ρ": r"$\rho$",
    "τ": r"$\tau$",
    "…": r"\dots{}",
}

#: Adjusted p-value thresholds and their markers, most significant first.
SIGNIFICANCE_LEVELS: tuple[tuple[float, str], ...] = ((0.001, "***"), (0.01, "**"), (0.05, "*"))

# Local siunitx settings: ``\bfseries`` reaches the numbers in S columns,
# uncertainties print as ``0.032 ± 0.011``, and missing cells as a dash.
# Set inside the table environment, so the user's document keeps its own.
_SISETUP = (
    "\\sisetup{separate-uncertainty=true, reset-text-series=false, "
    "text-series-to-math=true, mode=match, propagate-math-font=true}"
)

Style = Literal["pm", "interval", "none"]


def escape_latex(text: object) -> str:
    r"""Escape a piece of text so LaTeX prints it as is.

    Parameters
    ----------
    text : object
        Converted with ``str`` first.

    Returns
    -------
    str

    Examples
    --------
    >>> print(escape_latex("ece_mass & 5% #1 {x}"))
    ece\_mass \& 5\% \#1 \{x\}
    >>> print(escape_latex("a\\b"))
    a\textbackslash{}b
    >>> print(escape_latex("ΔECE ± 1"))
    $\Delta$ECE $\pm$ 1
    """
    return "".join(_SPECIALS.get(char, char) for char in str(text))


def significance_marker(p_value: float) -> str:
    """The marker for an (adjusted) p-value: ``***``, ``**``, ``*`` or ``""``.

    Examples
    --------
    >>> [significance_marker(p) for p in (0.0005, 0.005, 0.03, 0.2, float("nan"))]
    ['***', '**', '*', '', '']
    """
    if p_value is None or not np.isfinite(p_value):
        return ""
    for level, marker in SIGNIFICANCE_LEVELS:
        if p_value < level:
            return marker
    return ""


def format_number(value: float, digits: int) -> str:
    """A fixed-point number as siunitx reads it (``-0.000`` becomes ``0.000``).

    Examples
    --------
    >>> format_number(-0.00004, 3), format_number(12.3456, 2)
    ('0.000', '12.35')
    """
    text = f"{value:.{digits}f}"
    if float(text) == 0.0:
        text = text.lstrip("-")
    return text


def _math_number(value: float, digits: int) -> str:
    # Text columns (intervals) need the real minus sign, which math mode gives.
    return f"${format_number(value, digits)}$"


@dataclass
class LatexTable:
    """A rendered table: its LaTeX source, a short name and a one-line caption.

    ``frame`` holds the same cells as plain text, for display in Jupyter.
    """

    name: str
    tex: str
    caption: str
    frame: pd.DataFrame = field(repr=False)

    def __str__(self) -> str:
        return self.tex

    def _repr_html_(self) -> str:
        return str(self.frame.to_html())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table atomically to ``path`` (a ``.tex`` file)."""
        return atomic_write_text(Path(path), self.tex)


@dataclass
class _Cell:
    value: float = math.nan
    low: float = math.nan
    high: float = math.nan
    p_value: float = math.nan
    bold: bool = False


def _order(values: Sequence[Any], order: Sequence[Any] | Callable[[Any], Any] | None) -> list[Any]:
    unique = list(dict.fromkeys(values))
    if order is None:
        return unique
    if callable(order):
        return sorted(unique, key=order)
    rank = {v: i for i, v in enumerate(order)}
    missing = [v for v in unique if v not in rank]
    return sorted((v for v in unique if v in rank), key=rank.__getitem__) + missing


def _key(row: pd.Series, names: Sequence[str]) -> tuple[Any, ...]:
    return tuple(row[name] for name in names)


def _uncertainty_digits(text: str) -> int:
    # siunitx stores ``0.032 \pm 0.011`` as ``0.032(11)``: count those digits.
    digits = text.replace(".", "").lstrip("0")
    return max(len(digits), 1)


def table_from_frame(
    frame: pd.DataFrame,
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    value: str = "estimate",
    ci: tuple[str, str] | None = ("ci_low", "ci_high"),
    p_value: str | None = "p_adjusted",
    style: Style = "pm",
    best: Literal["min", "max", "abs_min"] | None = None,
    best_within: Literal["row", "column"] = "row",
    digits: int = 3,
    scale: float = 1.0,
    caption: str = "",
    caption_notes: Sequence[str] = (),
    label: str | None = None,
    name: str = "table",
    row_names: Sequence[str] | None = None,
    formatters: dict[str, Callable[[Any], str]] | None = None,
    orders: dict[str, Sequence[Any] | Callable[[Any], Any]] | None = None,
    environment: Literal["auto", "table", "table*"] = "auto",
) -> LatexTable:
    r"""Render a tidy frame as a booktabs table with siunitx columns.

    One table cell per distinct combination of ``rows`` x ``columns``; several
    column keys make a multi-level header with ``\cmidrule`` under each group.

    Parameters
    ----------
    frame : DataFrame
        Tidy: one row per cell, with the ``rows`` and ``columns`` key columns,
        ``value`` and optionally the interval and p-value columns.
    rows, columns : sequence of str
        Key columns that index the table's rows and columns.
    value : str
        The column printed in each cell.
    ci : (str, str) or None
        Interval columns. With ``style="pm"`` the cell shows ``value ± h``
        where ``h`` is half the interval's width; with ``style="interval"`` a
        second column shows ``[low, high]`` (exact, also for skewed
        intervals); ``style="none"`` prints the value only.
    p_value : str or None
        Column of (adjusted) p-values; markers per :data:`SIGNIFICANCE_LEVELS`.
    best : {"min", "max", "abs_min"} or None
        Bold the best value within each row or column (ties all bold, compared
        as printed).
    digits : int
        Decimals printed (after ``scale``).
    scale : float
        Multiply values and intervals (100 prints proportions as percent).
    caption : str
        Plain text (escaped); the notes on intervals, markers and bold are
        appended, as are ``caption_notes`` (raw LaTeX, written by the caller).
    label : str or None
        ``\label`` for cross-references.
    name : str
        Short name (the file stem in a report).
    row_names : sequence of str or None
        Header of the row key columns (defaults to the key names).
    formatters : dict or None
        Per key column, a function from a key value to its (unescaped) label.
    orders : dict or None
        Per key column, an explicit order (a sequence) or a sort key.
    environment : {"auto", "table", "table*"}
        ``auto`` uses ``table*`` (both columns of a two-column paper) when
        there are more than four data columns.

    Returns
    -------
    LatexTable

    Examples
    --------
    >>> df = pd.DataFrame({"lang": ["de", "fr"], "sys": ["b", "b"], "estimate": [0.1, -0.2],
    ...                    "ci_low": [0.0, -0.3], "ci_high": [0.2, -0.1],
    ...                    "p_adjusted": [0.3, 0.004]})
    >>> t = table_from_frame(df, rows=["lang"], columns=["sys"], best="min", best_within="column",
    ...                      digits=2)
    >>> print([line for line in t.tex.splitlines() if line.startswith("fr")][0])
    fr & \bfseries -0.20 \pm 0.10$^{**}$ \\
    """
    if frame.empty:
        raise ValueError(f"table {name!r}: no rows to render")
    needed = [*rows, *columns, value]
    if ci is not None and style != "none":
        needed += list(ci)
    if p_value is not None:
        needed.append(p_value)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"table {name!r}: missing column(s) {missing}; got {list(frame.columns)}")
    keys = [*rows, *columns]
    duplicated = frame.duplicated(subset=keys, keep=False)
    if duplicated.any():
        example = frame.loc[duplicated, keys].iloc[0].to_dict()
        raise ValueError(
            f"table {name!r}: more than one row for cell {example}; filter the frame or "
            f"add a key column"
        )
    formatters = formatters or {}
    orders = orders or {}

    def label_of(key: str, item: Any) -> str:
        fmt = formatters.get(key)
        return escape_latex(fmt(item) if fmt is not None else item)

    # Row and column order: lexicographic over keys, each key in its own order.
    def ordered_keys(names: Sequence[str]) -> list[tuple[Any, ...]]:
        combos = list(dict.fromkeys(_key(r, names) for _, r in frame[list(names)].iterrows()))
        for level in reversed(range(len(names))):
            order = _order([c[level] for c in combos], orders.get(names[level]))
            rank = {v: i for i, v in enumerate(order)}
            combos.sort(key=lambda c, lv=level: rank[c[lv]])  # type: ignore[misc]
        return combos

    row_keys = ordered_keys(rows)
    col_keys = ordered_keys(columns)
    cells: dict[tuple[tuple[Any, ...], tuple[Any, ...]], _Cell] = {}
    for _, r in frame.iterrows():
        cell = _Cell(value=float(r[value]) * scale)
        if ci is not None and style != "none":
            cell.low = float(r[ci[0]]) * scale
            cell.high = float(r[ci[1]]) * scale
        if p_value is not None:
            cell.p_value = float(r[p_value])
        cells[(_key(r, rows), _key(r, columns))] = cell

    # Bold the best printed value(s) within each row or column.
    if best is not None:
        groups = row_keys if best_within == "row" else col_keys
        for group in groups:
            members = [
                c
                for (rk, ck), c in cells.items()
                if (rk if best_within == "row" else ck) == group and np.isfinite(c.value)
            ]
            if len(members) < 2:
                continue
            printed = [float(format_number(c.value, digits)) for c in members]
            target = (
                min(printed)
                if best == "min"
                else max(printed)
                if best == "max"
                else min(abs(v) for v in printed)
            )
            for c, v in zip(members, printed, strict=True):
                c.bold = (abs(v) if best == "abs_min" else v) == target

    # siunitx column format from what is printed.
    finite = [c for c in cells.values() if np.isfinite(c.value)]
    int_digits = max([len(format_number(abs(c.value), 0)) for c in finite] or [1])
    signed = any(format_number(c.value, digits).startswith("-") for c in finite)
    markers = [significance_marker(c.p_value) for c in cells.values()]
    widest_marker = max(markers, key=len) if markers else ""
    fmt = f"{'-' if signed else ''}{int_digits}.{digits}"
    if style == "pm" and ci is not None:
        halves = [
            format_number((c.high - c.low) / 2, digits)
            for c in finite
            if np.isfinite(c.low) and np.isfinite(c.high)
        ]
        if halves:
            fmt += f"({max(_uncertainty_digits(h) for h in halves)})"
    s_options = f"table-format={fmt}"
    if widest_marker:
        s_options += f", table-space-text-post={{$^{{{widest_marker}}}$}}"
    data_spec = f"S[{s_options}]"
    per_cell = 2 if style == "interval" and ci is not None else 1
    if per_cell == 2:
        data_spec += " c"

    def render_cell(cell: _Cell | None) -> list[str]:
        if cell is None or not np.isfinite(cell.value):
            return ["{--}"] + (["{--}"] * (per_cell - 1))
        text = format_number(cell.value, digits)
        if style == "pm" and ci is not None and np.isfinite(cell.low) and np.isfinite(cell.high):
            text += f" \\pm {format_number((cell.high - cell.low) / 2, digits)}"
        marker = significance_marker(cell.p_value)
        if marker:
            text += f"$^{{{marker}}}$"
        if cell.bold:
            text = f"\\bfseries {text}"
        out = [text]
        if per_cell == 2:
            if np.isfinite(cell.low) and np.isfinite(cell.high):
                out.append(f"[{_math_number(cell.low, digits)}, {_math_number(cell.high, digits)}]")
            else:
                out.append("{--}")
        return out

    n_rowkeys = len(rows)
    n_data = len(col_keys) * per_cell
    spec = "l" * n_rowkeys + " " + " ".join([data_spec] * len(col_keys))
    lines: list[str] = []
    # Header: one line per column level, grouped spans with cmidrules under them.
    row_header = [escape_latex(n) for n in (row_names or rows)]
    for level, key_name in enumerate(columns):
        head = [""] * n_rowkeys if level < len(columns) - 1 else [f"{{{h}}}" for h in row_header]
        rules = []
        start = 0
        while start < len(col_keys):
            end = start
            prefix = col_keys[start][: level + 1]
            while end + 1 < len(col_keys) and col_keys[end + 1][: level + 1] == prefix:
                end += 1
            span = (end - start + 1) * per_cell
            text = label_of(key_name, col_keys[start][level])
            if span == 1:
                head.append(f"{{{text}}}")
            else:
                head.append(f"\\multicolumn{{{span}}}{{c}}{{{text}}}")
            if level < len(columns) - 1 or per_cell > 1:
                first = n_rowkeys + start * per_cell + 1
                rules.append(f"\\cmidrule(lr){{{first}-{first + span - 1}}}")
            start = end + 1
        lines.append(" & ".join(head) + " \\\\")
        if rules:
            lines.append(" ".join(rules))
    if per_cell == 2:
        # A sub-header naming the two columns of every cell.
        lines.append(
            " & ".join([""] * n_rowkeys + ["{Estimate}", "{95\\% CI}"] * len(col_keys)) + " \\\\"
        )
    body: list[str] = []
    previous: tuple[Any, ...] | None = None
    for rk in row_keys:
        # Print an outer row key once per group, with a little space between groups.
        shown = []
        for i, item in enumerate(rk):
            same_prefix = previous is not None and previous[: i + 1] == rk[: i + 1]
            shown.append("" if same_prefix and i < n_rowkeys - 1 else label_of(rows[i], item))
        if previous is not None and n_rowkeys > 1 and previous[0] != rk[0]:
            body.append("\\addlinespace")
        parts = shown[:]
        for ck in col_keys:
            parts.extend(render_cell(cells.get((rk, ck))))
        body.append(" & ".join(parts) + " \\\\")
        previous = rk

    notes = []
    if style == "pm" and ci is not None:
        notes.append("$\\pm$ gives half the width of the 95\\% bootstrap interval.")
    elif style == "interval" and ci is not None:
        notes.append("Brackets give the 95\\% bootstrap percentile interval.")
    if widest_marker:
        notes.append(
            "$^{*}$, $^{**}$, $^{***}$: adjusted $p<0.05$, $0.01$, $0.001$."
            if p_value == "p_adjusted"
            else "$^{*}$, $^{**}$, $^{***}$: $p<0.05$, $0.01$, $0.001$."
        )
    if best is not None:
        what = {"min": "lowest", "max": "highest", "abs_min": "closest to zero"}[best]
        notes.append(f"Bold: {what} value in each {best_within}.")
    lead = escape_latex(caption.strip())
    if lead and lead[-1] not in ".!?":
        lead += "."
    full_caption = " ".join([lead, *caption_notes, *notes]).strip()
    env = environment if environment != "auto" else ("table*" if n_data > 4 else "table")
    tex_lines = [
        "% Generated by xcal.analyze; needs \\usepackage{booktabs} and \\usepackage{siunitx}.",
        f"\\begin{{{env}}}",
        "\\centering",
        "\\small",
        _SISETUP,
        f"\\caption{{{full_caption}}}",
    ]
    if label:
        tex_lines.append(f"\\label{{{label}}}")
    tex_lines += [
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        *lines,
        "\\midrule",
        *body,
        "\\bottomrule",
        "\\end{tabular}",
        f"\\end{{{env}}}",
    ]
    # A plain-text copy of the cells, for Jupyter.
    plain: dict[str, list[str]] = {}
    for ck in col_keys:
        plain[" / ".join(str(x) for x in ck)] = [
            _plain(cells.get((rk, ck)), digits, style, ci is not None) for rk in row_keys
        ]
    index = pd.MultiIndex.from_tuples(row_keys, names=list(rows))
    return LatexTable(
        name=name,
        tex="\n".join(tex_lines) + "\n",
        caption=caption.strip() or name,
        frame=pd.DataFrame(plain, index=index),
    )


def _plain(cell: _Cell | None, digits: int, style: Style, has_ci: bool) -> str:
    if cell is None or not np.isfinite(cell.value):
        return "-"
    text = format_number(cell.value, digits)
    if has_ci and style != "none" and np.isfinite(cell.low) and np.isfinite(cell.high):
        text += f" [{format_number(cell.low, digits)}, {format_number(cell.high, digits)}]"
    text += significance_marker(cell.p_value)
    return text
