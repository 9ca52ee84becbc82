"""``xcal import``: bring other tools' predictions into a prediction store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Import other tools' predictions into a prediction store.", no_args_is_help=True
)


def _error(console: Any, message: str) -> None:
    console.print("[red]error:[/]", end=" ")
    console.print(message, markup=False, highlight=False)


@app.command("lm-eval")
def lm_eval(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="lm_eval --output_path folders (or results_*.json files), run with --log_samples.",
            show_default=False,
        ),
    ],
    store: Annotated[Path, typer.Option("--store", "-s", help="Prediction store directory.")],
    model: Annotated[
        str | None,
        typer.Option(help="Model name in the store (default: the results' model_name)."),
    ] = None,
    task_map: Annotated[
        list[str] | None,
        typer.Option(
            "--task-map",
            help="NAME=TASK:LANG for an lm-eval task outside the known families (repeatable).",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace runs stored with other inputs.")
    ] = False,
) -> None:
    """Import lm-evaluation-harness per-sample results: one run per multiple-choice task.

    Exit status: 0 imported, 2 bad input (nothing written), 1 a write failed.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from xcal.interop.lm_eval import LmEvalImportError, import_lm_eval
    from xcal.store import StoreError

    err = Console(stderr=True, soft_wrap=True)  # paths in messages stay whole
    mapping: dict[str, str] = {}
    for item in task_map or []:
        name, sep, target = item.partition("=")
        task, colon, language = target.partition(":")
        if not sep or not colon or not name or not task or not language:
            err.print(f"[red]error:[/] --task-map expects NAME=TASK:LANG, got {item!r}")
            raise typer.Exit(2)
        mapping[name] = target
    try:
        found = import_lm_eval(results, store, model=model, task_map=mapping, overwrite=overwrite)
    except LmEvalImportError as exc:
        _error(err, f"{exc}\nnothing was written")
        raise typer.Exit(2) from None
    except StoreError as exc:
        _error(err, str(exc))
        raise typer.Exit(1) from None

    console = Console()
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, title=f"lm-eval results into {store}")
    for column in ("lm-eval task", "task", "split", "language", "model", "n", "status"):
        table.add_column(column, justify="right" if column == "n" else "left")
    for run, status in zip(found.runs, found.status, strict=True):
        m = run.manifest
        table.add_row(
            run.lm_eval_task, m.task, m.split, m.language, m.model, str(m.n_examples), status
        )
    console.print(table)
    for skip in found.skipped:
        console.print(f"skipped {skip.lm_eval_task} ({skip.model}): {skip.reason}", markup=False)
    written = found.status.count("written")
    console.print(
        f"{written} written, {len(found.runs) - written} already stored, "
        f"{len(found.skipped)} task(s) skipped"
    )
