"""Metrics as *batched statistics*: one call evaluates a whole chunk of resamples.

A :class:`Statistic` holds the per-example data of one system's predictions and
evaluates its metric under a ``(c, n)`` matrix of example weights (bootstrap
multiplicities, jackknife deletions, permutation swaps), returning ``(c,)``
values with no Python loop over rows.

Two kinds cover everything the bootstrap needs:

* :class:`LinearStatistic` -- metrics that are a fixed function of per-example
  *sums*: a weighted mean of per-example scores (accuracy, NLL, Brier, F1) is
  ``(w @ s) / w.sum()``; an equal-width binned calibration error only needs the
  per-bin sums of ``correct - confidence`` (and bin counts for the RMS and max
  norms), and the bin of an example never changes under resampling. Its
  contributions are precomputed once as an ``(n, K)`` matrix ``M``; a chunk of
  resamples is then one BLAS matrix product ``W @ M`` followed by a few ``(c, K)``
  operations. This is what makes the paired ECE bootstrap run near the cost of
  drawing the indices (see ``benchmarks/bench_bootstrap.py``).
* :class:`ArrayStatistic` -- anything else (equal-mass bins, whose edges move
  with every resample; the debiased calibration error; user metrics), given as
  a function ``fn(arrays, weights) -> (c,)`` over named per-example arrays, such
  as :func:`xcal.metrics.batched.batched_calibration_error` in its weights form.

Both know how to reorder their examples (to align two runs by ``example_id``),
how to pool two systems for a paired permutation test, and their exact
leave-one-out (jackknife) values for the BCa interval.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from xcal.registry import Registry

__all__ = [
    "METRICS",
    "ArrayStatistic",
    "LinearStatistic",
    "Statistic",
    "calibration_statistic",
    "mean_statistic",
    "metric_statistic",
    "smooth_calibration_statistic",
]

Finalize = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Statistic(ABC):
    """A metric of one system's predictions, evaluated under many weightings at once.

    Attributes
    ----------
    n : int
        Number of examples.
    name : str
        The metric's name, used in result tables.
    kind : tuple
        What is computed and how (metric and its parameters). Two statistics can be
        pooled for a permutation test only if their kinds are equal.
    example_ids : numpy.ndarray or None
        Identifier of each example, used to align two runs.
    """

    n: int
    name: str
    kind: tuple[Any, ...]
    example_ids: np.ndarray | None

    @abstractmethod
    def on_weights(self, weights: np.ndarray) -> np.ndarray:
        """Values ``(c,)`` under example weights ``(c, n)`` (unchecked hot path)."""

    @abstractmethod
    def estimate(self) -> float:
        """The metric on the data as given (every weight 1)."""

    @abstractmethod
    def take(self, order: np.ndarray) -> Statistic:
        """The same statistic on examples ``order`` (a permutation or subset)."""

    @abstractmethod
    def pooled(self, other: Statistic) -> Statistic:
        """A statistic over the ``2 n`` examples of ``self`` followed by ``other``."""

    def grouped(self, codes: np.ndarray, n_groups: int) -> Callable[[np.ndarray], np.ndarray]:
        """A function of *group* weights ``(c, n_groups)`` for the cluster bootstrap."""
        return lambda group_weights: self.on_weights(group_weights[:, codes])

    def for_resampling(self) -> Statistic:
        """The statistic whose values on bootstrap resamples are the replicates.

        ``self`` for every metric but the width-binned debiased L2 calibration
        error (see :meth:`LinearStatistic.for_resampling`).
        """
        return self

    @property
    def recentred_differences(self) -> bool:
        """Whether a paired bootstrap recentres its difference replicates on the estimate."""
        return False

    def jackknife(self, codes: np.ndarray, n_groups: int, chunk: int) -> np.ndarray:
        """Values ``(n_groups,)`` with each group of examples left out in turn."""
        out = np.empty(n_groups)
        for start in range(0, n_groups, chunk):
            stop = min(n_groups, start + chunk)
            w = np.ones((stop - start, self.n))
            w[codes[None, :] == np.arange(start, stop)[:, None]] = 0.0
            out[start:stop] = self.on_weights(w)
        return out

    def _with_ids(self, ids: np.ndarray | None) -> None:
        if ids is not None:
            ids = np.asarray(ids)
            if ids.ndim != 1 or ids.shape[0] != self.n:
                raise ValueError(
                    f"Expected `example_ids` of shape ({self.n},), one per example, got shape {ids.shape}"
                )
        self.example_ids = ids


class LinearStatistic(Statistic):
    """``finalize(W @ M, W.sum(axis=1))``: a function of weighted per-example sums.

    Parameters
    ----------
    contributions : array-like of float, shape (n, K)
        Row ``i`` is what example ``i`` adds to the ``K`` sufficient sums.
    finalize : callable
        ``finalize(sums (c, K), total_weight (c,)) -> (c,)``; vectorised over rows.
    name : str
    kind : tuple
        Identifies ``finalize`` (metric and parameters), see :class:`Statistic`.
    example_ids : array-like, shape (n,), optional

    Examples
    --------
    A weighted mean of scores:

    >>> s = LinearStatistic([[1.0], [0.0], [1.0]], lambda S, t: S[:, 0] / t, "mean", ("mean",))
    >>> s.estimate()
    0.6666666666666666
    >>> s.on_weights(np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]))
    array([0.66666667, 1.        ])
    """

    def __init__(
        self,
        contributions: npt.ArrayLike,
        finalize: Finalize,
        name: str,
        kind: tuple[Any, ...],
        example_ids: npt.ArrayLike | None = None,
    ) -> None:
        m = np.ascontiguousarray(contributions, dtype=np.float64)
        if m.ndim != 2:
            raise ValueError(f"Expected `contributions` of shape (n, K), got shape {m.shape}")
        if m.shape[0] == 0:
            raise ValueError("A statistic needs at least one example, got 0")
        self.contributions = m
        self.finalize = finalize
        self.n = m.shape[0]
        self.name = name
        self.kind = kind
        self._with_ids(None if example_ids is None else np.asarray(example_ids))
        # Columns that are zero for every example (bins no confidence falls in, such
        # as the bins below 1/3 for three classes) add nothing: leave them out of
        # the matrix product, which costs in proportion to the number of columns.
        self._columns = np.flatnonzero(np.any(m != 0, axis=0))
        self._dense = len(self._columns) == m.shape[1]
        self._compact = m if self._dense else np.ascontiguousarray(m[:, self._columns])

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """Weighted sums ``weights @ contributions``, shape ``(c, K)``."""
        if self._dense:
            return weights @ self._compact
        out = np.zeros((weights.shape[0], self.contributions.shape[1]))
        out[:, self._columns] = weights @ self._compact
        return out

    def on_weights(self, weights: np.ndarray) -> np.ndarray:
        return self.finalize(self.sums(weights), weights.sum(axis=1))

    def estimate(self) -> float:
        sums = self.contributions.sum(axis=0, keepdims=True)
        return float(self.finalize(sums, np.array([float(self.n)]))[0])

    def take(self, order: np.ndarray) -> LinearStatistic:
        ids = None if self.example_ids is None else self.example_ids[order]
        return LinearStatistic(self.contributions[order], self.finalize, self.name, self.kind, ids)

    def pooled(self, other: Statistic) -> LinearStatistic:
        if not isinstance(other, LinearStatistic) or other.kind != self.kind:
            raise ValueError(f"Cannot pool a {self.kind} statistic with a {other.kind} statistic")
        return LinearStatistic(
            np.vstack([self.contributions, other.contributions]),
            self.finalize,
            self.name,
            self.kind,
        )

    def group_sums(self, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-group contribution sums ``(G, K)`` and group sizes ``(G,)``."""
        sums = np.zeros((n_groups, self.contributions.shape[1]))
        np.add.at(sums, codes, self.contributions)
        return sums, np.bincount(codes, minlength=n_groups).astype(np.float64)

    def grouped(self, codes: np.ndarray, n_groups: int) -> Callable[[np.ndarray], np.ndarray]:
        # Resampling whole groups only ever needs the groups' summed contributions.
        sums, sizes = self.group_sums(codes, n_groups)
        return lambda gw: self.finalize(gw @ sums, gw @ sizes)

    @property
    def _debiased_bins(self) -> int | None:
        """The number of bins of a width-binned debiased L2 calibration error, else None."""
        kind = self.kind
        if len(kind) == 5 and kind[0] == "calibration" and kind[2] == "width" and kind[4] is True:
            return int(kind[1])
        return None

    @property
    def recentred_differences(self) -> bool:
        return self._debiased_bins is not None

    def for_resampling(self) -> LinearStatistic:
        """The statistic whose values on bootstrap resamples are the replicates.

        ``self``, except for the debiased L2 calibration error ``sqrt(D)``
        (Kumar et al. 2019), which is unbiased on the squared scale: ``D`` is
        unbiased for the population's squared error ``S``. On a resample of
        the sample, ``D*`` is unbiased for the *sample's* plug-in squared error
        ``P`` (larger than ``D`` by the bins' sampling variance), so ``D* - P``
        stands for the estimate's error ``D - S`` and the replicate is
        ``sqrt(max(D - (D* - P), 0))``: its percentile interval is the basic
        interval for ``S`` carried through the square root. The naive
        replicates ``sqrt(D*)`` centre on ``sqrt(P)`` instead, where the root is
        flatter: their intervals covered 88-90% of the population value, and
        a pooled test of equal calibration built on them rejected 10% at level
        0.05 (docs/stats.md). A difference of two such replicates is moved by
        the root's curvature, so paired and pooled bootstraps recentre it on
        the estimated difference (:attr:`recentred_differences`).

        Examples
        --------
        >>> from xcal.stats import calibration_statistic
        >>> rng = np.random.default_rng(0)
        >>> conf = rng.uniform(0.4, 1.0, 500)
        >>> s = calibration_statistic(conf, rng.random(500) < conf - 0.1, norm="l2", debias=True)
        >>> r = s.for_resampling()
        >>> bool(r.estimate() > s.estimate())  # on the sample itself: the plug-in error
        True
        >>> mean_statistic([1.0, 0.0]).for_resampling().estimate()
        0.5
        """
        n_bins = self._debiased_bins
        if n_bins is None:
            return self
        from xcal.metrics._binning import squared_l2_error

        total = _bin_sums(self.contributions.sum(axis=0), n_bins)
        estimate = float(squared_l2_error(*total, debias=True))
        plug_in = float(squared_l2_error(*total, debias=False))

        def replicate(sums: np.ndarray, weight: np.ndarray) -> np.ndarray:
            error = squared_l2_error(*_bin_sums(sums, n_bins), debias=True) - plug_in
            return np.sqrt(np.maximum(estimate - error, 0.0))

        name, kind = self.name, self.kind
        return LinearStatistic(self.contributions, replicate, name, kind, self.example_ids)

    def jackknife(self, codes: np.ndarray, n_groups: int, chunk: int) -> np.ndarray:
        # Leaving a group out subtracts its sums: exact, O(n K), whatever n.
        sums, sizes = self.group_sums(codes, n_groups)
        total = self.contributions.sum(axis=0)
        return self.finalize(total[None, :] - sums, float(self.n) - sizes)


