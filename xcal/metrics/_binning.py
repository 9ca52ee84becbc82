"""Bin assignment and per-bin statistics shared by every binned calibration metric.

Two binnings, one convention each, used identically by the plain, weighted and
batched estimators:

* ``"width"``: ``n_bins`` equal-width bins with edges ``np.linspace(0, 1, n_bins + 1)``;
  bin ``k`` holds ``edges[k] <= c < edges[k + 1]`` and the last bin also holds
  ``c == 1``. This is exactly ``np.histogram(c, bins=n_bins, range=(0, 1))`` and
  netcal's binning (``np.histogramdd`` / ``scipy.stats.binned_statistic_dd``), so a
  confidence of exactly 1.0 is in the last bin and 0.0 in the first, never in an
  extra bin. The edges are the floating-point ``linspace`` values (``3 * 0.1`` is
  ``0.30000000000000004``, so a confidence of exactly ``0.3`` is in bin 2 of 10),
  which is what the reference implementations do; scikit-learn's
  ``calibration_curve`` instead puts a value equal to an inner edge in the lower
  bin (``np.searchsorted(edges[1:-1], c)``), a difference only for values exactly
  on an inner edge.
* ``"mass"``: equal-mass (adaptive) bins. Sort the confidences and lay the
  (weighted) samples end to end on ``[0, N)``; bin ``k`` covers positions
  ``[k N / n_bins, (k + 1) N / n_bins)``. Equal confidences always share a bin: a
  tie group goes, as a whole, to the bin containing the midpoint of its stretch,
  ``floor((before + through) * n_bins / (2 N))`` where ``before`` and ``through``
  are the cumulative weights up to its start and through its end. Without ties
  this puts exactly ``N / n_bins`` samples in each bin when that divides; a large
  tie group (say 40% of the samples at confidence 1.0) empties the bins it
  covers beyond the one it is put in. The bins depend only on the multiset of
  (confidence, weight) pairs, so they are invariant to shuffling, and integer
  weights give the same bins as repeating each sample that many times, which is
  what makes the bootstrap weights form equal the resampled-indices form.
  (netcal's ``equal_intervals=False`` instead interpolates ``np.quantile`` edges
  and can split a tie group; scikit-learn's ``calibration_curve(strategy=
  "quantile")`` uses ``np.percentile`` edges.)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

# A float32 product ``c * n_bins`` is within one bin of the truth only while
# ``n_bins`` is far below 2**24; above this many bins the product is taken in float64.
_FLOAT32_PRODUCT_MAX_BINS = 4096


def width_edges(n_bins: int) -> np.ndarray:
    """The equal-width edges, exactly as numpy, scikit-learn and netcal build them."""
    return np.linspace(0.0, 1.0, n_bins + 1)


@lru_cache(maxsize=64)
def _edge_tables(n_bins: int, dtype_str: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edge of each candidate bin, rounded up to ``dtype``.

    For ``c`` of dtype ``dt`` and a float64 edge ``e``: ``c >= e`` iff ``c >= u`` where
    ``u`` is the smallest ``dt`` value ``>= e``, so comparisons in the input dtype are
    exact and the confidences are never cast. Both tables have ``n_bins + 1``
    entries so that the candidate ``floor(1.0 * n_bins) = n_bins`` can be looked up:
    ``lo[n_bins] = inf`` moves it down to the last bin, and ``hi`` is ``inf`` for
    the last bin so 1.0 never leaves it.
    """
    dt = np.dtype(dtype_str)
    edges = width_edges(n_bins)
    rounded = edges.astype(dt)
    below = rounded.astype(np.float64) < edges
    rounded[below] = np.nextafter(rounded[below], dt.type(np.inf))
    lo = np.empty(n_bins + 1, dtype=dt)
    lo[:n_bins] = rounded[:-1]
    lo[n_bins] = np.inf
    hi = np.empty(n_bins + 1, dtype=dt)
    hi[: n_bins - 1] = rounded[1:-1]
    hi[n_bins - 1 :] = np.inf
    lo.flags.writeable = False
    hi.flags.writeable = False
    return lo, hi


