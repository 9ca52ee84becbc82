"""Small table helpers shared by the transfer analyses (column checks, group labels)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str = "table") -> None:
    """Raise a ``KeyError`` naming every column of ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what} lacks column(s) {missing}; has {list(frame.columns)}")


def with_group_keys(frame: pd.DataFrame, by: Sequence[str], key: Any) -> pd.DataFrame:
    """``frame`` with a ``groupby(by)`` group's key values as its first columns.

    The group's own labels replace any same-named column of ``frame``.
    """
    key_values = key if isinstance(key, tuple) else (key,)
    frame = frame.drop(columns=[c for c in by if c in frame.columns])
    for column, value in reversed(list(zip(by, key_values, strict=True))):
        frame.insert(0, column, value)
    return frame
