"""The runner: a grid of model x task x language x perturbation cells into a store.

Order of work, chosen so that a job fails fast and restarts cheaply:

1. Expand and validate the grid against the data directory: unknown tasks or
   perturbations, missing languages (listing what exists), malformed files and
   empty inputs are reported together, before any model is touched.
2. Check every model's config against its tasks (a head with the wrong number
   of labels, no head at all) - still without loading weights.
3. Per model: read the tokenizer, compute each cell's input fingerprint (the
   example ids and exact perturbed texts, the model's identity and revision,
   the length limit and every setting that changes the outputs) and skip
   cells already stored with that fingerprint. Weights are loaded only if a
   cell is left, once per head.
4. Run each cell and write it with one atomic ``store.write_run``. A killed
   job leaves finished cells intact; restarting it skips them.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from xcal.infer.engine import TokenBudget
from xcal.infer.grid import Cell, Grid, GridError, PerturbationSpec, shard_cells
from xcal.infer.memory import CPU_BATCH_TOKENS, auto_batch_tokens
from xcal.infer.modeling import (
    LM_SCORING_SUFFIX,
    ModelInfo,
    ModelSpec,
    ModelSpecError,
    Plan,
    check_dtype,
    inspect_model,
    load_for,
    pick_device,
    plan_for,
)
from xcal.infer.qa import QASettings
from xcal.tasks.bounds import cut_long_texts


class InferInputError(ValueError):
    """The grid cannot run: every problem found before any model work, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("cannot run the grid:\n" + "\n".join(f"- {p}" for p in self.problems))


@dataclass(frozen=True)
class RunOptions:
    """Settings of a runner call that are not part of the grid.

    ``batch_tokens`` bounds the padded tokens per batch (memory); ``"auto"``
    sizes it on a GPU from the free device memory and the model's shape
    (:func:`xcal.infer.memory.auto_batch_tokens`; 16384 on a CPU); ``limit``
    keeps the first N examples of every cell (and, for Tatoeba, the first N
    candidates, so the pairs stay pairs); ``top_k`` candidates are stored per
    retrieval query; ``qa`` sets windows and span extraction (its
    ``max_length`` is capped by the model's); ``threads`` sets torch's CPU
    threads (default: torch's choice; 1 helps on oversubscribed shared nodes);
    ``share_layers`` runs models whose embeddings and bottom layers are equal
    bit for bit (systems fine-tuned from one frozen encoder) together, cell
    by cell, computing those layers once per batch
    (:mod:`xcal.infer.shared_layers`; the outputs are the same).
    """

    batch_tokens: int | Literal["auto"] = CPU_BATCH_TOKENS
    device: str = "auto"
    dtype: str = "auto"
    limit: int | None = None
    top_k: int = 10
    qa: QASettings = field(default_factory=QASettings)
    overwrite: bool = False
    threads: int | None = None
    share_layers: bool = False

    def __post_init__(self) -> None:
        from xcal.settings import RunOptionsTable, SettingsError, validate

        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "qa"}
        try:
            validate(RunOptionsTable, values, "run options")
        except SettingsError as exc:
            raise GridError(str(exc)) from None


Status = Literal["written", "skipped", "failed"]


@dataclass
class CellResult:
    """What happened to one cell."""

    cell: Cell
    status: Status
    run_id: str | None = None
    n_examples: int = 0
    n_truncated: int = 0
    seconds: float = 0.0
    error: str | None = None
    n_cut: int = 0  # inputs cut to xcal.tasks.bounds.MAX_TEXT_CHARS before tokenising

    @property
    def examples_per_s(self) -> float:
        return self.n_examples / self.seconds if self.seconds > 0 else float("nan")


class Reporter(Protocol):
    """Receives progress; :class:`xcal.infer.progress.RichReporter` draws it."""

    def cell_started(self, cell: Cell, total: float) -> None: ...

    def advance(self, amount: float) -> None: ...

    def cell_finished(self, result: CellResult) -> None: ...

    def note(self, text: str) -> None: ...


class NullReporter:
    def cell_started(self, cell: Cell, total: float) -> None:
        pass

    def advance(self, amount: float) -> None:
        pass

    def cell_finished(self, result: CellResult) -> None:
        pass

    def note(self, text: str) -> None:
        pass


