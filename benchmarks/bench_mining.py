"""The mining step of BUCC: nearest neighbours in both directions over 10^4 x 10^4 embeddings.

Bitext mining needs, for every source sentence, its top-k English candidates
and the mean cosine of its 4 nearest English sentences, and for every English
sentence the mean cosine of its 4 nearest source sentences (the denominators
of the ratio margin of Artetxe & Schwenk, 2019). Inputs: 10,000 x 10,000
L2-normalised float32 embeddings of dimension 384 (multilingual-e5-small's),
k = 10 candidates kept, margin k = 4.

- subject: :func:`xcal.infer.retrieval.mining_neighbours`, what ``xcal infer``
  runs for a BUCC cell: one pass over blocks of 1,024 queries, each block's
  similarities used for the forward top-k and merged into the running
  backward top-4, so at most 1,028 x 10,000 similarities are held at once
  (about 40 MB) whatever the corpus size.
- baseline: plain numpy on the whole matrix, ``S = Q @ C.T`` (400 MB), then
  ``np.argpartition`` along rows (forward) and ``np.partition`` along
  columns (backward), the way LASER's and XTREME's scripts do it without
  faiss.

Both give the same candidates and means (checked before timing). Target: the
blocked pass costs at most 1.25x the whole-matrix one (its point is bounded
memory, not speed; on real BUCC sizes of 10^5-10^6 sentences per side the
whole matrix does not fit in memory at all).

Run: ``python -m benchmarks mining``.
"""

from __future__ import annotations

import numpy as np

from benchmarks._common import Result, best_time
from xcal.infer.retrieval import mining_neighbours

N = 10_000
DIM = 384
K = 10
MARGIN_K = 4
TARGET_RATIO = 1.25


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _baseline(
    q: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sim = q @ c.T
    part = np.argpartition(-sim, K - 1, axis=1)[:, :K]
    part_scores = np.take_along_axis(sim, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    scores = np.take_along_axis(part_scores, order, axis=1)
    q_mean = scores[:, :MARGIN_K].mean(axis=1, dtype=np.float64)
    c_mean = -np.partition(-sim, MARGIN_K - 1, axis=0)[:MARGIN_K].mean(axis=0, dtype=np.float64)
    return idx, scores, q_mean, c_mean


def run() -> list[Result]:
    rng = np.random.default_rng(0)
    q, c = _unit(rng, N), _unit(rng, N)
    # Same answers both ways, checked before timing (random float data has no ties).
    got = mining_neighbours(q, c, K, MARGIN_K)
    want = _baseline(q, c)
    np.testing.assert_array_equal(got[0], want[0])
    for a, b in zip(got[1:], want[1:], strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    del got, want
    subject_s = best_time(lambda: mining_neighbours(q, c, K, MARGIN_K), repeat=3)
    baseline_s = best_time(lambda: _baseline(q, c), repeat=3)
    return [
        Result(
            benchmark=f"BUCC mining step, {N:,} x {N:,} x {DIM} embeddings, k={K}, margin k={MARGIN_K}",
            subject="xcal.infer.retrieval.mining_neighbours (blocked, one pass)",
            subject_s=subject_s,
            baseline="numpy Q @ C.T + argpartition (rows) + partition (columns)",
            baseline_s=baseline_s,
            target=f"<= {TARGET_RATIO:g}x the baseline's time, memory bounded by a block",
            passed=subject_s <= TARGET_RATIO * baseline_s,
        )
    ]


if __name__ == "__main__":
    for result in run():
        print(
            f"{result.benchmark}: {result.subject} {result.subject_s:.3f}s vs "
            f"{result.baseline} {result.baseline_s:.3f}s -> {result.speedup:.2f}x"
        )
