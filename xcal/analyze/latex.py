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
from collections.abc import Callable, Mapping, Sequence
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

#: How a cell shows its interval. ``brackets``: ``est [lo, hi]``; ``offsets``:
#: ``est^{+a}_{-b}`` (the distances to the bounds, exact for skewed intervals);
#: ``pm``: ``est ± h``, only where the interval is symmetric as printed, else
#: offsets; ``none``: the estimate only. ``interval`` is ``brackets``.
Style = Literal["brackets", "offsets", "pm", "none", "interval"]
#: The interval styles a user picks from (``xcal analyze --interval-style``).
INTERVAL_STYLES: tuple[str, ...] = ("offsets", "brackets")


@dataclass(frozen=True)
class Page:
    """The page a table must fit, in TeX points (defaults: a two-column ACL paper).

    ``column_width`` is one column (a ``table`` float), ``text_width`` both
    (a ``table*`` float), ``text_height`` the height of the text block.
    """

    column_width: float = 219.0  # 7.7 cm
    text_width: float = 455.0  # 16 cm
    text_height: float = 702.0  # 24.7 cm

    def preamble(self) -> str:
        """Page geometry for a test or preview document (``twocolumn`` article)."""
        column_sep = self.text_width - 2 * self.column_width
        return (
            f"\\setlength{{\\textwidth}}{{{self.text_width}pt}}\n"
            f"\\setlength{{\\columnsep}}{{{column_sep}pt}}\n"
            f"\\setlength{{\\textheight}}{{{self.text_height}pt}}\n"
            "\\setlength{\\oddsidemargin}{0pt}\\setlength{\\evensidemargin}{0pt}\n"
            "\\setlength{\\topmargin}{-40pt}\n"
        )


#: The default page: a two-column ACL-style paper.
TWO_COLUMN_PAGE = Page()


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


# Widths in pt of \small (9 pt Computer Modern) glyphs, rounded up: what the
# layout estimate uses to decide between table, table* and splitting.
_DIGIT, _BOLD_DIGIT, _SCRIPT_DIGIT = 4.5, 5.2, 3.6
_TABCOLSEP = 6.0
_ROW_HEIGHT, _TALL_ROW_HEIGHT = 11.0, 14.5  # \small baselineskip; with sub/superscripts


def _text_width(text: str) -> float:
    """Rough width in pt of plain text at ``\\small`` (upper case and digits wider)."""
    width = 0.0
    for char in text:
        if char.isupper() or char in "%&#@MW":
            width += 6.8
        elif char.isdigit():
            width += _DIGIT
        elif char in " .,;:'!|il[]()":
            width += 2.8
        else:
            width += 4.8
    return width


Separated = Callable[
    [tuple[tuple[Any, ...], tuple[Any, ...]], tuple[tuple[Any, ...], tuple[Any, ...]]], bool
]


