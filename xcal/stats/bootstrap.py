"""Bootstrap confidence intervals for one system and for a paired difference of two.

The engine draws resamples in chunks (see :mod:`xcal.stats.resample`) and
evaluates a batched :class:`~xcal.stats.statistic.Statistic` on each chunk at
once. Intervals are the percentile interval or Efron's bias-corrected and
accelerated (BCa) interval, computed exactly as ``scipy.stats.bootstrap`` does
(the tests check both on scipy's own resamples).

Paired differences resample the *same* examples for both systems, after
aligning the two runs by ``example_id``; the cluster bootstrap resamples whole
groups (every perturbed variant of an example, every translation of a parallel
example) instead of single examples.

References
----------
B. Efron, R. Tibshirani. An Introduction to the Bootstrap. Chapman & Hall, 1993
(percentile: ch. 13; BCa: ch. 14.3, jackknife acceleration eq. 14.15).
P. Koehn. Statistical significance tests for machine translation evaluation.
EMNLP 2004.
T. Berg-Kirkpatrick, D. Burkett, D. Klein. An empirical investigation of
statistical significance in NLP. EMNLP 2012.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from xcal.stats._progress import ChunkProgress
from xcal.stats._threads import single_blas_thread
from xcal.stats.resample import (
    DEFAULT_MAX_MEMORY,
    as_generator,
    chunk_rows,
    draw_counts,
    group_codes,
    iter_index_chunks,
)
from xcal.stats.statistic import LinearStatistic, Statistic

__all__ = [
    "DEFAULT_B",
    "BootstrapResult",
    "align_pair",
    "bca_interval",
    "bootstrap_ci",
    "bootstrap_distribution",
    "bootstrap_pvalue",
    "paired_bootstrap",
    "paired_bootstrap_distribution",
    "percentile_interval",
]

DEFAULT_B = 10_000
# Relative tolerance under which a replicate ties with the observed value.
TIE_RTOL = 100 * np.finfo(np.float64).eps
# Generic (non-linear) statistics take one evaluation per left-out unit for the BCa
# jackknife; above this many units they are left out in this many random blocks.
JACKKNIFE_MAX_UNITS = 2_000

IndexCallable = Callable[[np.ndarray], np.ndarray]


# --- intervals and p-values ---------------------------------------------------------


def _check_level(level: float) -> float:
    if not (0 < level < 1):
        raise ValueError(f"Expected `level` in (0, 1), e.g. 0.95, got {level!r}")
    return float(level)


def percentile_interval(distribution: npt.ArrayLike, level: float = 0.95) -> tuple[float, float]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the bootstrap distribution.

    Quantiles are linearly interpolated (``numpy.quantile``'s default, as scipy).

    Examples
    --------
    >>> percentile_interval(np.arange(101.0), level=0.5)
    (25.0, 75.0)
    """
    level = _check_level(level)
    d = np.asarray(distribution, dtype=np.float64)
    alpha = (1 - level) / 2
    low, high = np.quantile(d, [alpha, 1 - alpha])
    return float(low), float(high)


