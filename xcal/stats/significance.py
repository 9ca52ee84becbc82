"""Paired significance tests: approximate randomisation (paired permutation) and the bootstrap test.

The permutation test asks whether the observed difference ``metric(a) -
metric(b)`` is larger than what swapping the two systems' predictions on a
random subset of examples would give. Under ``H0`` (the two systems'
predictions are exchangeable on each example) every swap pattern is equally
likely, so the test is exact *for that null* whatever the metric, including
ECE: the swapped systems are re-binned and their metric recomputed from
scratch for every permutation. Its null is exchangeability, not an equal
metric: two systems with the same ECE but different predictions are not
exchangeable, and the test rejects them far more often than its level (see
:func:`permutation_test`). The paired bootstrap tests the difference itself.

For linear statistics (means, equal-width calibration errors) swapping example
``i`` moves ``M_b[i] - M_a[i]`` from one system's sufficient sums to the
other's, so a chunk of permutations costs one matrix product ``S @ (M_b - M_a)``.

References
----------
E. W. Noreen. Computer-Intensive Methods for Testing Hypotheses. Wiley, 1989.
B. Phipson, G. K. Smyth. Permutation p-values should never be zero.
Statistical Applications in Genetics and Molecular Biology 9(1), 2010.
R. Dror, G. Baumer, S. Shlomov, R. Reichart. The hitchhiker's guide to testing
statistical significance in natural language processing. ACL 2018.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from xcal.stats.bootstrap import (
    TIE_RTOL,
    _check_b,
    _frame,
    _paired_setup,
    _run_chunks,
)
from xcal.stats.resample import DEFAULT_MAX_MEMORY, as_generator, chunk_rows
from xcal.stats.statistic import LinearStatistic, Statistic

__all__ = ["permutation_pvalue", "permutation_test", "swap_distribution"]

DEFAULT_PERMUTATIONS = 10_000


def permutation_pvalue(
    null_distribution: npt.ArrayLike, observed: float, alternative: str = "two-sided"
) -> float:
    """Monte Carlo permutation p-value ``(1 + #{as extreme}) / (R + 1)`` (Phipson & Smyth 2010).

    Values within a relative ``TIE_RTOL`` of the observed one count as ties
    (as extreme), since the same difference computed by two summation orders
    may differ in the last bits.

    Examples
    --------
    Of 9 permuted differences, 2 are at least as far from 0 as 0.3:

    >>> permutation_pvalue([0.1, -0.2, 0.3, -0.35, 0.0, 0.05, -0.1, 0.2, 0.1], 0.3)
    0.3
    """
    d = np.asarray(null_distribution, dtype=np.float64)
    gamma = abs(observed) * TIE_RTOL
    if alternative == "two-sided":
        hits = np.count_nonzero(np.abs(d) >= abs(observed) - gamma)
    elif alternative == "greater":
        hits = np.count_nonzero(d >= observed - gamma)
    elif alternative == "less":
        hits = np.count_nonzero(d <= observed + gamma)
    else:
        raise ValueError(
            f"Expected `alternative` in ('two-sided', 'greater', 'less'), got {alternative!r}"
        )
    return float((1 + hits) / (d.shape[0] + 1))


def _swap_evaluator(
    a: Statistic, b: Statistic, codes: np.ndarray | None, n_units: int
) -> Callable[[np.ndarray], np.ndarray]:
    """``swaps (c, units) -> (c,)``: metric(a') - metric(b') after swapping the marked units."""
    n = a.n
    if isinstance(a, LinearStatistic) and isinstance(b, LinearStatistic) and a.kind == b.kind:
        delta = b.contributions - a.contributions  # what a swap moves from a to b's side
        total_a = a.contributions.sum(axis=0)
        total_b = b.contributions.sum(axis=0)
        if codes is not None:
            delta_u = np.zeros((n_units, delta.shape[1]))
            np.add.at(delta_u, codes, delta)
            delta = delta_u
        full = np.full(1, float(n))

        def linear(s: np.ndarray) -> np.ndarray:
            moved = s @ delta
            t = np.broadcast_to(full, (s.shape[0],))
            return a.finalize(total_a + moved, t) - b.finalize(total_b - moved, t)

        return linear
    pool = a.pooled(b)  # raises a clear error for two different metrics

    def generic(s: np.ndarray) -> np.ndarray:
        swap = s if codes is None else s[:, codes]
        keep = 1.0 - swap
        wa = np.hstack([keep, swap])
        wb = np.hstack([swap, keep])
        return pool.on_weights(wa) - pool.on_weights(wb)

    return generic


def _swap_drawer(gen: np.random.Generator, n_units: int) -> Callable[[int], np.ndarray]:
    def draw(c: int) -> np.ndarray:
        # Each unit swapped independently with probability 1/2.
        return gen.integers(0, 2, size=(c, n_units), dtype=np.int8).astype(np.float64)

    return draw


def swap_distribution(
    a: Statistic,
    b: Statistic,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    rng: np.random.Generator | int | None = None,
    groups: npt.ArrayLike | None = None,
    names: tuple[str, str] = ("a", "b"),
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: bool | None = None,
) -> np.ndarray:
    """The permutation null distribution of ``metric(a) - metric(b)``, shape ``(n_permutations,)``.

    Examples
    --------
    >>> from xcal.stats import mean_statistic
    >>> d = swap_distribution(mean_statistic([1.0, 1.0]), mean_statistic([0.0, 0.0]),
    ...                       n_permutations=400, rng=0)
    >>> sorted(set(np.round(d, 12).tolist()))  # no swap, one swap (either example), both
    [-1.0, 0.0, 1.0]
    """
    gen, _ = as_generator(rng)
    r = _check_b(n_permutations, "n_permutations")
    a, b, codes, n_units = _paired_setup(a, b, groups, names)
    return _swaps(a, b, codes, n_units, r, gen, max_memory, progress)


def _swaps(
    a: Statistic,
    b: Statistic,
    codes: np.ndarray | None,
    n_units: int,
    r: int,
    gen: np.random.Generator,
    max_memory: int,
    progress: bool | None,
) -> np.ndarray:
    evaluate = _swap_evaluator(a, b, codes, n_units)
    # the generic path holds (c, 2n) pooled weights twice
    width = n_units if isinstance(a, LinearStatistic) else 4 * a.n
    chunk = chunk_rows(width, r, max_memory)
    out = _run_chunks(
        evaluate, _swap_drawer(gen, n_units), r, chunk, 1, "permutation test", progress
    )
    return out[:, 0]


def permutation_test(
    a: Statistic,
    b: Statistic,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    rng: np.random.Generator | int | None = None,
    groups: npt.ArrayLike | None = None,
    alternative: str = "two-sided",
    names: tuple[str, str] = ("a", "b"),
    metric: str | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: bool | None = None,
) -> Any:
    """Paired approximate-randomisation test: are the two systems exchangeable?

    For each of ``n_permutations`` random swap patterns, the two systems'
    predictions are exchanged on the swapped examples (or whole groups) and the
    metric difference recomputed; the p-value is the share of patterns giving a
    difference at least as extreme as the observed one, ``(1 + hits) / (R + 1)``.

    The null hypothesis is *exchangeability*: on every example, the pair of
    predictions is as likely in one order as in the other. It implies an equal
    metric, but an equal metric does not imply it. For a mean of per-example
    scores (accuracy, Brier, NLL) the difference is what the test is sensitive
    to; for a calibration error it is not a test of equal calibration. An
    overconfident and an underconfident system with the same ECE are mixed by
    the swaps into two nearly calibrated systems, so the permutation null is
    too narrow and the test rejects far more often than ``alpha`` (30% at
    alpha 0.05 in ``tests/test_stats_significance.py``; 15-29% on Dirichlet data,
    n = 50-2,000). To test ``ECE(a) = ECE(b)`` use :func:`paired_bootstrap`,
    which ``xcal analyze`` does; it never uses this test.

    Parameters
    ----------
    a, b : Statistic
        The two systems' statistics for the same metric (aligned by
        ``example_id`` when both carry ids).
    n_permutations : int, default=10,000
    rng : numpy.random.Generator, int or None
    groups : array-like, shape (n,), optional
        Swap whole groups (in ``a``'s example order) at once.
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: H1 is ``metric(a) > metric(b)``.
    names : (str, str)
    metric : str, optional
    max_memory, progress
        As in :func:`xcal.stats.bootstrap_ci`.

    Returns
    -------
    pandas.DataFrame
        One row: metric, system_a, system_b, estimate (a - b), ci_low and ci_high
        (NaN: a permutation test gives no interval), p_value, p_adjusted (NaN),
        method, B (the number of permutations), seed, estimate_a, estimate_b, n,
        n_groups.

    Examples
    --------
    >>> from xcal.stats import metric_statistic
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 500)
    >>> logits = rng.normal(size=(500, 3)); logits[np.arange(500), y] += 1.0
    >>> a = metric_statistic("ece", y, logits=logits)
    >>> b = metric_statistic("ece", y, logits=3 * logits)  # overconfident
    >>> row = permutation_test(a, b, n_permutations=2000, rng=0).iloc[0]
    >>> bool(row.estimate < 0), bool(row.p_value < 0.01)
    (True, True)
    """
    gen, seed = as_generator(rng)
    r = _check_b(n_permutations, "n_permutations")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(
            f"Expected `alternative` in ('two-sided', 'greater', 'less'), got {alternative!r}"
        )
    a, b, codes, n_units = _paired_setup(a, b, groups, names)
    if a.kind != b.kind:
        raise ValueError(
            f"A permutation test compares one metric on two systems; got {a.kind} and {b.kind}"
        )
    est_a, est_b = a.estimate(), b.estimate()
    observed = est_a - est_b
    null = _swaps(a, b, codes, n_units, r, gen, max_memory, progress)
    row = {
        "metric": metric or a.name,
        "system_a": names[0],
        "system_b": names[1],
        "estimate": observed,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p_value": permutation_pvalue(null, observed, alternative),
        "p_adjusted": np.nan,
        "method": "paired permutation",
        "B": r,
        "seed": seed,
        "estimate_a": est_a,
        "estimate_b": est_b,
        "n": a.n,
        "n_groups": n_units if codes is not None else np.nan,
    }
    return _frame([row])
