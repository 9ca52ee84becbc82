"""From a prediction store to the tidy results table: :func:`analyze_store`.

The analysis runs in four stages, each in its own module:

planning (:mod:`xcal.analyze.plan`)
    the store's runs cut into *cells*, every system's run on one task x split
    x language x perturbation (x severity, seed, parameters), the runs that
    hold the same examples and are compared with each other;
executing (:mod:`xcal.analyze.execute`, :mod:`xcal.analyze.cell`)
    each cell not in the cache (:mod:`xcal.analyze.cache`) computed here, in
    local worker processes or on a Dask cluster; only the runs of a cell are
    in memory at once (plus the English run of a system when its temperature
    is not cached), so memory is bounded by the systems and the size of one
    run, not by the size of the store;
aggregating (:mod:`xcal.analyze.aggregate`, :mod:`xcal.analyze.findings`)
    the cells' rows in one table, adjusted p-values, correlations; the pooled
    findings per research question (units of work on the same executor,
    cached like the cells);
rendering (:mod:`xcal.analyze.report`)
    tables, figures and the index of the report folder.

For every run the analysis computes the task metric and the calibration
metrics in three *variants*:

``raw``
    the model's own probabilities;
``ts_en``
    temperature scaling fitted on the English run of the same model, task and
    perturbation, applied to this language (zero-shot recalibration);
``ts_self``
    temperature scaling fitted on this language itself (an upper reference).

Fitting and evaluation never share an example: every example id is assigned
to the *fit* part or the *evaluation* part by a hash of the id (a fraction
``fit_fraction`` goes to fit), the same assignment in every language. XNLI,
PAWS-X and XQuAD are parallel, so the German translation of an English
fitting example is never evaluated. All three variants are evaluated on the
evaluation part only, so they are comparable; with ``recalibrate=False`` no
split is made and the raw metrics use every example.

For every system other than the baseline, each metric's paired difference
to the baseline on the same examples gets a bootstrap interval and a p-value
(:mod:`xcal.stats`), adjusted over the family of all languages, tasks and
perturbations of that system, metric and variant (Holm or Benjamini-Hochberg).
Intervals of the ``ts_*`` variants are conditional on the fitted temperatures:
they resample the evaluation examples, not the fitting ones.
Cell results are cached by the runs' identities and fingerprints, so running
again on an unchanged store recomputes nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from xcal.analyze.aggregate import (
    AnalysisResult,
    _add_groups,
    _adjust,
    _correlations,
    _task_distance_table,
    aggregate,
)
from xcal.analyze.bootstrap import _FUSED_BYTES, _FUSED_COLUMNS, _PRODUCT_BYTES, _bootstrap
from xcal.analyze.cache import _Cache, _digest, _run_signature, _temperature_key
from xcal.analyze.cell import (
    _check_same_labels,
    _group_values,
    analyse_cell,
    fit_english_temperature,
)
from xcal.analyze.execute import AnalysisError, Executor, Failure, open_executor, progress_bar
from xcal.analyze.options import (
    ANALYSIS_VERSION,
    CELL_FIELDS,
    FIT_FIELDS,
    MIN_FIT_EXAMPLES,
    RELIABILITY_COLUMNS,
    AnalysisOptions,
    Run,
)
from xcal.analyze.plan import (
    Plan,
    _describe,
    _seed_for,
    plan_cells,
    temperature_units,
    with_temperatures,
)
from xcal.analyze.predictions import (
    _Predictions,
    _score,
    _Scored,
    _statistic,
    fit_mask,
    load_predictions,
)
from xcal.analyze.results import METRICS

if TYPE_CHECKING:
    from distributed import Client

    from xcal.analyze.tables import TableOptions
    from xcal.store import PredictionStore

# Names other modules and tests import from here (the module before its split).
__all__ = [
    "ANALYSIS_VERSION",
    "CELL_FIELDS",
    "FIT_FIELDS",
    "MIN_FIT_EXAMPLES",
    "RELIABILITY_COLUMNS",
    "_FUSED_BYTES",
    "_FUSED_COLUMNS",
    "_PRODUCT_BYTES",
    "AnalysisError",
    "AnalysisOptions",
    "AnalysisResult",
    "Run",
    "_Predictions",
    "_Scored",
    "_add_groups",
    "_adjust",
    "_bootstrap",
    "_check_same_labels",
    "_correlations",
    "_describe",
    "_group_values",
    "_run_signature",
    "_score",
    "_seed_for",
    "_statistic",
    "_temperature_key",
    "analyze_store",
    "fit_mask",
    "load_predictions",
]


def analyze_store(
    store: PredictionStore | str | os.PathLike[str],
    *,
    baseline: str,
    out: str | os.PathLike[str] | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 10_000,
    seed: int = 0,
    correction: str = "holm",
    n_bins: int = 15,
    fit_fraction: float = 0.5,
    recalibrate: bool = True,
    task_distances: pd.DataFrame | str | os.PathLike[str] | None = None,
    task_distance_measure: str = "textemb",
    filters: Mapping[str, Any] | None = None,
    retrieval_temperature: float = 1.0,
    english: Sequence[str] = ("en", "eng"),
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    jobs: int = 1,
    scheduler: str | Client | None = None,
    table_options: TableOptions | None = None,
    shared_examples: bool = False,
    pooled: bool = True,
    figures: str = "main",
    tables: bool = True,
    clusters: bool = True,
) -> AnalysisResult:
    """Analyse every run of a prediction store against a baseline system.

    Parameters
    ----------
    store : PredictionStore or path
        The store ``xcal infer`` wrote.
    baseline : str
        The ``model`` name of the baseline system; every other model is
        compared with it on the same examples.
    out : path, optional
        Also write the report folder there (results, tables, figures, index.md).
    table_options : TableOptions, optional
        Interval style and page of the report's tables, and the display
        names its tables and figures print.
    metrics : sequence of str, optional
        Subset of :data:`xcal.analyze.results.METRICS` (default: all).
    n_boot : int, default=10,000
        Bootstrap resamples per cell (0: point estimates only).
    seed : int, default=0
        Every cell draws from its own stream derived from this seed and the
        cell's identity (reported in the ``seed`` column).
    correction : {"holm", "bh", "bonferroni"}
        Multiple-comparison correction over each (system, metric, variant) family.
    n_bins : int, default=15
        Bins of the calibration errors and reliability diagrams.
    fit_fraction : float, default=0.5
        Share of example ids that fit temperatures (never evaluated).
    recalibrate : bool, default=True
        Compute the ``ts_en`` and ``ts_self`` variants (and split examples).
    task_distances : DataFrame or path, optional
        Distances from :func:`xcal.transfer.task_distances` (columns
        ``task_a, task_b, measure, distance``; a CSV path also works), for the
        gain-vs-distance analysis; ``task_a`` is an intermediate task.
    task_distance_measure : str, default="textemb"
        Which ``measure`` of ``task_distances`` to use.
    filters : mapping, optional
        Manifest filters for :meth:`PredictionStore.runs`, e.g. ``{"task": "xnli"}``.
    retrieval_temperature : float, default=1.0
        Temperature of the raw retrieval confidence (softmax over top-k scores).
    english : sequence of str
        Language codes of English (the source language).
    cache : bool, default=True
        Reuse and store per-cell results.
    cache_dir : path, optional
        Where (default ``OUT/.cache``, or ``xcal.paths.cache_dir()/analyze``).
    progress : bool or None
        Progress bar over cells, done / total (default: when stderr is a terminal).
    jobs : int, default=1
        Cells computed at once in local worker processes (a Dask
        ``LocalCluster``; needs ``pip install 'xcal[dask]'``). 1 computes them
        in this process. The results are the same, bit for bit, whatever ``jobs``.
    scheduler : str or dask.distributed.Client, optional
        Compute the cells on a Dask cluster instead: a scheduler address
        (``"tcp://host:8786"``) or a connected client. Its workers open the
        store at the same path (a shared filesystem) and need xcal installed;
        the cache and the report stay with this process.
    shared_examples : bool, default=False
        When the runs of a cell hold different examples (a truncated run,
        renamed ids), compare them on the ids they all share and say so in
        ``notes``; by default such a cell is an error
        (:class:`xcal.stats.pairing.ExampleMismatchError`).
    pooled : bool, default=True
        Also compute the findings per research question
        (:mod:`xcal.analyze.findings`: pooled differences over languages).
    figures : {"main", "all", "none"}, default="main"
        The report's figures (with ``out``): bounded main figures, also the
        paged per-language appendix, or none.
    tables : bool, default=True
        Write the report's LaTeX tables (with ``out``).
    clusters : bool, default=True
        Resample each task's natural clusters as wholes, in the per-cell
        intervals and the findings (XNLI: the three hypotheses of a premise;
        :mod:`xcal.analyze.clusters`); False resamples examples one by one.

    Returns
    -------
    AnalysisResult

    Examples
    --------
    >>> import tempfile
    >>> from xcal.analyze.synthetic import make_synthetic_store
    >>> store = make_synthetic_store(tempfile.mkdtemp(), languages=["en", "de"], n_examples=200)
    >>> res = analyze_store(store, baseline="baseline", n_boot=200, metrics=["accuracy", "ece"])
    >>> sorted(res.results["comparison"].unique()), sorted(res.results["variant"].unique())
    (['difference', 'value'], ['raw', 'ts_en', 'ts_self'])
    """
    from xcal.store import PredictionStore, open_store

    options = AnalysisOptions(
        baseline=baseline,
        metrics=tuple(metrics) if metrics else tuple(METRICS),
        n_boot=n_boot,
        seed=seed,
        correction=correction,
        n_bins=n_bins,
        fit_fraction=fit_fraction,
        recalibrate=recalibrate,
        english=tuple(english),
        retrieval_temperature=retrieval_temperature,
        task_distance_measure=task_distance_measure,
        shared_examples=shared_examples,
        clusters=clusters,
    )
    if not isinstance(store, PredictionStore):
        root = Path(store)
        if not root.is_dir():
            raise FileNotFoundError(
                f"no prediction store at {str(root)!r} (a directory written by `xcal infer`)"
            )
        store = open_store(root)
    runs = store.runs(**dict(filters or {}))
    if runs.empty:
        where = f" matching {dict(filters)}" if filters else ""
        raise ValueError(f"the store {store.root} has no runs{where}")
    systems = sorted(runs["model"].unique())
    if baseline not in systems:
        raise ValueError(
            f"baseline {baseline!r} is not a model in the store; models: {', '.join(systems)}"
        )
    distances = _task_distance_table(task_distances, task_distance_measure)

    if not cache:
        cache_root = None
    elif cache_dir is not None:
        cache_root = Path(cache_dir)
    elif out is not None:
        cache_root = Path(out) / ".cache"
    else:
        from xcal.paths import cache_dir as user_cache_dir

        cache_root = user_cache_dir() / "analyze" / _digest(str(Path(store.root).resolve()))[:16]
    cache_store = _Cache(cache_root)

    plan = plan_cells(runs, options)
    notes = list(plan.notes)
    outputs: list[tuple[pd.DataFrame, pd.DataFrame, list[str]] | None] = [None] * len(plan.cells)
    todo: list[int] = []
    with contextlib.ExitStack() as stack:
        with progress_bar(len(plan.cells), progress) as bar:
            for i, cell in enumerate(plan.cells):
                outputs[i] = cache_store.get(cell.key)
                if outputs[i] is None:
                    todo.append(i)
                else:
                    bar.advance(1, cell.name)
            # With findings to compute or a report to write, the workers stay up for
            # them (units of work too), even when every cell came from the cache.
            units = None if pooled or (out is not None and figures != "none") else len(todo)
            executor = stack.enter_context(
                open_executor(store, jobs=jobs, scheduler=scheduler, units=units)
            )
            _execute(executor, plan, todo, outputs, options, cache_store, bar)
        failures = executor.failures
        if failures:
            raise AnalysisError(failures) from failures[0].error
        result = _aggregate(runs, plan, todo, outputs, notes, options, distances)
        if pooled:
            from xcal.analyze.findings import compute_findings

            every_measure = _task_distance_table(task_distances, None)
            result.findings = compute_findings(
                store,
                runs,
                options,
                result.results,
                distances=every_measure,
                executor=executor,
                cache=cache_store,
            )
        if out is not None:
            result.write_report(
                out,
                table_options=table_options,
                figures=figures,
                tables=tables,
                executor=executor,
            )
    return result


def _aggregate(
    runs: pd.DataFrame,
    plan: Plan,
    todo: Sequence[int],
    outputs: list[tuple[pd.DataFrame, pd.DataFrame, list[str]] | None],
    notes: list[str],
    options: AnalysisOptions,
    distances: pd.DataFrame | None,
) -> AnalysisResult:
    """The cells' outputs (all present) in one :class:`AnalysisResult`."""
    for output in outputs:
        assert output is not None
        notes.extend(output[2])
    results, reliability, correlations = aggregate(
        [o[0] for o in outputs if o is not None],
        [o[1] for o in outputs if o is not None],
        options,
        distances,
    )
    return AnalysisResult(
        results=results,
        reliability=reliability,
        correlations=correlations,
        runs=runs,
        options=options,
        cells_cached=len(plan.cells) - len(todo),
        cells_computed=len(todo),
        notes=list(dict.fromkeys(notes)),
    )


