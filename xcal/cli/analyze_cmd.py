"""``xcal analyze``: from a prediction store to tables, figures and DataFrames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_METRICS_HELP = (
    "Metrics to compute (repeat or comma-separate): accuracy, exact_match, f1, ece, "
    "ece_mass, mce, classwise_ece, brier, nll, aurc, confidence. Default: all that apply. "
    "ece_mass and aurc are the slowest to bootstrap."
)


def analyze(
    store: Annotated[
        Path,
        typer.Argument(
            help="The prediction store (the directory `xcal infer` wrote).", show_default=False
        ),
    ],
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            "-b",
            help="Model name of the baseline system (see `xcal store ls STORE`); every other "
            "model is compared with it on the same examples.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Report folder to write (e.g. reports/NAME)."),
    ] = Path("reports/analysis"),
    metrics: Annotated[
        list[str] | None, typer.Option("--metrics", "-m", help=_METRICS_HELP)
    ] = None,
    n_boot: Annotated[
        int,
        typer.Option(
            "--n-boot", min=0, help="Bootstrap resamples per comparison (0: no intervals)."
        ),
    ] = 10_000,
    seed: Annotated[
        int, typer.Option(help="Seed of the bootstrap (each cell derives its own).")
    ] = 0,
    correction: Annotated[
        str,
        typer.Option(
            help="Multiple-comparison correction over languages x tasks x perturbations: "
            "holm (family-wise error) or bh (false discovery rate).",
            case_sensitive=False,
        ),
    ] = "holm",
    n_bins: Annotated[
        int, typer.Option("--n-bins", min=1, help="Bins of ECE, MCE and reliability diagrams.")
    ] = 15,
    fit_fraction: Annotated[
        float,
        typer.Option(
            "--fit-fraction",
            min=0.01,
            max=0.99,
            help="Share of example ids used to fit temperatures (never evaluated).",
        ),
    ] = 0.5,
    recalibrate: Annotated[
        bool,
        typer.Option(
            "--recalibrate/--no-recalibrate",
            help="Also report temperature scaling fitted on English (zero-shot) and on each "
            "language (upper reference). --no-recalibrate evaluates raw metrics on every example.",
        ),
    ] = True,
    task_distances: Annotated[
        Path | None,
        typer.Option(
            "--task-distances",
            help="CSV of task distances (task_a, task_b, measure, distance; e.g. from "
            "`xcal transfer task-distance --out`) for the gain-vs-distance table and figure.",
            show_default=False,
        ),
    ] = None,
    measure: Annotated[
        str, typer.Option("--measure", help="Which task-distance measure to use.")
    ] = "textemb",
    task: Annotated[
        list[str] | None, typer.Option(help="Only runs of this task (repeatable).")
    ] = None,
    language: Annotated[
        list[str] | None,
        typer.Option("--language", "--lang", help="Only this language (repeatable)."),
    ] = None,
    retrieval_temperature: Annotated[
        float,
        typer.Option(
            "--retrieval-temperature",
            min=1e-6,
            help="Temperature of the raw retrieval confidence (softmax over the top-k scores).",
        ),
    ] = 1.0,
    cache: Annotated[
        bool,
        typer.Option("--cache/--no-cache", help="Reuse results of unchanged runs (OUT/.cache)."),
    ] = True,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            envvar="XCAL_JOBS",
            help="Cells computed at once in local worker processes (a Dask LocalCluster; "
            "needs `pip install 'xcal[dask]'`). Default: $XCAL_JOBS, else the machine's cores "
            "(1 without Dask). Results are identical whatever the number.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Compute the cells on a Dask cluster: the scheduler's address "
            "(e.g. tcp://head-node:8786). Its workers must see STORE at the same path.",
            show_default=False,
        ),
    ] = None,
    figures: Annotated[
        str,
        typer.Option(
            "--figures",
            help="Figures to draw: main (bounded in size whatever the grid: reliability pooled "
            "by resource class, forest plot, heatmaps, severity curves), all (also the "
            "per-language appendix in pages), or none.",
            case_sensitive=False,
        ),
    ] = "main",
    no_tables: Annotated[
        bool, typer.Option("--no-tables", help="Do not write the LaTeX tables.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")
    ] = False,
) -> None:
    """Analyse a prediction store: metrics, recalibration, paired tests, tables, figures.

    For every run: the task metric (accuracy; EM and F1 for QA; top-1 accuracy for
    retrieval) and calibration (ECE in equal-width and equal-mass bins, MCE,
    classwise ECE, Brier, NLL, AURC), raw and after temperature scaling fitted on
    English. For every model other than --baseline: its paired difference to the
    baseline on the same examples, with a bootstrap interval and an adjusted p-value.

    The report folder gets results.csv and results.parquet (one row per number),
    tables/*.tex (booktabs + siunitx, ready to \\input), figures/*.pdf and *.png,
    and index.md listing them. Running again on an unchanged store reuses the cache.

    Examples:

      xcal store ls runs/                       # see the model names

      xcal analyze runs/ --baseline xlmr-base --out reports/main

      xcal analyze runs/ -b xlmr-base -o reports/quick --n-boot 1000 -m accuracy,ece --task xnli

      xcal analyze runs/ -b xlmr-base --jobs 8                 # 8 local processes

      xcal analyze /shared/runs/ -b xlmr-base --scheduler tcp://head-node:8786

    The same from Python (Jupyter):
    xcal.analyze.analyze_store("runs/", baseline="xlmr-base", out="reports/main").
    """
    from rich.console import Console

    console = Console(stderr=True)
    correction = correction.lower()
    if correction not in ("holm", "bh", "bonferroni"):
        console.print(f"[red]error:[/] --correction must be holm or bh, got {correction!r}")
        raise typer.Exit(2)
    figures = figures.lower()
    if figures not in ("none", "main", "all"):
        console.print(f"[red]error:[/] --figures must be none, main or all, got {figures!r}")
        raise typer.Exit(2)
    chosen = [m.strip() for value in (metrics or []) for m in value.split(",") if m.strip()]
    filters: dict[str, list[str]] = {}
    if task:
        filters["task"] = list(task)
    if language:
        filters["language"] = list(language)

    from xcal.analyze import analyze_store
    from xcal.analyze.execute import default_jobs
    from xcal.store import StoreError

    if jobs is None:
        jobs = default_jobs() if _have_dask() else 1

    try:
        result = analyze_store(
            store,
            baseline=baseline,
            out=out,
            metrics=chosen or None,
            n_boot=n_boot,
            seed=seed,
            correction=correction,
            n_bins=n_bins,
            fit_fraction=fit_fraction,
            recalibrate=recalibrate,
            task_distances=task_distances,
            task_distance_measure=measure,
            filters=filters or None,
            retrieval_temperature=retrieval_temperature,
            cache=cache,
            progress=None if not quiet else False,
            jobs=jobs,
            scheduler=scheduler,
            figures=figures,
            tables=not no_tables,
        )
    except (FileNotFoundError, ValueError, KeyError, StoreError, ImportError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        console.print(f"[red]error:[/] {message}", soft_wrap=True)
        raise typer.Exit(1) from None
    if quiet:
        return
    _summary(result, out, console)


def _have_dask() -> bool:
    import importlib.util

    return importlib.util.find_spec("distributed") is not None


def _summary(result: object, out: Path, console: object) -> None:
    """A few lines: what was analysed, the headline differences, where the report is."""
    from rich.console import Console
    from rich.table import Table

    from xcal.analyze import AnalysisResult
    from xcal.analyze.results import metric_info

    assert isinstance(result, AnalysisResult) and isinstance(console, Console)
    r = result.results
    console.print(
        f"analysed {len(result.runs)} runs in {result.cells_computed + result.cells_cached} cells "
        f"({result.cells_cached} from the cache)"
    )
    diffs = r[
        (r["comparison"] == "difference") & (r["variant"] == "raw") & (r["perturbation"] == "none")
    ]
    if not diffs.empty:
        table = Table(
            title=f"clean runs, vs {result.options.baseline} (raw probabilities)", show_edge=False
        )
        for column in ("system", "task", "metric", "mean Δ", "significant (better / worse)"):
            table.add_column(column)
        for (system, task, metric), part in diffs.groupby(["system", "task", "metric"], sort=True):
            if metric not in ("accuracy", "f1", "ece", "nll"):
                continue
            info = metric_info(str(metric))
            significant = part[part["p_adjusted"] < 0.05]
            better = int(((significant["estimate"] > 0) == info.higher_is_better).sum())
            scale = 100.0 if info.percent else 1.0
            table.add_row(
                str(system),
                str(task),
                info.label,
                f"{part['estimate'].mean() * scale:+.2f}{' pts' if info.percent else ''}",
                f"{better} / {len(significant) - better} of {len(part)} languages",
            )
        console.print(table)
    for note in result.notes[:10]:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    if len(result.notes) > 10:
        console.print(f"[yellow]note:[/] ... {len(result.notes) - 10} more in {out / 'index.md'}")
    # soft_wrap: a path is never broken over lines (it must stay copy-pastable).
    console.print(f"report: {out / 'index.md'}", soft_wrap=True)