def bca_interval(
    distribution: npt.ArrayLike,
    estimate: float,
    jackknife_values: npt.ArrayLike,
    level: float = 0.95,
) -> tuple[float, float]:
    """Bias-corrected and accelerated bootstrap interval (Efron 1987).

    ``z0 = Phi^-1(share of the distribution below the estimate)`` (ties count
    half), acceleration ``a = sum(d^3) / (6 (sum d^2)^1.5)`` with ``d`` the
    jackknife values' deviations from their mean, and the interval is the
    distribution's quantiles at ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` for
    ``z = Phi^-1((1 -+ level) / 2)``; as ``scipy.stats.bootstrap(method="BCa")``.

    Returns ``(nan, nan)`` when ``z0`` is infinite (the estimate lies outside the
    bootstrap distribution). A constant jackknife gives ``a = 0``.

    Examples
    --------
    A symmetric distribution centred on the estimate and a symmetric jackknife
    give back the percentile interval:

    >>> d = np.arange(-50.0, 51.0)
    >>> bca_interval(d, 0.0, [-1.0, 0.0, 1.0], level=0.9) == percentile_interval(d, 0.9)
    True
    """
    from scipy.special import ndtr, ndtri  # imported here: scipy is slow to import

    level = _check_level(level)
    d = np.asarray(distribution, dtype=np.float64)
    below = np.count_nonzero(d < estimate) + np.count_nonzero(d <= estimate)
    z0 = ndtri(below / (2 * d.shape[0]))
    jack = np.asarray(jackknife_values, dtype=np.float64)
    dev = jack.mean() - jack
    den = float((dev**2).sum())
    accel = float((dev**3).sum()) / (6 * den**1.5) if den > 0 else 0.0
    if not np.isfinite(z0):
        return float("nan"), float("nan")
    z = ndtri((1 - level) / 2)
    bounds = []
    for zq in (z, -z):
        num = z0 + zq
        bounds.append(float(ndtr(z0 + num / (1 - accel * num))))
    low, high = np.quantile(d, bounds)
    return float(low), float(high)


def bootstrap_pvalue(
    distribution: npt.ArrayLike,
    estimate: float,
    *,
    null: str = "shift",
    alternative: str = "two-sided",
) -> float:
    """p-value for ``H0: difference = 0`` from a bootstrap distribution of the difference.

    ``null="shift"`` (default): the distribution shifted to the null,
    ``d* - estimate``, is compared with the estimate; two-sided
    ``(1 + #{|d* - est| >= |est|}) / (B + 1)`` (Efron & Tibshirani 1993, ch. 16;
    Berg-Kirkpatrick et al. 2012 use the one-sided ``d* - est >= est``).
    ``null="koehn"``: the share of resamples in which the sign of the difference
    flips, ``(1 + #{d* <= 0}) / (B + 1)`` for ``alternative="greater"`` (Koehn 2004),
    doubled for two-sided; this is the test whose acceptance region is the
    percentile interval.

    Parameters
    ----------
    distribution : array-like, shape (B,)
        Bootstrap replicates of the difference.
    estimate : float
        The observed difference.
    null : {"shift", "koehn"}
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: H1 is difference > 0.

    Returns
    -------
    float

    Examples
    --------
    Replicates 1..9 around an estimate of 5: shifted to the null they are -4..4,
    none as far from 0 as 5, so p = (1 + 0) / (9 + 1):

    >>> bootstrap_pvalue(np.arange(1.0, 10.0), 5.0)
    0.1
    """
    d = np.asarray(distribution, dtype=np.float64)
    b = d.shape[0]
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(
            f"Expected `alternative` in ('two-sided', 'greater', 'less'), got {alternative!r}"
        )
    # Replicates equal to the estimate up to summation order count as ties
    # (scipy.stats.permutation_test's tolerance).
    gamma = abs(estimate) * TIE_RTOL
    if null == "shift":
        shifted = d - estimate
        if alternative == "two-sided":
            hits = np.count_nonzero(np.abs(shifted) >= abs(estimate) - gamma)
        elif alternative == "greater":
            hits = np.count_nonzero(shifted >= estimate - gamma)
        else:
            hits = np.count_nonzero(shifted <= estimate + gamma)
        return float((1 + hits) / (b + 1))
    if null == "koehn":
        le = (1 + np.count_nonzero(d <= 0)) / (b + 1)
        ge = (1 + np.count_nonzero(d >= 0)) / (b + 1)
        if alternative == "greater":
            return float(le)
        if alternative == "less":
            return float(ge)
        return float(min(1.0, 2 * min(le, ge)))
    raise ValueError(f"Expected `null` in ('shift', 'koehn'), got {null!r}")


# --- the resampling engine ---------------------------------------------------------------