@dataclass
class _Grid:
    """Every cell of a table and the formats shared by all its parts."""

    rows: list[str]
    columns: list[str]
    row_keys: list[tuple[Any, ...]]
    col_keys: list[tuple[Any, ...]]
    cells: dict[tuple[tuple[Any, ...], tuple[Any, ...]], _Cell]
    style: str
    digits: int
    label_of: Callable[[str, Any], str]
    plain_label_of: Callable[[str, Any], str]
    has_ci: bool
    s_spec: str
    degenerate: bool = False

    def offsets(self, cell: _Cell) -> tuple[str, str] | None:
        if not (np.isfinite(cell.low) and np.isfinite(cell.high)):
            return None
        up = format_number(max(cell.high - cell.value, 0.0), self.digits)
        down = format_number(max(cell.value - cell.low, 0.0), self.digits)
        return up, down

    def is_degenerate(self, cell: _Cell) -> bool:
        # An interval that is missing or of zero width as printed, next to a value.
        if not self.has_ci or not np.isfinite(cell.value):
            return False
        if not (np.isfinite(cell.low) and np.isfinite(cell.high)):
            return True
        return format_number(cell.low, self.digits) == format_number(cell.high, self.digits)

    @property
    def per_cell(self) -> int:
        return 2 if self.has_ci else 1

    def render_cell(self, cell: _Cell | None) -> list[str]:
        if cell is None or not np.isfinite(cell.value):
            return ["{--}"] + ([""] * (self.per_cell - 1))
        number = format_number(cell.value, self.digits)
        marker = significance_marker(cell.p_value)
        dagger = "\\textsuperscript{\\dag}" if self.is_degenerate(cell) else ""
        if not self.has_ci:
            text = number + (f"$^{{{marker}}}$" if marker else "")
            return [f"\\bfseries {text}" if cell.bold else text]
        head = f"\\bfseries {number}" if cell.bold else number
        star = f"${{}}^{{{marker}}}$" if marker else ""
        if self.style == "brackets":
            if np.isfinite(cell.low) and np.isfinite(cell.high):
                bounds = f"[{_math_number(cell.low, self.digits)}, {_math_number(cell.high, self.digits)}]"
            else:
                bounds = "{--}"
            return [head + (f"$^{{{marker}}}$" if marker else ""), bounds + dagger]
        pair = self.offsets(cell)
        if pair is None:
            return [head, star + dagger]
        up, down = pair
        if self.style == "pm" and up == down:
            return [head, f"${{}}\\pm {up}$" + star + dagger]
        return [head, f"${{}}^{{+{up}}}_{{-{down}}}$" + star + dagger]

    def plain_cell(self, cell: _Cell | None) -> str:
        if cell is None or not np.isfinite(cell.value):
            return "-"
        text = format_number(cell.value, self.digits)
        if self.has_ci and np.isfinite(cell.low) and np.isfinite(cell.high):
            text += f" [{format_number(cell.low, self.digits)}, {format_number(cell.high, self.digits)}]"
        return text + significance_marker(cell.p_value)

    # ---------------------------------------------------------------- layout estimate

    def _cell_widths(self, cell: _Cell | None) -> tuple[float, float]:
        if cell is None or not np.isfinite(cell.value):
            return 2 * _DIGIT, 0.0
        marker = len(significance_marker(cell.p_value)) * 3.5
        dagger = 4.0 if self.is_degenerate(cell) else 0.0
        printed = format_number(cell.value, self.digits)
        number = len(printed) * _BOLD_DIGIT + 2.5 * printed.count("-")
        if not self.has_ci:
            return number + marker, 0.0
        if self.style == "brackets":
            low, high = (format_number(v, self.digits) for v in (cell.low, cell.high))
            # A math minus is wider than a digit; brackets and comma ~10pt.
            inner = (len(low) + len(high)) * _DIGIT + 2.5 * (low + high).count("-") + 12.0
            return number + marker, inner + dagger
        pair = self.offsets(cell)
        if pair is None:
            return number, marker + dagger
        return number, (max(len(pair[0]), len(pair[1])) + 1) * _SCRIPT_DIGIT + marker + dagger + 2

    def column_width(self, col: tuple[Any, ...], row_keys: Sequence[tuple[Any, ...]]) -> float:
        """Estimated width (pt) of one column key's block, including its separation."""
        number, extra = 0.0, 0.0
        for rk in row_keys:
            a, b = self._cell_widths(self.cells.get((rk, col)))
            number, extra = max(number, a), max(extra, b)
        if self.has_ci and self.style == "brackets":
            # The sub-header names both columns of a cell.
            number = max(number, _text_width("Estimate"))
            extra = max(extra, _text_width("95% CI"))
            body = number + extra + 4 * _TABCOLSEP
        elif self.has_ci:
            body = number + extra + 2 * _TABCOLSEP  # @{} joins number and interval
        else:
            body = number + 2 * _TABCOLSEP
        header = _text_width(self.plain_label_of(self.columns[-1], col[-1])) + 2 * _TABCOLSEP
        return max(body, header)

    def width(
        self,
        row_keys: Sequence[tuple[Any, ...]],
        col_keys: Sequence[tuple[Any, ...]],
        row_names: Sequence[str],
    ) -> float:
        """Estimated natural width (pt) of the tabular of these rows and columns."""
        total = 0.0
        for level, name in enumerate(self.rows):
            texts = [self.plain_label_of(name, rk[level]) for rk in row_keys] + [row_names[level]]
            total += max(_text_width(t) for t in texts) + 2 * _TABCOLSEP
        blocks = [self.column_width(ck, row_keys) for ck in col_keys]
        # An upper header wider than the columns it spans widens them.
        for level in range(len(self.columns) - 1):
            start = 0
            while start < len(col_keys):
                end = start
                prefix = col_keys[start][: level + 1]
                while end + 1 < len(col_keys) and col_keys[end + 1][: level + 1] == prefix:
                    end += 1
                need = (
                    _text_width(self.plain_label_of(self.columns[level], prefix[-1]))
                    + 2 * _TABCOLSEP
                )
                have = sum(blocks[start : end + 1])
                if need > have:
                    blocks[end] += need - have
                start = end + 1
        return total + sum(blocks)

    def height(self, n_rows: int, n_groups: int, caption: str, width: float) -> float:
        """Estimated height (pt) of the float: caption, header, rows, rules."""
        row = _TALL_ROW_HEIGHT if self.has_ci and self.style != "brackets" else _ROW_HEIGHT
        caption_lines = math.ceil(_text_width(caption) / max(width, 100.0)) + 1
        header = (len(self.columns) + (1 if self.style == "brackets" and self.has_ci else 0)) * 13.0
        return caption_lines * 11.0 + header + n_rows * row + n_groups * 4.5 + 30.0


