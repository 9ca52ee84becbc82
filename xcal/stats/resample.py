"""Random draws for the bootstrap and permutation tests, in bounded-memory chunks.

Every resampling method in :mod:`xcal.stats` reduces to a matrix of weights of
shape ``(B, n_units)``: row ``b`` says how many times each unit (an example, or
a whole group of examples for the cluster bootstrap) appears in resample ``b``,
or, for a paired permutation test, whether the two systems' predictions are
swapped on that unit. The matrix is never built whole: it is drawn ``chunk``
rows at a time so that peak memory stays below ``max_memory`` whatever ``B``.

Resample indices come from ``rng.integers(0, n, size=(chunk, n))``, row after row
from one generator, so the draws do not depend on the chunk size (a Generator
fills a ``(c, n)`` int64 array in the same order as ``c`` calls of size ``n``):
the same seed gives the same bootstrap distribution on a laptop and on a server
with another memory budget. They are also the very draws
``scipy.stats.bootstrap`` makes for a one-sample statistic, which lets the tests
compare intervals with scipy's on identical resamples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "RNGLike",
    "as_generator",
    "chunk_rows",
    "counts_from_indices",
    "draw_counts",
    "group_codes",
    "iter_count_chunks",
    "iter_index_chunks",
    "iter_swap_chunks",
]

RNGLike = np.random.Generator | int | None

# Bytes of scratch memory one chunk may use. The dense path keeps three (chunk, n)
# arrays alive at once (int64 indices, int64 counts, float64 weights), 24 bytes a
# cell: 256 MiB is about 110 resamples of n = 100,000, large enough that the
# per-chunk Python overhead is negligible and small enough for a laptop.
DEFAULT_MAX_MEMORY = 256 * 2**20
_BYTES_PER_CELL = 24


def as_generator(rng: Any) -> tuple[np.random.Generator, int | None]:
    """The generator to draw from and the integer seed to report, if known.

    ``None`` draws a fresh seed from the operating system and reports it, so
    that every result can be reproduced; an ``int`` is used as the seed; a
    ``numpy.random.Generator`` is used as is (its seed is unknown: ``None``).

    Examples
    --------
    >>> gen, seed = as_generator(7)
    >>> seed, int(gen.integers(0, 100))
    (7, 94)
    >>> as_generator(gen)[1] is None
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng, None
    if rng is None:
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0])
        return np.random.default_rng(seed), seed
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"Expected `rng` to be a non-negative int seed, got {rng}")
        return np.random.default_rng(int(rng)), int(rng)
    raise TypeError(
        f"Expected `rng` to be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}"
    )