def _check_b(b: Any, name: str = "B") -> int:
    if not isinstance(b, (int, np.integer)) or isinstance(b, bool) or b < 1:
        raise ValueError(f"Expected `{name}` to be a positive int, got {b!r}")
    return int(b)


def _run_chunks(
    evaluate: Callable[[np.ndarray], np.ndarray],
    draw: Callable[[int], np.ndarray],
    total: int,
    chunk: int,
    width: int,
    description: str,
    progress: bool | None,
) -> np.ndarray:
    """Evaluate ``total`` draws ``chunk`` at a time into a ``(total, width)`` array."""
    out = np.empty((total, width))
    with single_blas_thread(), ChunkProgress(total, description, progress) as bar:
        for start in range(0, total, chunk):
            c = min(chunk, total - start)
            out[start : start + c] = np.asarray(evaluate(draw(c))).reshape(c, width)
            bar.advance(c)
    return out


def _count_drawer(
    gen: np.random.Generator, n_units: int, chunk: int
) -> Callable[[int], np.ndarray]:
    buf = np.empty((chunk, n_units))

    def draw(c: int) -> np.ndarray:
        return draw_counts(gen, n_units, buf[:c])

    return draw


def _resample_evaluator(stat: LinearStatistic) -> Callable[[np.ndarray], np.ndarray]:
    """``counts -> values`` for bootstrap counts, whose rows always sum to ``n``."""
    n = float(stat.n)

    def evaluate(counts: np.ndarray) -> np.ndarray:
        return stat.finalize(stat.sums(counts), np.full(counts.shape[0], n))

    return evaluate


def recentred(differences: np.ndarray, estimate: float) -> np.ndarray:
    """Difference replicates shifted so that their finite values' mean is ``estimate``.

    For a metric whose replicates are not centred on its estimate
    (:meth:`xcal.stats.Statistic.for_resampling`, the debiased calibration error).
    """
    finite = np.isfinite(differences)
    if not finite.any():
        return differences
    return differences + (estimate - float(differences[finite].mean()))


def _units(n: int, groups: npt.ArrayLike | None) -> tuple[np.ndarray | None, int]:
    if groups is None:
        return None, n
    return group_codes(groups, n)


def bootstrap_distribution(
    statistic: Statistic | IndexCallable,
    *,
    B: int = DEFAULT_B,
    rng: np.random.Generator | int | None = None,
    groups: npt.ArrayLike | None = None,
    n: int | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: bool | None = None,
) -> np.ndarray:
    """``B`` bootstrap replicates of a statistic, drawn and evaluated in chunks.

    Parameters
    ----------
    statistic : Statistic or callable
        A :class:`~xcal.stats.statistic.Statistic`, or a callable taking
        resample indices ``(c, n)`` and returning ``(c,)`` values (then ``n`` is
        required and ``groups`` is not supported).
    B : int, default=10,000
    rng : numpy.random.Generator, int or None
    groups : array-like, shape (n,), optional
        Cluster label of each example: whole clusters are resampled.
    n : int, optional
        Number of examples, for a callable statistic.
    max_memory : int
        Bytes of scratch memory per chunk.
    progress : bool or None
        Show a progress bar; ``None`` shows one only when the run takes more than
        a moment.

    Returns
    -------
    numpy.ndarray of shape (B,)

    Examples
    --------
    >>> from xcal.stats.statistic import mean_statistic
    >>> d = bootstrap_distribution(mean_statistic([0, 1, 1, 1]), B=1000, rng=0)
    >>> d.shape, bool(0.0 <= d.min() and d.max() <= 1.0)
    ((1000,), True)
    """
    gen, _seed = as_generator(rng)
    return _distribution(statistic, _check_b(B), gen, groups, n, max_memory, progress)[0]


