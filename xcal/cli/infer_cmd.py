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


def _split_csv(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


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
    languages: Annotated[
        list[str] | None,
        typer.Option(
            "--languages", "-l", help="Languages, e.g. de,fr (default: all in the data dir)."
        ),
    ] = None,
    perturbations: Annotated[
        list[str] | None,
        typer.Option(
            "--perturbations",
            "-p",
            help="name:severity[:seed=S],... e.g. none,word_shuffle:0.25 (default: none).",
        ),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Perturbation seeds, e.g. 0,1,2 (each perturbation x seed).")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Data split (default: each task's evaluation split).")
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", "-s", help="Prediction store directory.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            "--data",
            help="XTREME data directory (default: $XCAL_DATA_DIR or ../shared/data/xtreme), "
            "or hf:PATH, a Hugging Face `datasets` data set on disk (xnli, pawsx, QA, xcopa).",
        ),
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
        int | None, typer.Option(help="Padded tokens per batch (bounds memory). Default 16384.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N examples of every cell.")
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
        if languages:
            data["languages"] = _split_csv(languages)
        if perturbations:
            data["perturbations"] = _split_csv(perturbations)
        if seeds:
            try:
                data["seeds"] = [int(s) for s in _split_csv([seeds])]
            except ValueError:
                fail(f"--seeds must be integers separated by commas, got {seeds!r}")
        if split:
            data["split"] = split
        defaults: dict[str, Any] = {}
        if max_length is not None:
            defaults["max_length"] = max_length
        if scoring is not None:
            defaults["scoring"] = scoring
        if allow_new_head:
            defaults["allow_new_head"] = True
        if trust_remote_code:
            defaults["trust_remote_code"] = True
        # Flags on the command line beat a model table's own value.
        parsed = grid_from_dict(data, str(config or "command line"), model_defaults={})
        if defaults:
            import dataclasses

            models = tuple(dataclasses.replace(m, **defaults) for m in parsed.grid.models)
            parsed.grid = dataclasses.replace(parsed.grid, models=models)
        settings = parsed.settings
        store_path = store or settings.get("store")
        if store_path is None:
            fail("no store: pass --store DIR (or set store in the config file)")
        qa_settings = settings.get("qa") or {}
        if not isinstance(qa_settings, dict):
            fail("config 'qa' must be a table of QA settings")
        options = RunOptions(
            batch_tokens=batch_tokens or settings.get("batch_tokens", 16384),
            device=device or settings.get("device", "auto"),
            dtype=dtype or settings.get("dtype", "auto"),
            limit=limit if limit is not None else settings.get("limit"),
            top_k=top_k or settings.get("top_k", 10),
            qa=QASettings(**qa_settings),
            overwrite=overwrite or bool(settings.get("overwrite", False)),
            threads=threads if threads is not None else settings.get("threads"),
        )
        shard_pair = resolve_shard(shard)
        root = data_dir or settings.get("data_dir")
    except (GridError, ModelSpecError, TypeError, ValueError) as exc:
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
