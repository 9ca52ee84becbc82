"""How well a task distance selects intermediate tasks: NDCG@k and Regret@k.

Given, for one target task, the candidate intermediate tasks with a predicted
score (for example minus their distance to the target) and the target
performance actually reached after training on each, Poth et al. (2021) score
the ranking with NDCG (Järvelin and Kekäläinen 2002) and with Regret@k, the
relative shortfall of the best task among the top k from the best task overall.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from xcal.transfer._frames import require_columns


def _check_ranking_inputs(
    relevance: object, scores: object, k: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    rel = np.asarray(relevance, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    if rel.ndim != 1 or sc.ndim != 1 or rel.shape != sc.shape:
        raise ValueError(
            f"Expected 1-D `relevance` and `scores` of equal length, got shapes {rel.shape} "
            f"and {sc.shape}"
        )
    if rel.size == 0:
        raise ValueError("Expected at least one candidate, got none")
    if not (np.all(np.isfinite(rel)) and np.all(np.isfinite(sc))):
        raise ValueError("`relevance` and `scores` must be finite")
    if k is None:
        k = rel.size
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"Expected `k` to be a positive int, got {k!r}")
    return rel, sc, int(min(k, rel.size))


def _dcg(gains: np.ndarray, scores: np.ndarray, k: int, ignore_ties: bool) -> float:
    discount = 1.0 / np.log2(np.arange(gains.size) + 2.0)
    discount[k:] = 0.0
    if ignore_ties:
        order = np.argsort(-scores, kind="stable")
        return float(gains[order] @ discount)
    # Tied scores share their positions: each member of a tie group gets the group's
    # mean gain, i.e. the expected DCG over random orderings within ties (as sklearn).
    _, inverse, counts = np.unique(-scores, return_inverse=True, return_counts=True)
    group_gain = np.zeros(counts.size)
    np.add.at(group_gain, inverse, gains)
    group_gain /= counts
    cumulative = np.cumsum(discount)
    last = np.cumsum(counts) - 1
    group_discount = np.diff(np.concatenate([[0.0], cumulative[last]]))
    return float(group_gain @ group_discount)


def ndcg_at_k_score(
    relevance: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    k: int | None = None,
    *,
    gain: Literal["linear", "exponential"] = "linear",
    ignore_ties: bool = False,
) -> float:
    """Normalised discounted cumulative gain of ranking candidates by ``scores``.

    Parameters
    ----------
    relevance
        True relevance of each candidate (non-negative), e.g. the target-task
        performance reached after training on that intermediate task.
    scores
        Predicted scores; higher is ranked first (pass ``-distance``).
    k
        Cut-off; ``None`` ranks all candidates.
    gain
        ``linear`` uses the relevance itself (as ``sklearn.metrics.ndcg_score``),
        ``exponential`` uses ``2**relevance - 1`` (Burges et al. 2005).
    ignore_ties
        If False, tied scores get the expected DCG over orderings of the tie.

    Returns
    -------
    float
        DCG@k / ideal DCG@k in [0, 1]; 0 when every relevance is 0.

    References
    ----------
    Järvelin and Kekäläinen (2002). Cumulated gain-based evaluation of IR techniques. TOIS.
    Poth, Pfeiffer, Rücklé and Gurevych (2021). What to Pre-Train on? Efficient
    Intermediate Task Selection. EMNLP.

    Examples
    --------
    >>> # ranking puts relevance 1 first, then 3, then 2; ideal order is 3, 2, 1
    >>> dcg = 1 / np.log2(2) + 3 / np.log2(3) + 2 / np.log2(4)
    >>> ideal = 3 / np.log2(2) + 2 / np.log2(3) + 1 / np.log2(4)
    >>> bool(np.isclose(ndcg_at_k_score([1, 3, 2], [0.9, 0.5, 0.1]), dcg / ideal))
    True
    """
    rel, sc, k = _check_ranking_inputs(relevance, scores, k)
    if np.any(rel < 0):
        raise ValueError("NDCG needs non-negative `relevance`; pass performance, not signed gains")
    if gain == "linear":
        gains = rel
    elif gain == "exponential":
        gains = np.exp2(rel) - 1.0
    else:
        raise ValueError(f"Expected `gain` to be 'linear' or 'exponential', got {gain!r}")
    ideal = _dcg(np.sort(gains)[::-1], np.arange(gains.size, 0, -1, dtype=np.float64), k, True)
    if ideal == 0.0:
        return 0.0
    return _dcg(gains, sc, k, ignore_ties) / ideal


def regret_at_k_loss(
    performance: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    k: int = 1,
) -> float:
    """Relative shortfall of the best of the top-k candidates from the best candidate.

    ``Regret@k = (O - M_k) / O`` where ``O`` is the best target performance over
    all candidates and ``M_k`` the best among the ``k`` highest-scored ones
    (Poth et al. 2021). Ties in ``scores`` are broken by input order.

    Examples
    --------
    >>> # top-1 by score is the 70.0 task, the best is 80.0
    >>> regret_at_k_loss([70.0, 80.0, 75.0], [3.0, 1.0, 2.0], k=1) == (80 - 70) / 80
    True
    >>> regret_at_k_loss([70.0, 80.0, 75.0], [3.0, 1.0, 2.0], k=2) == (80 - 75) / 80
    True
    """
    perf, sc, k = _check_ranking_inputs(performance, scores, k)
    best = float(perf.max())
    if best <= 0:
        raise ValueError("Regret@k divides by the best performance, which must be positive")
    top = np.argsort(-sc, kind="stable")[:k]
    return (best - float(perf[top].max())) / best


def selection_quality(
    table: pd.DataFrame,
    *,
    target_col: str = "target_task",
    candidate_col: str = "intermediate_task",
    distance_col: str = "distance",
    performance_col: str = "performance",
    ks: Sequence[int] = (1, 3, 5),
    group_cols: Sequence[str] = (),
) -> pd.DataFrame:
    """NDCG@k and Regret@k of ranking intermediate tasks by ascending distance.

    Parameters
    ----------
    table
        One row per (target task, intermediate task[, group...]) with the
        distance between them and the target performance after intermediate training.
    ks
        Cut-offs.
    group_cols
        Further grouping columns (e.g. ``language``, ``measure``).

    Returns
    -------
    pandas.DataFrame
        One row per group and k: ``*group_cols, target_task, k, n_candidates,
        ndcg_score, regret_loss``.

    Examples
    --------
    >>> t = pd.DataFrame({"target_task": "xnli", "intermediate_task": ["a", "b", "c"],
    ...                   "distance": [0.1, 0.3, 0.2], "performance": [70.0, 80.0, 75.0]})
    >>> selection_quality(t, ks=[1])[["k", "regret_loss"]].to_dict("records")
    [{'k': 1, 'regret_loss': 0.125}]
    """
    required = [target_col, candidate_col, distance_col, performance_col, *group_cols]
    require_columns(table, required)
    keys = [*group_cols, target_col]
    duplicated = table.duplicated([*keys, candidate_col])
    if duplicated.any():
        first = table[duplicated].iloc[0][[*keys, candidate_col]].to_dict()
        raise ValueError(f"duplicate candidate rows, first: {first}")
    rows = []
    for key, group in table.groupby(keys, sort=True):
        key_values = key if isinstance(key, tuple) else (key,)
        scores = -group[distance_col].to_numpy(dtype=np.float64)
        performance = group[performance_col].to_numpy(dtype=np.float64)
        for k in ks:
            rows.append(
                {
                    **dict(zip(keys, key_values, strict=True)),
                    "k": int(k),
                    "n_candidates": len(group),
                    "ndcg_score": ndcg_at_k_score(performance, scores, k),
                    "regret_loss": regret_at_k_loss(performance, scores, k),
                }
            )
    return pd.DataFrame(rows, columns=[*keys, "k", "n_candidates", "ndcg_score", "regret_loss"])
