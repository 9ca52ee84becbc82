"""Planning an analysis: the store's runs cut into independent units of work.

A *cell* (:class:`CellUnit`) is every system's run on one task x split x
language x perturbation (x severity, seed, parameters): the runs that hold
the same examples and are compared with each other. Each cell also names,
for every run, the English run whose temperature it borrows (``ts_en``); those
temperatures are fitted first, once per English run (:class:`TemperatureUnit`).

Units carry run records (manifest fields, ids), never data: an executor sends
them to a worker, which loads the runs from the store itself
(:mod:`xcal.analyze.execute`). Each unit has a cache key, so the planner can
skip what an earlier analysis already computed (:mod:`xcal.analyze.cache`),
and each cell has its own bootstrap seed, so the result of a cell does not
depend on where, when or in which order it is computed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from xcal.analyze.cache import _digest, _run_signature, _temperature_key
from xcal.analyze.options import (
    ANALYSIS_VERSION,
    CELL_FIELDS,
    FIT_FIELDS,
    AnalysisOptions,
    Run,
)


@dataclass(frozen=True)
class TemperatureUnit:
    """Fit the temperature of one English run (on its fitting examples)."""

    name: str
    key: str  # temperature cache key
    run: Run


@dataclass(frozen=True)
class CellUnit:
    """Analyse one cell: its runs, and the English run each borrows a temperature from."""

    name: str
    key: str  # cell cache key
    runs: tuple[Run, ...]
    english: tuple[Run | None, ...]
    #: Fitted ``ts_en`` temperature of each run (None: none), filled in before
    #: the cell is executed (see :func:`with_temperatures`).
    english_temperatures: tuple[float | None, ...] = ()

    def temperature_keys(self, options: AnalysisOptions) -> list[str | None]:
        """The temperature cache key of each run's English run."""
        return [None if e is None else _temperature_key(e, options) for e in self.english]


@dataclass
class Plan:
    """Every cell of an analysis, in a fixed order, and the notes of planning."""

    cells: list[CellUnit]
    notes: list[str] = field(default_factory=list)


def plan_cells(runs: pd.DataFrame, options: AnalysisOptions) -> Plan:
    """Cut a store's runs table into cells, sorted by their identity.

    Examples
    --------
    >>> import tempfile
    >>> from xcal.analyze.synthetic import make_synthetic_store
    >>> store = make_synthetic_store(tempfile.mkdtemp(), languages=["en", "de"], n_examples=50)
    >>> plan = plan_cells(store.runs(), AnalysisOptions(baseline="baseline"))
    >>> [cell.name for cell in plan.cells], len(plan.cells[0].runs)
    (['xnli/test/de', 'xnli/test/en'], 2)
    """
    index = _EnglishIndex(runs, options)
    notes: list[str] = []
    if options.recalibrate:
        notes.extend(_missing_english_notes(index, runs, notes))
    cells = []
    for _, cell_runs in runs.groupby(list(CELL_FIELDS), sort=True, dropna=False):
        records = tuple(cell_runs.to_dict("records"))
        english = tuple(
            index.english_run(run, notes) if options.recalibrate else None for run in records
        )
        cells.append(
            CellUnit(
                name=_describe(records[0]),
                key=_cell_key(options, records, english),
                runs=records,
                english=english,
            )
        )
    return Plan(cells=cells, notes=notes)


def with_temperatures(
    cell: CellUnit, options: AnalysisOptions, temperatures: dict[str, float | None]
) -> CellUnit:
    """The cell with the fitted temperature of each run's English run filled in."""
    values = tuple(
        None if key is None else temperatures.get(key) for key in cell.temperature_keys(options)
    )
    return CellUnit(cell.name, cell.key, cell.runs, cell.english, values)


def temperature_units(cells: Sequence[CellUnit], options: AnalysisOptions) -> list[TemperatureUnit]:
    """The English runs the given cells borrow temperatures from, each once."""
    units: dict[str, TemperatureUnit] = {}
    for cell in cells:
        for english, key in zip(cell.english, cell.temperature_keys(options), strict=True):
            if english is not None and key is not None and key not in units:
                name = f"{english['model']} on {_describe(english)} (English temperature)"
                units[key] = TemperatureUnit(name=name, key=key, run=english)
    return list(units.values())


def _seed_for(seed: int, cell: Run) -> int:
    """The bootstrap seed of a cell: a function of the user's seed and the cell's identity.

    Not of the runs' contents or write times, so rebuilding an identical store
    gives identical intervals, and the cells are independent of processing
    order. The value is reported in the ``seed`` column so any row can be
    recomputed with ``xcal.stats.paired_bootstrap(..., rng=seed)``.
    """
    identity = json.dumps([seed, *(str(cell[f]) for f in CELL_FIELDS)])
    digest = hashlib.blake2b(identity.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _fit_key_of(run: Run) -> tuple[Any, ...]:
    return tuple(run[f] for f in FIT_FIELDS)


class _EnglishIndex:
    """English runs by model, task and perturbation (built on first use)."""

    def __init__(self, runs: pd.DataFrame, options: AnalysisOptions) -> None:
        self._runs = runs
        self._options = options
        self._by_key: dict[tuple[Any, ...], list[Run]] | None = None

    def english_run(self, run: Run, notes: list[str]) -> Run | None:
        """The English run of the same model, task and perturbation, if there is exactly one.

        Runs that differ only in the perturbation's parameters (language-specific
        tools) match; an English run with identical parameters is preferred, and
        several candidates without one are ambiguous (no temperature, a note).
        """
        if self._by_key is None:
            self._by_key = {}
            english = self._runs[self._runs["language"].isin(list(self._options.english))]
            for record in english.to_dict("records"):
                self._by_key.setdefault(_fit_key_of(record), []).append(record)
        candidates = self._by_key.get(_fit_key_of(run), [])
        same = [c for c in candidates if c["perturbation_params"] == run["perturbation_params"]]
        if same:
            return same[0]
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            notes.append(
                f"{run['model']} on {_describe(run)}: {len(candidates)} English runs with other "
                "perturbation parameters could fit its temperature; none used"
            )
        return None


def _missing_english_notes(index: _EnglishIndex, runs: pd.DataFrame, notes: list[str]) -> list[str]:
    """One note per model x task x condition whose runs have no English run to fit on."""
    missing: dict[tuple[str, str], list[str]] = {}
    for run in runs.to_dict("records"):
        if run["record_kind"] == "mining":
            continue  # mining fits its own map on the same language (xcal.analyze.mining)
        if index.english_run(run, notes) is None:
            where = _describe({**run, "language": "*"})
            missing.setdefault((str(run["model"]), where), []).append(str(run["language"]))
    return [
        f"{model} on {where}: no English run to fit a temperature on, so no ts_en for "
        f"{len(langs)} language(s) ({', '.join(sorted(langs)[:8])}{', ...' if len(langs) > 8 else ''})"
        for (model, where), langs in sorted(missing.items())
    ]


def _cell_key(
    options: AnalysisOptions, records: Sequence[Run], english: Sequence[Run | None]
) -> str:
    parts: list[Any] = [ANALYSIS_VERSION, options.cell_key()]
    pairs = sorted(zip(records, english, strict=True), key=lambda pair: str(pair[0]["run_id"]))
    for run, eng in pairs:
        parts.append([_run_signature(run), None if eng is None else _run_signature(eng)])
    return _digest(parts)


def _describe(run: Run) -> str:
    text = f"{run['task']}/{run['split']}/{run['language']}"
    if run["perturbation"] != "none":
        text += f" ({run['perturbation']} {float(run['severity']):g})"
    return text