class ArrayStatistic(Statistic):
    """A metric given as ``fn(arrays, weights (c, n)) -> (c,)`` over named per-example arrays.

    Parameters
    ----------
    fn : callable
        ``fn(arrays, weights)``; ``arrays`` maps names to arrays whose first axis is
        the example axis.
    arrays : mapping of str to array-like
    name : str
    kind : tuple
        Identifies ``fn`` and its parameters (see :class:`Statistic`).
    example_ids : array-like, shape (n,), optional

    Examples
    --------
    >>> def weighted_median_free_max(arrays, w):  # largest score among kept examples
    ...     return np.where(w > 0, arrays["s"][None, :], -np.inf).max(axis=1)
    >>> s = ArrayStatistic(weighted_median_free_max, {"s": [3.0, 1.0, 2.0]}, "max", ("max",))
    >>> s.estimate(), s.on_weights(np.array([[0.0, 2.0, 1.0]]))
    (3.0, array([2.]))
    """

    def __init__(
        self,
        fn: Callable[[Mapping[str, np.ndarray], np.ndarray], np.ndarray],
        arrays: Mapping[str, npt.ArrayLike],
        name: str,
        kind: tuple[Any, ...],
        example_ids: npt.ArrayLike | None = None,
    ) -> None:
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        sizes = {k: v.shape[0] if v.ndim else -1 for k, v in self.arrays.items()}
        if not sizes or len(set(sizes.values())) != 1:
            raise ValueError(f"Expected arrays of one common length, got lengths {sizes}")
        self.n = next(iter(sizes.values()))
        if self.n <= 0:
            raise ValueError("A statistic needs at least one example, got 0")
        self.fn = fn
        self.name = name
        self.kind = kind
        self._with_ids(None if example_ids is None else np.asarray(example_ids))

    def on_weights(self, weights: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(self.arrays, weights), dtype=np.float64)

    def estimate(self) -> float:
        return float(self.on_weights(np.ones((1, self.n)))[0])

    def take(self, order: np.ndarray) -> ArrayStatistic:
        ids = None if self.example_ids is None else self.example_ids[order]
        arrays = {k: v[order] for k, v in self.arrays.items()}
        return ArrayStatistic(self.fn, arrays, self.name, self.kind, ids)

    def pooled(self, other: Statistic) -> ArrayStatistic:
        if not isinstance(other, ArrayStatistic) or other.kind != self.kind:
            raise ValueError(f"Cannot pool a {self.kind} statistic with a {other.kind} statistic")
        arrays = {k: np.concatenate([v, other.arrays[k]]) for k, v in self.arrays.items()}
        return ArrayStatistic(self.fn, arrays, self.name, self.kind)