# --------------------------------------------------------------------------- inputs


@dataclass
class CellInputs:
    """The examples of a cell after ``limit`` and perturbation (and retrieval candidates)."""

    examples: list[Any]
    candidates: list[Any] | None
    perturbation_fields: dict[str, Any]
    n_dropped: int = 0
    n_cut: int = 0  # inputs over xcal.tasks.bounds.MAX_TEXT_CHARS characters, cut


def _perturbation_fields(spec: PerturbationSpec, language: str) -> dict[str, Any]:
    if spec.name == "none":
        return {
            "perturbation": "none",
            "perturbation_params": {},
            "severity": 0.0,
            "perturbation_seed": 0,
        }
    from xcal.perturb import get_perturbation, manifest_fields

    p = get_perturbation(spec.name, **spec.params)
    return manifest_fields(
        p, language=language, severity=spec.severity, seed=spec.seed, fields=spec.fields
    )


def prepare_inputs(
    cell: Cell,
    data_dir: str | os.PathLike[str],
    limit: int | None,
    cache: dict[Any, Any] | None = None,
) -> CellInputs:
    """Read, cut and perturb the examples of one cell (no model involved)."""
    from xcal.tasks import RetrievalTask, get_task

    task = get_task(cell.task)
    cache = {} if cache is None else cache
    key = (cell.task, cell.split, cell.language)
    if key not in cache:
        examples = task.load(data_dir, cell.language, cell.split)
        candidates = None
        if isinstance(task, RetrievalTask):
            candidates = task.candidates(data_dir, cell.language, cell.split)
        cache[key] = (examples, candidates)
    examples, candidates = cache[key]
    if cell.example_range is not None:
        start, stop = cell.example_range
        if start >= len(examples):
            raise GridError(
                f"{cell.describe()}: example range starts at {start} but "
                f"{cell.language} has {len(examples)} examples"
            )
        examples = examples[start:stop]
        if candidates is not None and getattr(task, "paired", False):
            candidates = candidates[start:stop]
    if limit is not None:
        examples = examples[:limit]
        if candidates is not None and getattr(task, "paired", False):
            candidates = candidates[:limit]
    # Bound the memory and work of each input before perturbation and tokenisation.
    examples, n_cut = cut_long_texts(examples)
    if candidates is not None:
        candidates, n_cut_candidates = cut_long_texts(candidates)
        n_cut += n_cut_candidates
    n_dropped = 0
    if cell.perturbation.name != "none":
        from xcal.perturb import apply_to_examples, get_perturbation

        p = get_perturbation(cell.perturbation.name, **cell.perturbation.params)
        res = apply_to_examples(
            examples,
            p,
            cell.perturbation.severity,
            cell.perturbation.seed,
            cell.perturbation.fields,
        )
        examples, n_dropped = res.examples, res.n_dropped
    if not examples:
        raise GridError(
            f"{cell.describe()}: no examples left"
            + (f" ({n_dropped} dropped by the perturbation)" if n_dropped else "")
        )
    return CellInputs(
        examples,
        candidates,
        _perturbation_fields(cell.perturbation, cell.language),
        n_dropped,
        n_cut,
    )


def storable_problems(cell: Cell, inputs: CellInputs) -> list[str]:
    """What the store would refuse in a cell's ids and gold, found before any model work.

    The store checks a run when it is written; the columns that come from the
    data rather than the model are checked here with the same code, so that a
    grid that could never be stored fails in seconds, not after embedding.
    """
    from xcal.store import RunManifest, check_input_records
    from xcal.tasks import get_task

    task = get_task(cell.task)
    kind = task.record_kind
    exs = inputs.examples
    records: dict[str, Any] = {"example_id": [ex.example_id for ex in exs]}
    if kind in ("retrieval", "mining"):
        records["gold_ids"] = [list(ex.gold_ids) for ex in exs]
    elif kind == "qa":
        records["answers"] = [
            [{"text": a.text, "answer_start": a.answer_start} for a in ex.answers] for ex in exs
        ]
    manifest = RunManifest(
        model="-",
        task=cell.task,
        split=cell.split_label,
        language=cell.language,
        record_kind=kind,  # type: ignore[arg-type]
        input_fingerprint="-",
        n_examples=len(exs),
    )
    where = f"{cell.describe()} (checked before running the model)"
    return [str(p) for p in check_input_records(manifest, records, where) if p.level == "error"]


