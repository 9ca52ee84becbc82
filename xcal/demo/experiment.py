"""The offline mini-experiment: train, infer, measure distances, analyse.

Every step reuses what an earlier run left behind (checkpoints whose recipe
has not changed, stored runs with the same input fingerprint, cached
embeddings and analysis cells), so a second run finishes in well under a
minute. The pieces are the library's own: :mod:`xcal.demo.train` for the
small fine-tuning recipe, :func:`xcal.infer.run_grid` for inference into a
store, :mod:`xcal.transfer` for task distances and
:func:`xcal.analyze.analyze_store` for the report.

XNLI dev is parallel across its 15 languages, so the English lines used for
training and every language's evaluation lines are disjoint by *line index*
(in whole premise groups of three hypotheses), never by language.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from xcal.demo.train import (
    MEAN_POOL_GAIN,
    FrozenStateCache,
    PairData,
    TrainConfig,
    fine_tune,
    truncate_encoder,
)

BASELINE = "baseline"
RETRIEVAL_TEMPERATURE = 0.05
RECIPE_FILE = "xcal_recipe.txt"  # what a demo checkpoint was made from, to know when to redo it
XNLI_GROUP = 3  # XNLI dev lists each premise with three hypotheses in a row

# Tatoeba languages spanning Joshi et al. (2020) resource classes 1-5 (no Tatoeba
# language of class 0 is in data/joshi2020_resource_classes.csv).
TATOEBA_LANGUAGES: tuple[str, ...] = (
    # classes 4-5
    "deu", "fra", "spa", "ita", "por", "rus", "cmn", "jpn", "ara",
    # classes 3-4
    "tur", "vie", "ind", "hin", "heb", "pol", "nld", "fin", "ell", "bul", "kor", "ukr", "ces",
    # classes 1-4
    "swh", "tgl", "ben", "mar", "tam", "tel", "urd", "kat", "kaz", "afr", "eus", "bel",
    # classes 1-3
    "amh", "xho", "yid", "war", "ceb", "khm", "uig", "tat", "gla",
)  # fmt: skip


@dataclass(frozen=True)
class DemoProfile:
    """The size of the experiment; ``full`` is the README's, ``ci`` is CI's.

    Attributes
    ----------
    xnli_languages : tuple of str or None
        Evaluation languages (None: every language in the data).
    train_groups : int
        English XNLI premise groups (three pairs each) used for training; the
        lines after them are the evaluation lines of every language.
    eval_examples : int
        Evaluation lines per language and condition (taken after the
        training lines).
    intermediate : tuple of str
        English intermediate tasks, each giving one system.
    intermediate_examples : int
        Training pairs per intermediate task.
    perturbations : tuple of str
        Conditions besides clean inputs, as ``name:severity``.
    tatoeba_languages : tuple of str
    tatoeba_pairs : int
        Query/candidate pairs per Tatoeba language.
    distance_sample : int
        Texts per task for task distances.
    n_boot : int
        Bootstrap resamples in the analysis.
    encoder_layers : int
        Every system is built on the bottom layers of the bundled encoder
        (inference cost grows with depth; see
        :func:`xcal.demo.train.truncate_encoder`): the XNLI systems, and on
        Tatoeba that encoder itself (the baseline) and the encoder after each
        intermediate stage.
    train : TrainConfig
        The fine-tuning recipe of every stage.
    intermediate_epochs : int or None
        Epochs of the intermediate-task stages (None: ``train.epochs``).
    """

    name: str
    xnli_languages: tuple[str, ...] | None
    train_groups: int
    eval_examples: int
    intermediate: tuple[str, ...]
    intermediate_examples: int
    perturbations: tuple[str, ...]
    tatoeba_languages: tuple[str, ...]
    tatoeba_pairs: int
    distance_sample: int
    n_boot: int
    encoder_layers: int = 6
    train: TrainConfig = field(default_factory=TrainConfig)
    intermediate_epochs: int | None = None

    @property
    def intermediate_train(self) -> TrainConfig:
        if self.intermediate_epochs is None:
            return self.train
        return replace(self.train, epochs=self.intermediate_epochs)


PROFILES: dict[str, DemoProfile] = {
    "full": DemoProfile(
        name="full",
        xnli_languages=None,
        train_groups=600,
        eval_examples=75,
        intermediate=("pawsx", "xcopa"),
        intermediate_examples=800,
        perturbations=(
            "word_shuffle:0.25",
            "word_shuffle:0.5",
            "char_noise:0.05",
            "char_noise:0.15",
        ),
        tatoeba_languages=TATOEBA_LANGUAGES,
        tatoeba_pairs=100,
        distance_sample=300,
        n_boot=1000,
        train=TrainConfig(
            trainable_layers=1, epochs=6, learning_rate=3e-4, head_learning_rate=3e-3
        ),
        intermediate_epochs=3,
    ),
    "ci": DemoProfile(
        name="ci",
        xnli_languages=("en", "de", "sw"),
        train_groups=60,
        eval_examples=30,
        intermediate=("pawsx", "xcopa"),
        intermediate_examples=100,
        perturbations=("word_shuffle:0.5", "char_noise:0.15"),
        tatoeba_languages=("deu", "swh", "amh"),
        tatoeba_pairs=50,
        distance_sample=50,
        n_boot=100,
        train=TrainConfig(
            trainable_layers=1, epochs=2, learning_rate=3e-4, head_learning_rate=3e-3
        ),
    ),
}


def get_profile(name: str) -> DemoProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown demo profile {name!r}; known: {', '.join(PROFILES)}") from None


# ------------------------------------------------------------------ training data


def xnli_line_ranges(spec: DemoProfile, n_lines: int) -> tuple[range, range]:
    """English training lines and every language's evaluation lines of XNLI dev.

    Both are whole premise groups, so no premise is seen in training and then
    evaluated (in any translation), and they never overlap.

    >>> train, evaluate = xnli_line_ranges(get_profile("ci"), 2490)
    >>> train, evaluate
    (range(0, 180), range(180, 210))
    """
    n_train = spec.train_groups * XNLI_GROUP
    if spec.eval_examples % XNLI_GROUP:
        raise ValueError(
            f"profile {spec.name}: eval_examples must be a multiple of {XNLI_GROUP} "
            f"(whole premise groups), got {spec.eval_examples}"
        )
    if n_train + spec.eval_examples > n_lines:
        raise ValueError(
            f"profile {spec.name}: {n_train} training + {spec.eval_examples} evaluation lines "
            f"exceed the {n_lines} lines of XNLI dev"
        )
    return range(0, n_train), range(n_train, n_train + spec.eval_examples)


def _pairs_from_xnli(examples: Sequence[Any], label_names: tuple[str, ...]) -> PairData:
    return PairData(
        text_a=[e.premise for e in examples],
        text_b=[e.hypothesis for e in examples],
        labels=[e.label for e in examples],
        label_names=label_names,
        name="xnli",
    )


def intermediate_data(task: str, data_dir: Path, n: int) -> PairData:
    """English training pairs of an intermediate task.

    PAWS-X is a sentence-pair task as it is. XCOPA (multiple choice) becomes
    pairs: the premise with its question against each choice, labelled
    correct or not, so that the same classification recipe trains it.
    """
    from xcal.tasks import get_task

    if task == "pawsx":
        pawsx = get_task("pawsx")
        examples = pawsx.load(data_dir, "en", "dev")[:n]
        return PairData(
            text_a=[e.premise for e in examples],
            text_b=[e.hypothesis for e in examples],
            labels=[e.label for e in examples],
            label_names=tuple(pawsx.label_names),
            name="pawsx",
        )
    if task == "xcopa":
        xcopa = get_task("xcopa")
        examples = [*xcopa.load(data_dir, "en", "train"), *xcopa.load(data_dir, "en", "val")]
        text_a: list[str] = []
        text_b: list[str] = []
        labels: list[int] = []
        for ex in examples:
            ask = "What was the cause?" if ex.question == "cause" else "What happened as a result?"
            for i, choice in enumerate((ex.choice1, ex.choice2)):
                text_a.append(f"{ex.premise} {ask}")
                text_b.append(choice)
                labels.append(int(i == ex.label))
        return PairData(
            text_a[:n], text_b[:n], labels[:n], ("wrong_choice", "right_choice"), "xcopa"
        )
    raise ValueError(f"unknown intermediate task {task!r}; the demo knows pawsx, xcopa")


def intermediate_texts(task: str, data_dir: Path, n: int) -> list[str]:
    """Input texts of a task for task distances (pairs joined as one text)."""
    if task == "xnli":
        from xcal.tasks import get_task

        return [f"{e.premise} {e.hypothesis}" for e in get_task("xnli").load(data_dir, "en")[:n]]
    data = intermediate_data(task, data_dir, n)
    return [f"{a} {b}" for a, b in zip(data.text_a, data.text_b, strict=True)]


# ------------------------------------------------------------------ the steps


def _recipe_hash(*parts: Any) -> str:
    payload = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def _recipe_of(checkpoint: Path) -> str:
    stamp = checkpoint / RECIPE_FILE
    return stamp.read_text().strip() if stamp.is_file() else ""


def _train_once(
    base: Path,
    data: PairData,
    out: Path,
    config: TrainConfig,
    log: Callable[[str], None],
    cache: FrozenStateCache | None = None,
) -> Path:
    """Fine-tune unless ``out`` already holds a checkpoint of the same recipe."""
    # The base's own recipe is part of this one: a changed base retrains every stage after it.
    recipe = _recipe_hash(
        str(base), _recipe_of(base), asdict(config), data.name, len(data.labels), data.labels
    )
    stamp = out / RECIPE_FILE
    if stamp.is_file() and stamp.read_text().strip() == recipe:
        log(f"  reuse {out.name} (same recipe)")
        return out
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[unit]}{task.fields[note]}"),
        TimeElapsedColumn(),
    ) as bar:
        task_id = bar.add_task(f"train {out.name}", total=None, unit="steps", note="")

        def encoding(done: int, total: int) -> None:
            # the frozen layers' pass over the training pairs, before any step
            bar.update(
                task_id,
                description=f"encode {data.name} pairs",
                completed=done,
                total=total,
                unit="pairs",
            )

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(
                task_id,
                description=f"train {out.name}",
                completed=step,
                total=total,
                unit="steps",
                note=f"  loss {loss:.3f}",
            )

        fine_tune(base, data, out, config, progress=progress, cache=cache, encode_progress=encoding)
    stamp.write_text(recipe + "\n")
    return out


def _truncated_base(bundled: Path, work: Path, n_layers: int, log: Callable[[str], None]) -> Path:
    out = work / "ckpt" / f"e5-small-L{n_layers}"
    recipe = _recipe_hash(str(bundled), n_layers, "mean-pool-last-layer", MEAN_POOL_GAIN)
    stamp = out / RECIPE_FILE
    if stamp.is_file() and stamp.read_text().strip() == recipe:
        return out
    log(f"  truncate the encoder to {n_layers} layers")
    truncate_encoder(bundled, out, n_layers)
    stamp.write_text(recipe + "\n")
    return out


@dataclass
class DemoResult:
    """Where the demo put things, and the analysis it produced."""

    report_dir: Path
    store_dir: Path
    checkpoints: dict[str, Path]
    analysis: Any = None
    headline: list[str] = field(default_factory=list)


def run_demo(
    profile: str | DemoProfile = "full",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    work_dir: str | os.PathLike[str] = "reports/demo-work",
    report_dir: str | os.PathLike[str] = "reports/demo",
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole mini-experiment (see the module docstring and the README).

    Parameters
    ----------
    profile : str or DemoProfile
        ``"full"`` (the README's experiment) or ``"ci"`` (a reduced one).
    data_dir : path, optional
        The XTREME data (default: ``XCAL_DATA_DIR`` or ``../shared/data/xtreme``).
    work_dir : path
        Checkpoints and the prediction store (kept for reuse).
    report_dir : path
        The analysis report.
    """
    import torch

    from xcal.analyze import analyze_store
    from xcal.infer import (
        Grid,
        ModelSpec,
        PerturbationSpec,
        RunOptions,
        TaskSpec,
        run_grid,
        summarize,
    )
    from xcal.infer.progress import RichReporter
    from xcal.models import BUNDLED_MODEL, materialize_bundled_model
    from xcal.paths import data_dir as resolve_data_dir
    from xcal.tasks import get_task

    spec = get_profile(profile) if isinstance(profile, str) else profile
    data = resolve_data_dir(data_dir)
    work = Path(work_dir)
    store_dir = work / "store"
    torch.manual_seed(spec.train.seed)

    log(f"[1/5] bundled encoder ({BUNDLED_MODEL}), bottom {spec.encoder_layers} layers")
    base = _truncated_base(materialize_bundled_model(), work, spec.encoder_layers, log)

    log(f"[2/5] fine-tuning: baseline and {len(spec.intermediate)} intermediate-task variants")
    xnli = get_task("xnli")
    english = xnli.load(data, "en", "dev")
    train_lines, eval_lines = xnli_line_ranges(spec, len(english))
    target = _pairs_from_xnli(
        english[train_lines.start : train_lines.stop], tuple(xnli.label_names)
    )
    # every XNLI stage shares the frozen layers: their states are computed once
    cache = FrozenStateCache()
    checkpoints = {
        BASELINE: _train_once(base, target, work / "ckpt" / BASELINE, spec.train, log, cache)
    }
    # Retrieval has no training data: as Phang et al. did for BUCC and Tatoeba,
    # the encoder after each intermediate stage is compared with the encoder
    # before any training (question 4).
    retrievers = {BASELINE: base}
    for task in spec.intermediate:
        stage1 = _train_once(
            base,
            intermediate_data(task, data, spec.intermediate_examples),
            work / "ckpt" / f"{task}-stage1",
            spec.intermediate_train,
            log,
            cache,
        )
        retrievers[f"+{task}"] = stage1
        checkpoints[f"+{task}"] = _train_once(
            stage1, target, work / "ckpt" / f"{task}-xnli", spec.train, log, cache
        )

    log("[3/5] inference into the prediction store")

    def model_specs(paths: dict[str, Path]) -> tuple[Any, ...]:
        return tuple(
            ModelSpec(
                str(path),
                label=label,
                intermediate_tasks=() if label == BASELINE else (label.removeprefix("+"),),
                train_seed=spec.train.seed,
            )
            for label, path in paths.items()
        )

    models = model_specs(checkpoints)
    conditions = (PerturbationSpec(), *(PerturbationSpec.parse(p) for p in spec.perturbations))
    eval_slice = f"{eval_lines.start}:{eval_lines.stop}"
    xnli_grid = Grid(
        models=models,
        tasks=(TaskSpec("xnli", languages=spec.xnli_languages, examples=eval_slice),),
        perturbations=conditions,
    )
    reporter = RichReporter()
    results = run_grid(xnli_grid, store_dir, data_dir=data, reporter=reporter)
    tatoeba_grid = Grid(
        models=model_specs(retrievers),
        tasks=(TaskSpec("tatoeba", languages=spec.tatoeba_languages),),
    )
    results += run_grid(
        tatoeba_grid,
        store_dir,
        data_dir=data,
        options=RunOptions(limit=spec.tatoeba_pairs),
        reporter=reporter,
    )
    counts = summarize(results)
    written = [r for r in results if r.status == "written"]
    seconds = sum(r.seconds for r in written)
    speed = f" ({sum(r.n_examples for r in written) / seconds:.0f} examples/s)" if seconds else ""
    log(
        f"  {counts['written']} runs written{speed}, "
        f"{counts['skipped']} reused, {counts['failed']} failed"
    )
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise RuntimeError(
            f"{len(failed)} inference cell(s) failed, first: "
            f"{failed[0].cell.describe()}: {failed[0].error}"
        )

    log("[4/5] task distances (intermediate tasks vs XNLI)")
    from xcal.transfer import task_distances

    samples = {t: intermediate_texts(t, data, spec.distance_sample) for t in spec.intermediate}
    distances = task_distances(
        samples, {"xnli": intermediate_texts("xnli", data, spec.distance_sample)}
    )
    work.mkdir(parents=True, exist_ok=True)
    distances_csv = work / "task_distances.csv"
    distances.to_csv(distances_csv, index=False)

    log(f"[5/5] analysis -> {report_dir}")
    analysis = analyze_store(
        store_dir,
        baseline=BASELINE,
        out=report_dir,
        n_boot=spec.n_boot,
        task_distances=distances,
        # Cosine similarities of normalised e5 embeddings lie in a narrow band;
        # a softmax at T=1 over them is nearly uniform, so confidence is read
        # at the temperature e5 was trained with (0.01) scaled up to be gentler.
        retrieval_temperature=RETRIEVAL_TEMPERATURE,
    )
    result = DemoResult(Path(report_dir), store_dir, checkpoints, analysis)
    result.headline = headline(analysis)
    for line in result.headline:
        log(line)
    return result


def headline(analysis: Any) -> list[str]:
    """A few sentences of the main numbers, for the terminal and the README."""
    lines: list[str] = []
    res = analysis.results
    if res.empty:
        return ["no results"]
    clean = res[(res["task"] == "xnli") & (res["perturbation"] == "none")]
    for metric in ("accuracy", "ece"):
        rows = clean[(clean["metric"] == metric) & (clean["variant"] == "raw")]
        if "comparison" in rows.columns:
            rows = rows[rows["comparison"] == "value"]
        if rows.empty:
            continue
        means = rows.groupby("system")["estimate"].mean().sort_index()
        summary = ", ".join(f"{name} {value:.3f}" for name, value in means.items())
        lines.append(f"XNLI clean, mean {metric} over languages: {summary}")
    return lines


def with_overrides(profile: DemoProfile, **changes: Any) -> DemoProfile:
    """A copy of a profile with some fields changed (for experiments and tests)."""
    return replace(profile, **changes)