# --- adapters ---------------------------------------------------------------------


def _mean_finalize(sums: np.ndarray, total: np.ndarray) -> np.ndarray:
    return sums[:, 0] / total


def mean_statistic(
    scores: npt.ArrayLike, *, name: str = "mean", example_ids: npt.ArrayLike | None = None
) -> LinearStatistic:
    """The (weighted) mean of per-example scores: accuracy, NLL, Brier, F1, exact match.

    Parameters
    ----------
    scores : array-like of float, shape (n,)
    name : str, default="mean"
    example_ids : array-like, shape (n,), optional

    Returns
    -------
    LinearStatistic

    Examples
    --------
    >>> mean_statistic([1, 0, 1, 1], name="accuracy_score").estimate()
    0.75
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"Expected `scores` of shape (n,), got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(
            f"`scores` must be finite; found {s[~np.isfinite(s)][0].item()!r} at index "
            f"{int(np.flatnonzero(~np.isfinite(s))[0])}"
        )
    return LinearStatistic(s[:, None], _mean_finalize, name, ("mean",), example_ids)


def _width_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    # np.histogram semantics, as xcal.metrics: bin k holds edges[k] <= c < edges[k+1],
    # the last bin also c == 1; edges are the float64 linspace values.
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges, confidence.astype(np.float64), side="right") - 1
    return np.clip(ids, 0, n_bins - 1)


def _bin_sums(sums: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A debiased error's sums (bins last): per-bin totals, confidence sums, correct sums."""
    return sums[..., :n_bins], sums[..., n_bins : 2 * n_bins], sums[..., 2 * n_bins :]


