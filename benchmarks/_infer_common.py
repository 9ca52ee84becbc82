"""Shared pieces of the inference benchmarks: XNLI dev input and a timing reporter."""

from __future__ import annotations

import os
import time
from typing import Any

XNLI_LANGUAGES = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"
)  # fmt: skip


def xnli_pairs(languages: tuple[str, ...], per_language: int | None) -> tuple[list[str], list[str]]:
    """Premises and hypotheses of XNLI dev, ``per_language`` pairs (all if None) per language."""
    from xcal.paths import data_dir
    from xcal.tasks import get_task

    root = data_dir(os.environ.get("XCAL_DATA_DIR") or "../shared/data/xtreme")
    task = get_task("xnli")
    first: list[str] = []
    second: list[str] = []
    for lang in languages:
        for ex in task.load(root, lang)[:per_language]:
            first.append(ex.premise)
            second.append(ex.hypothesis)
    return first, second


class CellClock:
    """A runner reporter that records when the first cell starts and the last one ends.

    The span between them is the runner's steady state: data reading,
    fingerprints and loading the weights come before it.
    """

    def __init__(self) -> None:
        self.first_start: float | None = None
        self.last_end = 0.0
        self.statuses: list[str] = []

    def cell_started(self, cell: Any, total: float) -> None:
        if self.first_start is None:
            self.first_start = time.perf_counter()

    def advance(self, amount: float) -> None:
        pass

    def cell_finished(self, result: Any) -> None:
        self.last_end = time.perf_counter()
        self.statuses.append(result.status)

    def note(self, text: str) -> None:
        pass

    @property
    def seconds(self) -> float:
        return self.last_end - (self.first_start or self.last_end)
