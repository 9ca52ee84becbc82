"""The analysis settings that change the numbers, recorded in a report and reused.

A report folder keeps ``settings.json`` with the retrieval temperature, bins,
fit fraction, source language, bootstrap resamples and seed it was computed
with. Re-analysing into the same folder starts from those values, not the
library defaults, so ``xcal analyze STORE -b B -o reports/demo`` reproduces
the demo's numbers without knowing that the demo read retrieval confidence
at a temperature of 0.05. An option given explicitly wins, with a note.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The file name inside a report folder.
SETTINGS_FILE = "settings.json"

#: setting -> (library default, command-line flag). Every one changes numbers.
NUMERIC_SETTINGS: dict[str, tuple[Any, str]] = {
    "retrieval_temperature": (1.0, "--retrieval-temperature"),
    "n_bins": (15, "--n-bins"),
    "fit_fraction": (0.5, "--fit-fraction"),
    "source_language": ("en", "--source-language"),
    "n_boot": (10_000, "--n-boot"),
    "seed": (0, "--seed"),
}


def settings_of(options: Any) -> dict[str, Any]:
    """The recorded settings of an :class:`~xcal.analyze.pipeline.AnalysisOptions`."""
    english = tuple(getattr(options, "english", ("en",)))
    return {
        "retrieval_temperature": float(options.retrieval_temperature),
        "n_bins": int(options.n_bins),
        "fit_fraction": float(options.fit_fraction),
        "source_language": english[0] if english else "en",
        "n_boot": int(options.n_boot),
        "seed": int(options.seed),
    }


def write_settings(out: str | os.PathLike[str], options: Any) -> Path:
    """Write ``OUT/settings.json`` atomically from the analysis options."""
    from xcal.atomic import atomic_write_text

    text = json.dumps(settings_of(options), indent=2, sort_keys=True) + "\n"
    return atomic_write_text(Path(out) / SETTINGS_FILE, text)


def read_settings(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings recorded in a report folder ({} when there are none).

    Raises
    ------
    ValueError
        The file exists but is not a JSON object of known settings of the right type.
    """
    path = Path(out) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    recorded: dict[str, Any] = {}
    for key, value in data.items():
        if key not in NUMERIC_SETTINGS:
            continue  # a later version's setting: ignored, not an error
        default = NUMERIC_SETTINGS[key][0]
        if isinstance(default, str):
            ok = isinstance(value, str) and bool(value.strip())
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise ValueError(
                f"{path}: {key} must be of type {type(default).__name__}, got {value!r}"
            )
        recorded[key] = type(default)(value)
    return recorded


def resolve_settings(
    given: Mapping[str, Any], recorded: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Settings for a re-analysis: given > recorded > default, and notes on what differs.

    ``given`` holds the values set explicitly (None: not given).

    Examples
    --------
    >>> settings, notes = resolve_settings({"n_bins": 10}, {"retrieval_temperature": 0.05})
    >>> settings["retrieval_temperature"], settings["n_bins"], settings["seed"]
    (0.05, 10, 0)
    >>> notes
    ['--retrieval-temperature 0.05 reused from the earlier report (default 1.0)']
    """
    settings: dict[str, Any] = {}
    notes: list[str] = []
    for key, (default, flag) in NUMERIC_SETTINGS.items():
        value = given.get(key)
        before = recorded.get(key)
        if value is not None:
            settings[key] = value
            if before is not None and before != value:
                notes.append(f"{flag} {value} differs from the earlier report's {before}")
        elif before is not None:
            settings[key] = before
            if before != default:
                notes.append(f"{flag} {before} reused from the earlier report (default {default})")
        else:
            settings[key] = default
    return settings, notes
