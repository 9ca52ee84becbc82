"""Task data from Hugging Face ``datasets``: ``--data hf:PATH`` instead of the XTREME layout.

``PATH`` is a data set saved with ``save_to_disk`` (a ``Dataset`` or a
``DatasetDict`` of splits), or local data files that a ``datasets`` builder
reads (``.json``/``.jsonl``, ``.csv``, ``.tsv``, ``.parquet``, ``.arrow``, or a
folder of them, whose file names give the splits). Nothing is downloaded:
``datasets`` runs with ``HF_DATASETS_OFFLINE=1`` and only local paths are
accepted.

Rows go through the same checks and build the same examples as the XTREME
file readers (:meth:`PairTask.make_example`, :meth:`XCOPA.make_example`,
the SQuAD answer check), so messages read the same, with the data set, split
and row in place of the file and line: ``hf:data/xnli-de [validation] row
16: unknown label 'maybe'; expected one of contradiction, entailment,
neutral``. Columns:

========================= ==========================================================
task                      columns
========================= ==========================================================
``xnli``, ``pawsx``       ``premise, hypothesis, label`` or ``sentence1, sentence2,
                          label``; a label is a class name (a ``ClassLabel`` is
                          read by its names, so the Hub's XNLI order entailment,
                          neutral, contradiction is mapped to xcal's) or, for
                          PAWS-X, 0/1
``xquad``, ``mlqa``,      SQuAD format: ``id, context, question, answers`` with
``tydiqa``                ``answers = {"text": [...], "answer_start": [...]}``
``xcopa``                 ``premise, choice1, choice2, question, label`` (``idx``
                          optional)
========================= ==========================================================

A ``language`` (or ``lang``) column splits the rows by language; without one
the data set is one language, which ``--languages`` names. Split names: xcal's
``dev`` and ``val`` are the data set's ``dev``/``val`` or ``validation``; a
single saved ``Dataset``, or a single data file, is whatever split is asked for.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Any

from xcal.tasks.base import MissingDataError, Task, TaskDataError, is_hf_source

__all__ = ["HF_PREFIX", "check_languages", "is_hf_source", "languages", "load"]

HF_PREFIX = "hf:"
LANGUAGE_COLUMNS = ("language", "lang")
_SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "dev": ("dev", "validation"),
    "val": ("val", "validation"),
}
_BUILDERS = {
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".parquet": ("parquet", {}),
    ".arrow": ("arrow", {}),
}


def _location(data_dir: str | os.PathLike[str]) -> str:
    return str(data_dir)[len(HF_PREFIX) :]


@functools.lru_cache(maxsize=8)
def _open(location: str) -> dict[str, Any]:
    """Split name -> ``datasets.Dataset`` (key ``""`` for a single saved Dataset)."""
    name = f"{HF_PREFIX}{location}"
    path = Path(location)
    if not location or not path.exists():
        raise MissingDataError(
            f"{name}: no such file or directory (a data set saved with save_to_disk, or "
            "local data files; the Hugging Face hub is not used)"
        )
    # Local paths only: never let `datasets` reach the network.
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError:
        raise TaskDataError(
            f"{name}: reading it needs the optional `datasets` package (pip install 'xcal[hf]')"
        ) from None
    try:
        if path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json")):
            loaded = datasets.load_from_disk(str(path))
        elif path.is_file():
            builder, kwargs = _BUILDERS.get(path.suffix.lower(), (None, {}))
            if builder is None:
                raise TaskDataError(
                    f"{name}: no `datasets` builder for {path.suffix!r} files; "
                    f"known: {', '.join(sorted(_BUILDERS))}"
                )
            # One file is one split, whichever is asked for (builders call it "train").
            loaded = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
        else:
            loaded = datasets.load_dataset(str(path))
    except TaskDataError:
        raise
    except Exception as exc:  # datasets raises many types for unreadable data
        raise TaskDataError(f"{name}: cannot load it with `datasets` ({exc})") from None
    if isinstance(loaded, datasets.DatasetDict):
        return dict(loaded)
    return {"": loaded}


def _split(data_dir: str | os.PathLike[str], split: str) -> tuple[str, Any]:
    splits = _open(_location(data_dir))
    if "" in splits:
        return split, splits[""]
    for name in _SPLIT_ALIASES.get(split, (split,)):
        if name in splits:
            return name, splits[name]
    raise MissingDataError(
        f"{data_dir}: no split {split!r}"
        + (f" (looked for {', '.join(_SPLIT_ALIASES[split])})" if split in _SPLIT_ALIASES else "")
        + f"; it has {', '.join(sorted(splits))}"
    )


def _language_column(dataset: Any) -> str | None:
    return next((c for c in LANGUAGE_COLUMNS if c in dataset.column_names), None)


def languages(task: Task, data_dir: str | os.PathLike[str], split: str) -> list[str]:
    """Languages of the data set's ``language`` column (empty without one)."""
    _, dataset = _split(data_dir, split)
    column = _language_column(dataset)
    return sorted({str(v) for v in dataset[column]}) if column else []


