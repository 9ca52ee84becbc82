"""Sentence-pair classification: XNLI and PAWS-X (XTREME TSV files).

Files are ``{task}/{split}-{lang}.tsv`` with three tab-separated fields and no
quoting: premise (sentence 1), hypothesis (sentence 2), label. The dev and
test sets are parallel across languages, so the example id is the line index
(``xnli-dev-000123`` is the same example in every language).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar

from xcal.tasks.base import PairExample, Task, TaskDataError, read_lines
from xcal.tasks.registry import register_task

_HEADER_LABELS = {"label", "gold_label"}

# Prompt words for scoring pairs with a causal LM: "{premise}, {right}? {label}, {hypothesis}",
# the XNLI template of XGLM (Lin et al., 2022) as in lm-evaluation-harness. Arabic
# "No" is "لا" here; lm-evaluation-harness has "رقم" ("number"), a mistranslation.
# language: (question word, entailment, neutral, contradiction)
XNLI_PROMPT_WORDS: dict[str, tuple[str, str, str, str]] = {
    "en": ("right", "Yes", "Also", "No"),
    "ar": ("صحيح", "نعم", "لذا", "لا"),
    "bg": ("правилно", "да", "така", "не"),
    "de": ("richtig", "Ja", "Auch", "Nein"),
    "el": ("σωστός", "Ναί", "Έτσι", "όχι"),
    "es": ("correcto", "Sí", "Asi que", "No"),
    "fr": ("correct", "Oui", "Aussi", "Non"),
    "hi": ("सही", "हाँ", "इसलिए", "नहीं"),
    "ru": ("правильно", "Да", "Так", "Нет"),
    "sw": ("sahihi", "Ndiyo", "Hivyo", "Hapana"),
    "th": ("ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"),
    "tr": ("doğru", "Evet", "Böylece", "Hayır"),
    "ur": ("صحیح", "جی ہاں", "اس لئے", "نہیں"),
    "vi": ("đúng", "Vâng", "Vì vậy", "Không"),
    "zh": ("正确", "是的", "所以", "不是的"),
}


class PairTask(Task):
    """A TSV sentence-pair task; subclasses name the folder and the labels."""

    record_kind = "classification"
    example_type = PairExample
    splits = ("dev", "test")
    default_split = "dev"
    text_fields = ("premise", "hypothesis")
    # How the label field is spelled in the file, in label-index order.
    label_spellings: ClassVar[tuple[str, ...]]

    def path(self, data_dir: Path, language: str, split: str) -> Path:
        return data_dir / self.name / f"{split}-{language}.tsv"

    def available(self, data_dir: Path, split: str) -> list[str]:
        folder = data_dir / self.name
        if not folder.is_dir():
            return []
        prefix = f"{split}-"
        return [
            p.name[len(prefix) : -len(".tsv")]
            for p in folder.glob(f"{prefix}*.tsv")
            if p.is_file() and p.name.count("-") == 1
        ]

    def _read(self, data_dir: Path, language: str, split: str) -> list[PairExample]:
        path = self.path(data_dir, language, split)
        examples: list[PairExample] = []
        lines = read_lines(path)
        for lineno, line in enumerate(lines, start=1):
            fields = line.split("\t")
            if lineno == 1 and len(fields) == 3 and fields[2].strip() in _HEADER_LABELS:
                continue  # a header row
            if len(fields) != 3:
                raise TaskDataError(
                    f"{path} line {lineno}: expected 3 tab-separated fields "
                    f"(sentence 1, sentence 2, label), got {len(fields)}"
                )
            premise, hypothesis, raw_label = fields
            examples.append(
                self.make_example(
                    f"{path} line {lineno}",
                    premise,
                    hypothesis,
                    raw_label,
                    language,
                    split,
                    len(examples),
                )
            )
        self.warn_placeholder_labels(str(path), examples)
        return examples

    def make_example(
        self,
        where: str,
        premise: str,
        hypothesis: str,
        raw_label: str,
        language: str,
        split: str,
        index: int,
    ) -> PairExample:
        """One checked example; ``where`` names the file and line (or data set and row)."""
        to_index = {spelling: i for i, spelling in enumerate(self.label_spellings)}
        label = to_index.get(raw_label.strip())
        if label is None:
            raise TaskDataError(
                f"{where}: unknown label {raw_label!r}; "
                f"expected one of {', '.join(self.label_spellings)}"
            )
        if not premise.strip() or not hypothesis.strip():
            raise TaskDataError(f"{where}: empty sentence")
        return PairExample(
            example_id=f"{self.name}-{split}-{index:06d}",
            language=language,
            premise=premise,
            hypothesis=hypothesis,
            label=label,
        )

    def warn_placeholder_labels(self, where: str, examples: list[PairExample]) -> None:
        if len(examples) >= 20 and len({ex.label for ex in examples}) == 1:
            # Some redistributions blank the test labels to one value.
            warnings.warn(
                f"{where}: every label is {self.label_spellings[examples[0].label]!r}; the gold "
                "labels may be placeholders (hidden test labels)",
                stacklevel=3,
            )


@register_task
class XNLI(PairTask):
    """XNLI natural language inference (Conneau et al., 2018).

    Label indices follow XTREME and ``transformers``' ``run_xnli``:
    0 contradiction, 1 entailment, 2 neutral.
    """

    name = "xnli"
    label_names = ("contradiction", "entailment", "neutral")
    label_spellings = ("contradiction", "entailment", "neutral")
    description = "natural language inference, 3 classes"

    def lm_options(self, example: PairExample) -> list[tuple[str, str]]:
        """(context, continuation) per label, in label order, for LM scoring.

        The whole sentence "{premise}, {right}? {Yes|Also|No}, {hypothesis}" is
        scored (empty context), in the example's language when the template
        has it, else in English.

        >>> ex = PairExample("x", "en", "It rained.", "The street is wet.", 1)
        >>> XNLI().lm_options(ex)[1]
        ('', 'It rained., right? Yes, The street is wet.')
        """
        q, yes, also, no = XNLI_PROMPT_WORDS.get(example.language, XNLI_PROMPT_WORDS["en"])
        words = {"entailment": yes, "neutral": also, "contradiction": no}
        return [
            ("", f"{example.premise}, {q}? {words[label]}, {example.hypothesis}")
            for label in self.label_names
        ]


@register_task
class PAWSX(PairTask):
    """PAWS-X paraphrase identification (Yang et al., 2019): 0 not paraphrase, 1 paraphrase."""

    name = "pawsx"
    label_names = ("not_paraphrase", "paraphrase")
    label_spellings = ("0", "1")
    description = "paraphrase identification, 2 classes"

    def lm_options(self, example: PairExample) -> list[tuple[str, str]]:
        """(context, continuation) per label for LM scoring: "{s1}, {right}? {No|Yes}, {s2}".

        The words are XNLI's for the example's language (English otherwise).

        >>> PAWSX().lm_options(PairExample("x", "de", "A.", "B.", 0))[0]
        ('', 'A., richtig? Nein, B.')
        """
        q, yes, _, no = XNLI_PROMPT_WORDS.get(example.language, XNLI_PROMPT_WORDS["en"])
        return [("", f"{example.premise}, {q}? {w}, {example.hypothesis}") for w in (no, yes)]
