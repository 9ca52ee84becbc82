"""Retrieval (e.g. Tatoeba bitext search): confidence and correctness of the top-1 candidate.

The confidence of the top candidate is its softmax probability among the
top-k similarity scores divided by a temperature. Cosine similarities live in
[-1, 1], so with ``temperature=1`` every confidence is close to ``1/k``; a small
temperature (e.g. 0.05, the contrastive-training temperature of many sentence
encoders) or a temperature fitted on held-out data makes the number meaningful.
The value depends on ``k``: compare runs with the same ``k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from xcal.metrics._validation import check_finite, check_float_array

__all__ = ["retrieval_confidence_correctness"]


def retrieval_confidence_correctness(
    scores: npt.ArrayLike,
    candidate_ids: Sequence[Sequence[Any]],
    gold_ids: Sequence[Any],
    *,
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 confidence and whether the top-1 candidate is a gold item.

    Parameters
    ----------
    scores : array-like of float, shape (n, k)
        Similarity of each query's ``k`` retrieved candidates (best first, as
        stored; the top is taken as the highest score, first on ties).
    candidate_ids : list (n) of lists (k) of ids
        The ids of those candidates, aligned with ``scores``.
    gold_ids : list (n) of lists of ids, or of single ids
        The correct id(s) of each query.
    temperature : float, default=1.0
        Positive; divides the scores before the softmax.

    Returns
    -------
    confidence : numpy.ndarray of shape (n,)
    correct : numpy.ndarray of shape (n,), bool

    Examples
    --------
    Scores 0.9 and 0.7 at temperature 0.1: logits 9 and 7, so the top gets
    ``1 / (1 + exp(-2))``

    >>> conf, correct = retrieval_confidence_correctness(
    ...     [[0.9, 0.7]], [["s12", "s40"]], [["s12"]], temperature=0.1)
    >>> round(float(conf[0]), 6), bool(correct[0])
    (0.880797, True)
    """
    if not (
        isinstance(temperature, int | float)
        and not isinstance(temperature, bool)
        and np.isfinite(temperature)
        and temperature > 0
    ):
        raise ValueError(f"Expected `temperature` to be a positive number, got {temperature!r}")
    s = check_float_array(scores, "scores", 2).astype(np.float64, copy=False)
    check_finite(s, "scores")
    n, k = s.shape
    if len(candidate_ids) != n:
        raise ValueError(f"`candidate_ids` has {len(candidate_ids)} rows but `scores` has {n}")
    if len(gold_ids) != n:
        raise ValueError(f"`gold_ids` has {len(gold_ids)} rows but `scores` has {n}")
    z = s / temperature
    top = np.argmax(z, axis=1)
    top_z = z[np.arange(n), top]
    confidence = 1.0 / np.exp(z - top_z[:, None]).sum(axis=1)
    correct = np.empty(n, dtype=bool)
    for i in range(n):
        cands = candidate_ids[i]
        if len(cands) != k:
            raise ValueError(
                f"`candidate_ids` row {i} has {len(cands)} ids but `scores` has {k} columns"
            )
        gold = gold_ids[i]
        golds = {gold} if isinstance(gold, str | int | np.integer) else set(gold)
        correct[i] = cands[int(top[i])] in golds
    return confidence, correct