def check_languages(
    task: Task, data_dir: str | os.PathLike[str], wanted: list[str] | tuple[str, ...], split: str
) -> None:
    """Raise :class:`MissingDataError` naming what is missing and what the data set has."""
    _, dataset = _split(data_dir, split)
    column = _language_column(dataset)
    if column is None:
        if len(wanted) != 1 or wanted[0] == "(any)":
            asked = "none" if list(wanted) == ["(any)"] else ", ".join(wanted)
            raise MissingDataError(
                f"{data_dir}: no 'language' column, so it holds one language; name it with "
                f"--languages (exactly one; asked for: {asked})"
            )
        return
    have = languages(task, data_dir, split)
    missing = [lang for lang in wanted if lang not in have]
    if missing:
        raise MissingDataError(
            f"task {task.name!r} ({split}): {data_dir} has no rows for language(s) "
            f"{', '.join(missing)}; its {column!r} column has {', '.join(have) or '(none)'}"
        )


def load(task: Task, data_dir: str | os.PathLike[str], language: str, split: str) -> list[Any]:
    """Read one language of ``task`` from the data set, checked like the file readers."""
    check_languages(task, data_dir, [language], split)
    name, dataset = _split(data_dir, split)
    column = _language_column(dataset)
    rows = [
        (i, row) for i, row in enumerate(dataset) if column is None or str(row[column]) == language
    ]
    # Name the split when the data set has named splits.
    prefix = str(data_dir) if "" in _open(_location(data_dir)) else f"{data_dir} [{name}]"
    readers = {"classification": _pairs, "multiple_choice": _choices, "qa": _squad}
    reader = readers.get(task.record_kind)
    if reader is None or task.name not in ("xnli", "pawsx", "xcopa", "xquad", "mlqa", "tydiqa"):
        raise TaskDataError(
            f"{data_dir}: task {task.name!r} cannot read a `datasets` data set; "
            "hf: data is supported for xnli, pawsx, xquad, mlqa, tydiqa and xcopa"
        )
    examples = reader(task, dataset, rows, prefix, language, split)
    if not examples:
        raise TaskDataError(f"{prefix}: no examples for language {language!r}")
    seen: set[str] = set()
    for ex in examples:
        if ex.example_id in seen:
            raise TaskDataError(f"{prefix}: duplicate example id {ex.example_id!r}")
        seen.add(ex.example_id)
    return examples


def _require(prefix: str, dataset: Any, options: list[tuple[str, ...]]) -> tuple[str, ...]:
    for columns in options:
        if all(c in dataset.column_names for c in columns):
            return columns
    expected = " or ".join(", ".join(c) for c in options)
    raise TaskDataError(
        f"{prefix}: expected columns {expected}; it has {', '.join(dataset.column_names)}"
    )


def _text(where: str, row: dict[str, Any], column: str) -> str:
    value = row[column]
    if not isinstance(value, str):
        raise TaskDataError(f"{where}: {column!r} is {type(value).__name__}, not text")
    return value


