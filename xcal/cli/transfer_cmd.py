"""``xcal transfer``: transfer gains, task distance, language distance, task selection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xcal.cli.options import CONTEXT_SETTINGS, merge, split_csv

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(
    help="Transfer analysis: gains over a baseline, task and language distances, task selection.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)

OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Also write the table to this CSV file.")
]

XTREME_LANGUAGES = (
    "af ar bg bn de el es et eu fa fi fr he hi hu id it ja jv ka kk ko ml mr ms my nl pt "
    "ru sw ta te th tl tr ur vi yo zh"
).split()


@contextmanager
def _errors() -> Iterator[None]:
    """Known input errors become one red line and exit code 1, not a traceback."""
    from rich.console import Console

    try:
        yield
    except (ValueError, KeyError, LookupError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/] {message}", highlight=False)
        raise typer.Exit(1) from None


def _from_analysis(path: Path) -> bool:
    import pandas as pd

    from xcal.transfer.gains import is_analysis_results

    return path.is_file() and is_analysis_results(pd.read_csv(path, comment="#", nrows=0).columns)


def _note_dropped(tasks: list[str], why: str) -> None:
    from rich.console import Console

    if tasks:
        Console(stderr=True, soft_wrap=True).print(
            f"note: task(s) {', '.join(tasks)} left out ({why})", highlight=False
        )


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    from xcal.atomic import atomic_write_text

    atomic_write_text(path, frame.to_csv(index=False))


def _show(frame: pd.DataFrame, title: str, out: Path | None, digits: int = 4) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False)
    for column in frame.columns:
        numeric = frame[column].dtype.kind in "fiu"
        table.add_column(str(column), justify="right" if numeric else "left", no_wrap=True)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append("nan" if value != value else f"{value:.{digits}g}")
            else:
                cells.append(str(value))
        rows.append(cells)
        table.add_row(*cells)
    # Wide enough that no cell is cut: a cut task or system name would be ambiguous.
    widths = [max([len(str(c)), *(len(r[i]) for r in rows)]) for i, c in enumerate(frame.columns)]
    Console(width=max(Console().width, sum(widths) + 4 * len(widths) + 4)).print(table)
    if out is not None:
        _write_csv(frame, out)
        Console(stderr=True).print(f"wrote {out}", highlight=False)


@app.command("gains")
def gains(
    table: Annotated[
        Path,
        typer.Argument(
            help="Results CSV: system,task,language,metric,value ('#' comments), or the "
            "results.csv of `xcal analyze` (raw probabilities, clean inputs)."
        ),
    ],
    baseline: Annotated[str, typer.Option("--baseline", "-b", help="The baseline system.")],
    system: Annotated[
        list[str] | None,
        typer.Option("--system", help="Compare only these systems (repeatable or a,b)."),
    ] = None,
    lower_is_better: Annotated[
        list[str] | None,
        typer.Option(
            "--lower-is-better",
            help="Metrics where lower is better (repeatable or a,b; default: ECE, NLL...).",
        ),
    ] = None,
    out: OutOption = None,
) -> None:
    """Gain of each system over the baseline per task, language and metric.

    Example: xcal transfer gains data/xtreme_xstilts_mt5_table2.csv --baseline XLM-R
    """
    from xcal.transfer.gains import gains_from_table, read_results_table

    system = split_csv(system) or None
    lower_is_better = split_csv(lower_is_better) if lower_is_better else None
    with _errors():
        scores = read_results_table(table)
        from xcal.registry import did_you_mean

        for name in [baseline, *(system or [])]:
            if name not in set(scores["system"]):
                raise ValueError(did_you_mean("system", name, scores["system"]) + f" (in {table})")
        if _from_analysis(table):
            # An analysis holds tasks the baseline did not run (e.g. a retriever on
            # Tatoeba): compare on the tasks it did.
            ran = set(scores.loc[scores["system"] == baseline, "task"])
            _note_dropped(sorted(set(scores["task"]) - ran), f"no {baseline!r} runs")
            if ran:
                scores = scores[scores["task"].isin(ran)]
            if lower_is_better is None:
                # The analysis says which way each of its metrics is better.
                lower = ~scores["higher_is_better"].astype(str).str.lower().isin(["true", "1"])
                lower_is_better = sorted(set(scores.loc[lower, "metric"]))
        frame = gains_from_table(
            scores,
            baseline=baseline,
            systems=system,
            lower_is_better=lower_is_better,
        )
    frame = frame.sort_values(["system", "language", "rank"]).reset_index(drop=True)
    shown = ["system", "task", "language", "metric", "value", "baseline_value", "gain"]
    shown += ["improvement", "rank"]
    _show(frame[shown], f"Gains over {baseline} ({table.name})", None)
    if out is not None:
        _write_csv(frame, out)


def _parse_task_spec(spec: str, default_language: str) -> tuple[str, str, str | None]:
    parts = spec.split(":")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise ValueError(f"task spec {spec!r}: expected NAME[:LANGUAGE[:FIELD]]")
    language = parts[1] if len(parts) > 1 and parts[1] else default_language
    field = parts[2] if len(parts) > 2 and parts[2] else None
    return parts[0], language, field


def _read_text_file(spec: str) -> tuple[str, list[str]]:
    name, sep, file = spec.partition("=")
    if not sep or not name or not file:
        raise ValueError(f"--texts {spec!r}: expected NAME=FILE")
    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"--texts {name}: file {file!r} does not exist")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [line for line in lines if line]
    if not texts:
        raise ValueError(f"--texts {name}: {file} has no non-empty line")
    return name, texts


@app.command("task-distance")
def task_distance(
    tasks: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            "-t",
            help="Task specs NAME[:LANGUAGE[:FIELD]], comma-separated or repeated, e.g. "
            "xnli,pawsx or tatoeba:deu:candidate (Tatoeba's English side).",
        ),
    ] = None,
    tasks_old: Annotated[
        list[str] | None, typer.Option("--tasks", hidden=True, help="Old --task.")
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target", help="Target task specs; if given, every task is scored against each."
        ),
    ] = None,
    texts: Annotated[
        list[str] | None,
        typer.Option("--texts", help="NAME=FILE: a task given as a text file, one input per line."),
    ] = None,
    measure: Annotated[
        list[str] | None,
        typer.Option(
            "--measure", help="textemb, frechet, mmd, vocab (repeatable or a,b; default: all)."
        ),
    ] = None,
    language: Annotated[
        str, typer.Option("--lang", "-l", help="Default language of task specs.")
    ] = "en",
    language_old: Annotated[
        str | None, typer.Option("--language", hidden=True, help="Old --lang.")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Texts sampled per task.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the samples.")] = 0,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Sentence encoder.")
    ] = "bundled:multilingual-e5-small",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="XTREME data directory (default: $XCAL_DATA_DIR or ../shared/data/xtreme).",
        ),
    ] = None,
    out: OutOption = None,
) -> None:
    """Semantic distance between tasks from samples of their inputs (embeddings cached).

    Example: xcal transfer task-distance --tasks xnli,pawsx,tatoeba:deu:candidate
    """
    from xcal.transfer.task_distance import MEASURES, task_distances, task_texts

    def expand(values: list[str] | None) -> list[str]:
        return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]

    language = language_old or language
    measure = split_csv(measure) or None
    with _errors():
        samples: dict[str, list[str]] = {}
        for spec in merge(tasks, tasks_old):
            name, lang, field = _parse_task_spec(spec, language)
            samples[spec] = task_texts(name, data_dir, language=lang, field=field, n=n, rng=seed)
        for spec in texts or []:
            name, lines = _read_text_file(spec)
            samples[name] = lines
        targets: dict[str, list[str]] | None = None
        if target:
            targets = {}
            for spec in expand(target):
                name, lang, field = _parse_task_spec(spec, language)
                targets[spec] = task_texts(
                    name, data_dir, language=lang, field=field, n=n, rng=seed
                )
        if not samples or (targets is None and len(samples) < 2):
            raise ValueError("give at least two tasks (--tasks / --texts), or tasks and --target")
        frame = task_distances(
            samples, targets, measures=list(measure) if measure else list(MEASURES), model=model
        )
    wide = frame.pivot_table(
        index=["task_a", "task_b"], columns="measure", values="distance", sort=False
    ).reset_index()
    wide.columns.name = None
    _show(wide, f"Task distances ({model}, n <= {n})", None)
    if out is not None:
        _write_csv(frame, out)


@app.command("lang-distance")
def lang_distance(
    languages: Annotated[
        list[str] | None,
        typer.Argument(
            help="Language codes, ISO 639-1 or 639-3 (space- or comma-separated); "
            "default: XTREME's."
        ),
    ] = None,
    reference: Annotated[
        str, typer.Option("--reference", help="Distances are from this language.")
    ] = "en",
    view: Annotated[
        list[str] | None,
        typer.Option(
            "--view",
            help="URIEL views (repeatable or a,b): syntax_knn, phonology_knn, inventory_knn, "
            "fam, geo.",
        ),
    ] = None,
    distance: Annotated[
        str, typer.Option("--distance", help="Vector distance: cosine or angular.")
    ] = "cosine",
    metric_old: Annotated[
        str | None, typer.Option("--metric", hidden=True, help="Old --distance.")
    ] = None,
    out: OutOption = None,
) -> None:
    """Script, resource class (Joshi et al. 2020) and URIEL distances from the reference."""
    from xcal.transfer.language import DEFAULT_VIEWS, language_metadata

    metric = metric_old or distance
    if metric not in ("cosine", "angular"):
        with _errors():
            raise ValueError(f"--distance must be cosine or angular, got {metric!r}")
    with _errors():
        frame = language_metadata(
            split_csv(languages) or XTREME_LANGUAGES,
            reference=reference,
            views=split_csv(view) or list(DEFAULT_VIEWS),
            metric="cosine" if metric == "cosine" else "angular",
        )
    _show(frame, f"Languages: {metric} distance from {reference!r} (URIEL / lang2vec)", out, 3)


@app.command("select")
def select(
    table: Annotated[
        Path,
        typer.Argument(
            help="CSV: target_task,intermediate_task,distance,performance (one row per pair)."
        ),
    ],
    k: Annotated[
        list[str] | None, typer.Option("--k", help="Cut-offs (repeatable or 1,3).")
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="Further grouping columns, e.g. measure (repeatable or a,b)."),
    ] = None,
    out: OutOption = None,
) -> None:
    """NDCG@k and Regret@k of ranking intermediate tasks by distance (Poth et al. 2021)."""
    import pandas as pd

    from xcal.transfer.selection import selection_quality

    with _errors():
        if not table.is_file():
            raise FileNotFoundError(f"table {str(table)!r} does not exist")
        try:
            ks = [int(x) for x in split_csv(k)] or [1, 3, 5]
        except ValueError:
            raise ValueError(f"--k must be integers, got {','.join(k or [])!r}") from None
        frame = selection_quality(
            pd.read_csv(table, comment="#"), ks=ks, group_cols=split_csv(group)
        )
    _show(frame, "Intermediate-task selection by distance", out)


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    return pd.read_csv(path, comment="#")


@app.command("correlate")
def correlate(
    gains_csv: Annotated[
        Path, typer.Argument(help="Gains CSV (xcal transfer gains --out): system, task, ...")
    ],
    distances_csv: Annotated[
        Path, typer.Argument(help="Distances CSV (xcal transfer task-distance --out).")
    ],
    intermediate_of: Annotated[
        list[str] | None,
        typer.Option(
            "--intermediate-of",
            help="SYSTEM=TASK: the intermediate task of a system (repeatable or a,b).",
        ),
    ] = None,
    y: Annotated[str, typer.Option("--y", help="Gain column.")] = "improvement",
    mixed: Annotated[
        bool, typer.Option("--mixed/--no-mixed", help="Also fit gain ~ distance + (1 | task).")
    ] = True,
    n_boot: Annotated[int, typer.Option("--n-boot", min=1, help="Bootstrap resamples.")] = 10_000,
    b_old: Annotated[int | None, typer.Option("--B", hidden=True, help="Old --n-boot.")] = None,
    permutations: Annotated[
        int, typer.Option("--permutations", min=1, help="Permutations.")
    ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed.")] = 0,
    out: OutOption = None,
) -> None:
    """Correlation of the gain with task distance, per distance measure (and a mixed model)."""
    from xcal.transfer.correlate import (
        gain_distance_correlation,
        gain_distance_mixedlm,
        gain_distance_table,
    )

    with _errors():
        mapping = None
        if intermediate_of:
            mapping = {}
            for spec in split_csv(intermediate_of):
                system, sep, task = spec.partition("=")
                if not sep or not system or not task:
                    raise ValueError(f"--intermediate-of {spec!r}: expected SYSTEM=TASK")
                mapping[system] = task
        table = gain_distance_table(
            _read_csv(gains_csv, "gains table"),
            _read_csv(distances_csv, "distances table"),
            intermediate_of=mapping,
        )
        b = b_old if b_old is not None else n_boot
        frame = gain_distance_correlation(table, y=y, B=b, n_permutations=permutations, rng=seed)
        shown = ["measure", "metric", "estimate", "ci_low", "ci_high", "p_value", "n"]
        _show(frame[shown], f"Correlation of {y} with task distance", out)
        if mixed:
            for measure, group in table.groupby("measure", sort=True):
                fit = gain_distance_mixedlm(group, y=y)
                columns = [
                    "effect",
                    "term",
                    "estimate",
                    "std_error",
                    "p_value",
                    "ci_low",
                    "ci_high",
                ]
                _show(fit[columns], f"{measure}: {fit['model'].iloc[0]}", None)


@app.command("gap")
def gap(
    results_csv: Annotated[
        Path,
        typer.Argument(
            help="Results CSV: model, architecture, task, language, metric, value, or the "
            "results.csv of `xcal analyze` (raw probabilities, clean inputs)."
        ),
    ],
    source_language: Annotated[
        str, typer.Option("--source-language", help="Fine-tuning language.")
    ] = "en",
    view: Annotated[
        str, typer.Option("--view", help="URIEL view of the language distance.")
    ] = "syntax_knn",
    n_boot: Annotated[int, typer.Option("--n-boot", min=1, help="Bootstrap resamples.")] = 10_000,
    b_old: Annotated[int | None, typer.Option("--B", hidden=True, help="Old --n-boot.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed.")] = 0,
    out: OutOption = None,
) -> None:
    """Transfer gap (English minus language) by architecture, and its slope in language distance."""
    from xcal.transfer.architecture import (
        gap_by_architecture,
        gap_distance_interaction,
        transfer_gap,
    )

    with _errors():
        from xcal.languages import language_key
        from xcal.transfer.gains import read_scores

        scores = read_scores(results_csv)
        if _from_analysis(results_csv):
            # Tasks without a source-language run (Tatoeba: xx -> eng) have no gap.
            source = scores["language"].map(language_key) == language_key(source_language)
            with_source = set(scores.loc[source, "task"])
            _note_dropped(
                sorted(set(scores["task"]) - with_source), f"no {source_language!r} scores"
            )
            if with_source:
                scores = scores[scores["task"].isin(with_source)]
        gaps = transfer_gap(scores, source_language=source_language)
        summary = gap_by_architecture(gaps, B=b_old if b_old is not None else n_boot, rng=seed)
        shown = ["architecture", "metric", "estimate", "ci_low", "ci_high", "n", "n_groups"]
        _show(
            summary[shown], "Mean transfer gap by architecture (language-clustered bootstrap)", out
        )
        for metric, group in gaps.groupby("metric", sort=True):
            if group["architecture"].nunique() < 2:
                continue
            fit = gap_distance_interaction(group, view=view)
            columns = ["term", "estimate", "std_error", "p_value", "ci_low", "ci_high"]
            _show(fit[columns], f"{metric}: {fit['model'].iloc[0]} ({view} distance)", None)