def _distribution(
    statistic: Statistic | IndexCallable,
    b: int,
    gen: np.random.Generator,
    groups: npt.ArrayLike | None,
    n: int | None,
    max_memory: int,
    progress: bool | None,
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Replicates, group codes (or None) and number of resampling units."""
    if isinstance(statistic, Statistic):
        codes, n_units = _units(statistic.n, groups)
        statistic = statistic.for_resampling()
        evaluate = statistic.on_weights if codes is None else statistic.grouped(codes, n_units)
        if codes is None and isinstance(statistic, LinearStatistic):
            evaluate = _resample_evaluator(statistic)
        chunk = chunk_rows(max(n_units, statistic.n if codes is not None else 0), b, max_memory)
        dist = _run_chunks(
            evaluate, _count_drawer(gen, n_units, chunk), b, chunk, 1, "bootstrap", progress
        )
        return dist[:, 0], codes, n_units
    if not callable(statistic):
        raise TypeError(
            f"Expected a Statistic or a callable of indices, got {type(statistic).__name__}"
        )
    if n is None or int(n) < 1:
        raise ValueError("A callable statistic needs `n`, the number of examples")
    if groups is not None:
        raise ValueError(
            "`groups` needs a Statistic (weights form); wrap the metric in an ArrayStatistic"
        )
    n = int(n)
    chunk = chunk_rows(n, b, max_memory)
    it = iter_index_chunks(gen, n, b, chunk)
    dist = _run_chunks(statistic, lambda c: next(it), b, chunk, 1, "bootstrap", progress)
    return dist[:, 0], None, n


def _jackknife_units(
    statistics: Sequence[Statistic | IndexCallable],
    codes: np.ndarray | None,
    n_units: int,
    n: int,
    gen: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Units to leave out one at a time: examples, groups, or random blocks of them.

    Generic (non-linear) statistics cost one evaluation per left-out unit; above
    ``JACKKNIFE_MAX_UNITS`` units they are left out in that many random blocks
    (a grouped jackknife), the same blocks for every statistic of a pair.
    """
    if codes is None:
        codes = np.arange(n)
    linear = all(isinstance(s, LinearStatistic) for s in statistics)
    if not linear and n_units > JACKKNIFE_MAX_UNITS:
        block_of_unit = gen.permutation(n_units) % JACKKNIFE_MAX_UNITS
        return block_of_unit[codes], JACKKNIFE_MAX_UNITS
    return codes, n_units


def _jackknife(
    statistic: Statistic | IndexCallable,
    codes: np.ndarray,
    n_units: int,
    n: int,
    max_memory: int,
) -> np.ndarray:
    """Values with each unit (``codes`` labels the units of the n examples) left out."""
    if isinstance(statistic, Statistic):
        return statistic.jackknife(codes, n_units, chunk_rows(n, n_units, max_memory))
    # A callable of indices: leave-one-out index rows of length n - (unit size).
    out = np.empty(n_units)
    keep = np.arange(n)
    for u in range(n_units):
        out[u] = np.asarray(statistic(keep[codes != u][None, :])).reshape(-1)[0]
    return out


# --- results ------------------------------------------------------------------------


@dataclass
class BootstrapResult:
    """A bootstrap's numbers, before they become a table row."""

    estimate: float
    ci_low: float
    ci_high: float
    distribution: np.ndarray
    method: str
    level: float
    B: int
    seed: int | None
    p_value: float = float("nan")


def _frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    first = [
        "metric",
        "system",
        "system_a",
        "system_b",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
        "method",
        "B",
        "seed",
    ]
    frame = pd.DataFrame(rows)
    cols = [c for c in first if c in frame.columns] + [c for c in frame.columns if c not in first]
    frame = frame[cols]
    frame["seed"] = frame["seed"].astype("Int64")
    return frame


def _interval(
    method: str,
    dist: np.ndarray,
    estimate: float,
    level: float,
    jackknife: Callable[[], np.ndarray],
) -> tuple[float, float]:
    if method == "percentile":
        return percentile_interval(dist, level)
    if method == "bca":
        return bca_interval(dist, estimate, jackknife(), level)
    raise ValueError(f"Expected `method` in ('percentile', 'bca'), got {method!r}")


def bootstrap_ci(
    statistic: Statistic | IndexCallable,
    *,
    method: str = "percentile",
    level: float = 0.95,
    B: int = DEFAULT_B,
    rng: np.random.Generator | int | None = None,
    groups: npt.ArrayLike | None = None,
    n: int | None = None,
    metric: str | None = None,
    system: str | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: bool | None = None,
    return_result: bool = False,
) -> Any:
    """Bootstrap confidence interval of one system's metric, as a one-row table.

    Parameters
    ----------
    statistic : Statistic or callable
        From :func:`~xcal.stats.statistic.metric_statistic` (or a callable of
        resample indices ``(c, n) -> (c,)`` with ``n`` given).
    method : {"percentile", "bca"}
    level : float, default=0.95
    B : int, default=10,000
    rng : numpy.random.Generator, int or None
        ``None`` draws a seed and reports it in the ``seed`` column.
    groups : array-like, shape (n,), optional
        Cluster labels: resample whole clusters (e.g. all perturbed variants of
        an example).
    n : int, optional
        Number of examples for a callable statistic.
    metric, system : str, optional
        Labels for the table (``metric`` defaults to the statistic's name).
    max_memory : int
        Bytes of scratch memory per chunk.
    progress : bool or None
        Progress bar; ``None`` shows it only for long runs.
    return_result : bool, default=False
        Also return the :class:`BootstrapResult` (with the distribution).

    Returns
    -------
    pandas.DataFrame
        One row: metric, [system], estimate, ci_low, ci_high, p_value (NaN),
        p_adjusted (NaN), method, B, seed, level, n, n_groups.

    Examples
    --------
    >>> from xcal.stats import metric_statistic
    >>> s = metric_statistic("accuracy", correct=[1, 1, 0, 1, 1, 0, 1, 1])
    >>> row = bootstrap_ci(s, B=2000, rng=0).iloc[0]
    >>> float(row.estimate), bool(row.ci_low <= row.estimate <= row.ci_high), row.method
    (0.75, True, 'percentile')
    """
    gen, seed = as_generator(rng)
    b = _check_b(B)
    level = _check_level(level)
    if method not in ("percentile", "bca"):
        raise ValueError(f"Expected `method` in ('percentile', 'bca'), got {method!r}")
    if isinstance(statistic, Statistic):
        n_examples = statistic.n
        estimate = statistic.estimate()
        name = metric or statistic.name
    else:
        if n is None:
            raise ValueError("A callable statistic needs `n`, the number of examples")
        n_examples = int(n)
        estimate = float(np.asarray(statistic(np.arange(n_examples)[None, :])).reshape(-1)[0])
        name = metric or str(getattr(statistic, "__name__", "statistic"))
    dist, codes, n_units = _distribution(statistic, b, gen, groups, n, max_memory, progress)
    low, high = _interval(
        method,
        dist,
        estimate,
        level,
        lambda: _jackknife(
            statistic,
            *_jackknife_units([statistic], codes, n_units, n_examples, gen),
            n_examples,
            max_memory,
        ),
    )
    row: dict[str, Any] = {"metric": name}
    if system is not None:
        row["system"] = system
    row.update(
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        p_value=np.nan,
        p_adjusted=np.nan,
        method=method,
        B=b,
        seed=seed,
        level=level,
        n=n_examples,
        n_groups=n_units if codes is not None else np.nan,
    )
    frame = _frame([row])
    if return_result:
        return frame, BootstrapResult(estimate, low, high, dist, method, level, b, seed)
    return frame


# --- paired --------------------------------------------------------------------------


def _preview(values: np.ndarray, k: int = 3) -> str:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:k])
    return shown + (", ..." if len(values) > k else "")


