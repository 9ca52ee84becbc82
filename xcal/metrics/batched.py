"""Calibration errors of many resamples at once, for the bootstrap.

``batched_calibration_error`` evaluates ``B`` resamples of one set of
(confidence, correct) pairs, given either as index arrays (classic bootstrap)
or as weights (Poisson/Bayesian bootstrap), without a Python loop over
resamples: per-resample bin ids are offset by ``row * n_bins`` and one flat
``np.bincount`` gives every resample's per-bin sums. Rows are processed in
blocks only to bound memory.

Equal-width bins depend on the confidence alone, so the bin of each example is
computed once. Equal-mass bin edges are **recomputed for every resample** (from
that resample's own weighted order statistics), because the bootstrap must
repeat the whole estimator, edge placement included; each row therefore equals
:func:`xcal.metrics.top_label_calibration_error` on that resample, to floating
point summation order. The shared sort of the full sample makes this cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from xcal.metrics._binning import (
    error_from_statistics,
    mass_bins_for_groups,
    tie_groups,
    width_bin_ids,
)
from xcal.metrics._validation import (
    BINNINGS,
    NORMS,
    Binning,
    Norm,
    check_choice,
    check_confidence_correct,
    check_n_bins,
)

__all__ = ["batched_calibration_error"]

# Elements (resamples x samples) handled per block; bounds peak memory to ~100 MB.
_BLOCK_ELEMENTS = 1 << 21


def _check_indices(indices: Any, n: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 2:
        raise ValueError(f"Expected `indices` of shape (B, n), got shape {idx.shape}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"Expected `indices` to hold integers, got dtype {idx.dtype}")
    if idx.shape[1] == 0:
        raise ValueError("`indices` has zero columns: each resample needs at least one sample")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = np.argwhere((idx < 0) | (idx >= n))[0]
        raise ValueError(
            f"`indices[{int(bad[0])}, {int(bad[1])}]` is {int(idx[tuple(bad)])}, expected an "
            f"index in [0, {n})"
        )
    return idx.astype(np.intp, copy=False)


def _check_weights(weights: Any, n: int) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"Expected `weights` of shape (B, {n}), got shape {w.shape}")
    if w.dtype.kind not in "iuf" or w.dtype.kind == "b":
        raise TypeError(f"Expected `weights` to hold real numbers, got dtype {w.dtype}")
    if not (np.isfinite(w).all() and (w >= 0).all()):
        bad = np.argwhere(~(np.isfinite(w) & (w >= 0)))[0]
        raise ValueError(
            f"`weights[{int(bad[0])}, {int(bad[1])}]` is {w[tuple(bad)].item()!r}; weights must be "
            "finite and >= 0"
        )
    totals = w.sum(axis=1)
    if not (totals > 0).all():
        row = int(np.flatnonzero(~(totals > 0))[0])
        raise ValueError(f"`weights` row {row} sums to 0: every resample needs positive weight")
    return w


def batched_calibration_error(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    indices: npt.ArrayLike | None = None,
    weights: npt.ArrayLike | None = None,
    n_bins: int = 15,
    binning: Binning = "width",
    norm: Norm = "l1",
    debias: bool = False,
) -> np.ndarray:
    """Binned calibration error of ``B`` resamples in one vectorised pass.

    Row ``b`` of the result equals ``top_label_calibration_error(confidence[indices[b]],
    correct[indices[b]], ...)`` (indices form) or ``top_label_calibration_error(
    confidence, correct, sample_weight=weights[b], ...)`` (weights form).

    Parameters
    ----------
    confidence : array-like of float, shape (n,)
        Confidence of each prediction, in [0, 1].
    correct : array-like of bool or 0/1, shape (n,)
        Whether each prediction was right.
    indices : array-like of int, shape (B, m), optional
        Row ``b`` lists the samples of resample ``b`` (with repeats); ``m`` may
        differ from ``n``.
    weights : array-like of float, shape (B, n), optional
        Row ``b`` gives each sample's non-negative weight in resample ``b``.
        Exactly one of ``indices`` and ``weights``.
    n_bins : int, default=15
    binning : {"width", "mass"}, default="width"
        Equal-mass edges are recomputed per resample (see the module docstring).
    norm : {"l1", "l2", "max"}, default="l1"
    debias : bool, default=False
        The Kumar et al. (2019) debiased estimator (``norm="l2"`` only).

    Returns
    -------
    numpy.ndarray of shape (B,)

    Examples
    --------
    >>> import numpy as np
    >>> conf = np.array([0.25, 0.375, 0.75, 0.875]); correct = np.array([0, 1, 1, 1])

    The full sample, then samples 1, 1, 2, 3: bin 0 holds 0.375 twice (both right,
    |2 - 0.75|) and bin 1 holds 0.75 and 0.875 (both right, |2 - 1.625|), so the
    ECE is (1.25 + 0.375) / 4:

    >>> batched_calibration_error(conf, correct, indices=[[0, 1, 2, 3], [1, 1, 2, 3]], n_bins=2)
    array([0.1875 , 0.40625])
    """
    n_bins = check_n_bins(n_bins)
    check_choice("binning", binning, BINNINGS)
    check_choice("norm", norm, NORMS)
    if debias and norm != "l2":
        raise ValueError(f"`debias=True` needs `norm='l2'`, got norm={norm!r}")
    conf, corr, _ = check_confidence_correct(confidence, correct)
    if (indices is None) == (weights is None):
        raise ValueError("Pass exactly one of `indices=` (B, m) or `weights=` (B, n)")
    n = conf.shape[0]
    if indices is not None:
        idx = _check_indices(indices, n)
        if binning == "width":
            return _width_indices(conf, corr, idx, n_bins, norm, debias)
        return _mass(conf, corr, n_bins, norm, debias, indices=idx)
    w = _check_weights(weights, n)
    if binning == "width":
        return _width_weights(conf, corr, w, n_bins, norm, debias)
    return _mass(conf, corr, n_bins, norm, debias, weights=w)


def _block_rows(cols: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(cols, 1))


def _width_indices(
    conf: np.ndarray, corr: np.ndarray, idx: np.ndarray, n_bins: int, norm: str, debias: bool
) -> np.ndarray:
    # key = 2 * bin + correct per sample, computed once; one integer bincount over
    # row-offset keys gives every resample's bin counts and correct counts.
    key = width_bin_ids(conf, n_bins) * 2 + corr
    conf64 = conf.astype(np.float64)
    n_resamples, m = idx.shape
    out = np.empty(n_resamples)
    step = _block_rows(m)
    width = 2 * n_bins
    for start in range(0, n_resamples, step):
        block = idx[start : start + step]
        rows = block.shape[0]
        flat = key[block]
        flat += (np.arange(rows, dtype=np.intp) * width)[:, None]
        pairs = np.bincount(flat.ravel(), minlength=rows * width).reshape(rows, n_bins, 2)
        conf_sum = np.bincount(
            flat.ravel(), weights=conf64[block].ravel(), minlength=rows * width
        ).reshape(rows, n_bins, 2)
        count = pairs.sum(axis=2).astype(np.float64)
        out[start : start + rows] = error_from_statistics(
            count, conf_sum.sum(axis=2), pairs[:, :, 1].astype(np.float64), norm, debias
        )
    return out


def _width_weights(
    conf: np.ndarray, corr: np.ndarray, w: np.ndarray, n_bins: int, norm: str, debias: bool
) -> np.ndarray:
    ids = width_bin_ids(conf, n_bins)
    conf64 = conf.astype(np.float64)
    corr64 = corr.astype(np.float64)
    n_resamples, n = w.shape
    out = np.empty(n_resamples)
    step = _block_rows(n)
    for start in range(0, n_resamples, step):
        block = w[start : start + step].astype(np.float64, copy=False)
        rows = block.shape[0]
        flat = (ids[None, :] + (np.arange(rows, dtype=np.intp) * n_bins)[:, None]).ravel()
        size = rows * n_bins
        count = np.bincount(flat, weights=block.ravel(), minlength=size)
        conf_sum = np.bincount(flat, weights=(block * conf64).ravel(), minlength=size)
        correct_sum = np.bincount(flat, weights=(block * corr64).ravel(), minlength=size)
        out[start : start + rows] = error_from_statistics(
            count.reshape(rows, n_bins),
            conf_sum.reshape(rows, n_bins),
            correct_sum.reshape(rows, n_bins),
            norm,
            debias,
        )
    return out


def _mass(
    conf: np.ndarray,
    corr: np.ndarray,
    n_bins: int,
    norm: str,
    debias: bool,
    *,
    indices: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    # One sort of the full sample serves every resample: a resample only reweights
    # the sorted sequence. Members of a tie group share a bin and a confidence, so
    # everything is computed per group, (B, G) arrays with G <= n distinct values:
    # group weights, their running total (which places the equal-mass bins) and
    # the weight of the correct members.
    n = conf.shape[0]
    order = np.argsort(conf, kind="stable")
    conf_sorted = conf[order]
    ends, _ = tie_groups(conf_sorted)
    starts = np.concatenate([[0], ends[:-1] + 1])
    ties = ends.shape[0] < n
    group_conf = conf_sorted[ends].astype(np.float64)
    corr_sorted = corr[order]
    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n)
    n_resamples = indices.shape[0] if indices is not None else weights.shape[0]  # type: ignore[union-attr]
    out = np.empty(n_resamples)
    step = _block_rows(max(n, indices.shape[1] if indices is not None else n))
    for start in range(0, n_resamples, step):
        if indices is not None:
            # multiplicities, already in sorted order: count sorted positions
            block_idx = indices[start : start + step]
            rows = block_idx.shape[0]
            flat = (rank[block_idx] + (np.arange(rows, dtype=np.intp) * n)[:, None]).ravel()
            w_sorted = np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)
        else:
            assert weights is not None
            w_sorted = np.take(weights[start : start + step], order, axis=1).astype(np.float64)
            rows = w_sorted.shape[0]
        w_right = w_sorted * corr_sorted
        if ties:
            group_weight = np.add.reduceat(w_sorted, starts, axis=1)
            group_right = np.add.reduceat(w_right, starts, axis=1)
        else:
            group_weight, group_right = w_sorted, w_right
        through = np.cumsum(group_weight, axis=1)
        ids = mass_bins_for_groups(through, through[:, -1:], n_bins)
        ids += (np.arange(rows, dtype=np.intp) * n_bins)[:, None]
        flat_ids = ids.ravel()
        size = rows * n_bins
        count = np.bincount(flat_ids, weights=group_weight.ravel(), minlength=size)
        conf_sum = np.bincount(
            flat_ids, weights=(group_weight * group_conf).ravel(), minlength=size
        )
        correct_sum = np.bincount(flat_ids, weights=group_right.ravel(), minlength=size)
        out[start : start + rows] = error_from_statistics(
            count.reshape(rows, n_bins),
            conf_sum.reshape(rows, n_bins),
            correct_sum.reshape(rows, n_bins),
            norm,
            debias,
        )
    return out