def input_fingerprint(
    info: ModelInfo, plan: Plan, task: Any, inputs: CellInputs, options: RunOptions
) -> str:
    """Hash of everything that determines a cell's records (not device, dtype or batching)."""
    from xcal.store import fingerprint
    from xcal.tasks import example_texts

    identity: dict[str, Any] = {
        "model": info.spec.name,
        "revision": info.revision,
        "max_length": _max_length_for(info, task, options),
        "plan": dataclasses.asdict(plan),
    }
    if task.record_kind in ("retrieval", "mining"):
        identity["top_k"] = options.top_k
    if task.record_kind == "mining":
        identity["margin_k"] = task.margin_k
    if task.record_kind == "qa":
        identity["qa"] = dataclasses.asdict(_qa_settings(info, options))
    candidates = (
        [[c.candidate_id, c.text] for c in inputs.candidates]
        if inputs.candidates is not None
        else None
    )
    return fingerprint(identity, [example_texts(ex) for ex in inputs.examples], candidates)


def token_budget(
    model: Any, info: ModelInfo, task: Any, options: RunOptions, device: str
) -> TokenBudget:
    """``options.batch_tokens`` as a budget for ``model`` on ``device`` (``"auto"`` resolved)."""
    if options.batch_tokens != "auto":
        return TokenBudget(options.batch_tokens)
    return TokenBudget(
        auto_batch_tokens(
            model,
            device,
            max_length=_max_length_for(info, task, options),
            concurrent=cell_workers(device),
        )
    )


def _qa_settings(info: ModelInfo, options: RunOptions) -> QASettings:
    return dataclasses.replace(options.qa, max_length=min(options.qa.max_length, info.max_length))


def _max_length_for(info: ModelInfo, task: Any, options: RunOptions) -> int:
    if task.record_kind == "qa":
        return _qa_settings(info, options).max_length
    return info.max_length


# --------------------------------------------------------------------------- computing records