def _uncertainty_digits(text: str) -> int:
    # siunitx stores ``0.032 \pm 0.011`` as ``0.032(11)``: count those digits.
    digits = text.replace(".", "").lstrip("0")
    return max(len(digits), 1)


def _overlap_free(grid_cells: Mapping[Any, _Cell]) -> Separated:
    def separated(best: Any, runner_up: Any) -> bool:
        a, b = grid_cells[best], grid_cells[runner_up]
        if not all(np.isfinite(v) for v in (a.low, a.high, b.low, b.high)):
            return False
        return a.high < b.low or b.high < a.low

    return separated


def _build_grid(
    frame: pd.DataFrame,
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    value: str,
    ci: tuple[str, str] | None,
    p_value: str | None,
    style: Style,
    best: Literal["min", "max", "abs_min"] | None,
    best_within: Literal["row", "column"],
    separated: Separated | None,
    digits: int,
    scale: float,
    name: str,
    formatters: dict[str, Callable[[Any], str]] | None,
    orders: dict[str, Sequence[Any] | Callable[[Any], Any]] | None,
) -> _Grid:
    if frame.empty:
        raise ValueError(f"table {name!r}: no rows to render")
    style = "brackets" if style == "interval" else style
    if style not in ("brackets", "offsets", "pm", "none"):
        raise ValueError(
            f"table {name!r}: unknown interval style {style!r}; expected one of "
            f"{', '.join(INTERVAL_STYLES)}, pm or none"
        )
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

    def plain_label_of(key: str, item: Any) -> str:
        fmt = formatters.get(key)
        return str(fmt(item) if fmt is not None else item)

    def label_of(key: str, item: Any) -> str:
        return escape_latex(plain_label_of(key, item))

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
    has_ci = ci is not None and style != "none"
    cells: dict[tuple[tuple[Any, ...], tuple[Any, ...]], _Cell] = {}
    for _, r in frame.iterrows():
        cell = _Cell(value=float(r[value]) * scale)
        if has_ci:
            assert ci is not None
            cell.low = float(r[ci[0]]) * scale
            cell.high = float(r[ci[1]]) * scale
        if p_value is not None:
            cell.p_value = float(r[p_value])
        cells[(_key(r, rows), _key(r, columns))] = cell

    # Bold the best value within each row or column, only where a test says it
    # differs from the runner-up (default: the two 95% intervals do not overlap).
    if best is not None:
        test = separated or _overlap_free(cells)
        groups = row_keys if best_within == "row" else col_keys
        for group in groups:
            members = [
                (key, c)
                for key, c in cells.items()
                if (key[0] if best_within == "row" else key[1]) == group and np.isfinite(c.value)
            ]
            if len(members) < 2:
                continue

            def goodness(v: float) -> float:
                printed = float(format_number(v, digits))
                return {"min": -printed, "max": printed, "abs_min": -abs(printed)}[best]

            members.sort(key=lambda kc: goodness(kc[1].value), reverse=True)
            (top_key, top), (next_key, runner) = members[0], members[1]
            if goodness(top.value) > goodness(runner.value) and test(top_key, next_key):
                top.bold = True

    # siunitx column format from what is printed.
    finite = [c for c in cells.values() if np.isfinite(c.value)]
    int_digits = max([len(format_number(abs(c.value), 0)) for c in finite] or [1])
    signed = any(format_number(c.value, digits).startswith("-") for c in finite)
    fmt = f"{'-' if signed else ''}{int_digits}.{digits}"
    s_options = f"table-format={fmt}"
    in_number_column = not has_ci or style == "brackets"
    markers = [significance_marker(c.p_value) for c in cells.values()]
    widest_marker = max(markers, key=len) if markers else ""
    if widest_marker and in_number_column:
        s_options += f", table-space-text-post={{$^{{{widest_marker}}}$}}"
    spec = f"S[{s_options}]"
    if has_ci:
        spec += " c" if style == "brackets" else " @{}l"
    return _Grid(
        rows=list(rows),
        columns=list(columns),
        row_keys=row_keys,
        col_keys=col_keys,
        cells=cells,
        style=style,
        digits=digits,
        label_of=label_of,
        plain_label_of=plain_label_of,
        has_ci=has_ci,
        s_spec=spec,
    )


