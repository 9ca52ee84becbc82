"""The offline study: train, infer, measure distances, analyse.

Every step reuses what an earlier run left behind (checkpoints whose recipe
has not changed, stored runs with the same input fingerprint, cached
embeddings and analysis cells), so a second run finishes in about a minute.
The pieces are the library's own: :mod:`xcal.demo.train` for the small
fine-tuning recipe, :func:`xcal.infer.run_grid` for inference into a store
(its systems share their frozen bottom layers, computed once per batch),
:mod:`xcal.transfer` for task distances and :func:`xcal.analyze.analyze_store`
for the report. Which English lines train and which evaluate:
:mod:`xcal.demo.data`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from xcal.demo.data import (
    INTERMEDIATE_TASKS,
    MIX,
    SINGLE_TASKS,
    intermediate_data,
    task_texts,
    xnli_line_ranges,
    xnli_pairs,
)
from xcal.demo.heads import TaskData
from xcal.demo.train import (
    MEAN_POOL_GAIN,
    FrozenStateCache,
    TrainConfig,
    fine_tune,
    fine_tune_mix,
    truncate_encoder,
)

BASELINE = "baseline"
RETRIEVAL_TEMPERATURE = 0.05
RECIPE_FILE = "xcal_recipe.txt"  # what a demo checkpoint was made from, to know when to redo it

# Every Tatoeba language of the shared data with a Joshi et al. (2020) resource
# class in data/joshi2020_resource_classes.csv (classes 1-5; none is class 0).
TATOEBA_LANGUAGES: tuple[str, ...] = (
    "afr", "amh", "ang", "ara", "arz", "ast", "aze", "bel", "ben", "bos", "bre", "bul", "cat",
    "cbk", "ceb", "ces", "cha", "cmn", "cor", "csb", "cym", "dan", "deu", "dsb", "ell", "epo",
    "est", "eus", "fao", "fin", "fra", "gla", "gle", "glg", "gsw", "heb", "hin", "hrv", "hsb",
    "hun", "hye", "ido", "ile", "ina", "ind", "isl", "ita", "jav", "jpn", "kab", "kat", "kaz",
    "khm", "kor", "lat", "lit", "lvs", "mal", "mar", "mhr", "mkd", "mon", "nld", "nno", "nob",
    "oci", "pam", "pes", "pms", "pol", "por", "ron", "rus", "slk", "slv", "spa", "sqi", "srp",
    "swe", "swh", "tam", "tat", "tel", "tgl", "tha", "tuk", "tur", "uig", "ukr", "urd", "uzb",
    "vie", "war", "wuu", "xho", "yid", "yue", "zsm",
)  # fmt: skip


@dataclass(frozen=True)
class DemoProfile:
    """The size of the study; ``full`` is the README's, ``ci`` is CI's.

    Attributes
    ----------
    xnli_languages : tuple of str or None
        XNLI evaluation languages (None: every language in the data).
    train_groups : int
        English XNLI premise groups (three pairs each) used for training; the
        lines after them are the evaluation lines of every language.
    eval_examples : int
        XNLI evaluation lines per language, clean (after the training lines).
    perturbed_examples : int
        XNLI evaluation lines per language in each perturbed condition (the
        first of the clean ones).
    intermediate : tuple of str
        English intermediate tasks, each giving one system
        (:data:`xcal.demo.data.INTERMEDIATE_TASKS`; ``mix`` is all single
        tasks at once).
    intermediate_examples : int
        Training items per intermediate task.
    perturbations : tuple of str
        XNLI conditions besides clean inputs, as ``name:severity``.
    qa_languages : tuple of str or None
        XQuAD and MLQA evaluation languages (None: all).
    qa_examples : int
        XQuAD questions per language and condition (the first ones).
    mlqa_examples : int
        MLQA dev questions per language and condition (the first ones; 0:
        MLQA is not run).
    qa_intermediate : tuple of str
        Intermediate tasks whose encoder is then trained on TyDiQA-GoldP
        like the TyDiQA intermediate stage, each giving a QA system next to
        the QA baseline (that stage itself: TyDiQA only).
    qa_perturbations : tuple of str
        XQuAD and MLQA conditions besides clean inputs (answer spans are kept).
    mlqa_perturbations : tuple of str
        Further MLQA conditions (the full study's 120 MLQA questions per
        language span about three times as many paragraphs as its 200 XQuAD
        questions: a condition there says more per second of inference).
    tatoeba_languages : tuple of str
    tatoeba_pairs : int
        Query/candidate pairs per Tatoeba language.
    distance_sample : int
        Texts per task for task distances.
    n_boot : int
        Bootstrap resamples in the analysis.
    jobs : int
        Analysis workers (:func:`xcal.analyze.analyze_store`).
    encoder_layers : int
        Every system is built on the bottom layers of the bundled encoder
        (inference cost grows with depth; see
        :func:`xcal.demo.train.truncate_encoder`).
    train : TrainConfig
        The fine-tuning recipe of the XNLI stages.
    intermediate_epochs : int or None
        Epochs of the intermediate-task stages (None: ``train.epochs``).
    span_max_length : int
        Token length of the intermediate and TyDiQA stages (TyDiQA contexts
        are longer than sentence pairs); also the QA window at inference.
    """

    name: str
    xnli_languages: tuple[str, ...] | None
    train_groups: int
    eval_examples: int
    perturbed_examples: int
    intermediate: tuple[str, ...]
    intermediate_examples: int
    perturbations: tuple[str, ...]
    qa_languages: tuple[str, ...] | None
    qa_examples: int
    mlqa_examples: int
    qa_intermediate: tuple[str, ...]
    qa_perturbations: tuple[str, ...]
    mlqa_perturbations: tuple[str, ...]
    tatoeba_languages: tuple[str, ...]
    tatoeba_pairs: int
    distance_sample: int
    n_boot: int
    jobs: int = 1
    encoder_layers: int = 6
    train: TrainConfig = field(default_factory=TrainConfig)
    intermediate_epochs: int | None = None
    span_max_length: int = 256

    def __post_init__(self) -> None:
        unknown = [
            t for t in (*self.intermediate, *self.qa_intermediate) if t not in INTERMEDIATE_TASKS
        ]
        if unknown:
            raise ValueError(
                f"profile {self.name}: unknown intermediate task(s) {', '.join(unknown)}; "
                f"known: {', '.join(INTERMEDIATE_TASKS)}"
            )
        if "tydiqa" in self.qa_intermediate:
            raise ValueError(f"profile {self.name}: TyDiQA is the QA target, not its intermediate")
        missing = [t for t in self.qa_intermediate if t not in self.intermediate]
        if missing:
            raise ValueError(
                f"profile {self.name}: QA intermediate task(s) {', '.join(missing)} are not "
                "intermediate tasks of the profile"
            )
        if self.perturbed_examples > self.eval_examples:
            raise ValueError(
                f"profile {self.name}: perturbed_examples ({self.perturbed_examples}) exceeds "
                f"eval_examples ({self.eval_examples})"
            )

    @property
    def intermediate_train(self) -> TrainConfig:
        epochs = self.train.epochs if self.intermediate_epochs is None else self.intermediate_epochs
        return replace(self.train, epochs=epochs, max_length=self.span_max_length)

    def line_ranges(self, n_lines: int) -> tuple[range, range]:
        """English XNLI training lines and the clean evaluation lines of every language."""
        return xnli_line_ranges(self.train_groups, self.eval_examples, n_lines, self.name)


FULL_TRAIN = TrainConfig(trainable_layers=1, epochs=4, learning_rate=3e-4, head_learning_rate=3e-3)
#: The XQuAD languages that MLQA also has: Q2 on the languages both QA sets share.
QA_LANGUAGES: tuple[str, ...] = ("en", "ar", "de", "es", "hi", "vi", "zh")

PROFILES: dict[str, DemoProfile] = {
    "full": DemoProfile(
        name="full",
        xnli_languages=None,
        train_groups=630,
        eval_examples=600,
        perturbed_examples=450,
        intermediate=INTERMEDIATE_TASKS,
        intermediate_examples=800,
        perturbations=("word_shuffle:0.5", "char_noise:0.15"),
        qa_languages=QA_LANGUAGES,
        qa_examples=200,
        mlqa_examples=120,
        qa_intermediate=("pawsx", "panx"),
        qa_perturbations=("word_shuffle:0.5",),
        mlqa_perturbations=("clause_swap:1.0",),
        tatoeba_languages=TATOEBA_LANGUAGES,
        tatoeba_pairs=60,
        distance_sample=300,
        n_boot=1000,
        jobs=2,
        train=FULL_TRAIN,
        intermediate_epochs=3,
    ),
    "ci": DemoProfile(
        name="ci",
        xnli_languages=("en", "de", "sw"),
        train_groups=60,
        eval_examples=60,
        perturbed_examples=30,
        intermediate=INTERMEDIATE_TASKS,
        intermediate_examples=60,
        perturbations=("word_shuffle:0.5", "char_noise:0.15"),
        qa_languages=("en", "de"),
        qa_examples=30,
        mlqa_examples=20,
        qa_intermediate=("panx",),
        qa_perturbations=("word_shuffle:0.5",),
        mlqa_perturbations=("clause_swap:1.0",),
        tatoeba_languages=("deu", "swh", "amh"),
        tatoeba_pairs=50,
        distance_sample=50,
        n_boot=100,
        train=replace(FULL_TRAIN, epochs=2),
    ),
}


def get_profile(name: str) -> DemoProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown demo profile {name!r}; known: {', '.join(PROFILES)}") from None


# ------------------------------------------------------------------ the steps


def _recipe_hash(*parts: Any) -> str:
    payload = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def _recipe_of(checkpoint: Path) -> str:
    stamp = checkpoint / RECIPE_FILE
    return stamp.read_text().strip() if stamp.is_file() else ""


def _train_once(
    base: Path,
    data: TaskData | tuple[TaskData, ...],
    out: Path,
    config: TrainConfig,
    log: Callable[[str], None],
    cache: FrozenStateCache | None = None,
) -> Path:
    """Fine-tune unless ``out`` already holds a checkpoint of the same recipe.

    ``data`` is one task, or several for a multi-task stage.
    """
    # The base's own recipe is part of this one: a changed base retrains every stage after it.
    examples = hashlib.sha256(repr(data).encode()).hexdigest()
    recipe = _recipe_hash(str(base), _recipe_of(base), asdict(config), examples)
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
            # the frozen layers' pass over the training inputs, before any step
            bar.update(
                task_id,
                description=f"encode {out.name} inputs",
                completed=done,
                total=total,
                unit="rows",
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

        hooks = {"progress": progress, "cache": cache, "encode_progress": encoding}
        if isinstance(data, tuple):
            fine_tune_mix(base, data, out, config, name=MIX, **hooks)  # type: ignore[arg-type]
        else:
            fine_tune(base, data, out, config, **hooks)  # type: ignore[arg-type]
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
    """Run the whole study (see the module docstring and the README).

    Parameters
    ----------
    profile : str or DemoProfile
        ``"full"`` (the README's study) or ``"ci"`` (a reduced one).
    data_dir : path, optional
        The XTREME data (default: ``XCAL_DATA_DIR`` or ``../shared/data/xtreme``).
    work_dir : path
        Checkpoints and the prediction store (kept for reuse).
    report_dir : path
        The analysis report.
    """
    import torch

    from xcal.analyze import analyze_store
    from xcal.models import BUNDLED_MODEL, materialize_bundled_model
    from xcal.paths import data_dir as resolve_data_dir
    from xcal.tasks import get_task

    spec = get_profile(profile) if isinstance(profile, str) else profile
    data = resolve_data_dir(data_dir)
    work = Path(work_dir)
    ckpt = work / "ckpt"
    torch.manual_seed(spec.train.seed)

    log(f"[1/6] bundled encoder ({BUNDLED_MODEL}), bottom {spec.encoder_layers} layers")
    base = _truncated_base(materialize_bundled_model(), work, spec.encoder_layers, log)

    n_systems = 1 + len(spec.intermediate)
    log(
        f"[2/6] fine-tuning: {len(spec.intermediate)} intermediate stages, {n_systems} XNLI "
        f"systems, {1 + len(spec.qa_intermediate)} TyDiQA systems"
    )
    xnli = get_task("xnli")
    english = xnli.load(data, "en", "dev")
    train_lines, eval_lines = spec.line_ranges(len(english))
    target = xnli_pairs(english[train_lines.start : train_lines.stop], tuple(xnli.label_names))
    # every stage freezes the same bottom layers: each input's states are computed once
    cache = FrozenStateCache()
    singles = {
        t: intermediate_data(t, data, spec.intermediate_examples)
        for t in SINGLE_TASKS
        if t in spec.intermediate or MIX in spec.intermediate
    }
    # Retrieval has no training data: as Phang et al. did for BUCC and Tatoeba,
    # the encoder after each intermediate stage is compared with the encoder
    # before any training (question 4).
    retrievers = {BASELINE: base}
    for task in spec.intermediate:
        task_data = tuple(singles.values()) if task == MIX else singles[task]
        retrievers[f"+{task}"] = _train_once(
            base, task_data, ckpt / f"{task}-stage1", spec.intermediate_train, log, cache
        )
    systems = {BASELINE: _train_once(base, target, ckpt / BASELINE, spec.train, log, cache)}
    for label, stage1 in list(retrievers.items())[1:]:
        name = label.removeprefix("+")
        systems[label] = _train_once(stage1, target, ckpt / f"{name}-xnli", spec.train, log, cache)
    # Question 2: the QA baseline is the TyDiQA stage on the encoder itself; each QA
    # system runs the same stage on the encoder after another intermediate task.
    qa_target = singles.get("tydiqa") or intermediate_data(
        "tydiqa", data, spec.intermediate_examples
    )
    qa_systems = {
        BASELINE: _train_once(
            base, qa_target, ckpt / "tydiqa-stage1", spec.intermediate_train, log, cache
        )
    }
    for task in spec.qa_intermediate:
        qa_systems[f"+{task}"] = _train_once(
            retrievers[f"+{task}"],
            qa_target,
            ckpt / f"{task}-tydiqa",
            spec.intermediate_train,
            log,
            cache,
        )
    del cache

    from xcal.infer import TaskSpec

    log("[3/6] XNLI inference (the systems share their frozen layers)")
    clean = f"{eval_lines.start}:{eval_lines.stop}"
    perturbed = f"{eval_lines.start}:{eval_lines.start + spec.perturbed_examples}"
    languages = spec.xnli_languages
    results = _infer(
        systems,
        [
            (("none",), (TaskSpec("xnli", languages, examples=clean),)),
            (spec.perturbations, (TaskSpec("xnli", languages, examples=perturbed),)),
        ],
        data,
        work,
        spec,
    )
    log("[4/6] XQuAD and MLQA inference (answer spans kept under perturbation)")
    xquad = TaskSpec("xquad", spec.qa_languages, examples=f"0:{spec.qa_examples}")
    mlqa = TaskSpec("mlqa", spec.qa_languages, examples=f"0:{spec.mlqa_examples}")
    qa_grids = [
        (("none", *spec.qa_perturbations), (xquad, mlqa) if spec.mlqa_examples else (xquad,))
    ]
    if spec.mlqa_examples:
        qa_grids.append((spec.mlqa_perturbations, (mlqa,)))
    results += _infer(qa_systems, qa_grids, data, work, spec)
    log("[5/6] Tatoeba retrieval")
    results += _infer(
        retrievers,
        [(("none",), (TaskSpec("tatoeba", spec.tatoeba_languages),))],
        data,
        work,
        spec,
        limit=spec.tatoeba_pairs,
    )
    _report_inference(results, log)

    log("[6/6] task distances (intermediate tasks vs XNLI) and analysis")
    from xcal.transfer import task_distances

    samples = {t: task_texts(t, data, spec.distance_sample) for t in spec.intermediate}
    distances = task_distances(samples, {"xnli": task_texts("xnli", data, spec.distance_sample)})
    work.mkdir(parents=True, exist_ok=True)
    distances.to_csv(work / "task_distances.csv", index=False)
    analysis = analyze_store(
        work / "store",
        baseline=BASELINE,
        # this study's runs only: a work folder may keep runs of an earlier profile
        filters={"run_id": sorted({r.run_id for r in results})},
        out=report_dir,
        n_boot=spec.n_boot,
        task_distances=distances,
        jobs=spec.jobs,
        # Cosine similarities of normalised e5 embeddings lie in a narrow band;
        # a softmax at T=1 over them is nearly uniform, so confidence is read
        # at the temperature e5 was trained with (0.01) scaled up to be gentler.
        retrieval_temperature=RETRIEVAL_TEMPERATURE,
    )
    result = DemoResult(Path(report_dir), work / "store", systems, analysis)
    result.headline = headline(analysis)
    for line in result.headline:
        log(line)
    return result


def _infer(
    systems: dict[str, Path],
    grids: list[tuple[tuple[str, ...], tuple[Any, ...]]],
    data: Path,
    work: Path,
    spec: DemoProfile,
    limit: int | None = None,
) -> list[Any]:
    """Run ``systems`` on each (perturbations, tasks) pair, one grid each.

    The tasks are :class:`xcal.infer.TaskSpec` of one record kind.
    ``"none"`` is the clean condition; an empty list of perturbations runs nothing.
    """
    from xcal.infer import Grid, ModelSpec, PerturbationSpec, RunOptions, run_grid
    from xcal.infer.progress import RichReporter
    from xcal.infer.qa import QASettings
    from xcal.tasks import get_task

    kinds = {get_task(t.name).record_kind for _, tasks in grids for t in tasks}
    if len(kinds) != 1:
        raise ValueError(f"one record kind per call, got {sorted(kinds)}")
    # Every system is e5 underneath: retrieval reads all of them with e5's input
    # prefix (left to the checkpoint's name, only the one called e5-* would get it).
    prefix = "query: " if kinds == {"retrieval"} else None
    models = tuple(
        ModelSpec(
            str(path),
            label=label,
            intermediate_tasks=() if label == BASELINE else (label.removeprefix("+"),),
            train_seed=spec.train.seed,
            prefix=prefix,
        )
        for label, path in systems.items()
    )
    options = RunOptions(
        limit=limit,
        share_layers=True,
        qa=QASettings(max_length=spec.span_max_length),
        # the demo owns its store: a run whose checkpoint was retrained is replaced
        overwrite=True,
    )
    results: list[Any] = []
    for perturbations, tasks in grids:
        if not perturbations:
            continue
        grid = Grid(
            models=models,
            tasks=tasks,
            perturbations=tuple(PerturbationSpec.parse(p) for p in perturbations),
        )
        results += run_grid(
            grid, work / "store", data_dir=data, options=options, reporter=RichReporter()
        )
    return results


def _report_inference(results: list[Any], log: Callable[[str], None]) -> None:
    from xcal.infer import summarize

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
