"""Bootstrap replicates of many statistics of one cell under the same resamples."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

# Bytes of fused contribution matrix per group of linear statistics.
_FUSED_BYTES = 64 * 2**20
# Columns per fused group, and bytes of the (chunk x columns) product it gives.
_FUSED_COLUMNS = 1024
_PRODUCT_BYTES = 64 * 2**20
# Bytes of fused matrices held at once: more statistics take another pass over
# the same resamples (drawn again from the seed, a few ms), so a cell's memory
# does not grow with its systems and metrics.
_PASS_BYTES = 64 * 2**20


def _bootstrap(
    stats: Mapping[Any, Any],
    n: int,
    n_boot: int,
    seed: int,
    codes: np.ndarray | None = None,
    n_units: int | None = None,
) -> dict[Any, np.ndarray]:
    """Bootstrap replicates of every statistic under the *same* resamples.

    ``codes`` (n,) gives each example's cluster in ``[0, n_units)``: whole
    clusters are resampled (an XNLI premise's three hypotheses together);
    ``None`` resamples examples one by one. Weights are drawn as
    :func:`xcal.stats.paired_bootstrap` draws them (same generator, same
    order; the draws do not depend on the chunk size), so a difference row
    equals ``paired_bootstrap(a, b, B=n_boot, rng=seed, groups=codes)`` (up to
    the order of floating-point sums). See :func:`bootstrap_statistics`.
    """
    return bootstrap_statistics(stats.items(), n, n_boot, seed, codes, n_units)[1]


def bootstrap_statistics(
    stats: Iterable[tuple[Any, Any]],
    n: int,
    n_boot: int,
    seed: int,
    codes: np.ndarray | None = None,
    n_units: int | None = None,
) -> tuple[dict[Any, float], dict[Any, np.ndarray]]:
    """Every statistic's estimate and bootstrap replicates, reading ``stats`` once.

    ``stats`` yields (key, statistic) pairs; a linear statistic's per-example
    rows are folded into its group's matrix as it comes and not kept, so a
    generator that builds each statistic when asked keeps memory to the
    matrices (a smooth ECE's rows are ``n x ~500``: thirty of them, ten systems
    under three temperatures, were most of a worker's memory). Memory is
    bounded by the chunk of weights, the fused matrices and their products
    (about 64 MB each), whatever ``n_boot`` and the number of statistics.
    Linear statistics (means, equal-width calibration errors) are fused into
    one matrix product per chunk instead of one narrow product each: on this
    machine that is the difference between memory-bound and compute-bound
    BLAS. Beyond
    ``_PASS_BYTES`` of matrices, the statistics read so far are bootstrapped
    and their matrices freed before more are read: every pass draws the same
    resamples from ``seed``. With ``n_boot`` 0 only the estimates are computed.
    """
    from xcal.stats import LinearStatistic
    from xcal.stats.resample import as_generator, chunk_rows, iter_count_chunks

    if codes is None:
        units = n
    else:
        if codes.shape != (n,) or n_units is None:
            raise ValueError(f"Expected one cluster code per example ({n}) and `n_units`")
        units = int(n_units)
    estimates: dict[Any, float] = {}
    out: dict[Any, np.ndarray] = {}
    # Groups of linear statistics whose fused matrix stays under _FUSED_BYTES;
    # each statistic is reduced to its block (its clusters' summed rows, or its
    # rows) as it comes, and only the blocks are kept.
    groups: list[tuple[np.ndarray, list[tuple[Any, Any, slice]]]] = []
    other: list[tuple[Any, Any]] = []
    blocks: list[np.ndarray] = []
    members: list[tuple[Any, Any, slice]] = []
    width = 0

    def close_group() -> None:
        if codes is not None:
            # the cluster sizes as the last column (a resample's total weight)
            blocks.append(np.bincount(codes, minlength=units).astype(np.float64)[:, None])
        groups.append((blocks[0] if len(blocks) == 1 else np.hstack(blocks), list(members)))
        blocks.clear()
        members.clear()

    def run_pass() -> None:
        """Replicates of the groups and other statistics held, on the seed's resamples."""
        gen, _ = as_generator(seed)  # the same resamples in every pass
        widest = max((matrix.shape[1] for matrix, _ in groups), default=1)
        # Chunk rows bounded by the weights (xcal.stats' budget) and by the products;
        # with clusters, the other statistics expand the weights to (chunk, n).
        chunk = min(
            chunk_rows(max(units, n if codes is not None and other else 0), n_boot),
            max(1, _PRODUCT_BYTES // (8 * widest)),
        )
        for _, group in groups:
            out.update((key, np.empty(n_boot)) for key, _, _ in group)
        out.update((key, np.empty(n_boot)) for key, _ in other)
        start = 0
        for weights in iter_count_chunks(gen, units, n_boot, chunk):
            c = weights.shape[0]
            w = weights[:c]
            if codes is None:
                total = w.sum(axis=1)
            for matrix, group in groups:
                sums = w @ matrix
                if codes is not None:
                    total = sums[:, -1]
                for key, finalize, cols in group:
                    out[key][start : start + c] = finalize(sums[:, cols], total)
            example_w = w if codes is None or not other else w[:, codes]
            for key, st in other:
                out[key][start : start + c] = st.on_weights(example_w)
            start += c
        groups.clear()
        other.clear()

    for key, stat in stats:
        estimates[key] = stat.estimate()
        if n_boot == 0:
            continue
        if isinstance(stat, LinearStatistic):
            k_cols = stat.contributions.shape[1]
            if members and (
                (width + k_cols) * n * 8 > _FUSED_BYTES or width + k_cols > _FUSED_COLUMNS
            ):
                close_group()
                width = 0
                if sum(matrix.nbytes for matrix, _ in groups) > _PASS_BYTES:
                    run_pass()
            # Resampling whole clusters needs only their summed contributions.
            blocks.append(
                stat.contributions
                if codes is None
                else _cluster_sums(stat.contributions, codes, units)
            )
            # the replicates' finalizer (differs from the estimate's for the debiased error)
            members.append((key, stat.for_resampling().finalize, slice(width, width + k_cols)))
            width += k_cols
        else:
            other.append((key, stat.for_resampling()))
        del stat  # before the next statistic is built
    if n_boot == 0:
        return estimates, {}
    if members:
        close_group()
    if groups or other:
        run_pass()
    return estimates, {key: out[key] for key in estimates}


def _cluster_sums(matrix: np.ndarray, codes: np.ndarray, n_units: int) -> np.ndarray:
    """Per-cluster sums ``(n_units, K)`` of the rows of ``matrix`` ``(n, K)``."""
    out = np.zeros((n_units, matrix.shape[1]))
    np.add.at(out, codes, matrix)
    return out
