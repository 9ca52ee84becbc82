"""Pooled paired differences over many cells, with a cluster bootstrap over source items.

"Does the intermediate model lower ECE in non-English languages?" is a
question about the *average* difference over a set of languages, not about
any one of them. With parallel data (XNLI, PAWS-X, XQuAD) the same source item
appears in every language, translated: its difficulty is shared, so the
languages' differences are correlated and treating them as independent would
make the pooled interval too narrow. Items can also come in natural clusters
(the three hypotheses of one XNLI premise, the questions of one XQuAD
paragraph) whose examples share a context.

:func:`pooled_difference` resamples *units*: every example carries a unit
label (its source item id, or its premise / paragraph when the task has
clusters), a unit is drawn with replacement, and its weight applies to all of
its examples in every cell at once. Each cell's metric difference is then
recomputed on that cell's weighted examples and the pooled difference is their
weighted mean. The per-cell intervals come from the same draws, so they use
the same clusters (an interval that resamples the three hypotheses of a
premise independently is too narrow: 85-87% coverage in an independent check,
94.5-95% with clusters).

What the intervals cover. The cells are fixed (these languages, this
perturbation): the interval is for the population difference over source items
*for these languages*. With ``resample_cells=True`` the cells are resampled too
(a two-level bootstrap) and the interval is for a population of languages of
which these are a sample: wider, and meaningful only with many cells. A
plug-in calibration error (binned ECE) is biased upward at small n; its
interval covers the expected plug-in value at each cell's size, which is the
population value only as n grows; the debiased and smooth calibration errors
are the ones whose intervals aim at the population value (see docs/stats.md).

References
----------
A. C. Davison, D. V. Hinkley. Bootstrap Methods and their Application, ch. 3.8
(hierarchical data). Cambridge University Press, 1997.
C. A. Field, A. H. Welsh. Bootstrapping clustered data. JRSS B 69(3), 2007.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from xcal.stats._threads import single_blas_thread
from xcal.stats.bootstrap import (
    DEFAULT_B,
    _check_b,
    _check_level,
    align_pair,
    bootstrap_pvalue,
    percentile_interval,
    recentred,
)
from xcal.stats.resample import DEFAULT_MAX_MEMORY, as_generator, chunk_rows, draw_counts
from xcal.stats.statistic import LinearStatistic, Statistic

__all__ = ["PooledResult", "pooled_difference", "pooled_differences"]

# Bytes of the cells' per-unit sums held at once: more cells take another pass
# over the same resamples (drawn again, a few ms), so memory does not grow with
# the number of languages.
_PASS_BYTES = 64 * 2**20


@dataclass
class PooledResult:
    """The pooled difference and every cell's, from one set of cluster resamples.

    Attributes
    ----------
    estimate, ci_low, ci_high, p_value : float
        The pooled difference ``sum_c w_c (metric_c(a) - metric_c(b))``, its
        percentile interval and shifted-null bootstrap p-value.
    cells : list of str
        Cell names, in order.
    cell_estimate, cell_ci_low, cell_ci_high, cell_p_value : numpy.ndarray
        The same for each cell, from the same resamples of the same units.
    cell_weight : numpy.ndarray
        ``w_c`` (they sum to 1).
    cell_n : numpy.ndarray
        Examples per cell.
    n_units : int
        Resampled units (source items or clusters) over all cells.
    distribution : numpy.ndarray, shape (B_valid,)
        Bootstrap replicates of the pooled difference.
    cell_distribution : numpy.ndarray, shape (B_valid, n_cells)
        The cells' replicates on the same resamples (for slopes across cells).
    std_error : float
        Standard deviation of ``distribution``.
    B, B_valid : int
        Resamples drawn, and those in which every cell kept some weight.
    seed : int or None
    level : float
    resample_cells : bool
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    cells: list[str]
    cell_estimate: np.ndarray
    cell_ci_low: np.ndarray
    cell_ci_high: np.ndarray
    cell_p_value: np.ndarray
    cell_weight: np.ndarray
    cell_n: np.ndarray
    n_units: int
    distribution: np.ndarray = field(repr=False)
    cell_distribution: np.ndarray = field(repr=False)
    std_error: float
    B: int
    B_valid: int
    seed: int | None
    level: float
    resample_cells: bool

    @property
    def n_examples(self) -> int:
        """Examples over all cells."""
        return int(self.cell_n.sum())

    def cell_table(self) -> Any:
        """One row per cell: cell, estimate, ci_low, ci_high, p_value, weight, n."""
        import pandas as pd

        return pd.DataFrame(
            {
                "cell": self.cells,
                "estimate": self.cell_estimate,
                "ci_low": self.cell_ci_low,
                "ci_high": self.cell_ci_high,
                "p_value": self.cell_p_value,
                "weight": self.cell_weight,
                "n": self.cell_n,
            }
        )


