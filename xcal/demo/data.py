"""The demo's English training data: XNLI lines, intermediate tasks, QA training questions.

XNLI dev is parallel across its 15 languages, so the English lines used for
training and every language's evaluation lines are disjoint by *line index*
(in whole premise groups of three hypotheses), never by language.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xcal.demo.heads import ChoiceData, PairData, SpanData, TaskData, TokenData

XNLI_GROUP = 3  # XNLI dev lists each premise with three hypotheses in a row
#: The intermediate tasks of the demo, one of each kind, and their multi-task mix.
SINGLE_TASKS: tuple[str, ...] = ("pawsx", "xcopa", "tydiqa", "panx")
MIX = "mix"
INTERMEDIATE_TASKS: tuple[str, ...] = (*SINGLE_TASKS, MIX)


def xnli_line_ranges(
    train_groups: int, eval_examples: int, n_lines: int, profile: str = "demo"
) -> tuple[range, range]:
    """English training lines and every language's evaluation lines of XNLI dev.

    Both are whole premise groups, so no premise is seen in training and then
    evaluated (in any translation), and they never overlap.

    >>> xnli_line_ranges(60, 30, 2490)
    (range(0, 180), range(180, 210))
    """
    n_train = train_groups * XNLI_GROUP
    if eval_examples % XNLI_GROUP:
        raise ValueError(
            f"profile {profile}: evaluation lines must be a multiple of {XNLI_GROUP} "
            f"(whole premise groups), got {eval_examples}"
        )
    if n_train + eval_examples > n_lines:
        raise ValueError(
            f"profile {profile}: {n_train} training + {eval_examples} evaluation lines "
            f"exceed the {n_lines} lines of XNLI dev"
        )
    return range(0, n_train), range(n_train, n_train + eval_examples)


def xnli_pairs(examples: Sequence[Any], label_names: tuple[str, ...]) -> PairData:
    return PairData(
        text_a=[e.premise for e in examples],
        text_b=[e.hypothesis for e in examples],
        labels=[e.label for e in examples],
        label_names=label_names,
        name="xnli",
    )


def intermediate_data(task: str, data_dir: Path, n: int) -> TaskData:
    """English training data of a single intermediate task (at most ``n`` items).

    PAWS-X: sentence pairs (dev, the only English split shared). XCOPA:
    multiple choice, the premise with its question ("What was the cause?")
    against each choice (train and val). TyDiQA-GoldP: extractive QA
    (train). PAN-X: named-entity tags (train).
    """
    from xcal.tasks import get_task

    if task == "pawsx":
        pawsx = get_task("pawsx")
        examples = pawsx.load(data_dir, "en", "dev")[:n]
        return PairData(
            [e.premise for e in examples],
            [e.hypothesis for e in examples],
            [e.label for e in examples],
            tuple(pawsx.label_names),
            "pawsx",
        )
    if task == "xcopa":
        xcopa = get_task("xcopa")
        items = [*xcopa.load(data_dir, "en", "train"), *xcopa.load(data_dir, "en", "val")][:n]
        return ChoiceData(
            [f"{ex.premise} {_question(ex.question)}" for ex in items],
            [(ex.choice1, ex.choice2) for ex in items],
            [ex.label for ex in items],
            "xcopa",
        )
    if task == "tydiqa":
        return _tydiqa_spans(data_dir, n)
    if task == "panx":
        from xcal.tasks.tagging import PANX_TAGS, read_tagged

        sentences = read_tagged(data_dir / "panx" / "train-en.tsv", limit=n)
        return TokenData(
            [s.words for s in sentences],
            [[PANX_TAGS.index(t) for t in s.tags] for s in sentences],
            PANX_TAGS,
            "panx",
        )
    raise ValueError(
        f"unknown intermediate task {task!r}; the demo knows {', '.join(INTERMEDIATE_TASKS)}"
    )


def _tydiqa_spans(data_dir: Path, n: int) -> SpanData:
    """The first ``n`` English TyDiQA-GoldP training questions, with their first answer."""
    import warnings

    from xcal.tasks import get_task

    with warnings.catch_warnings():
        # the file numbers its questions per article; the reader's renaming is expected here
        warnings.filterwarnings("ignore", message=".*repeated question ids", category=UserWarning)
        examples = get_task("tydiqa").load(data_dir, "en", "train")[:n]
    return SpanData(
        [e.question for e in examples],
        [e.context for e in examples],
        [e.answers[0].answer_start for e in examples],
        [e.answers[0].text for e in examples],
        "tydiqa",
    )


def _question(kind: str) -> str:
    return "What was the cause?" if kind == "cause" else "What happened as a result?"


def task_texts(task: str, data_dir: Path, n: int) -> list[str]:
    """Input texts of a task for task distances (a pair or question and context as one text).

    The mix's texts are drawn evenly from its tasks.
    """
    if task == "xnli":
        from xcal.tasks import get_task

        return [f"{e.premise} {e.hypothesis}" for e in get_task("xnli").load(data_dir, "en")[:n]]
    if task == MIX:
        per_task = [task_texts(t, data_dir, n) for t in SINGLE_TASKS]
        mixed = [texts[i] for i in range(n) for texts in per_task if i < len(texts)]
        return mixed[:n]
    data = intermediate_data(task, data_dir, n)
    if isinstance(data, PairData):
        return [f"{a} {b}" for a, b in zip(data.text_a, data.text_b, strict=True)]
    if isinstance(data, ChoiceData):
        return [f"{c} {' '.join(ch)}" for c, ch in zip(data.contexts, data.choices, strict=True)]
    if isinstance(data, SpanData):
        return [f"{q} {c}" for q, c in zip(data.questions, data.contexts, strict=True)]
    return [" ".join(words) for words in data.words]
