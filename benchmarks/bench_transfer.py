"""Task distances on samples of a few thousand examples per task (the issue's scale).

Inputs: two samples of 3,000 synthetic 384-dimensional embeddings (the size of
multilingual-e5-small's), L2-normalised like the encoder's output, made once
before timing. Embedding itself is not timed here (it is the model's cost, and
cached on disk after the first run).

* Fréchet distance. Subject: :func:`xcal.transfer.task_distance.frechet_distance`
  (trace term as the nuclear norm of ``R_a R_b^T``). Baseline: the pytorch-fid
  formula, ``scipy.linalg.sqrtm(cov_a @ cov_b)``. Target: at least as fast (>= 1x).
  Also timed at 300 samples (fewer than dimensions), where the baseline's matrix
  square root of a singular product is also the less accurate one.
* Squared MMD, unbiased, RBF kernel with the median heuristic. Subject:
  :func:`xcal.transfer.task_distance.mmd_squared` (row blocks, memory O(1024 n)).
  Baseline: the direct implementation, full ``scipy.spatial.distance.cdist``
  matrices and ``np.median`` of ``pdist``. Target: within 2x of it (the blocks
  buy bounded memory, not speed).

Before any timing each subject's value is checked against its baseline's:
relative 1e-9 (Fréchet at 3,000 samples, MMD), and 1e-6 for Fréchet at 300
samples, where ``sqrtm`` of the singular ``cov_a @ cov_b`` loses digits (they
differ by about 2e-8 there). Times are wall-clock seconds, best of 3 for
subject and baseline alike, timed in alternation (BLAS is multi-threaded, so
CPU time would count every thread). Run: ``python -m benchmarks transfer``.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import scipy.linalg
from scipy.spatial.distance import cdist, pdist

from benchmarks._common import Result, best_times
from xcal.transfer.task_distance import frechet_distance, mmd_squared

N, D = 3000, 384
# Relative agreement with the baseline required before timing, by sample size.
FRECHET_RTOL = {N: 1e-9, 300: 1e-6}
MMD_RTOL = 1e-9


def _embeddings(n: int, seed: int, shift: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _frechet_sqrtm(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(scipy.linalg.sqrtm(cov_a @ cov_b))
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


def _mmd_direct(a: np.ndarray, b: np.ndarray) -> float:
    sigma = float(np.median(pdist(np.vstack([a, b]))))
    gamma = 1 / (2 * sigma**2)
    k_aa = np.exp(-gamma * cdist(a, a, "sqeuclidean"))
    k_bb = np.exp(-gamma * cdist(b, b, "sqeuclidean"))
    k_ab = np.exp(-gamma * cdist(a, b, "sqeuclidean"))
    n, m = len(a), len(b)
    return float(
        (k_aa.sum() - n) / (n * (n - 1)) + (k_bb.sum() - m) / (m * (m - 1)) - 2 * k_ab.mean()
    )


def _check_equal(what: str, ours: float, theirs: float, rtol: float) -> None:
    """Refuse to time a subject whose value differs from the baseline's."""
    if not abs(ours - theirs) <= rtol * abs(theirs):
        raise AssertionError(
            f"{what}: xcal gives {ours!r}, the baseline {theirs!r} (rtol {rtol:g})"
        )


def run() -> list[Result]:
    results = []
    for n in (N, 300):
        a, b = _embeddings(n, 0, 0.05), _embeddings(n, 1, 0.0)
        ours, theirs = frechet_distance(a, b), _frechet_sqrtm(a, b)
        print(
            f"Fréchet n={n}: xcal {ours:.10g}, sqrtm {theirs:.10g}, |diff| {abs(ours - theirs):.2g}"
        )
        _check_equal(f"Fréchet distance, n={n}", ours, theirs, FRECHET_RTOL[n])
        subject, baseline = best_times(
            [partial(frechet_distance, a, b), partial(_frechet_sqrtm, a, b)]
        )
        results.append(
            Result(
                benchmark=f"Fréchet distance, 2 x {n} x {D} embeddings",
                subject="xcal.transfer.task_distance.frechet_distance",
                subject_s=subject,
                baseline="scipy.linalg.sqrtm(cov_a @ cov_b) (pytorch-fid formula)",
                baseline_s=baseline,
                target=">= 1x",
                passed=baseline / subject >= 1.0,
            )
        )
    a, b = _embeddings(N, 0, 0.05), _embeddings(N, 1, 0.0)
    ours, theirs = mmd_squared(a, b), _mmd_direct(a, b)
    print(f"MMD^2 n={N}: xcal {ours:.10g}, direct {theirs:.10g}, |diff| {abs(ours - theirs):.2g}")
    _check_equal(f"MMD^2, n={N}", ours, theirs, MMD_RTOL)
    subject, baseline = best_times([partial(mmd_squared, a, b), partial(_mmd_direct, a, b)])
    results.append(
        Result(
            benchmark=f"unbiased MMD^2 (RBF, median heuristic), 2 x {N} x {D} embeddings",
            subject="xcal.transfer.task_distance.mmd_squared (row blocks)",
            subject_s=subject,
            baseline="full cdist matrices + np.median(pdist)",
            baseline_s=baseline,
            target="within 2x (>= 0.5x)",
            passed=baseline / subject >= 0.5,
        )
    )
    return results