def chunk_rows(n_cols: int, n_rows: int, max_memory: int = DEFAULT_MAX_MEMORY) -> int:
    """Rows per chunk so that a ``(rows, n_cols)`` chunk fits in ``max_memory`` bytes.

    Examples
    --------
    >>> chunk_rows(100_000, 10_000)
    111
    >>> chunk_rows(100, 10_000)
    10000
    """
    if max_memory <= 0:
        raise ValueError(
            f"Expected `max_memory` to be a positive number of bytes, got {max_memory}"
        )
    per_row = max(1, n_cols) * _BYTES_PER_CELL
    return int(max(1, min(n_rows, max_memory // per_row)))


def iter_index_chunks(
    gen: np.random.Generator, n: int, n_resamples: int, chunk: int
) -> Iterator[np.ndarray]:
    """Yield ``(c, n)`` int64 arrays of iid uniform indices in ``[0, n)``, ``n_resamples`` rows in all.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> [c.shape for c in iter_index_chunks(rng, 5, 7, 3)]
    [(3, 5), (3, 5), (1, 5)]
    """
    for start in range(0, n_resamples, chunk):
        yield gen.integers(0, n, size=(min(chunk, n_resamples - start), n))


def counts_from_indices(indices: np.ndarray, n: int, out: np.ndarray | None = None) -> np.ndarray:
    """Multiplicity of each unit in each row of ``indices``, as float64 of shape ``(c, n)``.

    One flat ``np.bincount`` over ``row * n + index`` counts every row at once.
    ``indices`` is modified in place (the row offsets are added to it) to avoid
    a copy of the largest array in the bootstrap; pass a copy to keep it.

    Examples
    --------
    >>> counts_from_indices(np.array([[0, 0, 2], [1, 2, 2]]), 3)
    array([[2., 0., 1.],
           [0., 1., 2.]])
    """
    c = indices.shape[0]
    indices += (np.arange(c, dtype=indices.dtype) * n)[:, None]
    counts = np.bincount(indices.ravel(), minlength=c * n).reshape(c, n)
    if out is None:
        return counts.astype(np.float64)
    np.copyto(out[:c], counts)
    return out[:c]


# From this many units on, counts are made one resample at a time: the row's
# indices (8 n bytes) and counts stay in the core's L2/L3 cache between the draw,
# the bincount and the conversion to float, instead of streaming a whole
# (chunk, n) index array through memory three times. Below it, one flat bincount
# over the chunk saves the per-row Python overhead. Both give identical counts.
ROWWISE_MIN_UNITS = 8_192


def draw_counts(gen: np.random.Generator, n_units: int, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (c, n_units) float64 with bootstrap multiplicities and return it.

    Row ``r`` counts ``gen.integers(0, n_units, size=n_units)``; the generator is
    consumed exactly as by ``gen.integers(0, n_units, size=(c, n_units))``.

    Examples
    --------
    >>> out = draw_counts(np.random.default_rng(0), 4, np.empty((2, 4)))
    >>> idx = np.random.default_rng(0).integers(0, 4, size=(2, 4))
    >>> bool((out == [np.bincount(row, minlength=4) for row in idx]).all())
    True
    """
    c = out.shape[0]
    if n_units < ROWWISE_MIN_UNITS:
        return counts_from_indices(gen.integers(0, n_units, size=(c, n_units)), n_units, out=out)
    for r in range(c):
        out[r] = np.bincount(gen.integers(0, n_units, size=n_units), minlength=n_units)
    return out


def iter_count_chunks(
    gen: np.random.Generator,
    n_units: int,
    n_resamples: int,
    chunk: int,
) -> Iterator[np.ndarray]:
    """Yield bootstrap multiplicities ``(c, n_units)`` float64, ``n_resamples`` rows in all.

    The yielded array is a reused buffer: consume it before the next iteration.
    """
    buf = np.empty((min(chunk, n_resamples), n_units), dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        yield draw_counts(gen, n_units, buf[: min(chunk, n_resamples - start)])


def iter_swap_chunks(
    gen: np.random.Generator, n_units: int, n_permutations: int, chunk: int
) -> Iterator[np.ndarray]:
    """Yield ``(c, n_units)`` float64 0/1 masks: 1 where the two systems swap predictions.

    Each unit is swapped independently with probability 1/2, the approximate
    randomisation of Noreen (1989) for paired data.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mask = next(iter_swap_chunks(rng, 4, 2, 2))
    >>> mask.shape, bool(np.isin(mask, [0.0, 1.0]).all())
    ((2, 4), True)
    """
    for start in range(0, n_permutations, chunk):
        c = min(chunk, n_permutations - start)
        yield gen.integers(0, 2, size=(c, n_units), dtype=np.int8).astype(np.float64)


def group_codes(groups: npt.ArrayLike, n: int, name: str = "groups") -> tuple[np.ndarray, int]:
    """Integer code in ``[0, n_groups)`` of each example's group, and ``n_groups``.

    Groups are numbered in sorted order of their labels, so the codes do not
    depend on the order of the examples.

    Examples
    --------
    >>> group_codes(["b", "a", "b", "c"], 4)
    (array([1, 0, 1, 2]), 3)
    """
    arr = np.asarray(groups)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"Expected `{name}` of shape ({n},), one label per example, got shape {arr.shape}"
        )
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"`{name}` holds NaN at index {int(np.flatnonzero(np.isnan(arr))[0])}")
    if arr.dtype == object and any(g is None for g in arr):
        raise ValueError(
            f"`{name}` holds None at index {next(i for i, g in enumerate(arr) if g is None)}"
        )
    uniques, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.intp).reshape(n), int(uniques.shape[0])
