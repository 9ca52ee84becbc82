"""Terminal progress for the runner: one rich progress bar per run, a summary table.

rich is imported when a reporter is made, not when :mod:`xcal.infer` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xcal.infer.grid import Cell
from xcal.infer.runner import CellResult


class RichReporter:
    """Draws a progress bar with examples per second for each run being computed.

    Skipped and failed cells print one line each, so a restarted job shows at
    a glance what it did not need to redo.
    """

    def __init__(self, console: Any = None, *, transient: bool = False) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} ex/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=transient,
        )
        self._task: Any = None
        self._done = 0.0
        self._started = False

    def __enter__(self) -> RichReporter:
        self._progress.start()
        self._started = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        self._started = False

    def cell_started(self, cell: Cell, total: float) -> None:
        self._done = 0.0
        self._task = self._progress.add_task(cell.describe(), total=total, rate="-")

    def advance(self, amount: float) -> None:
        if self._task is None:
            return
        self._done += amount
        task = self._progress.tasks[-1]
        elapsed = task.elapsed or 0.0
        rate = f"{self._done / elapsed:,.1f}" if elapsed > 0 else "-"
        self._progress.update(self._task, advance=amount, rate=rate)

    def cell_finished(self, result: CellResult) -> None:
        if result.status == "written":
            if self._task is not None:
                self._progress.update(
                    self._task,
                    completed=result.n_examples,
                    rate=f"{result.examples_per_s:,.1f}",
                )
        elif result.status == "skipped":
            self._progress.console.print(
                f"[dim]skip[/dim] {result.cell.describe()} (already stored)", highlight=False
            )
        else:
            self._progress.console.print(
                f"[red]FAIL[/red] {result.cell.describe()}: {result.error}", highlight=False
            )
        self._task = None

    def note(self, text: str) -> None:
        self._progress.console.print(text, highlight=False)


def summary_table(results: Sequence[CellResult]) -> Any:
    """A rich Table with one row per cell: status, examples, truncated, seconds, ex/s."""
    from rich.table import Table

    table = Table(title="xcal infer", show_lines=False)
    for name, justify in (
        ("model", "left"),
        ("task", "left"),
        ("lang", "left"),
        ("perturbation", "left"),
        ("status", "left"),
        ("examples", "right"),
        ("truncated", "right"),
        ("s", "right"),
        ("ex/s", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    style = {"written": "green", "skipped": "dim", "failed": "red"}
    for r in results:
        c = r.cell
        timed = r.status == "written"
        table.add_row(
            c.model.store_name,
            f"{c.task}/{c.split_label}",
            c.language,
            c.perturbation.label,
            f"[{style[r.status]}]{r.status}[/{style[r.status]}]",
            str(r.n_examples),
            str(r.n_truncated) if timed else "",
            f"{r.seconds:.1f}" if timed else "",
            f"{r.examples_per_s:,.1f}" if timed else "",
        )
    return table