def _debiased_finalize(n_bins: int) -> Finalize:
    from xcal.metrics._binning import error_from_statistics

    def debiased(sums: np.ndarray, total: np.ndarray) -> np.ndarray:
        return error_from_statistics(*_bin_sums(sums, n_bins), "l2", True)

    return debiased


def _calibration_finalize(n_bins: int, norm: str) -> Finalize:
    if norm == "l1":

        def l1(sums: np.ndarray, total: np.ndarray) -> np.ndarray:
            return np.abs(sums).sum(axis=1) / total

        return l1

    def other(sums: np.ndarray, total: np.ndarray) -> np.ndarray:
        gap_sum, count = sums[:, :n_bins], sums[:, n_bins:]
        # an empty bin has gap_sum 0 exactly; dividing by 1 keeps it 0
        gap = gap_sum / np.where(count > 0, count, 1.0)
        if norm == "max":
            return np.abs(gap).max(axis=1)
        return np.sqrt((gap_sum * gap).sum(axis=1) / total)

    return other


def _batched_fn(n_bins: int, binning: str, norm: str, debias: bool) -> Callable[..., np.ndarray]:
    from xcal.metrics.batched import batched_calibration_error

    def fn(arrays: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        return batched_calibration_error(
            arrays["confidence"],
            arrays["correct"],
            weights=weights,
            n_bins=n_bins,
            binning=binning,  # type: ignore[arg-type]
            norm=norm,  # type: ignore[arg-type]
            debias=debias,
        )

    return fn


def calibration_statistic(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    n_bins: int = 15,
    binning: str = "width",
    norm: str = "l1",
    debias: bool = False,
    name: str | None = None,
    example_ids: npt.ArrayLike | None = None,
) -> Statistic:
    """Binned top-label calibration error of (confidence, correct) pairs, batched.

    Equal-width bins give a :class:`LinearStatistic` (the bin of an example is
    fixed, so each resample needs only per-bin sums of ``correct - confidence``,
    or for the debiased error the per-bin totals, confidence and correct sums);
    equal-mass bins delegate to
    :func:`xcal.metrics.batched.batched_calibration_error` in its weights form.
    The value equals :func:`xcal.metrics.top_label_calibration_error` with the
    same arguments.

    Parameters
    ----------
    confidence : array-like of float in [0, 1], shape (n,)
    correct : array-like of bool or 0/1, shape (n,)
    n_bins : int, default=15
    binning : {"width", "mass"}, default="width"
    norm : {"l1", "l2", "max"}, default="l1"
        ECE, RMS calibration error, maximum calibration error.
    debias : bool, default=False
        Kumar et al. (2019) debiased estimator (``norm="l2"`` only).
    name : str, optional
        Defaults to the metric's xcal.metrics name.
    example_ids : array-like, shape (n,), optional

    Returns
    -------
    Statistic

    References
    ----------
    M. P. Naeini, G. Cooper, M. Hauskrecht. Obtaining well calibrated
    probabilities using Bayesian binning. AAAI 2015.

    Examples
    --------
    Bins [0, 0.5) and [0.5, 1]: gaps |1/2 - 0.3125| and |1 - 0.8125|, each bin half
    of the data:

    >>> s = calibration_statistic([0.25, 0.375, 0.75, 0.875], [0, 1, 1, 1], n_bins=2)
    >>> s.estimate() == 0.5 * 0.1875 + 0.5 * 0.1875
    True
    """
    conf = np.asarray(confidence)
    if conf.dtype.kind not in "f":
        conf = conf.astype(np.float64)
    corr = np.asarray(correct)
    if conf.ndim != 1 or corr.shape != conf.shape:
        raise ValueError(
            f"Expected `confidence` and `correct` of one shape (n,), got {conf.shape} and {corr.shape}"
        )
    if not (np.all(conf >= 0) and np.all(conf <= 1)):
        bad = int(np.flatnonzero(~((conf >= 0) & (conf <= 1)))[0])
        raise ValueError(
            f"`confidence` must lie in [0, 1]; found {conf[bad].item()!r} at index {bad}"
        )
    if corr.dtype != bool and not np.isin(corr, (0, 1)).all():
        bad = int(np.flatnonzero(~np.isin(corr, (0, 1)))[0])
        raise ValueError(
            f"`correct` must be bool or 0/1; found {corr[bad].item()!r} at index {bad}"
        )
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"Expected `n_bins` to be a positive int, got {n_bins!r}")
    if binning not in ("width", "mass"):
        raise ValueError(f"Expected `binning` in ('width', 'mass'), got {binning!r}")
    if norm not in ("l1", "l2", "max"):
        raise ValueError(f"Expected `norm` in ('l1', 'l2', 'max'), got {norm!r}")
    if debias and norm != "l2":
        raise ValueError(f"`debias=True` needs `norm='l2'`, got norm={norm!r}")
    n_bins = int(n_bins)
    if name is None:
        name = {
            "l1": "expected_calibration_error",
            "l2": "rms_calibration_error",
            "max": "max_calibration_error",
        }[norm]
        if debias:
            name = "debiased_calibration_error"
    kind = ("calibration", n_bins, binning, norm, debias)
    if binning == "width" and debias:
        # The debiased error needs each bin's weight total, confidence sum and
        # correct sum (its variance term uses the total): 3 n_bins linear sums.
        n = conf.shape[0]
        ids = _width_bins(conf, n_bins)
        rows = np.arange(n)
        m = np.zeros((n, 3 * n_bins))
        m[rows, ids] = 1.0
        m[rows, n_bins + ids] = conf.astype(np.float64)
        m[rows, 2 * n_bins + ids] = corr.astype(np.float64)
        return LinearStatistic(m, _debiased_finalize(n_bins), name, kind, example_ids)
    if binning == "width" and not debias:
        n = conf.shape[0]
        ids = _width_bins(conf, n_bins)
        rows = np.arange(n)
        k = n_bins if norm == "l1" else 2 * n_bins
        m = np.zeros((n, k))
        m[rows, ids] = corr.astype(np.float64) - conf.astype(np.float64)
        if norm != "l1":
            m[rows, n_bins + ids] = 1.0
        return LinearStatistic(m, _calibration_finalize(n_bins, norm), name, kind, example_ids)
    arrays = {"confidence": conf, "correct": corr.astype(bool)}
    return ArrayStatistic(
        _batched_fn(n_bins, binning, norm, debias), arrays, name, kind, example_ids
    )


