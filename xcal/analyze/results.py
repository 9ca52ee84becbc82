"""The tidy results table: one row per number, with its interval and p-value.

A row is one system x task x split x language x perturbation x severity x
metric x calibration variant, either the metric's value for the system
(``comparison == "value"``) or its paired difference to the baseline on the
same examples (``comparison == "difference"``, system minus baseline). The
grouping columns (architecture, intermediate tasks, resource class, distance
from English, task distance) ride along so that any group-by is one line of
pandas.

Variants: ``raw`` (the model's own probabilities), ``ts_en`` (temperature
fitted on English examples of the same model, task and perturbation, applied
to every language: zero-shot recalibration) and ``ts_self`` (temperature
fitted on each language itself: an upper reference). See
:mod:`xcal.analyze.pipeline` for which examples fit and which evaluate.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xcal.atomic import atomic_write_bytes

#: Columns that identify a row.
KEY_COLUMNS: tuple[str, ...] = (
    "system",
    "baseline",
    "comparison",
    "task",
    "split",
    "language",
    "perturbation",
    "severity",
    "perturbation_seed",
    "perturbation_params",
    "metric",
    "variant",
)
#: The number and its uncertainty.
VALUE_COLUMNS: tuple[str, ...] = (
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "correction",
    "method",
    "n_examples",
    "n_boot",
    "seed",
    "higher_is_better",
    "temperature",
)
#: Descriptions of the run(s) the number comes from, for grouping.
GROUP_COLUMNS: tuple[str, ...] = (
    "record_kind",
    "architecture",
    "intermediate_tasks",
    "resource_class",
    "language_distance",
    "task_distance",
    "run_id",
    "baseline_run_id",
)
RESULT_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *VALUE_COLUMNS, *GROUP_COLUMNS)

COMPARISONS = ("value", "difference")
VARIANTS = ("raw", "ts_en", "ts_self", "platt_self", "cosine")

_DTYPES: dict[str, Any] = {
    "severity": "float64",
    "perturbation_seed": "int64",
    "estimate": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "p_value": "float64",
    "p_adjusted": "float64",
    "n_examples": "int64",
    "n_boot": "int64",
    "seed": "int64",
    "higher_is_better": "bool",
    "temperature": "float64",
    "resource_class": "float64",  # Joshi et al. class 0-5; NaN when unknown
    "language_distance": "float64",
    "task_distance": "float64",
}


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is named, printed and compared."""

    name: str
    label: str  # plain text, for tables and axes
    higher_is_better: bool
    percent: bool  # printed x100 in tables and figures
    kinds: tuple[str, ...]  # record kinds it applies to
    calibration: bool  # changes under recalibration (so has ts variants)


_CLS = ("classification", "multiple_choice")
_ALL = ("classification", "multiple_choice", "qa", "retrieval", "mining")
#: Every metric the pipeline computes, in report order.
METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("accuracy", "Accuracy", True, True, (*_CLS, "retrieval"), False),
        MetricInfo("exact_match", "EM", True, True, ("qa",), False),
        MetricInfo("f1", "F1", True, True, ("qa", "mining"), False),
        MetricInfo("precision", "Precision", True, True, ("mining",), False),
        MetricInfo("recall", "Recall", True, True, ("mining",), False),
        MetricInfo("ece", "ECE", False, True, _ALL, True),
        MetricInfo("ece_mass", "ECE (equal mass)", False, True, _ALL, True),
        MetricInfo("debiased_ece", "Debiased ECE (L2)", False, True, _ALL, True),
        MetricInfo("smooth_ece", "Smooth ECE", False, True, _ALL, True),
        MetricInfo("mce", "MCE", False, True, _ALL, True),
        MetricInfo("classwise_ece", "Classwise ECE", False, True, _CLS, True),
        MetricInfo("brier", "Brier", False, False, _ALL, True),
        MetricInfo("nll", "NLL", False, False, _ALL, True),
        MetricInfo("aurc", "AURC", False, True, _ALL, False),
        MetricInfo("confidence", "Mean confidence", True, True, _ALL, True),
    )
}


def metric_info(name: str) -> MetricInfo:
    """Look up a metric; the error lists the known names."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def empty_results() -> pd.DataFrame:
    """A results frame with every column and no rows."""
    return conform(pd.DataFrame({c: [] for c in RESULT_COLUMNS}))


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Order columns as :data:`RESULT_COLUMNS` and fix their dtypes.

    Raises a ValueError naming any missing column.
    """
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"results frame is missing column(s) {missing}")
    out = frame.loc[:, list(RESULT_COLUMNS)].copy()
    for column, dtype in _DTYPES.items():
        out[column] = out[column].astype(dtype)
    return out.reset_index(drop=True)


def select(frame: pd.DataFrame, **filters: Any) -> pd.DataFrame:
    """Rows matching every filter; a list matches any of its values.

    Examples
    --------
    >>> df = pd.DataFrame({"language": ["de", "fr", "sw"], "metric": ["ece"] * 3})
    >>> select(df, language=["de", "sw"], metric="ece")["language"].tolist()
    ['de', 'sw']
    """
    mask = np.ones(len(frame), dtype=bool)
    for column, wanted in filters.items():
        if column not in frame.columns:
            raise KeyError(f"no column {column!r}; columns: {', '.join(frame.columns)}")
        values: Iterable[Any] = (
            wanted if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
        )
        mask &= frame[column].isin(list(values)).to_numpy()
    return frame[mask]


def write_results(frame: pd.DataFrame, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.parquet`` atomically into ``out_dir``."""
    frame = conform(frame)
    out = Path(out_dir)
    csv_bytes = frame.to_csv(index=False, float_format="%.10g").encode("utf-8")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    csv_path = atomic_write_bytes(out / "results.csv", csv_bytes)
    parquet_path = atomic_write_bytes(out / "results.parquet", buffer.getvalue())
    return csv_path, parquet_path


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results table written by :func:`write_results` (Parquet or CSV).

    ``path`` may be the report folder, ``results.parquet`` or ``results.csv``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no results table at {str(path)!r}; run `xcal analyze` first")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    try:
        return conform(frame)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
