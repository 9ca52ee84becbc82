"""Import lm-evaluation-harness results (``--log_samples``) into a prediction store.

lm-eval 0.4.x writes, per model, ``results_<date>.json`` (aggregate metrics,
each task's config, the model's name and arguments) and, with
``--log_samples``, ``samples_<task>_<date>.jsonl``: one JSON object per
document with ``doc_id``, ``doc``, ``target``, ``arguments`` (the
``(context, continuation)`` request of every answer option, as
``{"gen_args_0": {"arg_0": context, "arg_1": continuation}, ...}``) and
``resps`` / ``filtered_resps`` (per option ``[log-likelihood, is_greedy]``,
written as strings). A multiple-choice task's per-option log-likelihoods are
exactly the scores ``xcal infer --scoring lm`` stores, so each such task
becomes one store run:

* **task and language** from the task name: the first ``_``-separated part
  that names a known multilingual family (:data:`FAMILIES`: ``xnli``,
  ``paws``/``pawsx``, ``xcopa``, ``xstorycloze``, ``xwinograd``, ``belebele``)
  and the last part (two for ``belebele_deu_Latn``) as the language, so both
  lm-eval's ``xnli_de`` and a local ``xnli_local_de`` are XNLI in German;
  ``task_map`` names any other task;
* **split** from the task config (its test split if it has one, else its
  validation split), in xcal's names for xcal's tasks (XNLI ``validation`` is
  ``dev``, XCOPA ``validation`` is ``val``);
* **example ids** from ``doc_id`` (the document's index in that split), in
  xcal's format (``xnli-dev-000012``): two models' imports pair on the same
  documents, and with ``xcal infer`` runs when lm-eval read the same files
  (XNLI, PAWS-X and XCOPA ``doc_id`` *i* is line *i* of the XTREME file);
* **scores** per option as the run's logits (classification tasks) or scores
  (multiple choice), reordered into xcal's label order (lm-eval's XNLI options
  are entailment, neutral, contradiction; xcal's labels contradiction,
  entailment, neutral); **gold** from ``target``;
* the **model** from the results' ``model_name`` (or ``pretrained`` in
  ``model_args``), its revision a hash of the weights when it is a local
  checkpoint, the architecture ``decoder-only`` (``encoder-decoder`` for
  lm-eval's ``backend=seq2seq``).

Generation, perplexity and single-continuation tasks have no options to
calibrate and are listed as skipped with the reason. Everything is read and
checked before anything is written: a malformed or other-version file, a task
without choices, an option count that changes, or two models whose same
``doc_id`` is a different document is an :class:`LmEvalImportError` naming
the file and line, and the store is left as it was.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xcal.store import RunManifest, StoreValidationError, fingerprint

__all__ = [
    "FAMILIES",
    "Family",
    "ImportedRun",
    "LmEvalImport",
    "LmEvalImportError",
    "SkippedTask",
    "import_lm_eval",
    "read_lm_eval",
    "resolve_task",
]


class LmEvalImportError(ValueError):
    """lm-eval output that cannot be imported; the message names the file and line."""


@dataclass(frozen=True)
class Family:
    """How the tasks of one lm-eval multilingual family map onto xcal.

    ``options`` names lm-eval's answer options in their order when they are
    labels of an xcal task in another order (XNLI); ``splits`` renames
    lm-eval's split names to the xcal task's; ``languages`` fixes
    non-standard language codes; ``language_parts`` is how many trailing
    ``_``-separated parts of the task name are the language.
    """

    task: str
    options: tuple[str, ...] | None = None
    splits: Mapping[str, str] = field(default_factory=dict)
    languages: Mapping[str, str] = field(default_factory=dict)
    language_parts: int = 1


_XTREME_SPLITS = {"validation": "dev"}
FAMILIES: dict[str, Family] = {
    "xnli": Family(
        "xnli", options=("entailment", "neutral", "contradiction"), splits=_XTREME_SPLITS
    ),
    "paws": Family("pawsx", splits=_XTREME_SPLITS),
    "pawsx": Family("pawsx", splits=_XTREME_SPLITS),
    "xcopa": Family("xcopa", splits={"validation": "val"}),
    "xstorycloze": Family("xstorycloze"),
    "xwinograd": Family("xwinograd", languages={"jp": "ja"}),
    "belebele": Family("belebele", language_parts=2),
}

_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def resolve_task(
    name: str, task_map: Mapping[str, str] | None = None
) -> tuple[str, str, Family | None] | None:
    """``(xcal task, language, family)`` of an lm-eval task name, or None if unknown.

    ``task_map`` maps a task name to ``"task:language"`` and wins over the
    family table.

    Examples
    --------
    >>> resolve_task("xnli_de")[:2]
    ('xnli', 'de')
    >>> resolve_task("xcal_xcopa_local_et")[:2]
    ('xcopa', 'et')
    >>> resolve_task("belebele_deu_Latn")[:2]
    ('belebele', 'deu_Latn')
    >>> resolve_task("arc_easy") is None
    True
    >>> resolve_task("arc_easy", {"arc_easy": "arc:en"})[:2]
    ('arc', 'en')
    """
    if task_map and name in task_map:
        task, _, language = task_map[name].partition(":")
        family = next((f for f in FAMILIES.values() if f.task == task), None)
        return task, language, family
    parts = name.split("_")
    for i, part in enumerate(parts):
        family = FAMILIES.get(part)
        if family is None or len(parts) - i - 1 < family.language_parts:
            continue
        language = "_".join(parts[len(parts) - family.language_parts :])
        language = family.languages.get(language, language)
        if _LANGUAGE_RE.match(language):
            return family.task, language, family
    return None


@dataclass(frozen=True)
class ImportedRun:
    """One task of one model's results, ready for :meth:`PredictionStore.write_run`."""

    manifest: RunManifest
    records: dict[str, Any]
    lm_eval_task: str
    source: Path