def align_pair(
    a: Statistic, b: Statistic, names: tuple[str, str] = ("a", "b")
) -> tuple[Statistic, Statistic, np.ndarray]:
    """Put two runs' examples in one order by ``example_id``.

    Without ids on either statistic the rows are taken as already aligned (the
    lengths must agree). With ids on both, both are reordered to ``a``'s order
    of ids; duplicated ids, or ids present in one run only, are an error that
    says how many differ and shows a few.

    Returns
    -------
    (a_aligned, b_aligned, order_a)
        ``order_a`` maps aligned positions to ``a``'s original rows (use it to
        align per-example arrays given in ``a``'s order, such as groups).

    Examples
    --------
    >>> from xcal.stats import mean_statistic
    >>> a = mean_statistic([1.0, 2.0], example_ids=["x", "y"])
    >>> b = mean_statistic([20.0, 10.0], example_ids=["y", "x"])
    >>> _, b2, _ = align_pair(a, b)
    >>> b2.contributions[:, 0]
    array([10., 20.])
    >>> align_pair(a, mean_statistic([1.0, 2.0], example_ids=["x", "z"]))
    Traceback (most recent call last):
    ...
    ValueError: Runs 'a' and 'b' do not hold the same example ids: 1 only in 'a' (e.g. 'y'); 1 only in 'b' (e.g. 'z')
    """
    na, nb = names
    ida, idb = a.example_ids, b.example_ids
    if (ida is None) != (idb is None):
        missing = na if ida is None else nb
        raise ValueError(
            f"Run {missing!r} has no example ids while the other has: give `example_ids` to both "
            "statistics (or to neither when the rows are already aligned)"
        )
    if ida is None or idb is None:
        if a.n != b.n:
            raise ValueError(
                f"Runs {na!r} and {nb!r} hold {a.n} and {b.n} examples; paired tests need the "
                "same examples (give `example_ids` to align them)"
            )
        return a, b, np.arange(a.n)
    same_order = ida.shape == idb.shape and np.array_equal(ida, idb)
    sorts: list[np.ndarray] = []
    for ids, name in ((ida, na), (idb, nb)):
        order = sorts[0] if same_order and sorts else np.argsort(ids, kind="stable")
        ordered = ids[order]
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if repeated.size:
            dup = np.unique(repeated)
            raise ValueError(
                f"Run {name!r} holds {dup.size} duplicated example id(s) (e.g. {_preview(dup)}); "
                "each example must appear once"
            )
        sorts.append(order)
    if same_order:
        return a, b, np.arange(a.n)  # already in one order: the common case
    sort_a, sort_b = sorts
    if ida.shape != idb.shape or not np.array_equal(ida[sort_a], idb[sort_b]):
        only_a = np.setdiff1d(ida, idb)
        only_b = np.setdiff1d(idb, ida)
        parts = []
        if only_a.size:
            parts.append(f"{only_a.size} only in {na!r} (e.g. {_preview(only_a)})")
        if only_b.size:
            parts.append(f"{only_b.size} only in {nb!r} (e.g. {_preview(only_b)})")
        raise ValueError(
            f"Runs {na!r} and {nb!r} do not hold the same example ids: " + "; ".join(parts)
        )
    # the example at a's row sort_a[k] is at b's row sort_b[k]
    order_b = np.empty(a.n, dtype=np.intp)
    order_b[sort_a] = sort_b
    return a, b.take(order_b), np.arange(a.n)


