"""Extractive question answering: XQuAD, MLQA, TyDiQA-GoldP (SQuAD v1.1 JSON).

The example id is the question id, which XQuAD shares across its parallel
languages. Every gold answer is checked against its context offset so a bad
file fails here, naming the file and question, instead of silently scoring 0.
An answer with empty text (the TyDiQA-GoldP dev files of some distributions
strip the answers this way) means "no gold answer": the example keeps an empty
``answers`` tuple and a warning says how many such questions a file has.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

from xcal.tasks.base import QAAnswer, QAExample, Task, TaskDataError, read_text
from xcal.tasks.registry import register_task


def read_squad(path: Path, language: str) -> list[QAExample]:
    """Read a SQuAD v1.1 JSON file into :class:`QAExample` objects.

    Question ids that repeat within a file (the TyDiQA-GoldP English train
    file numbers its questions per article) get a ``#k`` suffix on their k-th
    repeat, deterministically, so ids stay unique and stable.
    """
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise TaskDataError(
            f"{path} line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})"
        ) from None
    except RecursionError:
        raise TaskDataError(f"{path}: JSON nested too deeply") from None
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise TaskDataError(f"{path}: expected a SQuAD JSON object with a 'data' list")
    examples: list[QAExample] = []
    seen: dict[str, int] = {}
    n_no_answer = 0
    n_renamed = 0
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise TaskDataError(f"{path}: data[{a}] has no 'paragraphs' list")
        for p, paragraph in enumerate(paragraphs):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                raise TaskDataError(f"{where}: expected an object")
            context = paragraph.get("context")
            qas = paragraph.get("qas")
            if not isinstance(context, str) or not context.strip():
                raise TaskDataError(f"{where}: missing or empty 'context'")
            if not isinstance(qas, list):
                raise TaskDataError(f"{where}: missing 'qas' list")
            for q, qa in enumerate(qas):
                qwhere = f"{where}.qas[{q}]"
                if not isinstance(qa, dict):
                    raise TaskDataError(f"{qwhere}: expected an object")
                qid, question = qa.get("id"), qa.get("question")
                if not isinstance(qid, str | int) or str(qid) == "":
                    raise TaskDataError(f"{qwhere}: missing question 'id'")
                qid = str(qid)
                qwhere = f"{path}: question {qid!r}"
                if not isinstance(question, str) or not question.strip():
                    raise TaskDataError(f"{qwhere}: missing or empty 'question'")
                answers = check_answers(qa.get("answers"), context, qwhere)
                if not answers:
                    n_no_answer += 1
                count = seen.get(qid, 0)
                seen[qid] = count + 1
                if count:
                    n_renamed += 1
                    qid = f"{qid}#{count}"
                examples.append(QAExample(qid, language, context, question, answers))
    examples = with_paragraph_units(examples)
    if n_no_answer:
        warnings.warn(
            f"{path}: {n_no_answer} of {len(examples)} questions have no gold answer text",
            stacklevel=2,
        )
    if n_renamed:
        warnings.warn(
            f"{path}: {n_renamed} repeated question ids were made unique with a '#k' suffix",
            stacklevel=2,
        )
    return examples


def with_paragraph_units(examples: list[QAExample]) -> list[QAExample]:
    """The examples with ``unit`` set to the smallest question id that shares their context.

    The questions of one paragraph share a context and its difficulty, so the
    analysis resamples them together (xcal.analyze.clusters). Naming the
    paragraph by its smallest question id rather than by its position keeps
    the label the same in every language of parallel data, where the question
    ids are shared, and in every shard of a file.

    Examples
    --------
    >>> qs = [QAExample(i, "en", c, "Q?", ()) for i, c in (("b", "x"), ("a", "x"), ("c", "y"))]
    >>> [q.unit for q in with_paragraph_units(qs)]
    ['a', 'a', 'c']
    """
    first: dict[str, str] = {}
    for ex in examples:
        if ex.context not in first or ex.example_id < first[ex.context]:
            first[ex.context] = ex.example_id
    return [dataclasses.replace(ex, unit=first[ex.context]) for ex in examples]


def check_answers(raw: Any, context: str, where: str) -> tuple[QAAnswer, ...]:
    """SQuAD answers (a list of ``{text, answer_start}``) checked against their context.

    An empty text means "no gold answer" and is dropped; an offset outside the
    context, or a text that is not at its offset, is a :class:`TaskDataError`
    naming ``where``.
    """
    if not isinstance(raw, list):
        raise TaskDataError(f"{where}: missing 'answers' list")
    answers: list[QAAnswer] = []
    for i, answer in enumerate(raw):
        if not isinstance(answer, dict):
            raise TaskDataError(f"{where}: answers[{i}] is not an object")
        text, start = answer.get("text"), answer.get("answer_start")
        if not isinstance(text, str):
            raise TaskDataError(f"{where}: answers[{i}] has no 'text'")
        if text == "":
            continue  # no gold answer (see module docstring)
        if isinstance(start, bool) or not isinstance(start, int):
            raise TaskDataError(f"{where}: answers[{i}] has no integer 'answer_start'")
        if not 0 <= start <= len(context) - len(text):
            raise TaskDataError(
                f"{where}: answers[{i}] answer_start {start} is outside the context "
                f"({len(context)} characters)"
            )
        if context[start : start + len(text)] != text:
            raise TaskDataError(
                f"{where}: answers[{i}] text {text!r} does not match the context at "
                f"answer_start {start} ({context[start : start + len(text)]!r})"
            )
        answers.append(QAAnswer(text, start))
    return tuple(answers)


class SquadTask(Task):
    """A task stored as one SQuAD v1.1 JSON file per language and split."""

    record_kind = "qa"
    example_type = QAExample
    text_fields = ("question", "context")

    def _pattern(self, split: str) -> tuple[str, str, str]:
        """(folder relative to the data dir, file-name prefix, suffix) around {lang}."""
        raise NotImplementedError

    def path(self, data_dir: Path, language: str, split: str) -> Path:
        folder, prefix, suffix = self._pattern(split)
        return data_dir / folder / f"{prefix}{language}{suffix}"

    def available(self, data_dir: Path, split: str) -> list[str]:
        folder, prefix, suffix = self._pattern(split)
        root = data_dir / folder
        if not root.is_dir():
            return []
        langs = []
        for p in root.iterdir():
            name = p.name
            if p.is_file() and name.startswith(prefix) and name.endswith(suffix):
                lang = name[len(prefix) : len(name) - len(suffix)]
                if lang and self.path(data_dir, lang, split) == p:
                    langs.append(lang)
        return langs

    def _read(self, data_dir: Path, language: str, split: str) -> list[QAExample]:
        return read_squad(self.path(data_dir, language, split), language)


@register_task
class XQuAD(SquadTask):
    """XQuAD (Artetxe et al., 2020): 1,190 SQuAD questions in 12 languages, same ids."""

    name = "xquad"
    splits = ("test",)
    default_split = "test"
    description = "extractive QA, parallel"

    def _pattern(self, split: str) -> tuple[str, str, str]:
        return ("xquad", "xquad.", ".json")


@register_task
class MLQA(SquadTask):
    """MLQA (Lewis et al., 2020), same-language context and question."""

    name = "mlqa"
    splits = ("dev", "test")
    default_split = "dev"
    description = "extractive QA"

    def path(self, data_dir: Path, language: str, split: str) -> Path:
        return (
            data_dir
            / "mlqa"
            / "MLQA_V1"
            / split
            / f"{split}-context-{language}-question-{language}.json"
        )

    def available(self, data_dir: Path, split: str) -> list[str]:
        root = data_dir / "mlqa" / "MLQA_V1" / split
        if not root.is_dir():
            return []
        langs = []
        prefix = f"{split}-context-"
        for p in root.glob(f"{prefix}*-question-*.json"):
            context_lang, _, question_lang = p.name[len(prefix) : -len(".json")].partition(
                "-question-"
            )
            if context_lang == question_lang:
                langs.append(context_lang)
        return langs


@register_task
class TyDiQA(SquadTask):
    """TyDiQA-GoldP (Clark et al., 2020): dev in 9 languages, English train."""

    name = "tydiqa"
    splits = ("dev", "train")
    default_split = "dev"
    description = "extractive QA, gold passage"

    def _pattern(self, split: str) -> tuple[str, str, str]:
        return (
            f"tydiqa/tydiqa-goldp-v1.1-{split}",
            "tydiqa.goldp.",
            f".{split}.json",
        )