def _unit_sums(m: np.ndarray, codes: np.ndarray, n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit sums of the rows of ``m`` ``(n_units, K)`` and unit sizes, by one sort."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sums = np.zeros((n_units, m.shape[1]))
    sums[sorted_codes[starts]] = np.add.reduceat(m[order], starts, axis=0)
    sizes = np.bincount(codes, minlength=n_units).astype(np.float64)
    return sums, sizes


class _CellDifferences:
    """Every cell's difference under unit weights, from each cell's per-unit sums.

    A linear cell needs only its per-unit contribution sums (and sizes) of both
    systems, side by side in one ``(units, columns)`` block: a chunk of
    resamples is then one matrix product per cell. Other statistics get
    example weights.

    Cells are added one at a time and a linear cell keeps only its block and
    finalizers, not its per-example rows: a smooth ECE's rows are ``n x ~500``
    per system, and holding every language's at once (then a copy of all the
    blocks stacked into one matrix) was most of a findings worker's memory.
    """

    def __init__(self, n_units: int) -> None:
        self.n_units = n_units
        self.linear: list[tuple[int, Any, Any, np.ndarray, int]] = []
        self.generic: list[tuple[int, Statistic, Statistic, np.ndarray]] = []
        self.n_cells = 0

    def add(self, a: Statistic, b: Statistic, codes: np.ndarray) -> None:
        j = self.n_cells
        self.n_cells += 1
        a, b = a.for_resampling(), b.for_resampling()
        if isinstance(a, LinearStatistic) and isinstance(b, LinearStatistic):
            sa, sizes = _unit_sums(a.contributions, codes, self.n_units)
            sb, _ = _unit_sums(b.contributions, codes, self.n_units)
            block = np.hstack([sa, sb, sizes[:, None]])
            self.linear.append((j, a.finalize, b.finalize, block, sa.shape[1]))
        else:
            self.generic.append((j, a, b, codes))

    @property
    def nbytes(self) -> int:
        """Bytes of the linear cells' blocks."""
        return sum(block.nbytes for _, _, _, block, _ in self.linear)

    @property
    def example_rows(self) -> int:
        """The most examples of a generic cell (its weights are expanded to them)."""
        return max((codes.shape[0] for *_, codes in self.generic), default=0)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        out = np.empty((w.shape[0], self.n_cells))
        with np.errstate(invalid="ignore", divide="ignore"):
            for j, finalize_a, finalize_b, block, ka in self.linear:
                sums = w @ block
                total = sums[:, -1]
                out[:, j] = finalize_a(sums[:, :ka], total) - finalize_b(sums[:, ka:-1], total)
            for j, a, b, codes in self.generic:
                ex = w[:, codes]
                out[:, j] = a.on_weights(ex) - b.on_weights(ex)
        return out


def _checked_pair(name: Any, pair: Any) -> tuple[Statistic, Statistic]:
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise TypeError(f"cell {name!r}: expected a pair (system, baseline) of Statistic")
    a, b = pair
    if not isinstance(a, Statistic) or not isinstance(b, Statistic):
        raise TypeError(f"cell {name!r}: expected Statistic objects (xcal.stats.metric_statistic)")
    # the kinds' first field is the metric; the rest may be data-driven
    # (the smooth ECE's bandwidth is each system's own fixed point)
    if a.name != b.name or a.kind[:1] != b.kind[:1]:
        raise ValueError(
            f"cell {name!r}: the two statistics measure different metrics "
            f"({a.name} {a.kind} vs {b.name} {b.kind})"
        )
    return a, b


@dataclass
class _Replicates:
    """Every cell's difference and its replicates, from one set of unit resamples."""

    names: list[str]
    estimate: np.ndarray  # (n_cells,)
    n: np.ndarray  # examples per cell
    n_units: int
    reps: np.ndarray  # (B, n_cells), a debiased metric's already recentred
    low: np.ndarray
    high: np.ndarray
    p_value: np.ndarray
    seed: int | None


def _replicates(
    cells: Iterable[tuple[Any, Any]],
    names: Sequence[str],
    units: Sequence[npt.ArrayLike],
    B: int,
    level: float,
    gen: np.random.Generator,
    seed: int | None,
    max_memory: int,
) -> _Replicates:
    """Consume ``cells`` (name, pair) one at a time, then draw the unit resamples.

    The ``i``-th cell must be named ``names[i]`` and ``units[i]`` labels its
    examples. The units are numbered
    over all cells' labels before any cell is read, so a cell's per-example data
    can be dropped as soon as its unit sums are taken.
    """
    labels = [np.asarray(u) for u in units]
    if any(lab.dtype == object and any(v is None for v in lab) for lab in labels):
        raise ValueError("unit labels hold None")
    uniques = np.unique(np.concatenate(labels)) if labels else np.array([])
    n_units = int(uniques.shape[0])
    evaluate = _CellDifferences(n_units)
    replay = copy.deepcopy(gen)  # every pass but the last draws from a copy
    columns: list[np.ndarray] = []

    def run_pass(evaluate: _CellDifferences, draws: np.random.Generator) -> np.ndarray:
        chunk = chunk_rows(max(n_units, evaluate.example_rows), B, max_memory)
        reps = np.empty((B, evaluate.n_cells))
        buf = np.empty((chunk, n_units))
        with single_blas_thread():
            for start in range(0, B, chunk):
                c = min(chunk, B - start)
                reps[start : start + c] = evaluate(draw_counts(draws, n_units, buf[:c]))
        return reps

    read: list[str] = []
    est: list[float] = []
    recentre: list[bool] = []
    sizes: list[int] = []
    metric: tuple[str, Any] | None = None
    i = -1
    # (not enumerate(): its reused result tuple would hold the previous cell
    # while the next one is built)
    for name, pair in cells:
        i += 1
        if i >= len(names) or str(name) != names[i]:
            raise ValueError(
                f"cells must come in the order of `units` ({list(names)}); "
                f"got {name!r} at position {i}"
            )
        a, b = _checked_pair(name, pair)
        if metric is None:
            metric = (a.name, a.kind[:1])
        elif (a.name, a.kind[:1]) != metric:
            raise ValueError(
                f"cells measure different metrics {sorted(map(str, {metric, (a.name, a.kind[:1])}))}"
            )
        lab = labels[i]
        if lab.ndim != 1 or lab.shape[0] != a.n:
            raise ValueError(
                f"cell {name!r}: expected {a.n} unit labels, one per example, got shape {lab.shape}"
            )
        a2, b2, order = align_pair(a, b, (f"{name} system", f"{name} baseline"))
        if evaluate.nbytes > _PASS_BYTES:
            # Past the budget, the cells read so far are resampled first: the
            # next pass draws the same resamples again, from a copy of ``gen``.
            columns.append(run_pass(evaluate, copy.deepcopy(replay)))
            evaluate = _CellDifferences(n_units)
        evaluate.add(a2, b2, np.searchsorted(uniques, lab[order]).astype(np.intp))
        read.append(str(name))
        est.append(a2.estimate() - b2.estimate())
        recentre.append(a2.recentred_differences)
        sizes.append(a2.n)
        del a, b, a2, b2, pair
    if not read:
        raise ValueError("Expected at least one cell (a pair of statistics), got none")
    if len(read) != len(names):
        raise ValueError(f"Expected units for each of the {len(read)} cells, got {len(names)}")
    columns.append(run_pass(evaluate, gen))  # the last pass advances the caller's generator
    reps = columns[0] if len(columns) == 1 else np.hstack(columns)
    cell_est = np.array(est)
    cell_n = np.array(sizes, dtype=np.int64)
    for col in np.flatnonzero(recentre):
        # a debiased metric's replicates (Statistic.for_resampling), centred on the estimate
        reps[:, col] = recentred(reps[:, col], float(cell_est[col]))
    n_cells = len(read)
    low, high, p = np.empty(n_cells), np.empty(n_cells), np.empty(n_cells)
    for j in range(n_cells):
        d = reps[:, j]
        d = d[np.isfinite(d)]
        low[j], high[j] = percentile_interval(d, level)
        p[j] = bootstrap_pvalue(d, float(cell_est[j]), null="shift")
    return _Replicates(read, cell_est, cell_n, n_units, reps, low, high, p, seed)


def _pool(
    rep: _Replicates,
    index: np.ndarray,
    w_cell: np.ndarray,
    mix: np.ndarray | None,
    B: int,
    level: float,
    resample_cells: bool,
) -> PooledResult:
    """The pooled result over cells ``index`` with weights ``w_cell`` (or per-resample ``mix``)."""
    reps = rep.reps[:, index]
    if mix is None:
        mix = np.broadcast_to(w_cell, reps.shape)
    valid = np.isfinite(reps).all(axis=1)
    pooled = (reps[valid] * mix[valid]).sum(axis=1)
    if pooled.size == 0:
        raise ValueError("every resample left some cell without examples; give more units")
    estimate = float(w_cell @ rep.estimate[index])
    low, high = percentile_interval(pooled, level)
    return PooledResult(
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        p_value=bootstrap_pvalue(pooled, estimate, null="shift"),
        cells=[rep.names[j] for j in index],
        cell_estimate=rep.estimate[index],
        cell_ci_low=rep.low[index],
        cell_ci_high=rep.high[index],
        cell_p_value=rep.p_value[index],
        cell_weight=w_cell,
        cell_n=rep.n[index],
        n_units=rep.n_units,
        distribution=pooled,
        cell_distribution=reps[valid],
        std_error=float(pooled.std(ddof=1)) if pooled.size > 1 else float("nan"),
        B=B,
        B_valid=int(pooled.size),
        seed=rep.seed,
        level=level,
        resample_cells=resample_cells,
    )


def pooled_difference(
    cells: Mapping[Any, tuple[Statistic, Statistic]] | Sequence[tuple[Statistic, Statistic]],
    units: Mapping[Any, npt.ArrayLike] | Sequence[npt.ArrayLike],
    *,
    weights: str | npt.ArrayLike = "equal",
    B: int = DEFAULT_B,
    level: float = 0.95,
    rng: np.random.Generator | int | None = None,
    resample_cells: bool = False,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> PooledResult:
    """Difference ``metric(a) - metric(b)`` pooled over cells, by a cluster bootstrap of units.

    Parameters
    ----------
    cells : mapping of name to (Statistic, Statistic), or a sequence of pairs
        Per cell (e.g. language), the system's and the baseline's statistic of
        one metric. The two are aligned by ``example_id`` when both carry ids.
    units : mapping of name to array-like, or a sequence
        Per cell, the resampling unit of each example in the order of the
        cell's *system* statistic: the source item id (the same id in several
        languages is one item, resampled jointly), or a cluster label such as
        an XNLI premise or an XQuAD paragraph. Labels are shared across cells.
    weights : {"equal", "n"} or array-like
        ``w_c``: every cell counts the same (default: the mean over languages),
        in proportion to its examples, or given (normalised to sum to 1).
    B : int, default=10,000
    level : float, default=0.95
    rng : numpy.random.Generator, int or None
    resample_cells : bool, default=False
        Also resample the cells (two-level bootstrap): the interval is then for
        a population of cells, not for these cells.
    max_memory : int
        Bytes of scratch memory per chunk of resamples.

    Returns
    -------
    PooledResult

    See Also
    --------
    pooled_differences : several pools of the same cells from one set of resamples.

    Examples
    --------
    Three languages of the same 40 source items, in clusters of 2; the system is
    right on 5 more items than the baseline in every language:

    >>> from xcal.stats import mean_statistic
    >>> ids = np.arange(40); base = (ids % 3 > 0).astype(float)
    >>> sys_ = base.copy(); sys_[:15:3] = 1.0
    >>> cells = {lang: (mean_statistic(sys_), mean_statistic(base)) for lang in ("de", "sw", "ur")}
    >>> res = pooled_difference(cells, {lang: ids // 2 for lang in cells}, B=2000, rng=0)
    >>> round(res.estimate, 3), bool(res.ci_low > 0), res.n_units
    (0.125, True, 20)
    """
    items: list[tuple[Any, Any]] = (
        list(cells.items()) if isinstance(cells, Mapping) else list(enumerate(cells))
    )
    if not items:
        raise ValueError("Expected at least one cell (a pair of statistics), got none")
    unit_list = [units[name] for name, _ in items] if isinstance(units, Mapping) else list(units)
    if len(unit_list) != len(items):
        raise ValueError(f"Expected units for each of the {len(items)} cells, got {len(unit_list)}")
    n_cells = len(items)
    w_cell = _cell_weights(weights, [np.shape(u)[0] if np.ndim(u) else 0 for u in unit_list])
    b_count = _check_b(B)
    level = _check_level(level)
    gen, seed = as_generator(rng)
    names = [str(name) for name, _ in items]
    rep = _replicates(items, names, unit_list, b_count, level, gen, seed, max_memory)
    mix = None
    if resample_cells:
        cell_counts = draw_counts(gen, n_cells, np.empty((b_count, n_cells)))
        mix = cell_counts * w_cell[None, :]
        mix /= mix.sum(axis=1, keepdims=True)
    return _pool(rep, np.arange(n_cells), w_cell, mix, b_count, level, resample_cells)


def _cell_weights(weights: str | npt.ArrayLike, cell_n: Sequence[int]) -> np.ndarray:
    """``w_c`` normalised, from a name or given; ``cell_n`` counts each cell's unit labels
    (one per example: a mismatch with the statistics is refused when they are read)."""
    n_cells = len(cell_n)
    if isinstance(weights, str):
        if weights == "equal":
            return np.full(n_cells, 1.0 / n_cells)
        if weights == "n":
            sizes = np.asarray(cell_n, dtype=np.float64)
            return sizes / sizes.sum()
        raise ValueError(f"Expected `weights` 'equal', 'n' or an array, got {weights!r}")
    w_cell = np.asarray(weights, dtype=np.float64)
    if w_cell.shape != (n_cells,) or (w_cell < 0).any() or w_cell.sum() <= 0:
        raise ValueError(
            f"Expected {n_cells} non-negative cell weights with a positive sum, got {w_cell!r}"
        )
    return w_cell / w_cell.sum()


def pooled_differences(
    cells: Iterable[tuple[Any, tuple[Statistic, Statistic]]],
    units: Mapping[Any, npt.ArrayLike],
    pools: Mapping[str, Sequence[Any]],
    *,
    B: int = DEFAULT_B,
    level: float = 0.95,
    rng: np.random.Generator | int | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> dict[str, PooledResult]:
    """Equal-weight pooled differences over several pools of cells, from one set of resamples.

    The units of all cells are resampled together once and every pool (a
    subset of the cells: all non-English languages, each resource class, each
    script...) averages its cells' replicates, so a pool's cells have the same
    intervals as in every other pool. On parallel data, where every cell holds
    the same units, a pool's result equals :func:`pooled_difference` on its
    cells alone with the same ``rng``; otherwise each cell's units are
    resampled as in :func:`pooled_difference` over all the cells.

    ``cells`` is consumed one pair at a time and a linear statistic's
    per-example rows are not kept (only their sums per unit), so a generator
    that builds each cell's statistics when asked holds one cell's rows at a
    time. ``units`` gives every cell's labels up front (the name of each cell
    ``cells`` yields). Returns the pools in the order given.

    Examples
    --------
    >>> from xcal.stats import mean_statistic
    >>> ids = np.arange(40); base = (ids % 3 > 0).astype(float)
    >>> sys_ = base.copy(); sys_[:15:3] = 1.0
    >>> langs = ("de", "sw", "ur")
    >>> cells = ((lang, (mean_statistic(sys_), mean_statistic(base))) for lang in langs)
    >>> res = pooled_differences(
    ...     cells, {lang: ids // 2 for lang in langs}, {"all": langs, "two": ["de", "ur"]}, B=500, rng=0
    ... )
    >>> round(res["two"].estimate, 3), res["two"].cells
    (0.125, ['de', 'ur'])
    """
    b_count = _check_b(B)
    level = _check_level(level)
    gen, seed = as_generator(rng)
    names = [str(k) for k in units]
    for pool, members in pools.items():
        unknown = [m for m in members if str(m) not in names]
        if unknown or not members:
            raise ValueError(
                f"pool {pool!r}: no cell named {unknown[:3]!r}"
                if unknown
                else f"pool {pool!r} is empty"
            )

    rep = _replicates(cells, names, list(units.values()), b_count, level, gen, seed, max_memory)
    position = {name: j for j, name in enumerate(rep.names)}
    out = {}
    for pool, members in pools.items():
        index = np.array([position[str(m)] for m in members], dtype=np.intp)
        w_cell = np.full(index.shape[0], 1.0 / index.shape[0])
        out[pool] = _pool(rep, index, w_cell, None, b_count, level, False)
    return out
