"""A rich progress bar that appears only when a resampling loop takes more than a moment."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

# Show the bar when the whole loop is predicted to take longer than this (seconds).
_AUTO_THRESHOLD_S = 1.5


class ChunkProgress:
    """Count resamples done; ``enabled=None`` decides after the first chunk.

    With ``None`` the time of the first chunk predicts the total and the bar is
    shown only above ``_AUTO_THRESHOLD_S``, so a quick call prints nothing.
    The bar is transient (erased when done) and goes to stderr.
    """

    def __init__(self, total: int, description: str, enabled: bool | None = None) -> None:
        self.total = total
        self.description = description
        self.enabled = enabled
        self.done = 0
        self._start = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> ChunkProgress:
        if self.enabled:
            self._open()
        return self

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.description, total=self.total, completed=self.done)

    def advance(self, rows: int) -> None:
        self.done += rows
        if self._bar is None and self.enabled is None and 0 < self.done < self.total:
            elapsed = time.perf_counter() - self._start
            if elapsed * self.total / self.done > _AUTO_THRESHOLD_S:
                self._open()
            self.enabled = self._bar is not None
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
