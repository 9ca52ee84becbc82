"""``xcal store``: inspect, validate and compare prediction stores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xcal.cli.options import CONTEXT_SETTINGS, fail, merge, resolve_filters, split_csv

app = typer.Typer(
    help="Inspect, validate and compare prediction stores.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)

PathArg = Annotated[
    Path,
    typer.Argument(help="The store directory.", show_default=False, metavar="STORE"),
]


@app.command("ls")
def ls(
    path: PathArg,
    task: Annotated[
        list[str] | None,
        typer.Option("--task", "-t", help="Only runs of these tasks (repeatable or a,b)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Only runs of these models (repeatable or a,b)."),
    ] = None,
    lang: Annotated[
        list[str] | None,
        typer.Option(
            "--lang", "-l", help="Only these languages, ISO 639-1 or 639-3 (repeatable or de,fr)."
        ),
    ] = None,
    language: Annotated[list[str] | None, typer.Option("--language", hidden=True)] = None,
) -> None:
    """List the runs in a store as a table.

    A filter value the store does not hold is an error that lists what it holds.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from xcal.store import open_store

    console = Console()
    err = Console(stderr=True)
    if not path.is_dir():
        err.print(f"[red]error:[/] store directory {str(path)!r} does not exist")
        raise typer.Exit(1)
    scan = open_store(path).scan()
    wanted = {"task": merge(task), "model": merge(model), "language": merge(lang, language)}
    available = {name: [getattr(r.manifest, name) for r in scan.runs] for name in wanted}
    try:
        chosen = resolve_filters(wanted, available)
    except ValueError as exc:
        fail(str(exc), 1)
    runs = [
        r
        for r in scan.runs
        if all(getattr(r.manifest, name) in values for name, values in chosen.items())
    ]
    if not runs and chosen:
        asked = ", ".join(f"{k} {', '.join(v)}" for k, v in chosen.items())
        fail(f"no run in {path} has {asked} together", 1)
    runs.sort(
        key=lambda r: (
            r.manifest.task,
            r.manifest.split,
            r.manifest.model,
            r.manifest.language,
            r.manifest.perturbation,
            r.manifest.severity,
        )
    )
    table = Table(
        title=f"{len(runs)} run(s) in {path} (created_at in UTC)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for name in ("task", "split", "model", "lang", "perturbation", "severity", "n", "created_at"):
        # Only the model wraps (folded, not cut: a cut name or path would be ambiguous).
        table.add_column(
            name,
            justify="right" if name in ("severity", "n") else "left",
            overflow="fold",
            no_wrap=name != "model",
            min_width={"created_at": 16, "perturbation": 12}.get(name),
        )
    for r in runs:
        m = r.manifest
        table.add_row(
            m.task,
            m.split,
            m.model,
            m.language,
            m.perturbation,
            f"{m.severity:g}",
            str(m.n_examples),
            m.created_at[:16].replace("T", " "),
        )
    console.print(table)
    if scan.problems:
        err.print(
            f"[yellow]warning:[/] {len(scan.problems)} file(s) could not be read; "
            f"run `xcal store validate {path}`"
        )


@app.command("validate")
def validate(
    path: PathArg,
    fix: Annotated[
        bool, typer.Option("--fix", help="Remove temporary files left by interrupted writes.")
    ] = False,
    n_classes: Annotated[
        list[str] | None,
        typer.Option(
            "--n-classes",
            help="TASK=C: the number of classes (or choices) task TASK must have "
            "(repeatable or a,b; overrides the registered task's).",
        ),
    ] = None,
) -> None:
    """Check every run in a store; list every problem, exit 1 if any is an error.

    Runs of a registered task are also checked against its number of classes.
    """
    from rich.console import Console
    from rich.markup import escape

    from xcal.store import open_store

    console = Console()
    expected = _registered_n_classes()
    for item in split_csv(n_classes):
        task, sep, value = item.partition("=")
        if not sep or not task or not value.isdigit():
            console.print(f"[red]error:[/] --n-classes expects TASK=C, got {item!r}")
            raise typer.Exit(2)
        expected[task] = int(value)
    store = open_store(path)
    problems = store.validate(expected_n_classes=expected, fix=fix)
    errors = [p for p in problems if p.level == "error"]
    for p in problems:
        colour = "red" if p.level == "error" else "yellow"
        console.print(f"[{colour}]{p.level}:[/] {escape(str(p))}", soft_wrap=True)
    n_runs = len(store.scan().runs) if path.is_dir() else 0
    summary = f"{n_runs} run file(s) checked, {len(errors)} error(s), {len(problems) - len(errors)} warning(s)"
    console.print(("[red]" if errors else "[green]") + summary)
    if errors:
        raise typer.Exit(1)


@app.command("diff")
def diff(
    a: Annotated[Path, typer.Argument(help="One store directory.", show_default=False)],
    b: Annotated[Path, typer.Argument(help="The other store directory.", show_default=False)],
) -> None:
    """Compare two stores run by run; exit 0 only if every prediction is identical.

    Exit 1 when predictions differ, 2 when a run file cannot be read (named).

    Runs pair up by run id (model label and cell), so the same experiment run
    in two folders can be checked for determinism. Floats must match bit for
    bit. Input fingerprints may differ (they include the checkpoint's path).
    """
    from rich.console import Console

    from xcal.store import StoreError, open_store
    from xcal.store.diff import diff_stores
    from xcal.store.store import describe

    console = Console()
    for path in (a, b):
        if not path.is_dir():
            console.print(f"[red]error:[/] store directory {str(path)!r} does not exist")
            raise typer.Exit(1)
    store_a, store_b = open_store(a), open_store(b)
    try:
        result = diff_stores(store_a, store_b)
    except StoreError as exc:  # an unreadable or invalid run file: name it, no traceback
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    for run_id in result.only_in_a:
        console.print(f"only in {a}: {describe(store_a.manifest(run_id))} ({run_id})")
    for run_id in result.only_in_b:
        console.print(f"only in {b}: {describe(store_b.manifest(run_id))} ({run_id})")
    for run_id, columns in result.different.items():
        console.print(
            f"[red]different:[/] {describe(store_a.manifest(run_id))} ({run_id}): "
            + ", ".join(columns)
        )
    summary = (
        f"{len(result.identical)} run(s) identical, {len(result.different)} different, "
        f"{len(result.only_in_a)} only in {a}, {len(result.only_in_b)} only in {b}"
    )
    if result.other_fingerprint:
        summary += (
            f"; {len(result.other_fingerprint)} identical run(s) have other input fingerprints"
        )
    console.print(("[green]" if result.same_predictions else "[red]") + summary)
    if not result.same_predictions:
        raise typer.Exit(1)


def _registered_n_classes() -> dict[str, int]:
    """Label-space sizes of the registered classification and multiple-choice tasks."""
    from xcal.tasks import get_task, task_names

    sizes = {}
    for name in task_names():
        size = get_task(name).n_classes
        if size:
            sizes[name] = int(size)
    return sizes
