"""Timing helpers and the result record shared by every benchmark module.

A benchmark module ``benchmarks/bench_*.py`` defines ``run() -> list[Result]``.
Each result compares a subject with a baseline timed in the same process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Result:
    benchmark: str  # e.g. "top-label ECE, 10M x 3 probabilities"
    subject: str  # what is measured, e.g. "xcal.metrics.expected_calibration_error"
    subject_s: float
    baseline: str  # e.g. "netcal ECE.measure"
    baseline_s: float
    target: str  # e.g. ">= 10x faster" or "within 2x of the floor"
    passed: bool

    @property
    def speedup(self) -> float:
        """Baseline time over subject time: above 1 means the subject is faster."""
        return self.baseline_s / self.subject_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup}


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` wall-clock timings of ``fn()`` in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
