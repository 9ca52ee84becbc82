"""Length-sorted batches with a budget in tokens, and dynamic padding.

Padding every input to the model's maximum wastes most of the compute on real
data (XNLI pairs are ~50 tokens, the maximum is 512). Sorting by length and
cutting batches so that ``batch size x longest sequence <= batch_tokens``
keeps padding small and the memory use of every batch bounded, whatever the
length mix: long inputs get small batches instead of running out of memory.

Pure numpy; the runner turns the padded arrays into tensors.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def token_budget_batches(
    lengths: Sequence[int] | np.ndarray,
    batch_tokens: int,
    *,
    max_batch_size: int | None = None,
    pad_to_multiple_of: int = 1,
) -> list[np.ndarray]:
    """Split indices into length-sorted batches whose padded size fits a budget.

    Indices are sorted by decreasing length (ties keep input order), so the
    largest batch comes first and an out-of-memory error shows up at once,
    not an hour into a run. A batch grows while ``n x padded_longest <=
    batch_tokens``; a single sequence longer than the budget forms its own
    batch.

    Parameters
    ----------
    lengths : sequence of int
        Token count of each input (after truncation).
    batch_tokens : int
        Budget of padded tokens per batch (rows x columns of ``input_ids``).
    max_batch_size : int, optional
        Upper bound on the number of sequences per batch.
    pad_to_multiple_of : int
        Lengths are rounded up to this multiple when sizing (matches the padding).

    Returns
    -------
    list of numpy.ndarray
        Index arrays into ``lengths``; every index appears exactly once.

    Examples
    --------
    >>> [b.tolist() for b in token_budget_batches([3, 10, 4, 9], batch_tokens=20)]
    [[1, 3], [2, 0]]
    >>> [b.tolist() for b in token_budget_batches([3, 10, 4], batch_tokens=8)]
    [[1], [2, 0]]
    """
    if isinstance(batch_tokens, bool) or not isinstance(batch_tokens, int | np.integer):
        raise TypeError(f"Expected `batch_tokens` to be a positive int, got {batch_tokens!r}")
    if batch_tokens <= 0:
        raise ValueError(f"Expected `batch_tokens` to be a positive int, got {batch_tokens}")
    if max_batch_size is not None and max_batch_size <= 0:
        raise ValueError(f"Expected `max_batch_size` to be positive, got {max_batch_size}")
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1:
        raise ValueError(f"Expected `lengths` to be 1-D, got shape {lengths.shape}")
    if lengths.size and lengths.min() < 0:
        raise ValueError("Expected non-negative `lengths`")
    if lengths.size == 0:
        return []
    m = max(int(pad_to_multiple_of), 1)
    padded = -(-lengths // m) * m
    # Stable sort on -length: decreasing length, input order among ties.
    order = np.argsort(-padded, kind="stable")
    cap = max_batch_size or len(order)
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        longest = max(int(padded[order[start]]), 1)
        # Sorted decreasing, so the first element sets the batch width.
        size = max(1, min(batch_tokens // longest, cap, n - start))
        batches.append(order[start : start + size])
        start += size
    return batches


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    pad_value: int,
    *,
    pad_to_multiple_of: int = 1,
    dtype: type = np.int64,
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad integer sequences into a matrix and its attention mask.

    Examples
    --------
    >>> ids, mask = pad_sequences([[5, 6, 7], [8]], pad_value=0)
    >>> ids.tolist(), mask.tolist()
    ([[5, 6, 7], [8, 0, 0]], [[1, 1, 1], [1, 0, 0]])
    """
    if not sequences:
        raise ValueError("cannot pad an empty batch")
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    m = max(int(pad_to_multiple_of), 1)
    width = -(-int(lengths.max()) // m) * m
    out: np.ndarray = np.full((len(sequences), width), pad_value, dtype=dtype)
    real = np.arange(width) < lengths[:, None]
    # Row-major boolean assignment fills each row's first len(seq) cells in order.
    out[real] = np.fromiter(
        itertools.chain.from_iterable(sequences), dtype=dtype, count=int(lengths.sum())
    )
    return out, real.astype(np.int64)