def _paired_evaluator(
    a: Statistic, b: Statistic, codes: np.ndarray | None, n_units: int
) -> Callable[[np.ndarray], np.ndarray]:
    """``weights (c, units) -> (c, 2)``: both systems under the same resamples."""
    if isinstance(a, LinearStatistic) and isinstance(b, LinearStatistic):
        # One matrix product for both systems.
        ka = a.contributions.shape[1]
        fused = LinearStatistic(
            np.hstack([a.contributions, b.contributions]),
            lambda s, t: np.column_stack([a.finalize(s[:, :ka], t), b.finalize(s[:, ka:], t)]),
            "pair",
            ("pair",),
        )
        if codes is None:
            return _resample_evaluator(fused)
        return fused.grouped(codes, n_units)
    ea = a.on_weights if codes is None else a.grouped(codes, n_units)
    eb = b.on_weights if codes is None else b.grouped(codes, n_units)
    return lambda w: np.column_stack([ea(w), eb(w)])


def _paired_setup(
    a: Statistic,
    b: Statistic,
    groups: npt.ArrayLike | None,
    names: tuple[str, str],
) -> tuple[Statistic, Statistic, np.ndarray | None, int]:
    if not isinstance(a, Statistic) or not isinstance(b, Statistic):
        raise TypeError("Paired tests take two Statistic objects (see xcal.stats.metric_statistic)")
    if a.name != b.name or a.kind != b.kind:
        # A difference of two different metrics (ECE minus accuracy, or ECE with 15
        # bins minus ECE with 10) is not a comparison of systems.
        raise ValueError(
            f"Runs {names[0]!r} and {names[1]!r} are measured with different metrics "
            f"({a.name} {a.kind} vs {b.name} {b.kind}); a paired test compares one metric on "
            "two systems"
        )
    a, b, order_a = align_pair(a, b, names)
    if groups is not None:
        g = np.asarray(groups)
        if g.ndim != 1 or g.shape[0] != order_a.shape[0]:
            raise ValueError(
                f"Expected `groups` of shape ({order_a.shape[0]},), one label per example of "
                f"run {names[0]!r}, got shape {g.shape}"
            )
        groups = g[order_a]
    codes, n_units = _units(a.n, groups)
    return a, b, codes, n_units