@dataclass(frozen=True)
class SkippedTask:
    """An lm-eval task that has no per-option scores to import, and why."""

    lm_eval_task: str
    model: str
    reason: str
    source: Path


@dataclass
class LmEvalImport:
    """What :func:`read_lm_eval` found and :func:`import_lm_eval` did.

    ``status`` has one entry per run after an import: ``"written"`` or
    ``"already stored"`` (same key and inputs).
    """

    runs: list[ImportedRun]
    skipped: list[SkippedTask]
    run_ids: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading


@dataclass
class _Doc:
    doc_id: int
    line: int
    scores: list[float]
    gold: int
    requests: list[tuple[str, str]]
    doc_hash: str


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LmEvalImportError(f"{path}: cannot read the file ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LmEvalImportError(
            f"{path} line {exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno})"
        ) from None


def _number(value: Any) -> float | None:
    """lm-eval writes log-likelihoods as strings (``"-12.5"``); older files as numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _option_score(where: str, k: int, filtered: Any, resps: Any) -> float:
    entry = None
    if isinstance(filtered, list) and k < len(filtered):
        entry = filtered[k]
    elif isinstance(resps, list) and k < len(resps) and isinstance(resps[k], list) and resps[k]:
        entry = resps[k][0]
    # One option's response is [log-likelihood, is_greedy].
    if not isinstance(entry, list | tuple) or len(entry) != 2:
        raise LmEvalImportError(
            f"{where}: option {k} has no [log-likelihood, is_greedy] response (got {entry!r}); "
            "not a loglikelihood request of lm-eval 0.4.x"
        )
    value = _number(entry[0])
    if value is None or not math.isfinite(value):
        raise LmEvalImportError(
            f"{where}: option {k} log-likelihood {entry[0]!r} is not a finite number"
        )
    return value


def _gold(
    where: str, row: Mapping[str, Any], requests: Sequence[tuple[str, str]], scores: Sequence[float]
) -> int:
    """The gold option: lm-eval writes ``str(target)``, an option index or the option's text.

    Winograd-style tasks (one continuation after each option's context, as in
    XWinograd) log the shared continuation as the target; their gold index is
    not in the sample, but with two options it follows from ``acc`` (1 when the
    highest-scoring option, the first of ties as in lm-eval, is the gold one).
    """
    target = row["target"]
    if isinstance(target, bool) or target is None:
        raise LmEvalImportError(f"{where}: 'target' is {target!r}, not an option")
    text = str(target).strip()
    if re.fullmatch(r"\d+", text) and int(text) < len(requests):
        return int(text)
    acc = row.get("acc")
    if (
        len(requests) == 2
        and len({cont for _, cont in requests}) == 1
        and len({ctx for ctx, _ in requests}) == 2
        and acc in (0, 1)
        and not isinstance(acc, bool)
    ):
        best = int(np.argmax(scores))
        return best if acc == 1 else 1 - best
    matches = [k for k, (_, cont) in enumerate(requests) if cont.strip() == text]
    if len(matches) == 1:
        return matches[0]
    raise LmEvalImportError(
        f"{where}: target {target!r} is neither an option index (0-{len(requests) - 1}) nor the "
        "text of exactly one option (a task with several gold answers cannot be imported)"
    )


def _parse_line(where: str, row: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    if not isinstance(row, dict):
        raise LmEvalImportError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [k for k in ("doc_id", "arguments", "target") if k not in row]
    if "resps" not in row and "filtered_resps" not in row:
        missing.append("resps")
    if missing:
        raise LmEvalImportError(
            f"{where}: no {', '.join(repr(m) for m in missing)}; not an lm-eval 0.4.x samples line"
        )
    doc_id = row["doc_id"]
    if isinstance(doc_id, bool) or not isinstance(doc_id, int) or doc_id < 0:
        raise LmEvalImportError(f"{where}: 'doc_id' must be a non-negative int, got {doc_id!r}")
    arguments = row["arguments"]
    if isinstance(arguments, list):
        raise LmEvalImportError(
            f"{where}: 'arguments' is a list, as lm-eval before 0.4.2 wrote it; xcal reads the "
            "samples_<task>_<date>.jsonl files of lm-eval 0.4.2 and later "
            '({"gen_args_0": {"arg_0": context, "arg_1": continuation}, ...})'
        )
    if not isinstance(arguments, dict):
        raise LmEvalImportError(f"{where}: 'arguments' must be an object of gen_args_<i>")
    requests: list[tuple[str, str]] = []
    for k in range(len(arguments)):
        args = arguments.get(f"gen_args_{k}")
        if not isinstance(args, dict):
            raise LmEvalImportError(
                f"{where}: 'arguments' has no 'gen_args_{k}' (keys: {', '.join(sorted(arguments))})"
            )
        context, continuation = args.get("arg_0"), args.get("arg_1")
        if not isinstance(context, str) or not isinstance(continuation, str):
            raise LmEvalImportError(
                f"{where}: gen_args_{k} is not a (context, continuation) pair of strings; "
                "not a loglikelihood request"
            )
        requests.append((context, continuation))
    return row, requests


def _read_samples(path: Path) -> list[_Doc]:
    """Every document of a samples file, in doc_id order, checked line by line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LmEvalImportError(f"{path}: cannot read the file ({exc})") from None
    if raw.lstrip().startswith(b"["):
        raise LmEvalImportError(
            f"{path} line 1: a JSON array, as lm-eval before 0.4.2 wrote samples; xcal reads "
            "the samples_<task>_<date>.jsonl files (one JSON object a line) of lm-eval 0.4.2 and later"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise LmEvalImportError(f"{path} line {line}: not valid UTF-8 ({exc.reason})") from None
    docs: dict[int, _Doc] = {}
    filters: dict[int, str] = {}
    width: tuple[int, int] | None = None
    for lineno, content in enumerate(text.split("\n"), start=1):
        if not content.strip():
            continue
        where = f"{path} line {lineno}"
        try:
            row = json.loads(content)
        except json.JSONDecodeError as exc:
            raise LmEvalImportError(f"{where}: invalid JSON ({exc.msg})") from None
        row, requests = _parse_line(where, row)
        doc_id = row["doc_id"]
        filter_key = str(row.get("filter", ""))
        if doc_id in docs:
            if filters[doc_id] != filter_key:
                continue  # the same document under another filter: the first filter's scores
            raise LmEvalImportError(
                f"{where}: doc_id {doc_id} appears again (first on line {docs[doc_id].line})"
            )
        if len(requests) < 2:
            raise LmEvalImportError(
                f"{where}: {len(requests)} answer option(s); only multiple-choice tasks (two or "
                "more options scored by log-likelihood) can be imported"
            )
        if width is not None and len(requests) != width[0]:
            raise LmEvalImportError(
                f"{where}: {len(requests)} options, but line {width[1]} has {width[0]}; a run "
                "needs the same number of options for every document"
            )
        width = width or (len(requests), lineno)
        scores = [
            _option_score(where, k, row.get("filtered_resps"), row.get("resps"))
            for k in range(len(requests))
        ]
        doc_hash = row.get("doc_hash")
        if not isinstance(doc_hash, str):
            doc_hash = fingerprint(row.get("doc"))
        docs[doc_id] = _Doc(
            doc_id, lineno, scores, _gold(where, row, requests, scores), requests, doc_hash
        )
        filters[doc_id] = filter_key
    if not docs:
        raise LmEvalImportError(f"{path}: no samples")
    return [docs[i] for i in sorted(docs)]


def _check_xnli_order(path: Path, docs: Sequence[_Doc], language: str) -> None:
    """lm-eval's XNLI options are (entailment, neutral, contradiction): check it from the words.

    The XGLM template puts the label word after the question word
    ("{premise}, right? Yes, {hypothesis}"); reordering options by a wrong
    assumption would silently mislabel every example, so a language with known
    words is checked on every document.
    """
    from xcal.tasks.pair import XNLI_PROMPT_WORDS

    if language not in XNLI_PROMPT_WORDS:
        return
    q, yes, also, no = XNLI_PROMPT_WORDS[language]
    expected = ((yes,), (also,), (no, "رقم") if language == "ar" else (no,))
    for doc in docs:
        for k, words in enumerate(expected):
            text = "".join(doc.requests[k])
            if not any(f"{q}? {w}," in text for w in words):
                raise LmEvalImportError(
                    f"{path} line {doc.line}: option {k} should be the "
                    f"{FAMILIES['xnli'].options[k]} option ({q!r}? {words[0]!r}, ...) as in "  # type: ignore[index]
                    f"lm-eval's XNLI tasks, got {text[:120]!r}; to import the options in their own "
                    "order, map the task to a task name of its own with --task-map NAME=TASK:LANG"
                )


def _model_args(results: Mapping[str, Any]) -> dict[str, Any]:
    config = results.get("config")
    args = config.get("model_args") if isinstance(config, dict) else None
    if isinstance(args, dict):
        return args
    if isinstance(args, str):
        out: dict[str, Any] = {}
        for part in args.split(","):
            key, sep, value = part.partition("=")
            if sep:
                out[key.strip()] = value.strip()
        return out
    return {}


def _revision(name: str, results: Mapping[str, Any]) -> str | None:
    from xcal.models import ModelLoadError, weights_sha256

    if Path(name).is_dir():
        try:
            return weights_sha256(name)
        except ModelLoadError:
            pass
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    sha = config.get("model_sha") if isinstance(config, dict) else None
    return f"hub:{sha}" if isinstance(sha, str) and sha else None


def _check_version(path: Path, results: Any) -> None:
    if not isinstance(results, dict) or not isinstance(results.get("configs"), dict):
        raise LmEvalImportError(
            f"{path}: not an lm-eval 0.4.x results file (no 'configs' object of task configs)"
        )
    version = results.get("lm_eval_version")
    if isinstance(version, str) and not version.startswith("0.4."):
        raise LmEvalImportError(
            f"{path}: written by lm-eval {version}; xcal reads the files of lm-eval 0.4.x"
        )


def _split_of(config: Mapping[str, Any]) -> str | None:
    for key in ("test_split", "validation_split"):
        value = config.get(key)
        if isinstance(value, str) and value:
            return value
    return None


_SKIP_REASONS = {
    "generate_until": "a generation task: no per-option scores to calibrate",
    "loglikelihood_rolling": "a perplexity task: no answer options",
    "loglikelihood": "one continuation per document (no answer options to calibrate)",
}


def _read_results(
    path: Path, model: str | None, task_map: Mapping[str, str] | None
) -> tuple[list[ImportedRun], list[SkippedTask], dict[str, list[_Doc]]]:
    from xcal.tasks import get_task, task_names

    results = _load_json(path)
    _check_version(path, results)
    args = _model_args(results)
    name = results.get("model_name") or args.get("pretrained")
    if model is None and not (isinstance(name, str) and name):
        raise LmEvalImportError(
            f"{path}: no 'model_name' (or pretrained= in model_args); pass a model label"
        )
    label = model or str(name)
    date_id = path.stem.removeprefix("results_")
    architecture = (
        "encoder-decoder" if str(args.get("backend", "")) == "seq2seq" else "decoder-only"
    )
    config_all = results.get("config") if isinstance(results.get("config"), dict) else {}
    device = str(config_all.get("device") or "")
    dtype = str(config_all.get("model_dtype") or args.get("dtype") or "").removeprefix("torch.")
    revision = _revision(str(name), results) if name else None
    runs: list[ImportedRun] = []
    skipped: list[SkippedTask] = []
    docs_of: dict[str, list[_Doc]] = {}
    for task_name in sorted(results["configs"]):
        config = results["configs"][task_name]
        if not isinstance(config, dict):
            raise LmEvalImportError(f"{path}: configs[{task_name!r}] is not an object")
        output_type = str(config.get("output_type", ""))
        if output_type != "multiple_choice":
            reason = _SKIP_REASONS.get(
                output_type, f"output_type {output_type!r} has no answer options"
            )
            skipped.append(SkippedTask(task_name, label, reason, path))
            continue
        resolved = resolve_task(task_name, task_map)
        if resolved is None:
            skipped.append(
                SkippedTask(
                    task_name,
                    label,
                    "not a known multilingual task family; name its task and language with "
                    f"--task-map {task_name}=TASK:LANG",
                    path,
                )
            )
            continue
        task, language, family = resolved
        if not _LANGUAGE_RE.match(language):
            raise LmEvalImportError(
                f"{path}: task {task_name!r}: {language!r} is not a language code (e.g. 'de', 'deu_Latn')"
            )
        samples = path.with_name(f"samples_{task_name}_{date_id}.jsonl")
        if not samples.is_file():
            raise LmEvalImportError(
                f"{path}: task {task_name!r} has no samples file {samples.name} next to it; "
                "run lm_eval with --log_samples (and --output_path)"
            )
        docs = _read_samples(samples)
        split = _split_of(config)
        if split is None:
            raise LmEvalImportError(
                f"{path}: task {task_name!r} names neither a test nor a validation split"
            )
        if family is not None:
            split = family.splits.get(split, split)
        k = len(docs[0].scores)
        scores = np.array([d.scores for d in docs], dtype=np.float64)
        gold = np.array([d.gold for d in docs], dtype=np.int64)
        kind = "multiple_choice"
        expected_n = None
        if task in task_names():
            xtask = get_task(task)
            kind = xtask.record_kind
            expected_n = xtask.n_classes
            if kind not in ("classification", "multiple_choice"):
                raise LmEvalImportError(
                    f"{samples}: xcal's task {task!r} is not a classification or multiple-choice task"
                )
            if expected_n is not None and expected_n != k:
                raise LmEvalImportError(
                    f"{samples} line {docs[0].line}: {k} options, but xcal's {task} has "
                    f"{expected_n} labels ({', '.join(xtask.label_names)})"
                )
            if family is not None and family.options is not None:
                if task == "xnli":
                    _check_xnli_order(samples, docs, language)
                # Column j of xcal's labels is lm-eval's option order.index(label j).
                order = [family.options.index(lbl) for lbl in xtask.label_names]
                scores = scores[:, order]
                gold = np.argsort(order)[gold]
        ids = [f"{task}-{split}-{d.doc_id:06d}" for d in docs]
        column = "logits" if kind == "classification" else "scores"
        records = {
            "example_id": ids,
            column: scores.astype(np.float32) if kind == "classification" else scores,
            "label": gold,
        }
        manifest = RunManifest(
            model=label,
            task=task,
            split=split,
            language=language,
            record_kind=kind,  # type: ignore[arg-type]
            input_fingerprint=fingerprint(
                "lm-eval",
                str(name),
                revision,
                json.dumps(args, sort_keys=True, default=str),
                config.get("num_fewshot"),
                ids,
                [d.requests for d in docs],
                gold.tolist(),
            ),
            n_examples=len(docs),
            n_classes=k,
            model_revision=revision,
            architecture=architecture,  # type: ignore[arg-type]
            device=device,
            dtype=dtype,
        )
        runs.append(ImportedRun(manifest, records, task_name, samples))
        docs_of[task_name] = docs
    return runs, skipped, docs_of


def _results_files(directory: Path) -> list[Path]:
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        raise LmEvalImportError(f"{directory}: no such directory (an lm_eval --output_path)")
    files = sorted(directory.rglob("results_*.json"))
    if not files:
        raise LmEvalImportError(
            f"{directory}: no results_*.json file (the --output_path of an lm_eval run "
            "with --log_samples)"
        )
    return files


def read_lm_eval(
    results: str | Path | Iterable[str | Path],
    *,
    model: str | None = None,
    task_map: Mapping[str, str] | None = None,
) -> LmEvalImport:
    """Read and check lm-eval results without writing anything.

    Parameters
    ----------
    results : path or paths
        lm-eval ``--output_path`` folders (searched recursively for
        ``results_*.json``), or results files; one folder may hold several
        models' results.
    model : str, optional
        The model name in the store (default: the results' ``model_name``).
    task_map : dict, optional
        ``{lm-eval task: "task:language"}`` for tasks outside :data:`FAMILIES`.

    Returns
    -------
    LmEvalImport
        The runs to write and the tasks skipped, with reasons.

    Raises
    ------
    LmEvalImportError
        Anything that cannot be imported, naming the file and line.
    """
    paths = [Path(results)] if isinstance(results, str | Path) else [Path(p) for p in results]
    files = [f for p in paths for f in _results_files(p)]
    if model is not None and len(files) > 1:
        raise LmEvalImportError(
            f"a model label names one model, but {len(files)} results files were found: "
            + ", ".join(str(f) for f in files)
        )
    runs: list[ImportedRun] = []
    skipped: list[SkippedTask] = []
    seen: dict[tuple[Any, ...], ImportedRun] = {}
    # (task, split, language) -> doc_id -> (hash, file, line): the same doc_id must be the same document.
    documents: dict[tuple[str, str, str], dict[int, tuple[str, Path, int]]] = {}
    for path in files:
        file_runs, file_skipped, docs_of = _read_results(path, model, task_map)
        for run in file_runs:
            key = run.manifest.key()
            if key in seen:
                raise LmEvalImportError(
                    f"{run.source}: {run.manifest.model} on {run.manifest.task}/"
                    f"{run.manifest.language} is also in {seen[key].source}; import one of them "
                    "(or give each a model label)"
                )
            seen[key] = run
            cell = (run.manifest.task, run.manifest.split, run.manifest.language)
            known = documents.setdefault(cell, {})
            for doc in docs_of[run.lm_eval_task]:
                other = known.get(doc.doc_id)
                if other is None:
                    known[doc.doc_id] = (doc.doc_hash, run.source, doc.line)
                elif other[0] != doc.doc_hash:
                    raise LmEvalImportError(
                        f"{run.source} line {doc.line}: doc_id {doc.doc_id} is another document "
                        f"than doc_id {doc.doc_id} of {other[1]} line {other[2]}; the models were "
                        "not evaluated on the same data, so their runs would not pair"
                    )
        runs += file_runs
        skipped += file_skipped
    return LmEvalImport(runs, skipped)


def _precheck(store: Any, runs: Sequence[ImportedRun], overwrite: bool) -> None:
    """Everything ``write_run`` would refuse, checked for every run before the first write."""
    from xcal.store.schema import check_columns, check_manifest, records_to_columns
    from xcal.store.store import describe, normalize_manifest

    for run in runs:
        manifest, problems = normalize_manifest(run.manifest)
        where = f"{run.source}: run {describe(manifest)}"
        problems += check_manifest(manifest, where)
        cols, more = records_to_columns(manifest.record_kind, run.records, where)
        problems += more
        if not more:
            problems += check_columns(manifest, cols, where)
        if problems:
            raise LmEvalImportError(str(StoreValidationError(problems)))
        if not overwrite and store.path_for(manifest).exists() and not store.has_run(manifest):
            raise LmEvalImportError(
                f"{run.source}: run {describe(manifest)} is already in the store with other "
                "inputs; pass overwrite=True (--overwrite) to replace it"
            )
        _check_stored_labels(store, run)


def _check_stored_labels(store: Any, run: ImportedRun) -> None:
    """Runs already stored for the same examples must give them the same gold labels.

    Another model imported earlier, or an ``xcal infer`` run, holds the same
    example ids; a different gold label means a different document (or label
    order) behind the same id, and the runs would be compared wrongly.
    """
    m = run.manifest
    stored = store.runs(task=m.task, split=m.split, language=m.language, perturbation="none")
    ours = dict(
        zip(run.records["example_id"], np.asarray(run.records["label"]).tolist(), strict=True)
    )
    for record in stored.to_dict("records"):
        if record["model"] == m.model:
            continue
        other = store.load_records(str(record["run_id"]))
        if other.get("label") is None:
            continue
        for example_id, label in zip(other["example_id"], other["label"], strict=True):
            mine = ours.get(example_id)
            if mine is not None and int(label) != mine:
                raise LmEvalImportError(
                    f"{run.source}: {example_id} has gold label {mine} here but {int(label)} in "
                    f"the stored run of {record['model']!r} ({m.task}/{m.split}/{m.language}); "
                    "the doc ids do not name the same documents, so the runs would not pair"
                )


def import_lm_eval(
    results: str | Path | Iterable[str | Path],
    store: Any,
    *,
    model: str | None = None,
    task_map: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> LmEvalImport:
    """Import lm-eval results into a prediction store (one run per multiple-choice task).

    Every file is read and every run checked before the first write, so bad
    input leaves the store unchanged. Importing the same results again
    changes nothing.

    Parameters
    ----------
    results, model, task_map
        As for :func:`read_lm_eval`.
    store : PredictionStore or path
    overwrite : bool
        Replace runs stored with other inputs (otherwise an error).

    Returns
    -------
    LmEvalImport
        With ``run_ids`` and ``status`` filled.

    Examples
    --------
    >>> import tempfile
    >>> from xcal.interop.lm_eval import import_lm_eval
    >>> import_lm_eval(tempfile.mkdtemp(), tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    xcal.interop.lm_eval.LmEvalImportError: ...: no results_*.json file (the --output_path of an lm_eval run with --log_samples)
    """
    from xcal.store import open_store
    from xcal.store.store import PredictionStore

    found = read_lm_eval(results, model=model, task_map=task_map)
    if not isinstance(store, PredictionStore):
        store = open_store(store)
    _precheck(store, found.runs, overwrite)
    for run in found.runs:
        before = store.has_run(run.manifest)
        found.run_ids.append(store.write_run(run.manifest, run.records, overwrite=overwrite))
        found.status.append("already stored" if before else "written")
    return found
