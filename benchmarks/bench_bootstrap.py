"""Paired bootstrap of an ECE difference: xcal.stats against a netcal loop and against the floor.

The task: two systems' 3-class predictions on the same n = 100,000 examples
(rows in different orders, aligned by example_id), B = 10,000 paired resamples
of ECE(a) - ECE(b) (15 equal-width bins), a percentile interval and a p-value.

* Baseline 1: a Python loop calling ``netcal.metrics.ECE(15).measure`` on each
  resample of each system, the way one bootstraps with an off-the-shelf metric.
  At full size it takes several minutes, so it is timed on the first 50
  resamples (best of three, like the others) and extrapolated linearly to
  10,000 (the loop's cost per resample is constant); its values on those
  resamples are checked against ours before timing.
* Baseline 2 (the floor): merely drawing the B x n resample indices with
  ``Generator.integers``, in the engine's chunk shape and row by row, keeping
  the faster; no exact bootstrap can take less.

Every timing is the best of three wall-clock runs, the netcal loop, floor and
subject interleaved, in one process. The subject limits BLAS to one thread, so the
comparison with the single-threaded floor is one core against one core; the
processor times (less sensitive to other processes on a shared machine) are
printed as well.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks._common import Result

N = 100_000
N_CLASSES = 3
B = 10_000
LOOP_RESAMPLES = 50


def _predictions(rng: np.random.Generator, y: np.ndarray, scale: float) -> np.ndarray:
    z = rng.normal(size=(y.shape[0], N_CLASSES))
    z[np.arange(y.shape[0]), y] += 1.0
    z *= scale
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _floor(n: int, b: int, chunk: int) -> float:
    """Seconds to draw the b x n indices: the faster of chunked and row-by-row draws."""
    gen = np.random.default_rng(1)
    start = time.perf_counter()
    for s in range(0, b, chunk):
        gen.integers(0, n, size=(min(chunk, b - s), n))
    chunked = time.perf_counter() - start
    gen = np.random.default_rng(1)
    start = time.perf_counter()
    for _ in range(b):
        gen.integers(0, n, size=n)
    rowwise = time.perf_counter() - start
    return min(chunked, rowwise)


def run() -> list[Result]:
    from netcal.metrics import ECE

    from xcal.stats import metric_statistic, paired_bootstrap
    from xcal.stats.resample import chunk_rows, counts_from_indices

    rng = np.random.default_rng(0)
    y = rng.integers(0, N_CLASSES, N)
    prob_a = _predictions(rng, y, 1.0)  # roughly calibrated
    prob_b = _predictions(rng, y, 2.5)  # overconfident
    ids = np.array([f"xnli-dev-{i:06d}" for i in range(N)])
    order = rng.permutation(N)  # run b stores its rows in another order

    def subject() -> Any:
        a = metric_statistic("ece", y, y_prob=prob_a, example_ids=ids)
        b = metric_statistic("ece", y[order], y_prob=prob_b[order], example_ids=ids[order])
        return paired_bootstrap(a, b, B=B, rng=0, progress=False, names=("a", "b"))

    # netcal loop on the first LOOP_RESAMPLES resamples, extrapolated
    idx = np.random.default_rng(0).integers(0, N, size=(LOOP_RESAMPLES, N))
    ece = ECE(bins=15)

    def netcal_loop() -> np.ndarray:
        return np.array([[ece.measure(prob_a[i], y[i]), ece.measure(prob_b[i], y[i])] for i in idx])

    loop_values = netcal_loop()
    # same numbers as ours on those resamples (both systems)
    counts = counts_from_indices(idx.copy(), N)
    ours = np.column_stack(
        [
            metric_statistic("ece", y, y_prob=prob_a).on_weights(counts),
            metric_statistic("ece", y, y_prob=prob_b).on_weights(counts),
        ]
    )
    np.testing.assert_allclose(ours, loop_values, rtol=1e-9, atol=1e-12)

    chunk = chunk_rows(N, B)
    floor_s = subject_s = floor_cpu = subject_cpu = loop_s = float("inf")
    table: Any = None
    for _ in range(3):  # subject and both baselines, best of 3 each, interleaved
        start = time.perf_counter()
        netcal_loop()
        loop_s = min(loop_s, (time.perf_counter() - start) * B / LOOP_RESAMPLES)
        cpu = time.process_time()
        floor_s = min(floor_s, _floor(N, B, chunk))
        floor_cpu = min(floor_cpu, (time.process_time() - cpu) / 2)  # two ways drawn
        cpu, start = time.process_time(), time.perf_counter()
        table = subject()
        subject_s = min(subject_s, time.perf_counter() - start)
        subject_cpu = min(subject_cpu, time.process_time() - cpu)
    print(
        f"  processor time: subject {subject_cpu:.2f}s, floor {floor_cpu:.2f}s (mean of the two "
        f"ways), ratio {subject_cpu / floor_cpu:.2f}",
        flush=True,
    )
    row = table.iloc[0]
    print(
        f"  ECE(a) - ECE(b) = {row.estimate:.5f}, 95% CI [{row.ci_low:.5f}, {row.ci_high:.5f}], "
        f"p = {row.p_value:.4g}",
        flush=True,
    )
    bench = f"paired bootstrap of an ECE difference, B={B:,}, n={N:,} x {N_CLASSES} classes"
    subject_name = "xcal.stats.paired_bootstrap (align ids, percentile CI, p-value)"
    return [
        Result(
            benchmark=bench,
            subject=subject_name,
            subject_s=subject_s,
            baseline=(
                f"netcal ECE.measure loop over {B:,} resamples x 2 systems "
                f"(timed on {LOOP_RESAMPLES} resamples, extrapolated linearly)"
            ),
            baseline_s=loop_s,
            target=">= 50x faster",
            passed=loop_s >= 50 * subject_s,
        ),
        Result(
            benchmark=bench,
            subject=subject_name,
            subject_s=subject_s,
            baseline=f"floor: drawing the {B:,} x {N:,} resample indices (Generator.integers)",
            baseline_s=floor_s,
            target="within 3x of the floor (speedup >= 0.33)",
            passed=subject_s <= 3 * floor_s,
        ),
    ]
