"""Multiple choice: XCOPA (causal commonsense reasoning, 2 choices).

Files are ``xcopa/{split}-{lang}.jsonl``, one JSON object per line with
premise, choice1, choice2, question ("cause" or "effect"), label and idx. The
sets are parallel across languages, so the example id is built from ``idx``
(``xcopa-test-000123``), or from the line index when ``idx`` is absent.
"""

from __future__ import annotations

import json
import unicodedata
import warnings
from pathlib import Path
from typing import Any

from xcal.tasks.base import ChoiceExample, Task, TaskDataError, read_lines
from xcal.tasks.registry import register_task

_QUESTIONS = ("cause", "effect")

# Connectives for LM scoring, "{premise without final punctuation} {because|therefore}
# {choice}", per language as in lm-evaluation-harness' XCOPA tasks.
XCOPA_CONNECTIVES: dict[str, tuple[str, str]] = {
    "en": ("because", "therefore"),
    "et": ("sest", "seetõttu"),
    "ht": ("poukisa", "donk sa"),
    "id": ("karena", "maka"),
    "it": ("perché", "quindi"),
    "qu": ("imataq", "chaymi"),
    "sw": ("kwa sababu", "kwa hiyo"),
    "ta": ("காரணமாக", "எனவே"),
    "th": ("เพราะ", "ดังนั้น"),
    "tr": ("çünkü", "bu yüzden"),
    "vi": ("bởi vì", "vì vậy"),
    "zh": ("因为", "所以"),
}

# Questions for encoders with a multiple-choice head: (premise, question + choice).
_ENCODER_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


@register_task
class XCOPA(Task):
    """XCOPA (Ponti et al., 2020)."""

    name = "xcopa"
    record_kind = "multiple_choice"
    example_type = ChoiceExample
    splits = ("test", "val", "train")
    default_split = "test"
    text_fields = ("premise", "choice1", "choice2")
    label_names = ("choice1", "choice2")
    description = "causal commonsense multiple choice, 2 options"

    def lm_options(self, example: ChoiceExample) -> list[tuple[str, str]]:
        """(context, continuation) per choice for LM scoring.

        Final punctuation of the premise is dropped only when there is some
        (Thai and Tamil premises have none).

        >>> ex = ChoiceExample("x", "en", "The man fell.", "He tripped.", "He sang.", "cause", 0)
        >>> XCOPA().lm_options(ex)
        [('The man fell because', ' he tripped.'), ('The man fell because', ' he sang.')]
        """
        cause, effect = XCOPA_CONNECTIVES.get(example.language, XCOPA_CONNECTIVES["en"])
        premise = example.premise.strip()
        if premise and unicodedata.category(premise[-1]).startswith("P"):
            premise = premise[:-1]
        context = f"{premise} {cause if example.question == 'cause' else effect}"
        return [(context, " " + _lower_first(c.strip())) for c in example.choices]

    def choice_pairs(self, example: ChoiceExample) -> list[tuple[str, str]]:
        """(first, second) text pairs per choice for an encoder's multiple-choice head."""
        question = _ENCODER_QUESTIONS[example.question]
        return [(example.premise, f"{question} {c}") for c in example.choices]

    def path(self, data_dir: Path, language: str, split: str) -> Path:
        return data_dir / "xcopa" / f"{split}-{language}.jsonl"

    def available(self, data_dir: Path, split: str) -> list[str]:
        root = data_dir / "xcopa"
        if not root.is_dir():
            return []
        return [p.name[len(split) + 1 : -len(".jsonl")] for p in root.glob(f"{split}-*.jsonl")]

    def _read(self, data_dir: Path, language: str, split: str) -> list[ChoiceExample]:
        path = self.path(data_dir, language, split)
        examples: list[ChoiceExample] = []
        for lineno, line in enumerate(read_lines(path), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskDataError(f"{path} line {lineno}: invalid JSON ({exc.msg})") from None
            except RecursionError:
                raise TaskDataError(f"{path} line {lineno}: JSON nested too deeply") from None
            examples.append(
                self.make_example(f"{path} line {lineno}", row, language, split, len(examples))
            )
        self.warn_placeholder_labels(str(path), examples)
        return examples

    def make_example(
        self, where: str, row: Any, language: str, split: str, index: int
    ) -> ChoiceExample:
        """One checked example from a JSON object; ``where`` names the file and line (or row)."""
        if not isinstance(row, dict):
            raise TaskDataError(f"{where}: expected a JSON object")
        for key in ("premise", "choice1", "choice2"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise TaskDataError(f"{where}: missing or empty {key!r}")
        if row.get("question") not in _QUESTIONS:
            raise TaskDataError(
                f"{where}: 'question' must be 'cause' or 'effect', got {row.get('question')!r}"
            )
        label = row.get("label")
        # 1.0 == 1 but is not an int label (and would change the input fingerprint).
        if isinstance(label, bool) or not isinstance(label, int) or label not in (0, 1):
            raise TaskDataError(f"{where}: 'label' must be 0 or 1, got {label!r}")
        idx = row.get("idx", index)
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise TaskDataError(f"{where}: 'idx' must be a non-negative int")
        return ChoiceExample(
            example_id=f"xcopa-{split}-{idx:06d}",
            language=language,
            premise=row["premise"],
            choice1=row["choice1"],
            choice2=row["choice2"],
            question=row["question"],
            label=label,
        )

    def warn_placeholder_labels(self, where: str, examples: list[ChoiceExample]) -> None:
        if len(examples) >= 20 and len({ex.label for ex in examples}) == 1:
            # Some redistributions blank the test labels to one value.
            warnings.warn(
                f"{where}: every label is {examples[0].label}; the gold labels may be "
                "placeholders (hidden test labels)",
                stacklevel=3,
            )
