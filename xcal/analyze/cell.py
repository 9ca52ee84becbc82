"""Executing one unit of work: a cell's metrics, intervals and p-values, or a temperature.

Both functions take the store, the options and a unit planned by
:mod:`xcal.analyze.plan`, read only that unit's runs, and return plain data
(frames, numbers, notes); they touch no cache and no shared state, so they run
the same in this process, in a local worker process or on a cluster's worker.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xcal.analyze.bootstrap import bootstrap_statistics
from xcal.analyze.clusters import cluster_codes
from xcal.analyze.options import (
    CELL_FIELDS,
    MIN_FIT_EXAMPLES,
    RELIABILITY_COLUMNS,
    AnalysisOptions,
    Run,
)
from xcal.analyze.plan import CellUnit, TemperatureUnit, _describe, _seed_for
from xcal.analyze.predictions import (
    _Predictions,
    _score,
    _Scored,
    _statistic,
    fit_mask,
    load_predictions,
)
from xcal.analyze.results import RESULT_COLUMNS, empty_results, metric_info

if TYPE_CHECKING:
    from xcal.store import PredictionStore


def fit_english_temperature(
    store: PredictionStore, options: AnalysisOptions, unit: TemperatureUnit
) -> float | None:
    """The temperature fitted on an English run's fitting examples (None: too few)."""
    pred = load_predictions(store, unit.run, options)
    fit = pred.subset(fit_mask(pred.ids, options.fit_fraction))
    if len(fit.ids) < MIN_FIT_EXAMPLES:
        return None
    return fit.fit().temperature


def _group_values(run: Run) -> dict[str, Any]:
    tasks = run.get("intermediate_tasks") or ()
    return {
        "record_kind": run["record_kind"],
        "architecture": run.get("architecture", ""),
        "intermediate_tasks": "+".join(tasks),
    }


