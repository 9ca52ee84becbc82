"""Bitext mining: neighbourhoods, the ratio margin, thresholds, precision/recall/F1, Platt confidence.

References are written independently of the code under test: a full
similarity matrix for the neighbourhoods, sets of (source, English) pairs for
precision and recall (as the BUCC evaluation counts them), an exhaustive
search over thresholds for the F1-optimal one, and hand-worked cases.
"""

from __future__ import annotations

import numpy as np
import pytest
from _bucc import DEV_ENGLISH, DEV_GOLD, DEV_SOURCE, planted_embeddings

from xcal.infer.retrieval import mining_neighbours, top_k
from xcal.metrics import top_label_calibration_error
from xcal.metrics.mining import (
    best_mining_threshold,
    mining_counts,
    mining_precision_recall_f1_score,
    mining_proposals,
    ratio_margin,
)


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# --------------------------------------------------------------------------- neighbourhoods


@pytest.mark.parametrize(
    ("n", "m", "k", "margin_k", "block"), [(57, 91, 5, 4, 16), (9, 3, 5, 4, 4)]
)
def test_mining_neighbours_match_the_full_matrix(
    n: int, m: int, k: int, margin_k: int, block: int
) -> None:
    rng = np.random.default_rng(1)
    q, c = _unit(rng, n, 8), _unit(rng, m, 8)
    idx, scores, q_mean, c_mean = mining_neighbours(q, c, k, margin_k, block=block)
    full = q.astype(np.float64) @ c.T.astype(np.float64)
    kq, kc = min(margin_k, m), min(margin_k, n)
    np.testing.assert_allclose(
        q_mean, np.sort(full, axis=1)[:, ::-1][:, :kq].mean(axis=1), atol=1e-6
    )
    np.testing.assert_allclose(c_mean, np.sort(full, axis=0)[::-1][:kc].mean(axis=0), atol=1e-6)
    ref_idx, ref_scores = top_k(q, c, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)  # other BLAS blocking
    np.testing.assert_allclose(scores, np.take_along_axis(full, idx, axis=1), atol=1e-6)


def test_ratio_margin_by_hand_and_its_errors() -> None:
    # cos 0.6; the query's neighbourhood mean 0.5, the candidate's 0.7: 0.6 / 0.6 = 1.
    np.testing.assert_allclose(ratio_margin([[0.6, 0.3]], [0.5], [[0.7, 0.1]]), [[1.0, 0.3 / 0.3]])
    with pytest.raises(ValueError, match="candidate_knn_mean"):
        ratio_margin([[0.6, 0.3]], [0.5], [[0.7]])
    with pytest.raises(ValueError, match="positive neighbourhood means; row 0, column 1"):
        ratio_margin([[0.6, 0.3]], [0.1], [[0.7, -0.2]])
    with pytest.raises(ValueError, match="query_knn_mean"):
        ratio_margin([[0.6]], [np.nan], [[0.7]])


def test_proposals_use_the_margin_and_count_unpaired_queries() -> None:
    p = mining_proposals(
        [[0.9, 0.8], [0.5, 0.4], [0.7, 0.7]],
        [["hub", "e2"], ["e3", "e4"], ["e5", "e6"]],
        [["e2"], [], ["e6"]],
        query_knn_mean=[0.6, 0.45, 0.5],
        candidate_knn_mean=[[0.9, 0.4], [0.5, 0.5], [0.5, 0.5]],
    )
    # Row 0: 0.9/0.75 = 1.2 against 0.8/0.5 = 1.6, so the margin picks e2 over the hub.
    # Row 2: a tie (1.4 both): the first candidate wins.
    np.testing.assert_allclose(p.score, [1.6, 0.5 / 0.475, 0.7 / 0.5])
    assert p.candidate.tolist() == [1, 0, 0]
    assert p.correct.tolist() == [True, False, False]
    assert p.n_gold.tolist() == [1, 0, 1]
    cosine = mining_proposals([[0.9, 0.8]], [["hub", "e2"]], [["e2"]], score="cosine")
    assert cosine.candidate.tolist() == [0] and not cosine.correct[0]
    with pytest.raises(ValueError, match="needs `query_knn_mean`"):
        mining_proposals([[0.9]], [["a"]], [[]])
    with pytest.raises(ValueError, match="row 1 has 1 ids"):
        mining_proposals([[0.9, 0.1], [0.2, 0.1]], [["a", "b"], ["c"]], [[], []], score="cosine")


# --------------------------------------------------------------------------- P / R / F1


def _set_prf(mined: set[tuple[str, str]], gold: set[tuple[str, str]]) -> tuple[float, float, float]:
    tp = len(mined & gold)
    p = tp / len(mined) if mined else 0.0
    r = tp / len(gold)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def test_precision_recall_f1_against_pair_sets() -> None:
    rng = np.random.default_rng(3)
    n = 400
    score = rng.normal(1.0, 0.1, n)
    has_gold = rng.random(n) < 0.1
    proposal_right = has_gold & (rng.random(n) < 0.5 + 2 * (score - 1.0))
    gold = {(f"s{i}", f"e{i}") for i in np.flatnonzero(has_gold)}
    proposals = {i: (f"s{i}", f"e{i}" if proposal_right[i] else f"x{i}") for i in range(n)}
    for threshold in (0.9, 1.0, 1.08, float(score.max())):
        mined = {proposals[i] for i in range(n) if score[i] >= threshold}
        expected = _set_prf(mined, gold)
        got = mining_precision_recall_f1_score(
            score, proposal_right, has_gold.astype(int), threshold
        )
        np.testing.assert_allclose(got, expected, atol=1e-12)
    assert mining_precision_recall_f1_score([0.5], [False], [1], 1.0) == (0.0, 0.0, 0.0)
    p, r, f = mining_precision_recall_f1_score([0.5], [False], [0], 1.0)
    assert p == 0.0 and np.isnan(r) and np.isnan(f)
    with pytest.raises(ValueError, match="query 0 is marked correct but has no gold pair"):
        mining_counts([1.0], [True], [0], 0.5)