def compute_records(
    model: Any,
    info: ModelInfo,
    plan: Plan,
    task: Any,
    inputs: CellInputs,
    *,
    options: RunOptions,
    device: str,
    head_route: bool = True,
    progress: Callable[[float], None] | None = None,
    budget: TokenBudget | None = None,
) -> tuple[dict[str, Any], int]:
    """Run one cell's examples through a loaded model; return store records and n_truncated.

    ``budget`` is the loaded model's token budget, shared by its cells
    (default: ``options.batch_tokens``, with ``"auto"`` resolved for ``model``).
    """
    from xcal.infer import classify, lm, qa, retrieval

    tok = info.tokenizer
    exs = inputs.examples
    n = len(exs)
    bt = budget if budget is not None else token_budget(model, info, task, options, device)
    ids = [ex.example_id for ex in exs]
    kind = task.record_kind
    if kind in ("classification", "multiple_choice"):
        labels = np.array([ex.label for ex in exs], dtype=np.int64)
        if plan.lm:
            options_per = [task.lm_options(ex) for ex in exs]
            k = len(options_per[0])
            requests = [r for opts in options_per for r in opts]
            scores, trunc = lm.score_requests(
                model,
                tok,
                requests,
                max_length=info.max_length,
                batch_tokens=bt,
                device=device,
                head_route=head_route,
                progress=progress,
                weights=np.full(len(requests), 1.0 / k),
            )
            matrix = scores.reshape(n, k)
            n_trunc = int(trunc.reshape(n, k).any(axis=1).sum())
        elif kind == "classification":
            matrix, n_trunc = classify.classify(
                model,
                tok,
                [ex.premise for ex in exs],
                [ex.hypothesis for ex in exs],
                max_length=info.max_length,
                batch_tokens=bt,
                device=device,
                decoder=info.architecture == "decoder-only",
                label_order=plan.label_order,
                progress=progress,
            )
        else:
            matrix, n_trunc = classify.multiple_choice(
                model,
                tok,
                [task.choice_pairs(ex) for ex in exs],
                max_length=info.max_length,
                batch_tokens=bt,
                device=device,
                progress=progress,
            )
        column = "logits" if kind == "classification" else "scores"
        return {"example_id": ids, column: matrix.astype(np.float32), "label": labels}, n_trunc
    if kind == "qa":
        nbest, n_trunc = qa.answer_questions(
            model,
            tok,
            [ex.question for ex in exs],
            [ex.context for ex in exs],
            settings=_qa_settings(info, options),
            batch_tokens=bt,
            device=device,
            progress=progress,
        )
        answers = [
            [{"text": a.text, "answer_start": a.answer_start} for a in ex.answers] for ex in exs
        ]
        records = {"example_id": ids, "nbest": nbest, "answers": answers}
        if all(ex.unit for ex in exs):
            records["unit"] = [ex.unit for ex in exs]  # paragraphs (xcal.analyze.clusters)
        return records, n_trunc
    if kind in ("retrieval", "mining"):
        cands = inputs.candidates or []
        share = n / (n + len(cands))

        def scaled(amount: float) -> None:
            if progress is not None:
                progress(amount * share)

        common = dict(
            pooling=plan.pooling,
            prefix=plan.prefix,
            max_length=info.max_length,
            batch_tokens=bt,
            device=device,
            progress=scaled,
        )
        q_emb, q_trunc = retrieval.embed(model, tok, [ex.query for ex in exs], **common)  # type: ignore[arg-type]
        c_emb, c_trunc = retrieval.embed(model, tok, [c.text for c in cands], **common)  # type: ignore[arg-type]
        cand_ids = [c.candidate_id for c in cands]
        if kind == "mining":
            idx, scores, q_mean, c_mean = retrieval.mining_neighbours(
                q_emb, c_emb, options.top_k, task.margin_k
            )
            margin_columns = {"query_knn_mean": q_mean, "candidate_knn_mean": c_mean[idx]}
        else:
            idx, scores = retrieval.top_k(q_emb, c_emb, options.top_k)
            margin_columns = {}
        return {
            "example_id": ids,
            "candidate_ids": [[cand_ids[j] for j in row] for row in idx],
            "scores": scores,
            "gold_ids": [list(ex.gold_ids) for ex in exs],
            **margin_columns,
        }, q_trunc + c_trunc
    raise ModelSpecError(f"task {task.name!r}: unsupported record kind {kind!r}")


# --------------------------------------------------------------------------- the grid


def store_model_name(spec: ModelSpec, plan: Plan) -> str:
    """The model name a run is stored under (LM-scored runs are marked, see LM_SCORING_SUFFIX)."""
    return spec.store_name + (LM_SCORING_SUFFIX if plan.lm else "")