def _smooth_finalize(sums: np.ndarray, total: np.ndarray) -> np.ndarray:
    return np.abs(sums[:, :-1]).sum(axis=1) / sums[:, -1]


def smooth_calibration_statistic(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    sigma: float | None = None,
    name: str = "smooth_calibration_error",
    example_ids: npt.ArrayLike | None = None,
) -> LinearStatistic:
    """Smooth ECE (Blasiok & Nakkiran 2023) as a linear statistic at a fixed bandwidth.

    At a fixed ``sigma`` the smoothed residual at each grid point and the
    smoothed density are sums over examples, so resamples need one matrix
    product. The bandwidth is the sample's own fixed point (or ``sigma``) and
    is held there under resampling: intervals are for the smooth ECE at that
    bandwidth. Equals :func:`xcal.metrics.top_label_smooth_calibration_error`.

    Examples
    --------
    >>> s = smooth_calibration_statistic([0.6] * 20, [1] * 20)
    >>> round(s.estimate(), 3)
    0.4
    """
    from xcal.metrics._validation import check_confidence_correct
    from xcal.metrics.smooth import smooth_bandwidth, smooth_grid, smooth_kernel

    conf, corr, _ = check_confidence_correct(confidence, correct)
    conf = conf.astype(np.float64, copy=False)
    if sigma is None:
        sigma = smooth_bandwidth(conf, corr)
    k = smooth_kernel(conf, smooth_grid(sigma), sigma)
    m = np.hstack([k * (corr.astype(np.float64) - conf)[:, None], k.sum(axis=1, keepdims=True)])
    return LinearStatistic(m, _smooth_finalize, name, ("smooth", float(sigma)), example_ids)