def _paired_replicates(
    a: Statistic,
    b: Statistic,
    codes: np.ndarray | None,
    n_units: int,
    b_count: int,
    gen: np.random.Generator,
    max_memory: int,
    progress: bool | None,
) -> np.ndarray:
    evaluate = _paired_evaluator(a.for_resampling(), b.for_resampling(), codes, n_units)
    chunk = chunk_rows(max(n_units, a.n if codes is not None else 0), b_count, max_memory)
    draw = _count_drawer(gen, n_units, chunk)
    return _run_chunks(evaluate, draw, b_count, chunk, 2, "paired bootstrap", progress)


def paired_bootstrap_distribution(
    a: Statistic,
    b: Statistic,
    *,
    B: int = DEFAULT_B,
    rng: np.random.Generator | int | None = None,
    groups: npt.ArrayLike | None = None,
    names: tuple[str, str] = ("a", "b"),
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: bool | None = None,
) -> np.ndarray:
    """Replicates ``(B, 2)`` of both systems' metric on the same resamples.

    Column 0 is ``a``, column 1 is ``b`` (aligned by ``example_id``); their
    difference is the bootstrap distribution :func:`paired_bootstrap` uses, for
    the same ``rng``.

    Examples
    --------
    >>> from xcal.stats import mean_statistic
    >>> reps = paired_bootstrap_distribution(
    ...     mean_statistic([1.0, 2.0, 3.0]), mean_statistic([1.0, 2.0, 3.0]), B=50, rng=0)
    >>> reps.shape, bool((reps[:, 0] == reps[:, 1]).all())
    ((50, 2), True)
    """
    gen, _ = as_generator(rng)
    b_count = _check_b(B)
    a, b, codes, n_units = _paired_setup(a, b, groups, names)
    return _paired_replicates(a, b, codes, n_units, b_count, gen, max_memory, progress)