def analyse_cell(
    store: PredictionStore, options: AnalysisOptions, cell: CellUnit
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Load the cell's runs, score every variant, bootstrap values and differences.

    Returns the result rows, the reliability bins and the notes of the cell.
    The English temperatures must be filled in (:func:`xcal.analyze.plan.with_temperatures`).
    """
    from xcal.stats.pairing import align_examples

    records = list(cell.runs)
    t_english = cell.english_temperatures or (None,) * len(records)
    notes: list[str] = []
    loaded = {str(r["run_id"]): load_predictions(store, r, options) for r in records}
    kinds = {p.kind for p in loaded.values()}
    if len(kinds) > 1:
        raise ValueError(f"cell {_describe(records[0])} mixes record kinds {sorted(kinds)}")
    if kinds == {"mining"}:
        from xcal.analyze.mining import analyse_mining_cell

        mining_rows, mining_bins = analyse_mining_cell(options, records, loaded, notes)
        return mining_rows, mining_bins, notes
    _check_same_labels(records, loaded)
    # Runs holding other examples are refused unless asked; sorted ids, whatever the storage order.
    alignment = align_examples(
        {str(r["model"]): loaded[str(r["run_id"])].ids for r in records},
        shared=options.shared_examples,
        where=_describe(records[0]),
    )
    if not alignment.complete:
        notes.append(
            f"{_describe(records[0])}: compared on the {len(alignment.ids)} examples all runs "
            f"share (--on-shared-examples); left out: {alignment.extra}"
        )
    ordered_ids = alignment.ids
    if options.recalibrate:
        in_fit = fit_mask(ordered_ids, options.fit_fraction)
        eval_ids, fit_ids = ordered_ids[~in_fit], ordered_ids[in_fit]
    else:
        eval_ids, fit_ids = ordered_ids, ordered_ids[:0]
    if len(eval_ids) == 0:
        notes.append(f"{_describe(records[0])}: no evaluation examples; skipped")
        return empty_results(), pd.DataFrame(columns=list(RELIABILITY_COLUMNS)), notes

    # Score every run under every variant on the evaluation examples.
    per_system: dict[str, dict[str, tuple[_Predictions, _Scored]]] = {}
    run_of: dict[str, Run] = {}
    for run, t_en in zip(records, t_english, strict=True):
        pred = loaded[str(run["run_id"])]
        position = {v: i for i, v in enumerate(pred.ids.tolist())}
        eval_pred = pred.subset(np.array([position[i] for i in eval_ids], dtype=np.intp))
        temperatures: dict[str, float] = {"raw": pred.base_temperature}
        if options.recalibrate:
            if len(fit_ids) >= MIN_FIT_EXAMPLES:
                fit_pred = pred.subset(np.array([position[i] for i in fit_ids], dtype=np.intp))
                fitted = fit_pred.fit()
                temperatures["ts_self"] = fitted.temperature
                if (note := fitted.note()) is not None:
                    notes.append(f"{run['model']} on {_describe(run)}: {note}")
            if t_en is not None:
                temperatures["ts_en"] = t_en
        system = str(run["model"])
        per_system[system] = {v: (eval_pred, _score(eval_pred, t)) for v, t in temperatures.items()}
        run_of[system] = run
    del loaded

    seed = _seed_for(options.seed, records[0])
    n = len(eval_ids)
    # The task's natural clusters (XNLI: a premise's hypotheses) move together;
    # codes from the sorted ids, so the draws are the same in any worker.
    # QA runs record their paragraphs; any system's will do (they come from the data)
    raw = [variants["raw"][0] for variants in per_system.values()]
    recorded = next((p.units for p in raw if p.units is not None), None)
    codes, n_units = (
        cluster_codes(str(records[0]["task"]), eval_ids, recorded)
        if options.clusters
        else (None, n)
    )
    if codes is not None and n_units == n:
        codes = None  # every example its own cluster: the same draws, faster
    clustered = codes is not None

    recentred_keys: set[tuple[str, str, str]] = set()

    def statistics() -> Iterator[tuple[tuple[str, str, str], Any]]:
        """(system, variant, metric) -> Statistic, one at a time (see bootstrap_statistics)."""
        for system, variants in per_system.items():
            for variant, (pred, scored) in variants.items():
                for metric in options.metrics:
                    if variant != "raw" and not metric_info(metric).calibration:
                        continue
                    stat = _statistic(metric, pred, scored, options.n_bins)
                    if stat is not None:
                        if stat.recentred_differences:
                            recentred_keys.add((system, variant, metric))
                        yield (system, variant, metric), stat
                        del stat

    estimates, replicates = bootstrap_statistics(
        statistics(), n, options.n_boot, seed, codes, n_units
    )
    resampled = f"{n_units} clusters" if clustered else "examples"

    base = {f: records[0][f] for f in CELL_FIELDS}
    temperature_of = {
        (system, variant): scored.temperature
        for system, variants in per_system.items()
        for variant, (_, scored) in variants.items()
    }
    rows = comparison_rows(
        base,
        estimates,
        replicates,
        run_of,
        options,
        seed=seed,
        n=n,
        resampled=resampled,
        temperatures=temperature_of,
        recentred_keys=recentred_keys,
    )

    bins: list[dict[str, Any]] = []
    for system, variants in per_system.items():
        for variant, (_, scored) in variants.items():
            bins += reliability_rows(
                system, variant, base, scored.confidence, scored.correct, options.n_bins
            )
    frame, reliability = cell_frames(rows, bins)
    return frame, reliability, notes


def comparison_rows(
    base: Mapping[str, Any],
    estimates: Mapping[tuple[str, str, str], float],
    replicates: Mapping[tuple[str, str, str], np.ndarray],
    run_of: Mapping[str, Run],
    options: AnalysisOptions,
    *,
    seed: int,
    n: int,
    resampled: str | None = None,
    temperatures: Mapping[tuple[str, str], float] | None = None,
    finite_only: bool = False,
    recentred_keys: Collection[tuple[str, str, str]] = (),
) -> list[dict[str, Any]]:
    """A cell's result rows: each (system, variant, metric) value, then its difference to the baseline.

    ``replicates`` are the bootstrap values on shared resamples (empty: no
    intervals); ``resampled`` names what was resampled in the method text
    ("93 clusters"); ``temperatures`` are reported on calibration rows;
    ``finite_only`` leaves out resamples where a metric is undefined (mining
    F1 on a resample without any pair); the differences of the ``recentred_keys``'
    replicates are centred on the estimated difference (the debiased
    error, see :meth:`xcal.stats.Statistic.for_resampling`).
    """
    from xcal.stats import bootstrap_pvalue
    from xcal.stats.bootstrap import recentred

    of = f" of {resampled}" if resampled else ""
    rows: list[dict[str, Any]] = []
    for (system, variant, metric), estimate in estimates.items():
        info = metric_info(metric)
        temperature = (temperatures or {}).get((system, variant), math.nan)
        low = high = math.nan
        if replicates:
            low, high = _interval(replicates[(system, variant, metric)], options.level, finite_only)
        in_squares = (system, variant, metric) in recentred_keys
        squared = ", errors on the squared scale" if in_squares else ""
        value_row = {
            **base,
            "system": system,
            "baseline": None,
            "comparison": "value",
            "metric": metric,
            "variant": variant,
            "estimate": estimate,
            "ci_low": low,
            "ci_high": high,
            "p_value": math.nan,
            "p_adjusted": math.nan,
            "correction": "",
            "method": f"bootstrap{of} (percentile{squared})" if replicates else "",
            "n_examples": n,
            "n_boot": options.n_boot,
            "seed": seed,
            "higher_is_better": info.higher_is_better,
            "temperature": temperature if info.calibration else math.nan,
            "run_id": run_of[system]["run_id"],
            "baseline_run_id": None,
            **_group_values(run_of[system]),
        }
        rows.append(value_row)
        key = (options.baseline, variant, metric)
        if system == options.baseline or key not in estimates:
            continue
        diff = estimate - estimates[key]
        low = high = p_value = math.nan
        if replicates:
            dist = replicates[(system, variant, metric)] - replicates[key]
            if in_squares:
                dist = recentred(dist, diff)
            low, high = _interval(dist, options.level, finite_only)
            if finite_only:
                dist = dist[np.isfinite(dist)]
            if not finite_only or (dist.size and math.isfinite(diff)):
                p_value = bootstrap_pvalue(dist, diff, null="shift")
        rows.append(
            {
                **value_row,
                "baseline": options.baseline,
                "comparison": "difference",
                "estimate": diff,
                "ci_low": low,
                "ci_high": high,
                "p_value": p_value,
                "method": f"paired bootstrap{of} (percentile{squared}, shift p-value)"
                if replicates
                else "",
                "temperature": math.nan,
                "baseline_run_id": run_of[options.baseline]["run_id"],
            }
        )
    return rows


def _interval(values: np.ndarray, level: float, finite_only: bool) -> tuple[float, float]:
    """Percentile interval; with ``finite_only``, over the resamples where the metric is defined."""
    from xcal.stats import percentile_interval

    if not finite_only:
        return percentile_interval(values, level)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = percentile_interval(finite, level)
    return float(low), float(high)


def reliability_rows(
    system: str,
    variant: str,
    cell: Run,
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int,
) -> list[dict[str, Any]]:
    """The reliability-diagram bins of one system and variant in a cell, as rows."""
    from xcal.metrics import top_label_reliability_table

    table = top_label_reliability_table(confidence, correct, n_bins=n_bins)
    where = {f: cell[f] for f in ("task", "split", "language", "perturbation", "severity")}
    return [
        {
            "system": system,
            **where,
            "variant": variant,
            "bin": b,
            "bin_lower": float(table.bin_lower[b]),
            "bin_upper": float(table.bin_upper[b]),
            "count": int(table.count[b]),
            "mean_confidence": float(table.mean_confidence[b]),
            "accuracy": float(table.accuracy[b]),
        }
        for b in range(n_bins)
    ]


def cell_frames(
    rows: Sequence[Mapping[str, Any]], bins: Sequence[Mapping[str, Any]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A cell's result rows with every result column, and its reliability bins."""
    frame = pd.DataFrame(rows)
    for column in RESULT_COLUMNS:
        if column not in frame.columns:
            frame[column] = math.nan
    return frame.loc[:, list(RESULT_COLUMNS)], pd.DataFrame(bins, columns=list(RELIABILITY_COLUMNS))


def _check_same_labels(records: Sequence[Run], loaded: Mapping[str, _Predictions]) -> None:
    """Runs compared example by example must share the label space and the gold labels."""
    labelled = [(r, loaded[str(r["run_id"])]) for r in records]
    labelled = [(r, p) for r, p in labelled if p.labels is not None and p.logits is not None]
    if not labelled:
        return
    widths = {str(r["model"]): p.logits.shape[1] for r, p in labelled if p.logits is not None}
    if len(set(widths.values())) > 1:
        listed = ", ".join(f"{m!r}: {c} classes" for m, c in widths.items())
        raise ValueError(
            f"cell {_describe(records[0])}: the runs have different label spaces ({listed}) "
            "and cannot be compared"
        )
    first, p0 = labelled[0]
    assert p0.labels is not None
    for run, p in labelled[1:]:
        assert p.labels is not None
        common, ia, ib = np.intersect1d(p0.ids, p.ids, assume_unique=True, return_indices=True)
        bad = np.flatnonzero(p0.labels[ia] != p.labels[ib])
        if bad.size:
            j = bad[0]
            raise ValueError(
                f"cell {_describe(records[0])}: runs {first['model']!r} and {run['model']!r} give "
                f"different gold labels to {bad.size} of the {common.size} examples they share "
                f"(e.g. {common[j]!r}: {p0.labels[ia[j]]} vs {p.labels[ib[j]]}); they do not "
                "label the same data the same way"
            )
