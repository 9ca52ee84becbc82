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


def _bootstrap(stats: Mapping[Any, Any], n: int, n_boot: int, seed: int) -> dict[Any, np.ndarray]:
    """Bootstrap replicates of every statistic under the *same* resamples.

    Weights are drawn as :func:`xcal.stats.paired_bootstrap` draws them (same
    generator, same order; the draws do not depend on the chunk size), so a
    difference row equals ``paired_bootstrap(a, b, B=n_boot, rng=seed)``
    exactly. Memory is bounded by the chunk of weights, the fused matrices and
    their products (about 64 MB each), whatever ``n_boot`` and the number of
    statistics. Linear statistics (means, equal-width
    calibration errors) are fused into one matrix product per chunk instead of
    one narrow product each: on this machine that is the difference between
    memory-bound and compute-bound BLAS.
    """
    from xcal.stats import LinearStatistic
    from xcal.stats.resample import as_generator, chunk_rows, iter_count_chunks

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
    chunk = min(chunk_rows(n, n_boot), max(1, _PRODUCT_BYTES // (8 * widest)))
    out = {k: np.empty(n_boot) for k in stats}
    start = 0
    for weights in iter_count_chunks(gen, n, n_boot, chunk):
        c = weights.shape[0]
        w = weights[:c]
        total = w.sum(axis=1)
        for matrix, members in groups:
            sums = w @ matrix
            for key, st, cols in members:
                out[key][start : start + c] = st.finalize(sums[:, cols], total)
        for key, st in other:
            out[key][start : start + c] = st.on_weights(w)
        start += c
    return out