def width_bin_ids(
    confidence: np.ndarray,
    n_bins: int,
    *,
    out: np.ndarray | None = None,
    scratch: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Equal-width bin index of each confidence (``np.histogram`` semantics).

    The candidate ``b = floor(c * n_bins)`` is at most one bin off the ``linspace``
    edges, so ``b - (c < lo[b]) + (c >= hi[b])`` is exact, the same correction
    ``np.histogram`` applies for uniform bins (both tests use the same candidate,
    so they run without a dependency). ``out`` and ``scratch`` (a float of the
    input dtype, a float, a bool buffer) let the chunked top-label pass reuse memory.
    """
    n = confidence.shape[0]
    dt = confidence.dtype
    if dt not in (np.float32, np.float64):
        confidence = confidence.astype(np.float64)
        dt = confidence.dtype
    lo, hi = _edge_tables(n_bins, dt.str)
    if out is None:
        out = np.empty(n, dtype=np.intp)
    if scratch is None:
        prod: np.ndarray = np.empty(n, dtype=dt)
        edge: np.ndarray = np.empty(n, dtype=dt)
        flag: np.ndarray = np.empty(n, dtype=bool)
    else:
        prod, edge, flag = scratch
    if dt == np.float32 and n_bins > _FLOAT32_PRODUCT_MAX_BINS:
        out[:] = np.multiply(confidence, float(n_bins), dtype=np.float64)
    else:
        np.multiply(confidence, dt.type(n_bins), out=prod)
        out[:] = prod  # truncation toward zero is floor for c >= 0
    candidate = out
    np.take(hi, candidate, out=edge)
    np.greater_equal(confidence, edge, out=flag)
    np.take(lo, candidate, out=edge)  # edge is free again once flag holds the test
    np.add(candidate, flag, out=out)
    np.less(confidence, edge, out=flag)
    np.subtract(out, flag, out=out)
    return out


@lru_cache(maxsize=64)
def _uniform_step(n_bins: int) -> float | None:
    """``1 / n_bins`` if every ``linspace`` edge but the last is exactly ``i * (1 / n_bins)``.

    That is how numpy builds the edges today; checking it once per ``n_bins``
    (rather than assuming it) keeps :func:`width_bin_keys` exact on any numpy.
    """
    step = 1.0 / n_bins
    inner = np.arange(n_bins, dtype=np.float64) * step
    return step if np.array_equal(inner, width_edges(n_bins)[:-1]) else None


def width_bin_keys(
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int,
    *,
    out: np.ndarray,
    scratch: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """``2 * bin + correct`` for float64 confidences, in float arithmetic.

    The same candidate-and-correct rule as :func:`width_bin_ids`, with the edges
    computed as ``i * step`` instead of looked up (a table lookup costs several
    elementwise passes). One difference on purpose: a candidate of ``n_bins``
    (confidence 1.0, or a product rounded up to ``n_bins``) is not clipped here;
    its keys are ``2 * n_bins`` and ``2 * n_bins + 1``, and the caller adds their
    counts to the last bin's (:func:`fold_overflow_bin`), which saves a pass.
    Where numpy's edges are not ``i * step``, the table lookup of
    :func:`width_bin_ids` gives the bins instead (never the overflow bin).
    """
    if confidence.dtype != np.float64:
        raise TypeError(f"width_bin_keys needs float64 confidences, got {confidence.dtype}")
    step = _uniform_step(n_bins)
    if step is None:
        ids = width_bin_ids(confidence, n_bins, out=out, scratch=scratch)
        np.multiply(ids, 2, out=ids)
        return np.add(ids, correct, out=ids)
    bin_, edge, flag = scratch
    np.multiply(confidence, float(n_bins), out=bin_)
    np.floor(bin_, out=bin_)
    np.add(bin_, 1.0, out=edge)
    np.multiply(edge, step, out=edge)  # the candidate's upper edge
    np.greater_equal(confidence, edge, out=flag)
    np.multiply(bin_, step, out=edge)  # its lower edge, before the candidate moves
    np.add(bin_, flag, out=bin_)
    np.less(confidence, edge, out=flag)  # never true together with the upper test
    np.subtract(bin_, flag, out=bin_)
    np.multiply(bin_, 2.0, out=bin_)
    np.add(bin_, correct, out=bin_)
    out[:] = bin_
    return out


def fold_overflow_bin(per_key: np.ndarray, n_bins: int) -> np.ndarray:
    """Per-key totals of length ``2 * n_bins + 2`` to ``(n_bins, 2)``, bin ``n_bins`` into the last."""
    folded = per_key[: 2 * n_bins].reshape(n_bins, 2).copy()
    folded[-1] += per_key[2 * n_bins :]
    return folded


def reference_width_bin_ids(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """The slow, obviously-correct definition ``width_bin_ids`` must equal."""
    ids = np.searchsorted(width_edges(n_bins), confidence, side="right") - 1
    return np.clip(ids, 0, n_bins - 1)


def tie_groups(sorted_confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last position of each run of equal values, and the run index of every position."""
    n = sorted_confidence.shape[0]
    is_last = np.empty(n, dtype=bool)
    np.not_equal(sorted_confidence[1:], sorted_confidence[:-1], out=is_last[:-1])
    is_last[-1] = True
    ends = np.flatnonzero(is_last)
    # runs ending strictly before position i = index of i's run
    group = np.cumsum(is_last) - is_last
    return ends, group


def mass_bins_for_groups(through: np.ndarray, total: Any, n_bins: int) -> np.ndarray:
    """Bin of each tie group from the cumulative weight through its end.

    ``through`` has groups on the last axis (``(G,)`` or ``(B, G)``) and ``total``
    broadcasts against it. The group goes to the bin holding the midpoint of its
    stretch ``[before, through)``: ``floor((before + through) * n_bins / (2 total))``.
    For integer weights the float64 division is exact after flooring (one
    rounding of a ratio of integers below 2**53 cannot cross an integer), and
    much faster than integer floor division.
    """
    before = np.zeros_like(through)
    before[..., 1:] = through[..., :-1]
    numerator = np.multiply(before + through, n_bins, dtype=np.float64)
    ids = np.floor(numerator / (2.0 * np.asarray(total, dtype=np.float64)))
    return np.clip(ids, 0, n_bins - 1).astype(np.intp)


def mass_bin_ids(
    confidence: np.ndarray, n_bins: int, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """Equal-mass bin index of each confidence (see the module docstring)."""
    order = np.argsort(confidence, kind="stable")
    ends, group = tie_groups(confidence[order])
    through: np.ndarray
    if sample_weight is None:
        through = ends + 1
        total: Any = confidence.shape[0]
    else:
        cum = np.cumsum(sample_weight[order])
        through = cum[ends]
        total = cum[-1]
    ids = np.empty(confidence.shape[0], dtype=np.intp)
    ids[order] = mass_bins_for_groups(through, total, n_bins)[group]
    return ids


def bin_ids(
    confidence: np.ndarray,
    n_bins: int,
    binning: str,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    if binning == "width":
        return width_bin_ids(confidence, n_bins)
    return mass_bin_ids(confidence, n_bins, sample_weight)


def bin_statistics(
    ids: np.ndarray,
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin (weight total, confidence sum, correct sum), each float64 of length n_bins."""
    count: np.ndarray
    if sample_weight is None:
        count = np.bincount(ids, minlength=n_bins).astype(np.float64)
        conf_sum = np.bincount(ids, weights=confidence, minlength=n_bins)
        correct_sum = np.bincount(ids, weights=correct, minlength=n_bins)
    else:
        w = sample_weight.astype(np.float64, copy=False)
        count = np.bincount(ids, weights=w, minlength=n_bins)
        conf_sum = np.bincount(ids, weights=w * confidence, minlength=n_bins)
        correct_sum = np.bincount(ids, weights=w * correct, minlength=n_bins)
    return count, conf_sum, correct_sum


def squared_l2_error(
    count: np.ndarray, conf_sum: np.ndarray, correct_sum: np.ndarray, debias: bool = False
) -> np.ndarray:
    """The squared L2 calibration error from per-bin sums, before any clipping or square root.

    ``sum_k (n_k / N) (acc_k - conf_k)^2``; with ``debias``, each bin's sampling
    variance ``acc_k (1 - acc_k) / (n_k - 1)`` is subtracted from its squared gap
    and bins with fewer than two samples are dropped (Kumar et al. 2019), which
    can make the total negative.
    """
    total = count.sum(axis=-1)
    nonempty = count > 0
    safe = np.where(nonempty, count, 1.0)
    gap = (correct_sum - conf_sum) / safe
    if not debias:
        return (count * gap * gap).sum(axis=-1) / total
    acc = correct_sum / safe
    several = count > 1
    variance = np.where(several, acc * (1.0 - acc) / np.where(several, count - 1.0, 1.0), 0.0)
    contribution = np.where(several, count * (gap * gap - variance), 0.0)
    return contribution.sum(axis=-1) / total


def error_from_statistics(
    count: np.ndarray,
    conf_sum: np.ndarray,
    correct_sum: np.ndarray,
    norm: str,
    debias: bool = False,
) -> np.ndarray:
    """Calibration error from per-bin sums; bins on the last axis, any leading axes.

    ``l1``: sum_k (n_k / N) |acc_k - conf_k| (ECE); ``l2``: the square root of
    sum_k (n_k / N) (acc_k - conf_k)^2 (RMS calibration error); ``max``: the largest
    |acc_k - conf_k| over non-empty bins (MCE). ``debias`` (``l2`` only) subtracts
    each bin's sampling variance acc_k (1 - acc_k) / (n_k - 1) from its squared gap
    and drops bins with fewer than two samples, as in Kumar et al. (2019), then
    clips the total at 0 before the square root.
    """
    if norm == "l1":
        return np.abs(correct_sum - conf_sum).sum(axis=-1) / count.sum(axis=-1)
    if norm == "max":
        gap = (correct_sum - conf_sum) / np.where(count > 0, count, 1.0)
        return np.abs(gap).max(axis=-1)
    return np.sqrt(np.maximum(squared_l2_error(count, conf_sum, correct_sum, debias), 0.0))
