"""``xcal infer``: run models over tasks, languages and perturbations into a store.

Parses options (and a grid config file), calls :func:`xcal.infer.run_grid`,
prints a progress bar per run and a summary table. Exit status: 0 when every
cell is written or already stored, 1 when some cell failed, 2 for bad input
(reported before any model is loaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from xcal.cli.options import merge
from xcal.cli.options import split_csv as _split_csv


def _batch_tokens(flag: str | None) -> int | str | None:
    """``--batch-tokens`` as the schema types it: ``auto``, a number, or the text as given."""
    if flag is None or flag.strip().lower() == "auto":
        return None if flag is None else "auto"
    try:
        return int(flag)
    except ValueError:
        return flag  # the schema names the option and what it expects


def infer(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Hub id, checkpoint directory or bundled:multilingual-e5-small (repeatable).",
        ),
    ] = None,
    task: Annotated[
        list[str] | None,
        typer.Option("--task", "-t", help="Task name, e.g. xnli, tatoeba (repeatable or a,b)."),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="The model's name in the store, one per --model in order (repeatable or a,b; "
            "default: the model name as given).",
        ),
    ] = None,
    lang: Annotated[
        list[str] | None,
        typer.Option(
            "--lang",
            "-l",
            help="Languages, ISO 639-1 or 639-3, e.g. de,fr; replaces the languages of every "
            "task, a config file's task tables included (default: all in the data dir).",
        ),
    ] = None,
    languages_old: Annotated[
        list[str] | None, typer.Option("--languages", hidden=True, help="Old --lang.")
    ] = None,
    perturbation: Annotated[
        list[str] | None,
        typer.Option(
            "--perturbation",
            "-p",
            help="name:severity[:seed=S],... e.g. none,word_shuffle:0.25 (default: none).",
        ),
    ] = None,
    perturbations_old: Annotated[
        list[str] | None, typer.Option("--perturbations", hidden=True, help="Old --perturbation.")
    ] = None,
    seed: Annotated[
        list[str] | None,
        typer.Option("--seed", help="Perturbation seeds, e.g. 0,1,2 (each perturbation x seed)."),
    ] = None,
    seeds_old: Annotated[
        list[str] | None, typer.Option("--seeds", hidden=True, help="Old --seed.")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="Data split for every task, a config file's task tables included "
            "(default: each task's evaluation split).",
        ),
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", "-s", help="Prediction store directory.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="XTREME data directory (default: $XCAL_DATA_DIR or ../shared/data/xtreme), "
            "or hf:PATH, a Hugging Face `datasets` data set on disk (xnli, pawsx, QA, xcopa).",
        ),
    ] = None,
    data_old: Annotated[
        Path | None, typer.Option("--data", hidden=True, help="Old --data-dir.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Grid config file (.toml or .yaml); options override it."
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="Run the i-th of N blocks of the grid, i/N with 0 <= i < N. Default in a "
            "Slurm job array: SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT.",
            show_default=False,
        ),
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto (float32), fp32, bf16 or fp16 (fp16 needs a GPU).")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps.")
    ] = None,
    batch_tokens: Annotated[
        str | None,
        typer.Option(
            help="Padded tokens per batch (bounds memory), or auto (sized from free GPU memory; "
            "16384 on a CPU). Default 16384."
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            help="Only the first N examples of every cell, stored as the example range "
            "SPLIT[0:N] (a later full run is another run, not a conflict).",
        ),
    ] = None,
    top_k: Annotated[
        int | None, typer.Option(help="Retrieval candidates stored per query. Default 10.")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Token limit (default: the model's).")
    ] = None,
    scoring: Annotated[
        str | None,
        typer.Option(help="auto, head or lm (option log-likelihood under a causal LM)."),
    ] = None,
    allow_new_head: Annotated[
        bool,
        typer.Option(
            "--allow-new-head",
            help="Score with a randomly initialised head if the checkpoint has none (smoke tests).",
        ),
    ] = False,
    trust_remote_code: Annotated[
        bool,
        typer.Option("--trust-remote-code", help="Allow a checkpoint's own Python code to run."),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace stored runs whose inputs changed (else an error)."
        ),
    ] = False,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch (default: torch's choice).")
    ] = None,
    share_layers: Annotated[
        bool,
        typer.Option(
            "--share-layers",
            help="Compute bottom layers that models share bit for bit once per batch "
            "(systems fine-tuned from one frozen encoder; same outputs, less work).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run models over a grid of tasks x languages x perturbations into a prediction store.

    Cells already stored with the same input fingerprint are skipped, so a
    killed job is simply restarted; --shard i/N splits the grid between N jobs
    (in a Slurm job array each task takes its own block without --shard).
    """
    from rich.console import Console

    from xcal.infer import (
        GridError,
        InferInputError,
        ModelSpecError,
        QASettings,
        RunOptions,
        grid_from_dict,
        read_config,
        resolve_shard,
        run_grid,
        summarize,
    )
    from xcal.infer.progress import RichReporter, summary_table
    from xcal.settings import ModelTable, RunOptionsTable, SettingsError, validate
    from xcal.tasks.bounds import MAX_TEXT_CHARS

    err = Console(stderr=True)

    def fail(message: str) -> NoReturn:
        err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)

    try:
        data: dict[str, Any] = dict(read_config(config)) if config is not None else {}
        # Command-line options override the config file's values.
        if model:
            data.pop("model", None)
            data["models"] = _split_csv(model)
        if task:
            data.pop("task", None)
            data["tasks"] = _split_csv(task)
        languages = merge(lang, languages_old)
        if languages:
            data["languages"] = languages
        perturbations = merge(perturbation, perturbations_old)
        if perturbations:
            data["perturbations"] = perturbations
        seeds = merge(seed, seeds_old)
        if seeds:
            try:
                data["seeds"] = [int(s) for s in seeds]
            except ValueError:
                fail(f"--seed must be integers separated by commas, got {','.join(seeds)!r}")
        if split:
            data["split"] = split
        # Options are checked against the same typed schema as the config file.
        cli_options = {
            "batch_tokens": _batch_tokens(batch_tokens), "device": device, "dtype": dtype, "limit": limit,
            "top_k": top_k, "threads": threads,
        }  # fmt: skip
        cli_options = {k: v for k, v in cli_options.items() if v is not None}
        validate(RunOptionsTable, cli_options, "command line", cli=True)
        defaults: dict[str, Any] = {}
        if max_length is not None:
            defaults["max_length"] = max_length
        if scoring is not None:
            defaults["scoring"] = scoring
        validate(ModelTable, {"name": "-", **defaults}, "command line", cli=True)
        if allow_new_head:
            defaults["allow_new_head"] = True
        if trust_remote_code:
            defaults["trust_remote_code"] = True
        # Flags on the command line beat a model table's own value.
        parsed = grid_from_dict(data, str(config or "command line"), model_defaults={})
        settings = parsed.settings
        parsed.grid = override_grid(
            parsed.grid,
            defaults=defaults,
            labels=[x.strip() for v in label or [] for x in v.split(",")],
            languages=languages,
            split=split,
            limit=limit if limit is not None else settings.get("limit"),
        )
        store_path = store or settings.get("store")
        if store_path is None:
            fail("no store: pass --store DIR (or set store in the config file)")
        run_keys = ("batch_tokens", "device", "dtype", "top_k", "threads")
        run_settings = {k: settings[k] for k in run_keys if settings.get(k) is not None}
        cli_options.pop("limit", None)  # now the tasks' example ranges (override_grid)
        options = RunOptions(
            **{**run_settings, **cli_options},
            qa=QASettings(**(settings.get("qa") or {})),
            overwrite=overwrite or settings.get("overwrite") is True,
            share_layers=share_layers or settings.get("share_layers") is True,
        )
        shard_pair = resolve_shard(shard)
        root = data_dir or data_old or settings.get("data_dir")
    except (GridError, ModelSpecError, SettingsError, TypeError, ValueError) as exc:
        fail(str(exc))
        return

    try:
        if quiet:
            results = run_grid(
                parsed.grid, Path(store_path), data_dir=root, options=options, shard=shard_pair
            )
        else:
            with RichReporter(err) as reporter:
                results = run_grid(
                    parsed.grid,
                    Path(store_path),
                    data_dir=root,
                    options=options,
                    shard=shard_pair,
                    reporter=reporter,
                )
    except InferInputError as exc:
        fail(str(exc))
        return
    except FileNotFoundError as exc:  # the data directory itself
        fail(str(exc))
        return

    counts = summarize(results)
    if not quiet and results:
        Console().print(summary_table(results))
    typer.echo(
        f"{counts['written']} written, {counts['skipped']} already stored, "
        f"{counts['failed']} failed ({len(results)} cells"
        + (f", shard {shard_pair[0]}/{shard_pair[1]}" if shard_pair[1] > 1 else "")
        + ")"
        + (
            f"; {counts['cut']} input(s) over {MAX_TEXT_CHARS} characters cut before tokenising"
            if counts["cut"]
            else ""
        )
    )
    if counts["failed"]:
        for r in results:
            if r.status == "failed":
                err.print(
                    f"[red]failed:[/red] {r.cell.describe()}: {r.error}",
                    highlight=False,
                    soft_wrap=True,
                )
        raise typer.Exit(1)


