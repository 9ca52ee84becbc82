"""Bootstrap replicates of many statistics of one cell under the same resamples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# Bytes of fused contribution matrix per group of linear statistics.
_FUSED_BYTES = 64 * 2**20
# Columns per fused group, and bytes of the (chunk x columns) product it gives.
_FUSED_COLUMNS = 1024
_PRODUCT_BYTES = 64 * 2**20


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
    the order of floating-point sums). Memory is bounded by the chunk of weights, the fused matrices and
    their products (about 64 MB each), whatever ``n_boot`` and the number of
    statistics. Linear statistics (means, equal-width
    calibration errors) are fused into one matrix product per chunk instead of
    one narrow product each: on this machine that is the difference between
    memory-bound and compute-bound BLAS.
    """
    from xcal.stats import LinearStatistic
    from xcal.stats.resample import as_generator, chunk_rows, iter_count_chunks

    if codes is None:
        units = n
    else:
        if codes.shape != (n,) or n_units is None:
            raise ValueError(f"Expected one cluster code per example ({n}) and `n_units`")
        units = int(n_units)
    linear = [(k, s) for k, s in stats.items() if isinstance(s, LinearStatistic)]
    other = [(k, s) for k, s in stats.items() if not isinstance(s, LinearStatistic)]
    # Groups of linear statistics whose fused matrix stays under _FUSED_BYTES.
    groups: list[tuple[np.ndarray, list[tuple[Any, Any, slice]]]] = []
    current: list[tuple[Any, Any]] = []
    width = 0
    for k, s in [*linear, (None, None)]:
        k_cols = 0 if s is None else s.contributions.shape[1]
        too_big = (width + k_cols) * n * 8 > _FUSED_BYTES or width + k_cols > _FUSED_COLUMNS
        if current and (s is None or too_big):
            matrix = np.hstack([st.contributions for _, st in current])
            if codes is not None:
                # Resampling whole clusters needs only their summed contributions,
                # and the cluster sizes as the last column (the resample's total).
                matrix = np.hstack([_cluster_sums(matrix, codes, units), np.ones((units, 1))])
                matrix[:, -1] = np.bincount(codes, minlength=units)
            members, start = [], 0
            for key, st in current:
                cols = st.contributions.shape[1]
                members.append((key, st, slice(start, start + cols)))
                start += cols
            groups.append((matrix, members))
            current, width = [], 0
        if s is not None:
            current.append((k, s))
            width += k_cols
    gen, _ = as_generator(seed)
    widest = max((matrix.shape[1] for matrix, _ in groups), default=1)
    # Chunk rows bounded by the weights (xcal.stats' budget) and by the products.
    # Chunk rows bounded by the weights (xcal.stats' budget) and by the products;
    # with clusters, the other statistics expand the weights to (chunk, n).
    chunk = min(
        chunk_rows(max(units, n if codes is not None and other else 0), n_boot),
        max(1, _PRODUCT_BYTES // (8 * widest)),
    )
    out = {k: np.empty(n_boot) for k in stats}
    start = 0
    for weights in iter_count_chunks(gen, units, n_boot, chunk):
        c = weights.shape[0]
        w = weights[:c]
        if codes is None:
            total = w.sum(axis=1)
        for matrix, members in groups:
            sums = w @ matrix
            if codes is not None:
                total = sums[:, -1]
            for key, st, cols in members:
                out[key][start : start + c] = st.finalize(sums[:, cols], total)
        example_w = w if codes is None or not other else w[:, codes]
        for key, st in other:
            out[key][start : start + c] = st.on_weights(example_w)
        start += c
    return out


def _cluster_sums(matrix: np.ndarray, codes: np.ndarray, n_units: int) -> np.ndarray:
    """Per-cluster sums ``(n_units, K)`` of the rows of ``matrix`` ``(n, K)``."""
    out = np.zeros((n_units, matrix.shape[1]))
    np.add.at(out, codes, matrix)
    return out