def _caption_notes(
    grid: _Grid,
    row_keys: Sequence[tuple[Any, ...]],
    col_keys: Sequence[tuple[Any, ...]],
    *,
    p_value: str | None,
    best: str | None,
    best_within: str,
    separation_note: str,
    degenerate_note: str,
) -> list[str]:
    shown = [grid.cells[(rk, ck)] for rk in row_keys for ck in col_keys if (rk, ck) in grid.cells]
    notes = []
    if grid.has_ci and grid.style == "brackets":
        notes.append("Brackets give the 95\\% bootstrap percentile interval.")
    elif grid.has_ci:
        notes.append(
            "Superscript and subscript: distance from the estimate to the upper and lower "
            "bound of the 95\\% bootstrap percentile interval"
            + ("; $\\pm$ where the two are equal." if grid.style == "pm" else ".")
        )
    if any(grid.is_degenerate(c) for c in shown):
        notes.append(f"\\dag: {degenerate_note}")
    if any(significance_marker(c.p_value) for c in shown):
        notes.append(
            "$^{*}$, $^{**}$, $^{***}$: adjusted $p<0.05$, $0.01$, $0.001$."
            if p_value == "p_adjusted"
            else "$^{*}$, $^{**}$, $^{***}$: $p<0.05$, $0.01$, $0.001$."
        )
    if best is not None:
        what = {"min": "lowest", "max": "highest", "abs_min": "closest to zero"}[best]
        notes.append(
            f"Bold: the {what} value in its {best_within}, only where it differs significantly "
            f"from the next ({separation_note})"
            + ("; no value is bold here." if not any(c.bold for c in shown) else ".")
        )
    return notes