# --- metrics by name -----------------------------------------------------------------

METRICS = Registry[Callable[..., Statistic]]("metric")


def _scores_of(y_true: Any, y_prob: Any, logits: Any) -> tuple[np.ndarray, np.ndarray, str]:
    if (y_prob is None) == (logits is None):
        raise ValueError("Pass exactly one of `y_prob=` (probabilities) or `logits=`")
    kind = "prob" if y_prob is not None else "logits"
    scores = np.asarray(y_prob if y_prob is not None else logits)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(
            f"Expected `{'y_prob' if kind == 'prob' else 'logits'}` of shape "
            f"(n_samples, n_classes >= 2), got shape {scores.shape}"
        )
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    y = np.asarray(y_true)
    if y.shape != (scores.shape[0],):
        raise ValueError(f"Expected `y_true` of shape ({scores.shape[0]},), got shape {y.shape}")
    if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= scores.shape[1])):
        bad = np.flatnonzero((y < 0) | (y >= scores.shape[1]))
        where = (
            f" ({y[bad[0]].item()!r} at index {int(bad[0])})"
            if y.dtype.kind in "iuf" and bad.size
            else ""
        )
        raise ValueError(
            f"Expected `y_true` to hold class indices in [0, {scores.shape[1]}){where}"
        )
    return scores, y.astype(np.intp), kind