def run_grid(
    grid: Grid,
    store: Any,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    options: RunOptions | None = None,
    shard: tuple[int, int] = (0, 1),
    reporter: Reporter | None = None,
) -> list[CellResult]:
    """Run (this shard of) a grid into ``store``; return one result per cell.

    Parameters
    ----------
    grid : Grid
        Models x tasks x languages x perturbations.
    store : PredictionStore or path
        Where runs are written (:func:`xcal.store.open_store` is applied to a path).
    data_dir : path, optional
        The XTREME data directory (default: ``XCAL_DATA_DIR`` or ``../shared/data/xtreme``).
    options : RunOptions
        Batching, device, dtype, limit, top-k and QA settings.
    shard : (i, N)
        Run only the i-th of N contiguous blocks of the grid's cells.
    reporter : Reporter, optional
        Progress display (default: none).

    Returns
    -------
    list of CellResult
        ``written``, ``skipped`` (already stored with the same fingerprint) or
        ``failed`` (with the error) for every cell of the shard.

    Raises
    ------
    InferInputError
        Problems with the data, the perturbations or model/task fit, found
        before any weights are loaded.
    """
    from xcal.paths import data_dir as resolve_data_dir
    from xcal.store import open_store
    from xcal.tasks import MissingDataError, TaskDataError, UnknownTaskError, get_task

    options = options or RunOptions()
    reporter = reporter or NullReporter()
    if isinstance(store, str | os.PathLike):
        store = open_store(store)
    root = resolve_data_dir(data_dir)

    # 1. Grid and data.
    try:
        cells = shard_cells(grid.cells(root), shard)
    except (UnknownTaskError, MissingDataError, TaskDataError, GridError) as exc:
        raise InferInputError([str(exc)]) from None
    try:
        device = pick_device(options.device)
    except Exception as exc:  # an unknown or unavailable device
        raise InferInputError([str(exc)]) from None
    if options.threads is not None:
        import torch

        torch.set_num_threads(options.threads)
    try:
        dtype = check_dtype(options.dtype, device)
    except ModelSpecError as exc:
        raise InferInputError([str(exc)]) from None
    problems: list[str] = []
    cache: dict[Any, Any] = {}
    inputs: dict[Cell, CellInputs] = {}
    for cell in cells:
        try:
            inputs[cell] = prepare_inputs(cell, root, options.limit, cache)
        except (TaskDataError, GridError, ValueError) as exc:
            problems.append(str(exc))
            continue
        problems.extend(storable_problems(cell, inputs[cell]))
    # 2. Model configs against tasks (no weights).
    models = list(dict.fromkeys(c.model for c in cells))
    for spec in models:
        try:
            info = inspect_model(spec, tokenizer=False)
        except Exception as exc:  # any failure to read a model is reported with the others
            problems.append(f"model {spec.name!r}: {exc}")
            continue
        for task_name in dict.fromkeys(c.task for c in cells if c.model == spec):
            try:
                plan_for(info, get_task(task_name))
            except ModelSpecError as exc:
                problems.append(str(exc))
    if problems:
        raise InferInputError(list(dict.fromkeys(problems)))
    del cache

    # 3 and 4, model by model (or, sharing bottom layers, cell by cell).
    job = _Job(inputs, store, options, device, dtype, reporter)
    if options.share_layers and len(models) > 1:
        return _run_shared(models, cells, job)
    results: list[CellResult] = []
    for spec in models:
        results.extend(_run_model(spec, [c for c in cells if c.model == spec], job))
    return results


@dataclass(frozen=True)
class _Job:
    """What every model of one :func:`run_grid` call shares."""

    inputs: dict[Cell, CellInputs]
    store: Any
    options: RunOptions
    device: str
    dtype: str
    reporter: Reporter


def _pending_cells(
    spec: ModelSpec, cells: list[Cell], job: _Job
) -> tuple[ModelInfo | None, dict[Cell, CellResult], list[tuple[Cell, Plan, Any]]]:
    """A model's info, its cells already settled (stored or failed), and the cells left to run."""
    inputs, store, options, reporter = job.inputs, job.store, job.options, job.reporter
    device, dtype = job.device, job.dtype
    from xcal.store import RunManifest
    from xcal.tasks import get_task

    try:
        info = inspect_model(spec)
    except Exception as exc:
        failed = {c: CellResult(c, "failed", error=f"model {spec.name!r}: {exc}") for c in cells}
        return None, failed, []
    results: dict[Cell, CellResult] = {}
    pending: list[tuple[Cell, Plan, RunManifest]] = []
    for cell in cells:
        task = get_task(cell.task)
        plan = plan_for(info, task)
        cell_inputs = inputs[cell]
        manifest = RunManifest(
            model=store_model_name(spec, plan),
            task=cell.task,
            split=cell.split_label,
            language=cell.language,
            record_kind=task.record_kind,  # type: ignore[arg-type]
            input_fingerprint=input_fingerprint(info, plan, task, cell_inputs, options),
            n_examples=len(cell_inputs.examples),
            n_classes=_n_classes(task, cell_inputs),
            model_revision=info.revision,
            architecture=info.architecture,  # type: ignore[arg-type]
            intermediate_tasks=spec.intermediate_tasks,
            train_seed=spec.train_seed,
            device=device,
            dtype=dtype,
            **cell_inputs.perturbation_fields,
        )
        try:
            stored = store.has_run(manifest)
            if not stored and store.path_for(manifest).exists():
                # A concurrent job may have stored the cell after has_run answered;
                # runs are only ever replaced whole, so a second look is final.
                stored = store.has_run(manifest)
                if not stored and not options.overwrite:
                    raise GridError(
                        f"{cell.describe()}: already stored with another input fingerprint (the "
                        "data, perturbation, model or settings changed); pass --overwrite to "
                        "replace it"
                    )
            if stored:
                results[cell] = CellResult(
                    cell, "skipped", run_id=store.run_id(manifest), n_examples=manifest.n_examples
                )
                reporter.cell_finished(results[cell])
                continue
        except Exception as exc:
            results[cell] = CellResult(cell, "failed", error=str(exc))
            reporter.cell_finished(results[cell])
            continue
        pending.append((cell, plan, manifest))
    return info, results, pending


