"""Transfer gains: how much a system (e.g. with English intermediate-task training)
changes a metric over a baseline, per target task and language.

Two entry points:

* :func:`gains_from_table` takes an aggregated results table
  ``(system, task, language, metric, value)``, as published papers give;
* :func:`paired_gains` takes per-example results of two systems on the same
  examples and adds paired bootstrap intervals from :mod:`xcal.stats`.

``gain`` is always ``value - baseline_value``. ``improvement`` is the gain
signed so that positive is better: for lower-is-better metrics (ECE, NLL,
Brier, names ending in ``_error`` or ``_loss``) it is ``-gain``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

TABLE_COLUMNS: tuple[str, ...] = ("system", "task", "language", "metric", "value")

# Lower-is-better metric names; anything ending in _error or _loss is too (house rule).
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"ece", "mce", "rmsce", "ace", "nll", "brier", "aurc", "log_loss", "error_rate"}
)


class ResultsTableError(ValueError):
    """An aggregated results table is malformed; the message names the row or column."""


def is_lower_better(metric: str, lower_is_better: Collection[str] | None = None) -> bool:
    """Whether a lower value of ``metric`` is better.

    Examples
    --------
    >>> is_lower_better("ece"), is_lower_better("f1"), is_lower_better("nll_loss")
    (True, False, True)
    """
    name = metric.lower()
    if lower_is_better is not None:
        return name in {m.lower() for m in lower_is_better}
    return name in LOWER_IS_BETTER or name.endswith(("_error", "_loss"))


def read_results_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an aggregated results CSV (``#`` lines are comments) and check it.

    Required columns: ``system, task, language, metric, value``; extra columns
    are kept. Errors name the file and the (1-based, file) line.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("# note\\nsystem,task,language,metric,value\\nA,xnli,de,accuracy,80.1\\n")
    >>> read_results_table(p)["value"].tolist()
    [80.1]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results table {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    kept = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and line[0] != "#"]
    if not kept:
        raise ResultsTableError(f"{path}: no header row")
    frame = pd.read_csv(io.StringIO("".join(line for _, line in kept)), dtype=str)
    line_numbers = [n for n, _ in kept[1:]]
    return check_results_table(frame, source=str(path), line_numbers=line_numbers)


def check_results_table(
    table: pd.DataFrame, *, source: str = "table", line_numbers: Sequence[int] | None = None
) -> pd.DataFrame:
    """Validate an aggregated results table; return a copy with a float ``value``."""
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ResultsTableError(
            f"{source}: missing column(s) {missing}; expected {list(TABLE_COLUMNS)}, "
            f"got {list(table.columns)}"
        )
    table = table.reset_index(drop=True).copy()

    def where(i: int) -> str:
        return f"{source} line {line_numbers[i]}" if line_numbers else f"{source} row {i}"

    for column in ("system", "task", "language", "metric"):
        empty = table[column].isna() | (table[column].astype(str).str.strip() == "")
        if empty.any():
            raise ResultsTableError(f"{where(int(np.flatnonzero(empty)[0]))}: empty `{column}`")
        table[column] = table[column].astype(str).str.strip()
    values = pd.to_numeric(table["value"], errors="coerce")
    bad = values.isna() | ~np.isfinite(values.astype(float))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ResultsTableError(f"{where(i)}: `value` {table['value'].iloc[i]!r} is not a number")
    table["value"] = values.astype(float)
    duplicated = table.duplicated(["system", "task", "language", "metric"], keep=False)
    if duplicated.any():
        i = int(np.flatnonzero(duplicated)[0])
        key = [table.at[i, c] for c in ("system", "task", "language", "metric")]
        raise ResultsTableError(f"{where(i)}: duplicate (system, task, language, metric) {key}")
    return table


def gains_from_table(
    table: pd.DataFrame,
    *,
    baseline: str,
    systems: Sequence[str] | None = None,
    lower_is_better: Collection[str] | None = None,
) -> pd.DataFrame:
    """Gain of each system over ``baseline`` per (task, language, metric).

    Parameters
    ----------
    table
        Columns ``system, task, language, metric, value`` (see :func:`read_results_table`).
    baseline
        The ``system`` value of the baseline rows.
    systems
        Systems to compare (default: every system other than the baseline).
    lower_is_better
        Metric names where lower is better; default :data:`LOWER_IS_BETTER` plus
        names ending in ``_error`` / ``_loss``.

    Returns
    -------
    pandas.DataFrame
        ``system, baseline, task, language, metric, value, baseline_value, gain,
        higher_is_better, improvement, rank`` where ``rank`` orders the tasks of
        one (system, language) by improvement (1 = largest; ties share the lower rank).

    Examples
    --------
    >>> t = pd.DataFrame({"system": ["B", "A", "B", "A"], "task": ["x", "x", "y", "y"],
    ...                   "language": "de", "metric": ["accuracy"] * 2 + ["ece"] * 2,
    ...                   "value": [80.0, 79.0, 0.05, 0.08]})
    >>> g = gains_from_table(t, baseline="A")
    >>> g[["task", "gain", "improvement", "rank"]].round(2).values.tolist()
    [['x', 1.0, 1.0, 1], ['y', -0.03, 0.03, 2]]
    """
    table = check_results_table(table)
    keys = ["task", "language", "metric"]
    base = table[table["system"] == baseline]
    if base.empty:
        known = sorted(table["system"].unique())
        raise ResultsTableError(f"baseline system {baseline!r} not in the table; systems: {known}")
    if systems is None:
        systems = sorted(s for s in table["system"].unique() if s != baseline)
    else:
        unknown = sorted(set(systems) - set(table["system"]))
        if unknown:
            raise ResultsTableError(f"system(s) {unknown} not in the table")
    if not systems:
        raise ResultsTableError("no system to compare with the baseline")
    others = table[table["system"].isin(list(systems))]
    merged = others.merge(
        base[[*keys, "value"]].rename(columns={"value": "baseline_value"}),
        on=keys,
        how="left",
        validate="many_to_one",
    )
    unmatched = merged["baseline_value"].isna()
    if unmatched.any():
        rows = merged.loc[unmatched, ["system", *keys]].head(5).values.tolist()
        raise ResultsTableError(
            f"{int(unmatched.sum())} row(s) have no baseline ({baseline!r}) value for the same "
            f"(task, language, metric), e.g. {rows}"
        )
    merged.insert(1, "baseline", baseline)
    merged["gain"] = merged["value"] - merged["baseline_value"]
    merged["higher_is_better"] = [not is_lower_better(m, lower_is_better) for m in merged["metric"]]
    merged["improvement"] = np.where(merged["higher_is_better"], merged["gain"], -merged["gain"])
    merged["rank"] = (
        merged.groupby(["system", "language"])["improvement"]
        .rank(ascending=False, method="min")
        .astype(int)
    )
    columns = [
        "system", "baseline", "task", "language", "metric", "value", "baseline_value",
        "gain", "higher_is_better", "improvement", "rank",
    ]  # fmt: skip
    extra = [c for c in merged.columns if c not in columns]
    return merged[columns + extra].reset_index(drop=True)
