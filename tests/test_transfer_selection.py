"""Intermediate-task selection: NDCG@k and Regret@k on hand-worked rankings and against
scikit-learn's ndcg_score."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from xcal.transfer.selection import ndcg_at_k_score, regret_at_k_loss, selection_quality

# Five intermediate tasks for one target. Distances (lower = predicted better) and the
# target score reached after training on each.
DISTANCE = np.array([0.10, 0.40, 0.20, 0.50, 0.30])  # ranking: t0, t2, t4, t1, t3
PERFORMANCE = np.array([71.0, 78.0, 74.0, 69.0, 76.0])  # truth:   t1, t4, t2, t0, t3


def test_ndcg_hand_worked() -> None:
    ranked = [71.0, 74.0, 76.0, 78.0, 69.0]  # performance in predicted order
    ideal = [78.0, 76.0, 74.0, 71.0, 69.0]

    def dcg(gains: list[float], k: int) -> float:
        return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))

    for k in (1, 2, 3, 5):
        expected = dcg(ranked, k) / dcg(ideal, k)
        assert ndcg_at_k_score(PERFORMANCE, -DISTANCE, k) == pytest.approx(expected, abs=1e-15)
    # k = 1 by hand: 71 / 78
    assert ndcg_at_k_score(PERFORMANCE, -DISTANCE, 1) == pytest.approx(71 / 78, abs=1e-15)
    # k = 2 by hand: (71 + 74/log2(3)) / (78 + 76/log2(3))
    k2 = (71 + 74 / math.log2(3)) / (78 + 76 / math.log2(3))
    assert ndcg_at_k_score(PERFORMANCE, -DISTANCE, 2) == pytest.approx(k2, abs=1e-15)


def test_ndcg_exponential_gain_hand_worked() -> None:
    relevance, scores = [0.0, 2.0, 1.0], [3.0, 2.0, 1.0]  # predicted order: 0, 2, 1
    dcg = (2**0 - 1) / 1 + (2**2 - 1) / math.log2(3) + (2**1 - 1) / math.log2(4)
    ideal = (2**2 - 1) / 1 + (2**1 - 1) / math.log2(3) + 0
    got = ndcg_at_k_score(relevance, scores, gain="exponential")
    assert got == pytest.approx(dcg / ideal, abs=1e-15)


def test_ndcg_perfect_and_worst_and_zero() -> None:
    assert ndcg_at_k_score(PERFORMANCE, PERFORMANCE) == pytest.approx(1.0)
    assert ndcg_at_k_score([1.0, 0.0, 0.0], [0.0, 1.0, 2.0], k=2) == 0.0
    assert ndcg_at_k_score([0.0, 0.0], [1.0, 2.0]) == 0.0


def test_ndcg_ties_average_like_sklearn() -> None:
    # Tied top pair (scores 1, 1): expected DCG@1 over both orders = (3 + 1) / 2.
    got = ndcg_at_k_score([3.0, 1.0, 2.0], [1.0, 1.0, 0.0], k=1)
    assert got == pytest.approx(((3 + 1) / 2) / 3, abs=1e-15)


def test_ndcg_matches_sklearn_on_random_rankings() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 10))
        relevance = rng.integers(0, 6, n).astype(float)
        scores = rng.integers(0, 4, n).astype(float)  # many ties
        k = int(rng.integers(1, n + 1))
        expected = ndcg_score([relevance], [scores], k=k)
        assert ndcg_at_k_score(relevance, scores, k) == pytest.approx(expected, abs=1e-12)


def test_regret_hand_worked() -> None:
    # Best overall: 78 (t1). Top-1 by distance is t0 (71): (78 - 71) / 78.
    assert regret_at_k_loss(PERFORMANCE, -DISTANCE, 1) == pytest.approx((78 - 71) / 78)
    # Top-3 = t0, t2, t4 -> best 76: (78 - 76) / 78.
    assert regret_at_k_loss(PERFORMANCE, -DISTANCE, 3) == pytest.approx((78 - 76) / 78)
    # Top-4 includes t1: no regret.
    assert regret_at_k_loss(PERFORMANCE, -DISTANCE, 4) == 0.0
    assert regret_at_k_loss(PERFORMANCE, -DISTANCE, 50) == 0.0  # k past the end


def test_selection_quality_table() -> None:
    table = pd.DataFrame(
        {
            "target_task": ["xnli"] * 5 + ["pawsx"] * 2,
            "intermediate_task": ["t0", "t1", "t2", "t3", "t4", "t0", "t1"],
            "distance": [*DISTANCE, 0.2, 0.1],
            "performance": [*PERFORMANCE, 80.0, 90.0],
        }
    )
    out = selection_quality(table, ks=(1, 3)).set_index(["target_task", "k"])
    assert out.loc[("xnli", 1), "regret_loss"] == pytest.approx((78 - 71) / 78)
    assert out.loc[("xnli", 3), "ndcg_score"] == pytest.approx(
        ndcg_at_k_score(PERFORMANCE, -DISTANCE, 3)
    )
    assert (
        out.loc[("pawsx", 1), "regret_loss"] == 0.0 and out.loc[("pawsx", 1), "ndcg_score"] == 1.0
    )
    assert out.loc[("pawsx", 3), "n_candidates"] == 2


def test_validation() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k_score([-1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="equal length"):
        ndcg_at_k_score([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive int"):
        regret_at_k_loss([1.0, 2.0], [1.0, 2.0], k=0)
    with pytest.raises(ValueError, match="must be positive"):
        regret_at_k_loss([0.0, 0.0], [1.0, 2.0])
    with pytest.raises(KeyError, match="lacks column"):
        selection_quality(pd.DataFrame({"target_task": ["x"]}))
    dup = pd.DataFrame(
        {
            "target_task": "x",
            "intermediate_task": ["a", "a"],
            "distance": [0.1, 0.2],
            "performance": 1.0,
        }
    )
    with pytest.raises(ValueError, match="duplicate"):
        selection_quality(dup)