@dataclass
class _Loaded:
    """A model loaded for one head, with what its cells need."""

    model: Any
    head_route: bool
    budget: TokenBudget


def _load_head(
    spec: ModelSpec,
    info: ModelInfo,
    group: list[tuple[Cell, Plan, Any]],
    job: _Job,
    results: dict[Cell, CellResult],
) -> _Loaded | None:
    """Load the model for the head of ``group``'s cells and warm it up.

    On failure every cell of the group is recorded as failed in ``results``
    and None is returned.
    """
    from xcal.tasks import get_task

    cell, plan, _ = group[0]
    task = get_task(cell.task)
    try:
        model = load_for(info, plan, task, device=job.device, dtype=job.dtype)
        head_route = True
        if plan.lm:
            from xcal.infer.lm import check_lm_head_route

            head_route = check_lm_head_route(model, info.tokenizer, job.device)
        budget = token_budget(model, info, task, job.options, job.device)
        _warm_up(model, info, plan, cell, job.inputs[cell], job.options, job.device)
    except Exception as exc:
        for c, _, _ in group:
            results[c] = CellResult(c, "failed", error=f"loading {spec.name!r}: {exc}")
            job.reporter.cell_finished(results[c])
        return None
    return _Loaded(model, head_route, budget)


def _release(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _run_model(spec: ModelSpec, cells: list[Cell], job: _Job) -> list[CellResult]:
    info, results, pending = _pending_cells(spec, cells, job)
    # Load each head once; cells keep their order within a head.
    for head in dict.fromkeys(p.head for _, p, _ in pending):
        assert info is not None  # pending cells imply a readable model
        group = [(c, p, m) for c, p, m in pending if p.head == head]
        loaded = _load_head(spec, info, group, job, results)
        if loaded is None:
            continue
        done = _run_group(
            loaded.model,
            info,
            group,
            job.inputs,
            job.store,
            job.options,
            job.device,
            job.reporter,
            loaded.head_route,
            loaded.budget,
        )
        for result in done:
            results[result.cell] = result
        del loaded
        _release(job.device)
    return [results[c] for c in cells]


def _run_shared(specs: list[ModelSpec], cells: list[Cell], job: _Job) -> list[CellResult]:
    """Run models whose bottom layers are identical together, cell by cell.

    Each model with a single head to run is loaded once, and
    :func:`xcal.infer.shared_layers.share_bottom_layers` gives the models
    that share bottom layers with the first one a common prefix whose
    output is computed once per batch; every input cell then goes through
    all models before the next, so the prefix keeps one cell's outputs at a
    time. Models with several heads, or none in common, run as usual.
    Results are the same as :func:`_run_model`'s, run by run.
    """
    from xcal.infer.shared_layers import LayerMemo, share_bottom_layers

    results: dict[Cell, CellResult] = {}
    loaded: dict[ModelSpec, tuple[ModelInfo, _Loaded, list[tuple[Cell, Plan, Any]]]] = {}
    alone: list[ModelSpec] = []
    for spec in specs:
        model_cells = [c for c in cells if c.model == spec]
        info, settled, pending = _pending_cells(spec, model_cells, job)
        results.update(settled)
        if not pending:
            continue
        if info is None or len({p.head for _, p, _ in pending}) > 1:
            alone.append(spec)
            continue
        if (model := _load_head(spec, info, pending, job, results)) is not None:
            loaded[spec] = (info, model, pending)
    memo = LayerMemo()
    depth = share_bottom_layers([m.model for _, m, _ in loaded.values()], memo)
    if depth:
        job.reporter.note(
            f"{len(loaded)} models share their embeddings and bottom {depth} layer(s): "
            "computed once per batch"
        )
    # The same input cell of every model, one after the other.
    by_input: dict[Any, list[tuple[ModelSpec, tuple[Cell, Plan, Any]]]] = {}
    for spec, (_, _, pending) in loaded.items():
        for item in pending:
            by_input.setdefault(dataclasses.replace(item[0], model=specs[0]), []).append(
                (spec, item)
            )
    for items in by_input.values():
        for spec, (cell, plan, manifest) in items:
            info, model, _ = loaded[spec]
            results[cell] = _run_cell(
                model.model,
                info,
                plan,
                cell,
                job.inputs[cell],
                manifest,
                job.store,
                job.options,
                job.device,
                job.reporter,
                head_route=model.head_route,
                budget=model.budget,
            )
        memo.clear()
    del loaded
    _release(job.device)
    for spec in alone:
        done = _run_model(spec, [c for c in cells if c.model == spec], job)
        results.update({r.cell: r for r in done})
    return [results[c] for c in cells]


def _run_group(
    model: Any,
    info: ModelInfo,
    group: list[tuple[Cell, Plan, Any]],
    inputs: dict[Cell, CellInputs],
    store: Any,
    options: RunOptions,
    device: str,
    reporter: Reporter,
    head_route: bool,
    budget: TokenBudget,
) -> list[CellResult]:
    """Run the cells of one loaded head, in order (two at a time on a GPU)."""
    # On a GPU two cells are in flight: while one tokenises or is written
    # (host work, mostly outside the GIL), the other's batches run on the device.
    workers = cell_workers(device)
    ordered = _InOrder(reporter, [c for c, _, _ in group])
    write_lock = threading.Lock()
    # A fast tokenizer keeps its truncation settings in its Rust object, so
    # threads tokenising at once each need their own copy.
    local = threading.local()

    def own_info() -> ModelInfo:
        if workers == 1:
            return info
        if not hasattr(local, "info"):
            local.info = dataclasses.replace(info, tokenizer=copy.deepcopy(info.tokenizer))
        return local.info

    def run_one(item: tuple[Cell, Plan, Any]) -> CellResult:
        cell, plan, manifest = item
        return _run_cell(
            model,
            own_info(),
            plan,
            cell,
            inputs[cell],
            manifest,
            store,
            options,
            device,
            ordered.for_cell(cell),
            head_route=head_route,
            budget=budget,
            write_lock=write_lock,
        )

    if workers == 1:
        return [run_one(item) for item in group]
    # The thread feeding the device gives up the GIL in every torch call; with
    # the default 5 ms switch interval it can wait that long to get it back
    # from a thread padding or tokenising, leaving the device idle.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.0005))
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="xcal-cell") as pool:
            return list(pool.map(run_one, group))
    finally:
        sys.setswitchinterval(interval)