def _pairs(
    task: Any,
    dataset: Any,
    rows: list[tuple[int, dict[str, Any]]],
    prefix: str,
    lang: str,
    split: str,
) -> list[Any]:
    first, second, label_col = _require(
        prefix, dataset, [("premise", "hypothesis", "label"), ("sentence1", "sentence2", "label")]
    )
    feature = dataset.features[label_col]
    names = getattr(feature, "names", None)  # a ClassLabel
    examples: list[Any] = []
    for i, row in rows:
        where = f"{prefix} row {i}"
        value = row[label_col]
        if names is not None and isinstance(value, int) and 0 <= value < len(names):
            raw = str(names[value])
        elif isinstance(value, str):
            raw = value
        elif isinstance(value, int) and not isinstance(value, bool) and task.name == "pawsx":
            raw = str(value)
        else:
            raise TaskDataError(
                f"{where}: label {value!r} has no class name; expected one of "
                f"{', '.join(task.label_spellings)} (integer labels need a ClassLabel feature "
                "that names them, so that their order is known)"
            )
        examples.append(
            task.make_example(
                where,
                _text(where, row, first),
                _text(where, row, second),
                raw,
                lang,
                split,
                len(examples),
            )
        )
    task.warn_placeholder_labels(prefix, examples)
    return examples


def _choices(
    task: Any,
    dataset: Any,
    rows: list[tuple[int, dict[str, Any]]],
    prefix: str,
    lang: str,
    split: str,
) -> list[Any]:
    _require(prefix, dataset, [("premise", "choice1", "choice2", "question", "label")])
    examples = [
        task.make_example(f"{prefix} row {i}", dict(row), lang, split, n)
        for n, (i, row) in enumerate(rows)
    ]
    task.warn_placeholder_labels(prefix, examples)
    return examples


def _squad(
    task: Any,
    dataset: Any,
    rows: list[tuple[int, dict[str, Any]]],
    prefix: str,
    lang: str,
    split: str,
) -> list[Any]:
    from xcal.tasks.base import QAExample
    from xcal.tasks.qa import check_answers, with_paragraph_units

    _require(prefix, dataset, [("id", "context", "question", "answers")])
    examples: list[QAExample] = []
    seen: dict[str, int] = {}
    n_no_answer = 0
    for i, row in rows:
        where = f"{prefix} row {i}"
        qid = row["id"]
        if not isinstance(qid, str | int) or str(qid) == "":
            raise TaskDataError(f"{where}: missing question 'id'")
        qwhere = f"{prefix}: question {str(qid)!r} (row {i})"
        context = row["context"]
        if not isinstance(context, str) or not context.strip():
            raise TaskDataError(f"{qwhere}: missing or empty 'context'")
        question = row["question"]
        if not isinstance(question, str) or not question.strip():
            raise TaskDataError(f"{qwhere}: missing or empty 'question'")
        raw = row["answers"]
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), list):
            raise TaskDataError(
                f"{qwhere}: 'answers' must be {{'text': [...], 'answer_start': [...]}}"
            )
        starts = raw.get("answer_start")
        if not isinstance(starts, list) or len(starts) != len(raw["text"]):
            raise TaskDataError(
                f"{qwhere}: 'answers' has {len(raw['text'])} texts but not as many answer_start values"
            )
        answers = check_answers(
            [{"text": t, "answer_start": s} for t, s in zip(raw["text"], starts, strict=True)],
            context,
            qwhere,
        )
        n_no_answer += not answers
        count = seen.get(str(qid), 0)
        seen[str(qid)] = count + 1
        example_id = f"{qid}#{count}" if count else str(qid)
        examples.append(QAExample(example_id, lang, context, question, answers))
    examples = with_paragraph_units(examples)
    if n_no_answer:
        warnings.warn(
            f"{prefix}: {n_no_answer} of {len(examples)} questions have no gold answer text",
            stacklevel=3,
        )
    return examples