def _render(
    grid: _Grid,
    row_keys: Sequence[tuple[Any, ...]],
    col_keys: Sequence[tuple[Any, ...]],
    *,
    caption: str,
    notes: Sequence[str],
    label: str | None,
    name: str,
    row_names: Sequence[str],
    environment: str,
) -> LatexTable:
    per_cell = grid.per_cell
    n_rowkeys = len(grid.rows)
    spec = "l" * n_rowkeys + " " + " ".join([grid.s_spec] * len(col_keys))
    lines: list[str] = []
    # Header: one line per column level, grouped spans with cmidrules under them.
    row_header = [escape_latex(n) for n in row_names]
    for level, key_name in enumerate(grid.columns):
        last = level == len(grid.columns) - 1
        head = [f"{{{h}}}" for h in row_header] if last else [""] * n_rowkeys
        rules = []
        start = 0
        while start < len(col_keys):
            end = start
            prefix = col_keys[start][: level + 1]
            while end + 1 < len(col_keys) and col_keys[end + 1][: level + 1] == prefix:
                end += 1
            span = (end - start + 1) * per_cell
            text = grid.label_of(key_name, col_keys[start][level])
            head.append(f"{{{text}}}" if span == 1 else f"\\multicolumn{{{span}}}{{c}}{{{text}}}")
            if not last or (grid.style == "brackets" and per_cell > 1):
                first = n_rowkeys + start * per_cell + 1
                rules.append(f"\\cmidrule(lr){{{first}-{first + span - 1}}}")
            start = end + 1
        lines.append(" & ".join(head) + " \\\\")
        if rules:
            lines.append(" ".join(rules))
    if per_cell == 2 and grid.style == "brackets":
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
            shown.append(
                "" if same_prefix and i < n_rowkeys - 1 else grid.label_of(grid.rows[i], item)
            )
        if previous is not None and n_rowkeys > 1 and previous[0] != rk[0]:
            body.append("\\addlinespace")
        parts = shown[:]
        for ck in col_keys:
            parts.extend(grid.render_cell(grid.cells.get((rk, ck))))
        body.append(" & ".join(parts) + " \\\\")
        previous = rk

    lead = escape_latex(caption.strip())
    if lead and lead[-1] not in ".!?":
        lead += "."
    full_caption = " ".join([lead, *notes]).strip()
    tex_lines = [
        "% Generated by xcal.analyze; needs \\usepackage{booktabs} and \\usepackage{siunitx}.",
        f"\\begin{{{environment}}}",
        "\\centering",
        "\\small",
        _SISETUP,
        f"\\caption{{{full_caption}}}",
    ]
    if grid.has_ci and grid.style != "brackets":
        # Room for the stacked offsets between rows (local to this float).
        tex_lines.append("\\renewcommand{\\arraystretch}{1.2}")
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
        f"\\end{{{environment}}}",
    ]
    # A plain-text copy of the cells, for Jupyter.
    plain: dict[str, list[str]] = {}
    for ck in col_keys:
        plain[" / ".join(str(x) for x in ck)] = [
            grid.plain_cell(grid.cells.get((rk, ck))) for rk in row_keys
        ]
    index = pd.MultiIndex.from_tuples(list(row_keys), names=list(grid.rows))
    return LatexTable(
        name=name,
        tex="\n".join(tex_lines) + "\n",
        caption=caption.strip() or name,
        frame=pd.DataFrame(plain, index=index),
    )


_DEGENERATE_NOTE = (
    "no interval: every bootstrap resample gives the same value (e.g. every evaluation "
    "example is predicted correctly with full confidence)."
)


