"""Timing helpers and the result record shared by every benchmark module.

A benchmark module ``benchmarks/bench_*.py`` defines ``run() -> list[Result]``.
Each result compares a subject with a baseline timed in the same process, or
(with no baseline doing the same work) with an absolute target only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Result:
    benchmark: str  # e.g. "top-label ECE, 10M x 3 probabilities"
    subject: str  # what is measured, e.g. "xcal.metrics.expected_calibration_error"
    subject_s: float
    baseline: str  # e.g. "netcal ECE.measure"; "" for an absolute target only
    baseline_s: float | None  # None: no baseline does the same work
    target: str  # e.g. ">= 10x faster" or "within 2x of the floor"
    passed: bool

    @property
    def speedup(self) -> float | None:
        """Baseline time over subject time: above 1 means the subject is faster."""
        return None if self.baseline_s is None else self.baseline_s / self.subject_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup}


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` wall-clock timings of ``fn()`` in seconds."""
    return best_times([fn], repeat)[0]


def best_times(
    fns: Sequence[Callable[[], object]],
    repeat: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """The fastest of ``repeat`` timings of each of ``fns``, run in alternation.

    Every function is timed the same number of times (a best of 5 against a
    best of 2 favours the one timed more often), and alternating them makes a
    change in the machine's load hit all of them alike. ``clock`` is
    ``time.perf_counter`` (wall) or ``time.process_time`` (CPU of this process).
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = clock()
            fn()
            best[k] = min(best[k], clock() - start)
    return best
