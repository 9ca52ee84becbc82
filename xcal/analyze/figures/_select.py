"""Picking and ordering what a figure or table shows from the tidy results."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from xcal.analyze.display_names import DEFAULT_NAMES, DisplayNames

#: Codes under which English appears (ISO 639-1 and -3): it goes first.
ENGLISH = ("en", "eng")


def single(frame: pd.DataFrame, column: str, value: Any) -> Any:
    """``value`` if given, else the only value of ``column`` (an error lists several)."""
    if value is not None:
        return value
    values = list(dict.fromkeys(frame[column].dropna()))
    if len(values) != 1:
        raise ValueError(f"several values of {column!r} ({values}); pass {column}=")
    return values[0]


def language_order(languages: Iterable[str]) -> list[str]:
    """English first, then the others alphabetically.

    >>> language_order(["sw", "de", "en", "de"])
    ['en', 'de', 'sw']
    """
    unique = sorted(set(languages))
    return [x for x in unique if x in ENGLISH] + [x for x in unique if x not in ENGLISH]


def condition_label(perturbation: str, severity: float, names: DisplayNames | None = None) -> str:
    """How a figure prints a condition: ``clean``, else the perturbation and its severity.

    ``names`` gives the printed names (default: :data:`DEFAULT_NAMES`).

    >>> condition_label("none", 0.0), condition_label("word_shuffle", 0.5)
    ('clean', 'word shuffle 50%')
    >>> condition_label("char_noise", 0.05, DisplayNames(perturbations={"char_noise": "typos"}))
    'typos 5%'
    """
    return (names or DEFAULT_NAMES).condition(perturbation, severity)


def condition_order(frame: pd.DataFrame) -> list[tuple[str, float]]:
    """(perturbation, severity) pairs present: clean first, then by name and severity."""
    pairs = {
        (str(p), float(s)) for p, s in zip(frame["perturbation"], frame["severity"], strict=True)
    }
    return sorted(pairs, key=lambda ps: (ps[0] != "none", ps[0], ps[1]))