def table_from_frame(
    frame: pd.DataFrame,
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    value: str = "estimate",
    ci: tuple[str, str] | None = ("ci_low", "ci_high"),
    p_value: str | None = "p_adjusted",
    style: Style = "offsets",
    best: Literal["min", "max", "abs_min"] | None = None,
    best_within: Literal["row", "column"] = "row",
    separated: Separated | None = None,
    separation_note: str = "non-overlapping 95\\% intervals",
    degenerate_note: str = _DEGENERATE_NOTE,
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
    page: Page = TWO_COLUMN_PAGE,
) -> LatexTable:
    r"""Render a tidy frame as one booktabs table with siunitx columns.

    One table cell per distinct combination of ``rows`` x ``columns``; several
    column keys make a multi-level header with ``\cmidrule`` under each group.
    :func:`tables_from_frame` splits (or transposes) a table that would not fit
    the page; this function never does.

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
        Interval columns, shown as :data:`Style` says.
    p_value : str or None
        Column of (adjusted) p-values; markers per :data:`SIGNIFICANCE_LEVELS`.
    style : {"offsets", "brackets", "pm", "none"}
        ``offsets``: ``est^{+a}_{-b}``; ``brackets``: ``est [lo, hi]`` in a
        second column; ``pm``: ``est ± h`` where the printed interval is
        symmetric, offsets elsewhere (a skewed interval is never shown as
        ``±``); ``none``: the value only.
    best : {"min", "max", "abs_min"} or None
        Bold the best value within each row or column, only where ``separated``
        says it differs from the runner-up (ties are never bold).
    separated : callable or None
        ``separated(best_key, next_key)`` with keys ``(row_key, column_key)``:
        whether the difference is significant. Default: the two intervals do
        not overlap (conservative); without intervals nothing is bold.
    separation_note : str
        How ``separated`` decides, for the caption (raw LaTeX).
    degenerate_note : str
        What a ``\dag`` (missing or zero-width interval) means, for the caption.
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
        ``auto`` uses ``table*`` (both columns of a two-column paper) when the
        estimated width exceeds ``page.column_width``.
    page : Page
        The page the table is laid out for.

    Returns
    -------
    LatexTable

    Examples
    --------
    >>> df = pd.DataFrame({"lang": ["de", "fr"], "sys": ["b", "b"], "estimate": [0.1, -0.2],
    ...                    "ci_low": [0.0, -0.25], "ci_high": [0.2, -0.1],
    ...                    "p_adjusted": [0.3, 0.004]})
    >>> t = table_from_frame(df, rows=["lang"], columns=["sys"], digits=2)
    >>> print([line for line in t.tex.splitlines() if line.startswith("fr")][0])
    fr & -0.20 & ${}^{+0.10}_{-0.05}$${}^{**}$ \\
    """
    grid = _build_grid(
        frame,
        rows=rows,
        columns=columns,
        value=value,
        ci=ci,
        p_value=p_value,
        style=style,
        best=best,
        best_within=best_within,
        separated=separated,
        digits=digits,
        scale=scale,
        name=name,
        formatters=formatters,
        orders=orders,
    )
    names = list(row_names or rows)
    if environment == "auto":
        width = grid.width(grid.row_keys, grid.col_keys, names)
        environment = "table*" if width > page.column_width else "table"
    notes = [
        *caption_notes,
        *_caption_notes(
            grid,
            grid.row_keys,
            grid.col_keys,
            p_value=p_value,
            best=best,
            best_within=best_within,
            separation_note=separation_note,
            degenerate_note=degenerate_note,
        ),
    ]
    return _render(
        grid,
        grid.row_keys,
        grid.col_keys,
        caption=caption,
        notes=notes,
        label=label,
        name=name,
        row_names=names,
        environment=environment,
    )


def _split_even(items: Sequence[Any], parts: int) -> list[list[Any]]:
    size = math.ceil(len(items) / parts)
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _column_chunks(
    grid: _Grid, row_keys: Sequence[tuple[Any, ...]], names: Sequence[str], limit: float
) -> list[list[tuple[Any, ...]]]:
    # Greedy: as many column keys per part as fit the width limit.
    chunks: list[list[tuple[Any, ...]]] = [[]]
    for ck in grid.col_keys:
        trial = [*chunks[-1], ck]
        if chunks[-1] and grid.width(row_keys, trial, names) > limit:
            chunks.append([ck])
        else:
            chunks[-1] = trial
    return chunks


def _layout(
    grid: _Grid, names: Sequence[str], caption: str, page: Page
) -> tuple[list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], str]], int]:
    """Split rows and columns so every part fits ``page``: (parts, number of parts)."""
    col_chunks = _column_chunks(grid, grid.row_keys, names, page.text_width)
    parts = []
    for cols in col_chunks:
        width = grid.width(grid.row_keys, cols, names)
        env = "table" if width <= page.column_width else "table*"
        usable = page.column_width if env == "table" else page.text_width
        n_groups = len({rk[0] for rk in grid.row_keys}) - 1 if len(grid.rows) > 1 else 0
        n_row_parts = 1
        while n_row_parts < len(grid.row_keys):
            chunk = math.ceil(len(grid.row_keys) / n_row_parts)
            if grid.height(chunk, n_groups, caption, usable) <= page.text_height:
                break
            n_row_parts += 1
        for rows in _split_even(grid.row_keys, n_row_parts):
            parts.append((rows, cols, env))
    return parts, len(parts)


