"""``xcal analyze``: from a prediction store to tables, figures and DataFrames."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

_METRICS_HELP = (
    "Metrics to compute (repeat or comma-separate): accuracy, exact_match, f1, precision, "
    "recall, ece, ece_mass, debiased_ece, smooth_ece, mce, classwise_ece, brier, nll, aurc, "
    "confidence (precision and recall: bitext mining). Default: all that apply. "
    "ece_mass and aurc are the slowest to bootstrap."
)


# Parentheses, not brackets: rich would read "[default: ...]" as markup and drop it.
_RECORDED = "(default: as recorded in OUT/settings.json, else {})"


def analyze(
    store: Annotated[
        Path,
        typer.Argument(
            help="The prediction store (the directory `xcal infer` wrote).",
            show_default=False,
            metavar="STORE",
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
    metric: Annotated[list[str] | None, typer.Option("--metric", help=_METRICS_HELP)] = None,
    metrics_old: Annotated[
        list[str] | None, typer.Option("--metrics", "-m", hidden=True, help="Old --metric.")
    ] = None,
    n_boot: Annotated[
        int | None,
        typer.Option(
            "--n-boot",
            min=0,
            help="Bootstrap resamples per comparison (0: no intervals). "
            + _RECORDED.format(10_000),
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed of the bootstrap (each cell derives its own). " + _RECORDED.format(0),
            show_default=False,
        ),
    ] = None,
    correction: Annotated[
        str,
        typer.Option(
            "--correction",
            help="Multiple-comparison correction over languages x tasks x perturbations: "
            "holm (family-wise error, step-down), bonferroni (family-wise error, single-step) "
            "or bh (Benjamini-Hochberg false discovery rate).",
            case_sensitive=False,
        ),
    ] = "holm",
    n_bins: Annotated[
        int | None,
        typer.Option(
            "--n-bins",
            min=1,
            help="Bins of ECE, MCE and reliability diagrams. " + _RECORDED.format(15),
            show_default=False,
        ),
    ] = None,
    fit_fraction: Annotated[
        float | None,
        typer.Option(
            "--fit-fraction",
            min=0.01,
            max=0.99,
            help="Share of example ids used to fit temperatures (never evaluated). "
            + _RECORDED.format(0.5),
            show_default=False,
        ),
    ] = None,
    source_language: Annotated[
        str | None,
        typer.Option(
            "--source-language",
            help="The fine-tuning (source) language: temperatures of the zero-shot ts_en "
            "variant are fitted on it (ISO 639-1 or 639-3). " + _RECORDED.format("en"),
            show_default=False,
        ),
    ] = None,
    recalibrate: Annotated[
        bool,
        typer.Option(
            "--recalibrate/--no-recalibrate",
            help="Also report temperature scaling fitted on the source language (zero-shot) "
            "and on each language (upper reference). --no-recalibrate evaluates raw metrics "
            "on every example.",
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
        list[str] | None,
        typer.Option("--task", "-t", help="Only runs of these tasks (repeatable or a,b)."),
    ] = None,
    lang: Annotated[
        list[str] | None,
        typer.Option(
            "--lang",
            "-l",
            help="Only these languages, ISO 639-1 or 639-3 (repeatable or de,fr). Keep the "
            "source language to fit the zero-shot temperatures.",
        ),
    ] = None,
    language_old: Annotated[
        list[str] | None, typer.Option("--language", hidden=True, help="Old --lang.")
    ] = None,
    retrieval_temperature: Annotated[
        float | None,
        typer.Option(
            "--retrieval-temperature",
            min=1e-6,
            help="Temperature of the raw retrieval confidence (softmax over the top-k scores). "
            + _RECORDED.format(1.0),
            show_default=False,
        ),
    ] = None,
    interval_style: Annotated[
        str,
        typer.Option(
            "--interval-style",
            help="How tables print 95% intervals: offsets (est^{+a}_{-b}) or brackets "
            "(est \\[lo, hi]); both exact for skewed intervals.",
            case_sensitive=False,
        ),
    ] = "offsets",
    display_names: Annotated[
        Path | None,
        typer.Option(
            "--display-names",
            # rich reads [word] as markup: the table names are escaped
            help="TOML, JSON or YAML file with \\[tasks], \\[systems], \\[perturbations] and "
            "\\[languages] tables mapping identifiers to the names tables and figures print.",
            show_default=False,
        ),
    ] = None,
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
            "needs `pip install 'xcal\\[dask]'`). Default: $XCAL_JOBS, else the machine's cores "
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
    on_shared_examples: Annotated[
        bool,
        typer.Option(
            "--on-shared-examples",
            help="Compare runs that hold different examples (a truncated run) on the ids they "
            "share, announced in the summary (default: such a cell is an error).",
        ),
    ] = False,
    clusters: Annotated[
        bool,
        typer.Option(
            "--clusters/--no-clusters",
            help="Resample a task's natural clusters as wholes in every interval (XNLI: the "
            "three hypotheses of a premise); --no-clusters resamples examples one by one.",
        ),
    ] = True,
) -> None:
    """Analyse a prediction store: metrics, recalibration, paired tests, tables, figures.

    For every run: the task metric (accuracy; EM and F1 for QA; top-1 accuracy for
    retrieval) and calibration (ECE in equal-width and equal-mass bins, MCE,
    classwise ECE, Brier, NLL, AURC), raw and after temperature scaling fitted on
    the source language. For every model other than --baseline: its paired
    difference to the baseline on the same examples, with a bootstrap interval
    and an adjusted p-value.

    The report folder gets results.csv and results.parquet (one row per number),
    tables/*.tex (booktabs + siunitx, ready to \\input), figures/*.pdf and *.png,
    index.md listing them, and settings.json: the settings that change the numbers,
    which a later analysis into the same folder reuses unless an option overrides
    them. Running again on an unchanged store reuses the cache.

    Examples:

      xcal store ls runs/                       # see the model names

      xcal analyze runs/ --baseline xlmr-base --out reports/main

      xcal analyze runs/ -b xlmr-base -o reports/quick --n-boot 1000 --metric accuracy,ece -t xnli -l de,fr

      xcal analyze runs/ -b xlmr-base --jobs 8                 # 8 local processes

      xcal analyze /shared/runs/ -b xlmr-base --scheduler tcp://head-node:8786

    The same from Python (Jupyter):
    xcal.analyze.analyze_store("runs/", baseline="xlmr-base", out="reports/main").
    """
    from rich.console import Console

    from xcal.analyze.results import METRICS
    from xcal.cli.options import did_you_mean, fail, merge, resolve_filters

    console = Console(stderr=True)
    correction = correction.lower()
    if correction not in CORRECTIONS:
        fail(f"--correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    chosen = merge(metric, metrics_old)
    for name in chosen:
        if name not in METRICS:
            fail(did_you_mean("metric", name, METRICS))
    figures = figures.lower()
    if figures not in ("none", "main", "all"):
        fail(f"--figures must be none, main or all, got {figures!r}")

    from xcal.analyze import analyze_store
    from xcal.analyze.display_names import DisplayNames
    from xcal.analyze.execute import default_jobs
    from xcal.analyze.recorded import read_settings, resolve_settings
    from xcal.analyze.tables import TableOptions
    from xcal.store import StoreError, open_store

    if not store.is_dir():
        fail(f"no prediction store at {str(store)!r} (a directory written by `xcal infer`)", 1)
    try:
        stored = open_store(store).runs()
        filters = resolve_filters(
            {"task": merge(task), "language": merge(lang, language_old)},
            {"task": stored["task"], "language": stored["language"]},
        )
        if baseline not in set(stored["model"]):
            raise ValueError(did_you_mean("baseline model", baseline, stored["model"]))
        given = {
            "retrieval_temperature": retrieval_temperature,
            "n_bins": n_bins,
            "fit_fraction": fit_fraction,
            "source_language": source_language,
            "n_boot": n_boot,
            "seed": seed,
        }
        settings, setting_notes = resolve_settings(given, read_settings(out))
    except (FileNotFoundError, ValueError, StoreError) as error:
        fail(str(error), 1)
    try:
        table_options = TableOptions(
            interval_style=interval_style.lower(),
            names=DisplayNames.from_file(display_names) if display_names else DisplayNames(),
        )
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if not quiet:
        for note in setting_notes:
            console.print(f"[yellow]note:[/] {note}", soft_wrap=True, highlight=False)

    if jobs is None:
        jobs = default_jobs() if _have_dask() else 1
    try:
        result = analyze_store(
            store,
            baseline=baseline,
            out=out,
            metrics=chosen or None,
            n_boot=settings["n_boot"],
            seed=settings["seed"],
            correction=correction,
            n_bins=settings["n_bins"],
            fit_fraction=settings["fit_fraction"],
            recalibrate=recalibrate,
            task_distances=task_distances,
            task_distance_measure=measure,
            filters=filters or None,
            retrieval_temperature=settings["retrieval_temperature"],
            english=source_codes(settings["source_language"], stored["language"]),
            cache=cache,
            progress=None if not quiet else False,
            table_options=table_options,
            shared_examples=on_shared_examples,
            clusters=clusters,
            jobs=jobs,
            scheduler=scheduler,
            figures=figures,
            tables=not no_tables,
        )
    except (FileNotFoundError, ValueError, KeyError, StoreError, ImportError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        fail(str(message), 1)
    except OSError as error:  # a full disk, a read-only or missing report folder
        fail(f"cannot write the report to {out}: {error}", 1)
    if quiet:
        return
    _summary(result, out, console)


#: What --correction accepts (xcal.stats.adjust_pvalues).
CORRECTIONS = ("holm", "bonferroni", "bh")


def source_codes(source: str, stored: Iterable[Any]) -> tuple[str, ...]:
    """Every code that names the source language: its ISO 639-1 and 639-3 codes, and the
    store's own codes for it (Tatoeba's ``eng``, a stored ``en-US``).

    >>> source_codes("eng", ["en", "de"]), source_codes("de", ["deu"])
    (('en', 'eng'), ('de', 'deu'))
    """
    import langcodes

    from xcal.languages import language_key

    key = language_key(source)
    codes = [key]
    try:
        codes.append(langcodes.Language.get(key).to_alpha3())
    except (ValueError, LookupError):
        pass
    codes += [str(c) for c in dict.fromkeys(stored) if language_key(str(c)) == key]
    return tuple(dict.fromkeys(codes))


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
    # Cells compared on a subset change every system's numbers: always listed in full.
    shared = [n for n in result.notes if "(--on-shared-examples)" in n]
    for note in shared:
        console.print(f"[yellow]compared on shared examples:[/] {note}", soft_wrap=True)
    others = [n for n in result.notes if n not in shared]
    for note in others[:10]:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    if len(others) > 10:
        console.print(f"[yellow]note:[/] ... {len(others) - 10} more in {out / 'index.md'}")
    # soft_wrap: a path is never broken over lines (it must stay copy-pastable).
    console.print(f"report: {out / 'index.md'}", soft_wrap=True)