def paired_bootstrap(
    a: Statistic,
    b: Statistic,
    *,
    method: str = "percentile",
    level: float = 0.95,
    B: int = DEFAULT_B,
    rng: np.random.Generator | int | None = None,
    groups: npt.ArrayLike | None = None,
    null: str = "shift",
    alternative: str = "two-sided",
    names: tuple[str, str] = ("a", "b"),
    metric: str | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: bool | None = None,
    return_result: bool = False,
) -> Any:
    """Paired bootstrap of the difference ``metric(a) - metric(b)`` on the same examples.

    Both systems are evaluated on the *same* resampled examples (aligned by
    ``example_id`` when the statistics carry ids), so the interval reflects only
    the variability of the difference. The p-value tests ``H0: difference = 0``
    (see :func:`bootstrap_pvalue`).

    Parameters
    ----------
    a, b : Statistic
        The two systems' statistics for the same metric, e.g.
        ``metric_statistic("ece", y, logits=..., example_ids=ids)``.
    method : {"percentile", "bca"}
        Percentile for calibration errors: BCa intervals of ECE differences
        covered 86-90% at n = 2,000 in an independent check (docs/stats.md).
    level : float, default=0.95
    B : int, default=10,000
    rng : numpy.random.Generator, int or None
    groups : array-like, shape (n,), optional
        Cluster labels, in the order of ``a``'s examples: whole clusters move
        together.
    null : {"shift", "koehn"}
    alternative : {"two-sided", "greater", "less"}
    names : (str, str)
        The systems' names, for error messages and the table.
    metric : str, optional
        Defaults to ``a.name``.
    max_memory, progress, return_result
        As in :func:`bootstrap_ci`.

    Returns
    -------
    pandas.DataFrame
        One row: metric, system_a, system_b, estimate (a - b), ci_low, ci_high,
        p_value, p_adjusted (NaN), method, B, seed, level, estimate_a, estimate_b,
        n, n_groups.

    Examples
    --------
    >>> from xcal.stats import metric_statistic
    >>> rng = np.random.default_rng(0)
    >>> good = metric_statistic("accuracy", correct=rng.random(400) < 0.9)
    >>> bad = metric_statistic("accuracy", correct=rng.random(400) < 0.6)
    >>> row = paired_bootstrap(good, bad, B=2000, rng=1, names=("good", "bad")).iloc[0]
    >>> bool(row.ci_low > 0), bool(row.p_value < 0.01)
    (True, True)
    """
    gen, seed = as_generator(rng)
    b_count = _check_b(B)
    level = _check_level(level)
    if method not in ("percentile", "bca"):
        raise ValueError(f"Expected `method` in ('percentile', 'bca'), got {method!r}")
    a, b, codes, n_units = _paired_setup(a, b, groups, names)
    est_a, est_b = a.estimate(), b.estimate()
    estimate = est_a - est_b
    both = _paired_replicates(a, b, codes, n_units, b_count, gen, max_memory, progress)
    dist = both[:, 0] - both[:, 1]
    if a.recentred_differences:
        dist = recentred(dist, estimate)
    p_value = bootstrap_pvalue(dist, estimate, null=null, alternative=alternative)

    def jackknife() -> np.ndarray:
        jcodes, j_units = _jackknife_units([a, b], codes, n_units, a.n, gen)
        ja = _jackknife(a, jcodes, j_units, a.n, max_memory)
        jb = _jackknife(b, jcodes, j_units, b.n, max_memory)
        return ja - jb

    low, high = _interval(method, dist, estimate, level, jackknife)
    row = {
        "metric": metric or a.name,
        "system_a": names[0],
        "system_b": names[1],
        "estimate": estimate,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "p_adjusted": np.nan,
        "method": f"paired bootstrap ({method}, {null} p-value)",
        "B": b_count,
        "seed": seed,
        "level": level,
        "estimate_a": est_a,
        "estimate_b": est_b,
        "n": a.n,
        "n_groups": n_units if codes is not None else np.nan,
    }
    frame = _frame([row])
    if return_result:
        return frame, BootstrapResult(
            estimate, low, high, dist, method, level, b_count, seed, p_value
        )
    return frame