def tables_from_frame(
    frame: pd.DataFrame,
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    transpose: bool | Literal["auto"] = "auto",
    page: Page = TWO_COLUMN_PAGE,
    best_within: Literal["row", "column"] = "row",
    row_names: Sequence[str] | None = None,
    column_names: Sequence[str] | None = None,
    caption: str = "",
    caption_notes: Sequence[str] = (),
    label: str | None = None,
    name: str = "table",
    **options: Any,
) -> list[LatexTable]:
    r"""Like :func:`table_from_frame`, laid out to fit ``page``: one table or several parts.

    The table goes in one column (``table``) when it fits there, else across
    both (``table*``). Wider than the page, its columns are split into parts
    (each with every row); taller than the page, its rows are. With
    ``transpose="auto"`` rows and columns are swapped when that needs fewer
    parts (``column_names`` then heads the new row keys). Parts are named
    ``NAME_part1``... and captioned "(part k of n)"; each repeats the notes.

    Examples
    --------
    >>> df = pd.DataFrame({"lang": [f"l{i}" for i in range(120)], "sys": "b",
    ...                    "estimate": 0.1, "ci_low": 0.05, "ci_high": 0.2})
    >>> parts = tables_from_frame(df, rows=["lang"], columns=["sys"], p_value=None, name="ece")
    >>> [t.name for t in parts]
    ['ece_part1', 'ece_part2', 'ece_part3']
    """
    row_names = list(row_names or rows)
    column_names = list(column_names or columns)
    best = options.get("best")
    p_value = options.get("p_value", "p_adjusted")
    grid_options = {
        k: options[k]
        for k in (
            "value",
            "ci",
            "p_value",
            "style",
            "best",
            "separated",
            "digits",
            "scale",
            "formatters",
            "orders",
        )
        if k in options
    }
    grid_options.setdefault("value", "estimate")
    grid_options.setdefault("ci", ("ci_low", "ci_high"))
    grid_options.setdefault("p_value", "p_adjusted")
    grid_options.setdefault("style", "offsets")
    grid_options.setdefault("best", None)
    grid_options.setdefault("separated", None)
    grid_options.setdefault("digits", 3)
    grid_options.setdefault("scale", 1.0)
    grid_options.setdefault("formatters", None)
    grid_options.setdefault("orders", None)
    unknown = set(options) - set(grid_options) - {"separation_note", "degenerate_note"}
    if unknown:
        raise TypeError(f"tables_from_frame: unexpected option(s) {sorted(unknown)}")
    lead = caption
    candidates = []
    for swapped in [False, True] if transpose == "auto" else [bool(transpose)]:
        r, c = (columns, rows) if swapped else (rows, columns)
        names = column_names if swapped else row_names
        within: Literal["row", "column"] = (
            ("column" if best_within == "row" else "row") if swapped else best_within
        )
        separated = grid_options["separated"]
        if swapped and separated is not None:
            inner = separated
            separated = lambda a, b, f=inner: f((a[1], a[0]), (b[1], b[0]))  # noqa: E731
        grid = _build_grid(
            frame,
            rows=r,
            columns=c,
            best_within=within,
            name=name,
            **{**grid_options, "separated": separated},
        )
        parts, n = _layout(grid, names, lead, page)
        candidates.append((n, swapped, grid, parts, names, within))
        if n == 1:
            break
    n, swapped, grid, parts, names, within = min(candidates, key=lambda c: (c[0], c[1]))
    tables = []
    for k, (row_keys, col_keys, env) in enumerate(parts):
        suffix = f"_part{k + 1}" if n > 1 else ""
        part_caption = caption.strip()
        if n > 1:
            part_caption = part_caption.rstrip(".") + f" (part {k + 1} of {n})."
        notes = [
            *caption_notes,
            *_caption_notes(
                grid,
                row_keys,
                col_keys,
                p_value=p_value,
                best=best,
                best_within=within,
                separation_note=options.get("separation_note", "non-overlapping 95\\% intervals"),
                degenerate_note=options.get("degenerate_note", _DEGENERATE_NOTE),
            ),
        ]
        tables.append(
            _render(
                grid,
                row_keys,
                col_keys,
                caption=part_caption,
                notes=notes,
                label=f"{label}{suffix.replace('_', '-')}" if label else None,
                name=name + suffix,
                row_names=names,
                environment=env,
            )
        )
    return tables
