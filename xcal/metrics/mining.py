"""Bitext mining (BUCC): margin scores, mined pairs at a threshold, precision, recall and F1.

Mining differs from retrieval in that most queries have no partner: a query
proposes its best candidate, and only pairs scoring at or above a threshold
are mined. The scores are the cosine or the *ratio margin* of Artetxe &
Schwenk (2019), which divides the cosine of a pair by the mean cosine of each
side's ``k`` nearest neighbours on the other side, so that "hub" sentences
close to everything are not mined for every query:

    margin(x, y) = cos(x, y) / ((mean_{z in NN_k(x)} cos(x, z) + mean_{z in NN_k(y)} cos(y, z)) / 2)

Pairs are proposed in the forward direction (each source sentence proposes its
best-scoring English candidate; LASER's ``--retrieval fwd``; XTREME also adds
the backward proposals, ``--retrieval max``). Precision, recall and F1 count
mined pairs against gold pairs, as the BUCC shared task and XTREME do, and
F1 is the task metric; the threshold that maximises F1 is chosen on other
data than the F1 reported (XTREME chooses it on dev and reports test).

Everything is per query (a true positive, a mined pair, a number of gold
pairs), so F1 is a ratio of sums and bootstraps over queries like a mean.

References
----------
M. Artetxe and H. Schwenk. Margin-based parallel corpus mining with
multilingual sentence embeddings. ACL 2019.
P. Zweigenbaum, S. Sharoff and R. Rapp. Overview of the third BUCC shared
task: spotting parallel sentences in comparable corpora. BUCC 2018.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from xcal.metrics._validation import check_finite, check_float_array

__all__ = [
    "MINING_SCORES",
    "MinedProposals",
    "best_mining_threshold",
    "mining_counts",
    "mining_precision_recall_f1_score",
    "mining_proposals",
    "ratio_margin",
]

#: How a proposed pair is scored: plain cosine, or the ratio margin.
MINING_SCORES: tuple[str, ...] = ("ratio", "cosine")


class MinedProposals(NamedTuple):
    """Each query's best candidate: its score, whether it is gold, and the query's gold count."""

    score: np.ndarray  # (n,) float64, margin or cosine of the proposed pair
    candidate: np.ndarray  # (n,) int64, column of the proposed candidate
    correct: np.ndarray  # (n,) bool, the proposed pair is a gold pair
    n_gold: np.ndarray  # (n,) int64, gold pairs of the query (0 for most queries)


def ratio_margin(
    scores: npt.ArrayLike, query_knn_mean: npt.ArrayLike, candidate_knn_mean: npt.ArrayLike
) -> np.ndarray:
    """Ratio margin of every query-candidate pair (Artetxe & Schwenk, 2019).

    Parameters
    ----------
    scores : array-like of float, shape (n, k)
        Cosine of each query's ``k`` candidates.
    query_knn_mean : array-like of float, shape (n,)
        Mean cosine of each query's nearest candidates.
    candidate_knn_mean : array-like of float, shape (n, k)
        Mean cosine of each listed candidate's nearest queries.

    Returns
    -------
    numpy.ndarray of float64, shape (n, k)

    Examples
    --------
    Cosine 0.8, neighbourhood means 0.5 (query) and 0.3 (candidate):
    ``0.8 / ((0.5 + 0.3) / 2) = 2``.

    >>> ratio_margin([[0.8]], [0.5], [[0.3]]).tolist()
    [[2.0]]
    """
    s = check_float_array(scores, "scores", 2).astype(np.float64, copy=False)
    q = check_float_array(query_knn_mean, "query_knn_mean", 1).astype(np.float64, copy=False)
    c = check_float_array(candidate_knn_mean, "candidate_knn_mean", 2).astype(
        np.float64, copy=False
    )
    for name, arr in (("scores", s), ("query_knn_mean", q), ("candidate_knn_mean", c)):
        check_finite(arr, name)
    if q.shape[0] != s.shape[0] or c.shape != s.shape:
        raise ValueError(
            f"Expected `query_knn_mean` of shape ({s.shape[0]},) and `candidate_knn_mean` of "
            f"shape {s.shape}, got {q.shape} and {c.shape}"
        )
    denominator = (q[:, None] + c) / 2.0
    if np.any(denominator <= 0):
        i, j = np.argwhere(denominator <= 0)[0]
        raise ValueError(
            f"The ratio margin needs positive neighbourhood means; row {i}, column {j} has "
            f"({q[i]!r} + {c[i, j]!r}) / 2 <= 0"
        )
    return s / denominator


def mining_proposals(
    scores: npt.ArrayLike,
    candidate_ids: Sequence[Sequence[Any]],
    gold_ids: Sequence[Sequence[Any]],
    *,
    query_knn_mean: npt.ArrayLike | None = None,
    candidate_knn_mean: npt.ArrayLike | None = None,
    score: str = "ratio",
) -> MinedProposals:
    """The pair each query proposes (its best-scoring candidate) and whether it is gold.

    Parameters
    ----------
    scores : array-like of float, shape (n, k)
        Cosine of each query's ``k`` candidates (as stored, best first).
    candidate_ids : list (n) of lists (k) of ids
    gold_ids : list (n) of lists of ids
        The gold partners of each query; empty for a query without one.
    query_knn_mean, candidate_knn_mean : array-like, optional
        The margin's neighbourhood means (needed for ``score="ratio"``).
    score : {"ratio", "cosine"}, default="ratio"

    Returns
    -------
    MinedProposals
        The first candidate wins ties.

    Examples
    --------
    The hub ``e1`` has the highest cosine for the query but a large
    neighbourhood mean, so the margin proposes ``e2``:

    >>> p = mining_proposals([[0.7, 0.6]], [["e1", "e2"]], [["e2"]],
    ...                      query_knn_mean=[0.5], candidate_knn_mean=[[0.9, 0.3]])
    >>> p.candidate.tolist(), p.correct.tolist(), round(float(p.score[0]), 3)
    ([1], [True], 1.5)
    """
    if score not in MINING_SCORES:
        raise ValueError(f"Expected `score` in {MINING_SCORES}, got {score!r}")
    s = check_float_array(scores, "scores", 2).astype(np.float64, copy=False)
    check_finite(s, "scores")
    n, k = s.shape
    if k == 0:
        raise ValueError("`scores` has no columns: every query needs at least one candidate")
    if len(candidate_ids) != n or len(gold_ids) != n:
        raise ValueError(
            f"`candidate_ids` has {len(candidate_ids)} rows and `gold_ids` {len(gold_ids)}, "
            f"but `scores` has {n}"
        )
    if score == "ratio":
        if query_knn_mean is None or candidate_knn_mean is None:
            raise ValueError(
                "score='ratio' needs `query_knn_mean` and `candidate_knn_mean` (the margin's "
                "neighbourhood means)"
            )
        s = ratio_margin(s, query_knn_mean, candidate_knn_mean)
    best = np.argmax(s, axis=1)
    correct = np.empty(n, dtype=bool)
    n_gold = np.empty(n, dtype=np.int64)
    for i in range(n):
        cands = candidate_ids[i]
        if len(cands) != k:
            raise ValueError(
                f"`candidate_ids` row {i} has {len(cands)} ids but `scores` has {k} columns"
            )
        golds = set(gold_ids[i])
        correct[i] = cands[int(best[i])] in golds
        n_gold[i] = len(golds)
    return MinedProposals(s[np.arange(n), best], best.astype(np.int64), correct, n_gold)


def _check_proposals(
    score: npt.ArrayLike, correct: npt.ArrayLike, n_gold: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = check_float_array(score, "score", 1).astype(np.float64, copy=False)
    check_finite(s, "score")
    c = np.asarray(correct)
    g = np.asarray(n_gold)
    if c.shape != s.shape or g.shape != s.shape:
        raise ValueError(
            f"`score`, `correct` and `n_gold` must have one entry per query; got shapes "
            f"{s.shape}, {c.shape} and {g.shape}"
        )
    if c.dtype != bool:
        raise ValueError(f"Expected `correct` of dtype bool, got {c.dtype}")
    if g.dtype.kind not in "iu" or (g.size and g.min() < 0):
        raise ValueError("Expected `n_gold` to be non-negative integers")
    if np.any(c & (g == 0)):
        row = int(np.flatnonzero(c & (g == 0))[0])
        raise ValueError(f"query {row} is marked correct but has no gold pair")
    return s, c, g.astype(np.int64, copy=False)


def mining_counts(
    score: npt.ArrayLike, correct: npt.ArrayLike, n_gold: npt.ArrayLike, threshold: float
) -> np.ndarray:
    """Per-query counts ``(n, 3)``: true positive, mined, gold pairs, at ``score >= threshold``.

    Their column sums give precision ``tp / mined``, recall ``tp / gold`` and
    F1 ``2 tp / (mined + gold)``.

    Examples
    --------
    >>> mining_counts([1.2, 0.9, 1.1], [True, False, False], [1, 0, 1], 1.0).tolist()
    [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    """
    s, c, g = _check_proposals(score, correct, n_gold)
    mined = s >= float(threshold)
    return np.column_stack([(mined & c), mined, g]).astype(np.float64)


def _prf(tp: Any, mined: Any, gold: Any) -> tuple[Any, Any, Any]:
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(mined > 0, tp / np.maximum(mined, 1), 0.0)
        recall = np.where(gold > 0, tp / np.maximum(gold, 1), np.nan)
        f1 = np.where(mined + gold > 0, 2 * tp / np.maximum(mined + gold, 1), np.nan)
    return precision, recall, f1


def mining_precision_recall_f1_score(
    score: npt.ArrayLike, correct: npt.ArrayLike, n_gold: npt.ArrayLike, threshold: float
) -> tuple[float, float, float]:
    """Precision, recall and F1 of the pairs mined at ``score >= threshold``.

    Precision is 0 when nothing is mined; recall is NaN without gold pairs, and
    F1 too when there is neither a mined nor a gold pair.

    Examples
    --------
    Two gold pairs; at 1.0 two pairs are mined, one of them right:

    >>> mining_precision_recall_f1_score([1.2, 0.9, 1.1], [True, False, False], [1, 0, 1], 1.0)
    (0.5, 0.5, 0.5)
    """
    tp, mined, gold = mining_counts(score, correct, n_gold, threshold).sum(axis=0)
    p, r, f = _prf(tp, mined, gold)
    return float(p), float(r), float(f)


def best_mining_threshold(
    score: npt.ArrayLike, correct: npt.ArrayLike, n_gold: npt.ArrayLike
) -> float:
    """The threshold that maximises F1 on these queries (XTREME's ``bucc_optimize``).

    Proposals are sorted by score; mining the top ``j`` gives an F1 for each
    ``j``, and the threshold is halfway between the score of the best cut and
    the next lower score, as in XTREME. Equal scores are mined together (a
    threshold cannot split them), so only cuts after the last of a run of
    equal scores count. On equal F1 the higher threshold wins. Without any
    correct proposal, F1 is 0 at every cut and the threshold mines nothing:
    it is just above the highest score.

    Examples
    --------
    >>> best_mining_threshold([1.3, 1.2, 1.0, 0.9], [True, True, False, False], [1, 1, 0, 1])
    1.1
    """
    s, c, g = _check_proposals(score, correct, n_gold)
    if s.size == 0:
        raise ValueError("Choosing a threshold needs at least one query")
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    tp = np.cumsum(c[order])
    mined = np.arange(1, s.size + 1)
    gold = g.sum()
    # Only cut where the next score is lower (or at the end).
    last_of_run = np.append(ss[1:] < ss[:-1], True)
    f1 = np.where(last_of_run, 2.0 * tp / (mined + gold), -1.0)
    if tp[-1] == 0:
        return float(np.nextafter(ss[0], np.inf))
    j = int(np.argmax(f1))  # first maximum: the highest threshold among equal F1
    if j + 1 < s.size:
        return float((ss[j] + ss[j + 1]) / 2.0)
    return float(ss[j])
