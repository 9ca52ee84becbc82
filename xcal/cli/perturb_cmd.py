"""``xcal perturb``: show what a perturbation does to real examples, side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def _parse_params(raw: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse as JSON (5, 0.5, true), else str."""
    params: dict[str, Any] = {}
    for item in raw or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--param")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def perturb(
    task: Annotated[
        str | None,
        typer.Option("--task", "-t", help="Task name (xnli, pawsx, xquad, tatoeba, ...)."),
    ] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", "-l", help="Language, ISO 639-1 or 639-3.")
    ] = None,
    language_old: Annotated[
        str | None, typer.Option("--language", hidden=True, help="Old --lang.")
    ] = None,
    pert_name: Annotated[
        str | None,
        typer.Option("--perturbation", "-p", help="Perturbation name (see --list)."),
    ] = None,
    name_old: Annotated[
        str | None, typer.Option("--name", hidden=True, help="Old --perturbation.")
    ] = None,
    severity: Annotated[
        float, typer.Option("--severity", min=0.0, max=1.0, help="Severity in [0, 1].")
    ] = 0.5,
    n: Annotated[int, typer.Option("--n", min=1, help="Number of examples to show.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Perturbation seed.")] = 0,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="XTREME data directory (default: $XCAL_DATA_DIR or ../shared/data/xtreme).",
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="Split (default: the task's).")
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="Fields to perturb (repeatable or a,b; default: the task's)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="Perturbation parameter key=value (repeatable), e.g. window=5."),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the perturbations and exit.")] = False,
) -> None:
    """Print original and perturbed examples side by side."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from xcal.perturb import apply_to_examples, get_perturbation, perturbation_names

    console = Console()
    err = Console(stderr=True)
    if list_:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False)
        for col in ("name", "kind", "severity = ", "parameters"):
            table.add_column(col)
        for pname in perturbation_names():
            p = get_perturbation(pname)
            table.add_row(pname, p.kind, p.severity_meaning, json.dumps(p.params))
        console.print(table)
        return
    lang = lang or language_old
    name = pert_name or name_old
    missing = [
        opt for opt, v in (("--task", task), ("--lang", lang), ("--perturbation", name)) if not v
    ]
    if missing:
        err.print(f"[red]error:[/] missing option(s) {', '.join(missing)} (or use --list)")
        raise typer.Exit(2)
    assert task is not None and lang is not None and name is not None

    from xcal.paths import data_dir as resolve_data_dir
    from xcal.perturb import manifest_fields
    from xcal.tasks import get_task

    try:
        perturbation = get_perturbation(name, **_parse_params(param))
        task_obj = get_task(task)
        root = resolve_data_dir(data_dir)
        (lang,) = task_obj.resolve_languages(root, [lang], split)
        examples = task_obj.load(root, lang, split)[:n]
        from xcal.cli.options import split_csv

        fields = tuple(split_csv(field)) or tuple(task_obj.text_fields)
        result = apply_to_examples(examples, perturbation, severity, seed, fields, language=lang)
        manifest = manifest_fields(
            perturbation, language=lang, severity=severity, seed=seed, fields=fields
        )
    except (KeyError, ValueError, TypeError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        err.print(f"[red]error:[/] {message}", highlight=False)
        raise typer.Exit(1) from None

    console.print(
        f"[bold]{perturbation.name}[/] ({perturbation.kind}) at severity {severity:g}: "
        f"{perturbation.severity_meaning}",
        highlight=False,
    )
    console.print(f"params: {json.dumps(manifest['perturbation_params'], ensure_ascii=False)}")
    table = Table(box=box.SIMPLE_HEAD, show_lines=True, expand=True)
    table.add_column("id", no_wrap=True, style="dim")
    table.add_column("field", no_wrap=True)
    table.add_column("original", ratio=1, overflow="fold")
    table.add_column("perturbed (changes highlighted)", ratio=1, overflow="fold")
    perturbed = {ex.example_id: ex for ex in result.examples}
    for ex in examples:
        new = perturbed.get(ex.example_id)
        for fname in fields:
            before = getattr(ex, fname)
            if new is None:
                table.add_row(ex.example_id, fname, _as_text(before), "[red]dropped[/]")
                continue
            after = getattr(new, fname)
            table.add_row(ex.example_id, fname, _as_text(before), _diff(before, after))
    console.print(table)
    if result.n_dropped:
        console.print(
            f"[yellow]{result.n_dropped} example(s) dropped:[/] a gold answer could not be kept"
        )


def _as_text(value: Any) -> str:
    from rich.markup import escape

    if isinstance(value, str):
        return escape(value)
    return escape(" | ".join(map(str, value)))


def _diff(before: Any, after: Any) -> Any:
    """The perturbed text with inserted or replaced characters highlighted."""
    from difflib import SequenceMatcher

    from rich.text import Text

    if not isinstance(before, str) or not isinstance(after, str):
        before, after = " | ".join(map(str, before)), " | ".join(map(str, after))
    text = Text()
    matcher = SequenceMatcher(None, before, after, autojunk=False)
    for op, _, _, j1, j2 in matcher.get_opcodes():
        text.append(after[j1:j2], style=None if op == "equal" else "bold yellow")
    return text