def _exhaustive_best_f1(score: np.ndarray, correct: np.ndarray, n_gold: np.ndarray) -> float:
    best = 0.0
    for t in np.unique(score):
        best = max(best, mining_precision_recall_f1_score(score, correct, n_gold, t)[2])
    return best


@pytest.mark.parametrize("seed", range(6))
def test_best_threshold_reaches_the_best_f1_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    # Scores on a coarse grid: many exact ties, which a threshold cannot split.
    score = np.round(rng.normal(1.0, 0.1, n), 1)
    n_gold = (rng.random(n) < 0.3).astype(np.int64)
    correct = (n_gold > 0) & (rng.random(n) < 0.6 + (score - 1.0))
    if not correct.any():
        correct[np.flatnonzero(n_gold)[0]] = True
    t = best_mining_threshold(score, correct, n_gold)
    f1 = mining_precision_recall_f1_score(score, correct, n_gold, t)[2]
    assert f1 == pytest.approx(_exhaustive_best_f1(score, correct, n_gold), abs=1e-12)
    # Halfway between two distinct scores (or at the lowest one), never splitting a tie.
    above, below = score[score >= t], score[score < t]
    if below.size:
        assert t == pytest.approx((above.min() + below.max()) / 2)


def test_best_threshold_by_hand() -> None:
    # Cut after 1 pair: F1 2/(1+3); after 2: 4/5; after 3: 4/6; after 4: 4/7.
    assert best_mining_threshold(
        [1.3, 1.2, 1.0, 0.9], [True, True, False, False], [1, 1, 0, 1]
    ) == (pytest.approx((1.2 + 1.0) / 2))
    # Nothing right: a threshold above every score mines nothing.
    t = best_mining_threshold([0.4, 0.2], [False, False], [1, 0])
    assert t > 0.4 and mining_counts([0.4, 0.2], [False, False], [1, 0], t)[:, 1].sum() == 0


# --------------------------------------------------------------------------- realistic sizes


@pytest.fixture(scope="module")
def realistic() -> dict[str, object]:
    """Planted embeddings at the real dev set's sizes, mined with k = 10 and margin k = 4."""
    rng = np.random.default_rng(7)
    src = rng.choice(DEV_SOURCE, DEV_GOLD, replace=False)
    eng = rng.choice(DEV_ENGLISH, DEV_GOLD, replace=False)
    pairs = list(zip(src.tolist(), eng.tolist(), strict=True))
    q, c = planted_embeddings(DEV_SOURCE, DEV_ENGLISH, pairs, seed=7)
    idx, scores, q_mean, c_mean = mining_neighbours(q, c, 10, 4)
    english = np.array([f"en-{j:09d}" for j in range(DEV_ENGLISH)], dtype=object)
    gold = {s: [f"en-{e:09d}"] for s, e in pairs}
    return {
        "scores": scores,
        "candidate_ids": [english[row].tolist() for row in idx],
        "gold_ids": [gold.get(i, []) for i in range(DEV_SOURCE)],
        "query_knn_mean": q_mean,
        "candidate_knn_mean": c_mean[idx],
    }


@pytest.mark.slow
def test_margin_mines_better_than_cosine_on_a_realistic_set(realistic: dict) -> None:
    """Hubs near the centre of the source cloud fool cosine, not the margin (Artetxe & Schwenk)."""
    f1 = {}
    for score in ("ratio", "cosine"):
        p = mining_proposals(
            realistic["scores"],
            realistic["candidate_ids"],
            realistic["gold_ids"],
            query_knn_mean=realistic["query_knn_mean"],
            candidate_knn_mean=realistic["candidate_knn_mean"],
            score=score,
        )
        assert int(p.n_gold.sum()) == DEV_GOLD
        half = np.arange(DEV_SOURCE) % 2 == 0
        t = best_mining_threshold(p.score[half], p.correct[half], p.n_gold[half])
        f1[score] = mining_precision_recall_f1_score(
            p.score[~half], p.correct[~half], p.n_gold[~half], t
        )[2]
    assert f1["ratio"] > 0.8
    assert f1["ratio"] > f1["cosine"] + 0.05, f1


@pytest.mark.slow
def test_platt_confidence_is_calibrated_over_all_queries(realistic: dict) -> None:
    from xcal.analyze.mining import fit_platt

    p = mining_proposals(
        realistic["scores"],
        realistic["candidate_ids"],
        realistic["gold_ids"],
        query_knn_mean=realistic["query_knn_mean"],
        candidate_knn_mean=realistic["candidate_knn_mean"],
    )
    half = np.arange(DEV_SOURCE) % 2 == 0
    platt = fit_platt(p.score[half], p.correct[half])
    conf = platt(p.score[~half])
    # About 3% of queries have a partner: a map from the margin to "this pair is gold"
    # must say so on the unpaired majority, not the 0.5-1 a retrieval softmax gives.
    assert conf.mean() == pytest.approx(p.correct[~half].mean(), abs=0.01)
    assert top_label_calibration_error(conf, p.correct[~half], n_bins=15) < 0.02
    assert platt.slope > 0