def cell_workers(device: str) -> int:
    """Cells run at the same time on ``device``: 2 on CUDA (host work overlaps), else 1."""
    return 2 if device.startswith("cuda") else 1


class _InOrder:
    """Hands a reporter the events of concurrently running cells one cell at a time.

    A cell that starts while an earlier one runs has its progress held back
    and replayed when the earlier cell finishes, so a reporter sees the same
    sequence (started, advance..., finished) per cell as in a serial run.
    """

    def __init__(self, reporter: Reporter, cells: Sequence[Cell]) -> None:
        self._reporter = reporter
        self._order = list(cells)
        self._pos = 0
        self._lock = threading.Lock()
        self._total: dict[Cell, float] = {}
        self._pending: dict[Cell, float] = {}
        self._result: dict[Cell, CellResult] = {}
        self._shown: set[Cell] = set()

    def for_cell(self, cell: Cell) -> Reporter:
        return _CellReporter(self, cell)

    def started(self, cell: Cell, total: float) -> None:
        with self._lock:
            self._total[cell] = total
            self._flush()

    def advance(self, cell: Cell, amount: float) -> None:
        with self._lock:
            if (
                self._pos < len(self._order)
                and self._order[self._pos] == cell
                and (cell in self._shown)
            ):
                self._reporter.advance(amount)
            else:
                self._pending[cell] = self._pending.get(cell, 0.0) + amount

    def finished(self, result: CellResult) -> None:
        with self._lock:
            self._result[result.cell] = result
            self._flush()

    def note(self, text: str) -> None:
        with self._lock:
            self._reporter.note(text)

    def _flush(self) -> None:
        while self._pos < len(self._order):
            cell = self._order[self._pos]
            if cell not in self._total:
                return
            if cell not in self._shown:
                self._reporter.cell_started(cell, self._total[cell])
                self._shown.add(cell)
            if self._pending.get(cell):
                self._reporter.advance(self._pending.pop(cell))
            if cell not in self._result:
                return
            self._reporter.cell_finished(self._result[cell])
            self._pos += 1