def _execute(
    executor: Executor,
    plan: Plan,
    todo: Sequence[int],
    outputs: list[tuple[pd.DataFrame, pd.DataFrame, list[str]] | None],
    options: AnalysisOptions,
    cache_store: _Cache,
    bar: Any,
) -> None:
    """Fit the English temperatures the cells in ``todo`` need, then run those cells.

    Each result is cached as soon as it arrives, so an interrupted or partly
    failed analysis resumes from there.
    """
    cells = [plan.cells[i] for i in todo]
    temperatures: dict[str, float | None] = {}
    fits = []
    for unit in temperature_units(cells, options):
        value = cache_store.get_temperature(unit.key)
        if value is None:
            fits.append(unit)
        else:
            temperatures[unit.key] = value
    failed: dict[str, Failure] = {}
    before = len(executor.failures)
    for i, value in executor.map(fit_english_temperature, options, fits, [u.name for u in fits]):
        temperatures[fits[i].key] = value
        if value is not None:
            cache_store.put_temperature(fits[i].key, value)
    for failure in executor.failures[before:]:
        failed[fits[failure.index].key] = failure
    runnable: list[int] = []
    for i in todo:
        broken = [failed[k] for k in plan.cells[i].temperature_keys(options) if k in failed]
        if broken:
            # The temperature's own failure is reported; the cell waits for a rerun.
            continue
        runnable.append(i)
    units = [with_temperatures(plan.cells[i], options, temperatures) for i in runnable]
    for j, (rows, bins, cell_notes) in executor.map(
        analyse_cell, options, units, [u.name for u in units]
    ):
        cell = units[j]
        cache_store.put(cell.key, rows, bins, cell_notes)
        outputs[runnable[j]] = (rows, bins, cell_notes)
        bar.advance(1, cell.name)