def override_grid(
    grid: Any,
    *,
    defaults: dict[str, Any],
    labels: list[str],
    languages: list[str],
    split: str | None,
    limit: int | None,
) -> Any:
    """The grid with the command line's model flags, labels, languages, split and limit.

    Options beat a grid file everywhere, its ``[[task]]`` tables included.
    ``--limit N`` becomes the example range ``0:N`` of every task (within a
    range the task already has), so the run is stored under ``SPLIT[0:N]``,
    exactly like ``examples = "0:N"``, and a later full run is another run.
    """
    import dataclasses

    from xcal.infer import GridError

    models = list(grid.models)
    if defaults:
        models = [dataclasses.replace(m, **defaults) for m in models]
    if labels:
        if len(labels) != len(models) or not all(labels):
            raise GridError(
                f"--label gives {len(labels)} name(s) for {len(models)} model(s); give one "
                "non-empty label per model, in the order of --model"
            )
        models = [dataclasses.replace(m, label=x) for m, x in zip(models, labels, strict=True)]
    tasks = list(grid.tasks)
    if languages:
        tasks = [dataclasses.replace(t, languages=tuple(languages)) for t in tasks]
    if split:
        tasks = [dataclasses.replace(t, split=split) for t in tasks]
    if limit is not None:
        tasks = [t.limited(limit) for t in tasks]
    return dataclasses.replace(grid, models=tuple(models), tasks=tuple(tasks))