@dataclass
class _CellReporter:
    owner: _InOrder
    cell: Cell

    def cell_started(self, cell: Cell, total: float) -> None:
        self.owner.started(cell, total)

    def advance(self, amount: float) -> None:
        self.owner.advance(self.cell, amount)

    def cell_finished(self, result: CellResult) -> None:
        self.owner.finished(result)

    def note(self, text: str) -> None:
        self.owner.note(text)


def _warm_up(
    model: Any,
    info: ModelInfo,
    plan: Plan,
    cell: Cell,
    cell_inputs: CellInputs,
    options: RunOptions,
    device: str,
) -> None:
    """Run one example through the model, untimed.

    The first forward pass triggers lazy imports and kernel selection inside
    torch and transformers (seconds on a busy node); doing it here keeps that
    out of the first run's examples per second, and a broken model fails
    before any run starts.
    """
    from xcal.tasks import get_task

    cands = cell_inputs.candidates[:1] if cell_inputs.candidates is not None else None
    one = CellInputs(cell_inputs.examples[:1], cands, cell_inputs.perturbation_fields)
    compute_records(model, info, plan, get_task(cell.task), one, options=options, device=device)


def _n_classes(task: Any, inputs: CellInputs) -> int | None:
    if task.record_kind == "classification":
        return int(task.n_classes)
    if task.record_kind == "multiple_choice":
        return len(inputs.examples[0].choices)
    return None


def _run_cell(
    model: Any,
    info: ModelInfo,
    plan: Plan,
    cell: Cell,
    cell_inputs: CellInputs,
    manifest: Any,
    store: Any,
    options: RunOptions,
    device: str,
    reporter: Reporter,
    *,
    head_route: bool = True,
    budget: TokenBudget | None = None,
    write_lock: threading.Lock | None = None,
) -> CellResult:
    from xcal.tasks import get_task

    task = get_task(cell.task)
    n = len(cell_inputs.examples)
    reporter.cell_started(cell, float(n))
    start = time.perf_counter()
    try:
        records, n_trunc = compute_records(
            model,
            info,
            plan,
            task,
            cell_inputs,
            options=options,
            device=device,
            head_route=head_route,
            progress=reporter.advance,
            budget=budget,
        )
        seconds = time.perf_counter() - start
        manifest = dataclasses.replace(
            manifest, n_truncated=int(n_trunc), wall_time_s=round(seconds, 3)
        )
        with write_lock or contextlib.nullcontext():
            run_id, wrote = store.write_run_outcome(
                manifest,
                records,
                overwrite=options.overwrite,
                expected_n_classes=(
                    manifest.n_classes if task.record_kind == "classification" else None
                ),
            )
        # A concurrent job may have stored the same run first: then nothing was written.
        result = CellResult(
            cell,
            "written" if wrote else "skipped",
            run_id=run_id,
            n_examples=n,
            n_truncated=int(n_trunc),
            seconds=seconds,
            n_cut=cell_inputs.n_cut,
        )
    except Exception as exc:
        result = CellResult(
            cell,
            "failed",
            n_examples=n,
            seconds=time.perf_counter() - start,
            error=f"{type(exc).__name__}: {exc}",
        )
    reporter.cell_finished(result)
    return result


def summarize(results: Sequence[CellResult]) -> dict[str, int]:
    """Counts of written, skipped and failed cells, and of inputs cut before tokenising."""
    out = {"written": 0, "skipped": 0, "failed": 0, "cut": 0}
    for r in results:
        out[r.status] += 1
        out["cut"] += r.n_cut
    return out