def _top_label(scores: np.ndarray, y: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    from xcal.metrics import softmax, top_label

    probs = softmax(scores, axis=1) if kind == "logits" else scores
    confidence, predicted = top_label(probs)
    return np.asarray(confidence), np.asarray(predicted) == y


def _needs_labels(metric: str, y_true: Any, y_prob: Any, logits: Any) -> None:
    if y_true is None or (y_prob is None and logits is None):
        raise ValueError(f"Metric {metric!r} needs `y_true` and one of `y_prob=` or `logits=`")


def _accuracy(y_true: Any, y_prob: Any, logits: Any, correct: Any, **_: Any) -> np.ndarray:
    if correct is not None:
        return np.asarray(correct, dtype=np.float64)
    _needs_labels("accuracy_score", y_true, y_prob, logits)
    scores, y, _kind = _scores_of(y_true, y_prob, logits)
    # np.argmax breaks ties toward the lowest class, as xcal.metrics.top_label
    return (np.argmax(scores, axis=1) == y).astype(np.float64)


def _nll(y_true: Any, y_prob: Any, logits: Any, **_: Any) -> np.ndarray:
    _needs_labels("nll_loss", y_true, y_prob, logits)
    scores, y, kind = _scores_of(y_true, y_prob, logits)
    rows = np.arange(scores.shape[0])
    if kind == "logits":
        z = scores.astype(np.float64)
        top = z.max(axis=1)
        return top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - z[rows, y]
    # as sklearn.metrics.log_loss: clip to [eps, 1 - eps] of the input dtype
    eps = np.finfo(scores.dtype).eps
    return -np.log(np.clip(scores[rows, y], eps, 1 - eps).astype(np.float64))


def _brier(y_true: Any, y_prob: Any, logits: Any, **_: Any) -> np.ndarray:
    _needs_labels("brier_score_loss", y_true, y_prob, logits)
    scores, y, kind = _scores_of(y_true, y_prob, logits)
    if kind == "logits":
        from xcal.metrics import softmax

        scores = softmax(scores.astype(np.float64), axis=1)
    p = scores.astype(np.float64)
    rows = np.arange(p.shape[0])
    return np.einsum("ij,ij->i", p, p) - 2.0 * p[rows, y] + 1.0


def _mean_builder(per_example: Callable[..., np.ndarray], name: str) -> Callable[..., Statistic]:
    def build(
        y_true: Any = None,
        *,
        y_prob: Any = None,
        logits: Any = None,
        correct: Any = None,
        example_ids: Any = None,
        **kwargs: Any,
    ) -> Statistic:
        values = per_example(y_true=y_true, y_prob=y_prob, logits=logits, correct=correct)
        return mean_statistic(values, name=name, example_ids=example_ids)

    return build


def _calibration_builder(norm: str, debias: bool, name: str) -> Callable[..., Statistic]:
    def build(
        y_true: Any = None,
        *,
        y_prob: Any = None,
        logits: Any = None,
        confidence: Any = None,
        correct: Any = None,
        n_bins: int = 15,
        binning: str = "width",
        example_ids: Any = None,
        **kwargs: Any,
    ) -> Statistic:
        if confidence is None or correct is None:
            if y_true is None or (y_prob is None and logits is None):
                raise ValueError(
                    f"Metric {name!r} needs `confidence=` and `correct=`, or `y_true` and one of "
                    "`y_prob=` / `logits=`"
                )
            scores, y, kind = _scores_of(y_true, y_prob, logits)
            confidence, correct = _top_label(scores, y, kind)
        return calibration_statistic(
            confidence,
            correct,
            n_bins=n_bins,
            binning=binning,
            norm=norm,
            debias=debias,
            name=name,
            example_ids=example_ids,
        )

    return build


def _scores_builder(
    y_true: Any = None, *, scores: Any = None, example_ids: Any = None, **kwargs: Any
) -> Statistic:
    if scores is None:
        raise ValueError("Metric 'mean' needs per-example `scores=`")
    return mean_statistic(scores, name="mean", example_ids=example_ids)


for _names, _builder in [
    (("accuracy_score", "accuracy"), _mean_builder(_accuracy, "accuracy_score")),
    (("nll_loss", "nll"), _mean_builder(_nll, "nll_loss")),
    (("brier_score_loss", "brier"), _mean_builder(_brier, "brier_score_loss")),
    (
        ("expected_calibration_error", "ece"),
        _calibration_builder("l1", False, "expected_calibration_error"),
    ),
    (
        ("rms_calibration_error", "rmsce"),
        _calibration_builder("l2", False, "rms_calibration_error"),
    ),
    (("max_calibration_error", "mce"), _calibration_builder("max", False, "max_calibration_error")),
    (
        ("debiased_calibration_error",),
        _calibration_builder("l2", True, "debiased_calibration_error"),
    ),
    (("mean",), _scores_builder),
]:
    for _name in _names:
        METRICS.add(_name, _builder)


def metric_statistic(
    metric: str,
    y_true: npt.ArrayLike | None = None,
    *,
    y_prob: npt.ArrayLike | None = None,
    logits: npt.ArrayLike | None = None,
    confidence: npt.ArrayLike | None = None,
    correct: npt.ArrayLike | None = None,
    scores: npt.ArrayLike | None = None,
    n_bins: int = 15,
    binning: str = "width",
    example_ids: npt.ArrayLike | None = None,
) -> Statistic:
    """A batched statistic for a metric named as in :mod:`xcal.metrics`.

    Parameters
    ----------
    metric : str
        ``"accuracy_score"``, ``"nll_loss"``, ``"brier_score_loss"``,
        ``"expected_calibration_error"``, ``"rms_calibration_error"``,
        ``"max_calibration_error"``, ``"debiased_calibration_error"`` (aliases
        ``"accuracy"``, ``"nll"``, ``"brier"``, ``"ece"``, ``"rmsce"``, ``"mce"``), or
        ``"mean"`` of per-example ``scores`` (F1, exact match...).
    y_true : array-like of int, shape (n,), optional
        True classes, with exactly one of ``y_prob`` or ``logits`` (n, n_classes).
    confidence, correct : array-like, shape (n,), optional
        Top-label pairs, for calibration metrics (QA, retrieval) and accuracy.
    scores : array-like, shape (n,), optional
        Per-example scores for ``"mean"``.
    n_bins, binning
        For calibration metrics, as in :mod:`xcal.metrics`.
    example_ids : array-like, shape (n,), optional
        Used by the paired tests to align two runs.

    Returns
    -------
    Statistic
        Its :meth:`~Statistic.estimate` equals the xcal.metrics function.

    Examples
    --------
    >>> s = metric_statistic("accuracy", [0, 1, 1], logits=[[2.0, 1.0], [0.0, 3.0], [1.0, 0.5]])
    >>> s.name, s.estimate()
    ('accuracy_score', 0.6666666666666666)
    """
    builder = METRICS.get(metric)
    return builder(
        y_true,
        y_prob=y_prob,
        logits=logits,
        confidence=confidence,
        correct=correct,
        scores=scores,
        n_bins=n_bins,
        binning=binning,
        example_ids=example_ids,
    )
