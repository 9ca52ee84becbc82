"""What a task is: example types, the Task base class and data errors.

A task knows where its files live in the XTREME download layout, which
languages and splits exist there, how to read one language into a list of
frozen example dataclasses, and which text fields a perturbation may touch.
It knows nothing about models: the runner in :mod:`xcal.infer` turns examples
into model inputs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from xcal.paths import XTREME_LAYOUT_HELP, DataDirError


def is_hf_source(data_dir: Any) -> bool:
    """``hf:PATH``: task data from Hugging Face ``datasets`` (:mod:`xcal.tasks.hf_datasets`)."""
    return data_dir is not None and str(data_dir).startswith("hf:")


class TaskDataError(ValueError):
    """A data file is missing, malformed, or lacks the requested language."""


class MissingDataError(TaskDataError, DataDirError):
    """A requested language or split has no file in the data directory."""


# --------------------------------------------------------------------------- examples
# Every example carries ``example_id`` (stable across languages for parallel data
# and across perturbations) and ``language`` (what a perturbation needs to know).


@dataclass(frozen=True)
class PairExample:
    """A sentence pair with a class label (XNLI, PAWS-X).

    Examples
    --------
    >>> PairExample("xnli-dev-000000", "de", "Er schlief.", "Er war wach.", 0).label
    0
    """

    example_id: str
    language: str
    premise: str
    hypothesis: str
    label: int


@dataclass(frozen=True)
class QAAnswer:
    """One gold answer: its text and character offset in the context."""

    text: str
    answer_start: int


@dataclass(frozen=True)
class QAExample:
    """An extractive question with its context and gold answers (SQuAD format).

    Examples
    --------
    >>> ex = QAExample("q1", "en", "Paris is in France.", "Where is Paris?",
    ...                (QAAnswer("France", 12),))
    >>> ex.context[12:18]
    'France'
    """

    example_id: str
    language: str
    context: str
    question: str
    answers: tuple[QAAnswer, ...]
    #: The question's paragraph, named by the smallest question id sharing its
    #: context: the same label in every language of parallel data (XQuAD), so
    #: the analysis resamples a paragraph's questions together. "" if unknown.
    unit: str = ""


@dataclass(frozen=True)
class RetrievalExample:
    """A retrieval query and the ids of its gold candidates (Tatoeba, BUCC).

    The candidate pool is shared by every query of a language and comes from
    :meth:`RetrievalTask.candidates`.
    """

    example_id: str
    language: str
    query: str
    gold_ids: tuple[str, ...]


@dataclass(frozen=True)
class Candidate:
    """One retrieval candidate (for Tatoeba, an English sentence)."""

    candidate_id: str
    text: str


@dataclass(frozen=True)
class ChoiceExample:
    """A COPA-style multiple-choice example (XCOPA).

    ``question`` is ``"cause"`` or ``"effect"``; ``label`` is the index of the
    correct choice.
    """

    example_id: str
    language: str
    premise: str
    choice1: str
    choice2: str
    question: str
    label: int

    @property
    def choices(self) -> tuple[str, str]:
        return (self.choice1, self.choice2)


Example = PairExample | QAExample | RetrievalExample | ChoiceExample


def example_texts(example: Any) -> dict[str, Any]:
    """A JSON-serialisable view of every field of an example (for fingerprints).

    Examples
    --------
    >>> example_texts(PairExample("a", "en", "p", "h", 1))
    {'example_id': 'a', 'language': 'en', 'premise': 'p', 'hypothesis': 'h', 'label': 1}
    """
    fields = dataclasses.asdict(example)
    # a QA unit is a function of the ids and contexts already here: leaving it
    # out keeps the fingerprints of runs written before units were recorded
    fields.pop("unit", None)
    return fields


# --------------------------------------------------------------------------- tasks


class Task:
    """Base class of every task: data layout, languages, reading.

    Subclasses set the class attributes and implement :meth:`path` and
    :meth:`_read`.
    """

    name: ClassVar[str]
    record_kind: ClassVar[str]  # one of xcal.store's record kinds
    example_type: ClassVar[type]
    splits: ClassVar[tuple[str, ...]]
    default_split: ClassVar[str]
    text_fields: ClassVar[tuple[str, ...]]
    label_names: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    @property
    def n_classes(self) -> int | None:
        return len(self.label_names) or None

    def path(self, data_dir: Path, language: str, split: str) -> Path:
        """The file holding ``language`` / ``split`` (it may not exist)."""
        raise NotImplementedError

    def available(self, data_dir: Path, split: str) -> list[str]:
        """Languages that have a file for ``split`` in ``data_dir``."""
        raise NotImplementedError

    def _read(self, data_dir: Path, language: str, split: str) -> list[Any]:
        raise NotImplementedError

    # Shared behaviour ------------------------------------------------------
    def check_split(self, split: str | None) -> str:
        split = split or self.default_split
        if split not in self.splits:
            raise TaskDataError(
                f"task {self.name!r} has no split {split!r}; known: {', '.join(self.splits)}"
            )
        return split

    def languages(self, data_dir: str | os.PathLike[str], split: str | None = None) -> list[str]:
        """Languages available in ``data_dir`` for ``split`` (sorted).

        Examples
        --------
        >>> from xcal.tasks import get_task
        >>> get_task("xnli").languages("/nonexistent")
        []
        """
        if is_hf_source(data_dir):
            from xcal.tasks import hf_datasets

            return hf_datasets.languages(self, data_dir, self.check_split(split))
        return sorted(self.available(Path(data_dir), self.check_split(split)))

    def resolve_languages(
        self, data_dir: str | os.PathLike[str], languages: Sequence[str], split: str | None = None
    ) -> list[str]:
        """The codes the data uses for ``languages``, given in ISO 639-1, 639-3 or BCP 47.

        ``zho`` finds XNLI's ``zh`` and ``de`` finds Tatoeba's ``deu``
        (:func:`xcal.languages.match_language`).

        Raises
        ------
        MissingDataError
            Naming each language without data, a "did you mean" and what exists.

        Examples
        --------
        >>> from xcal.tasks import get_task
        >>> get_task("xnli").resolve_languages("/nonexistent", [])
        []
        """
        from xcal.languages import UnknownLanguageError, match_language, suggestions

        split = self.check_split(split)
        if is_hf_source(data_dir):
            from xcal.tasks import hf_datasets

            # A data set names its languages in a column, or holds one language.
            hf_datasets.check_languages(self, data_dir, list(languages), split)
            return list(languages)
        have = self.languages(data_dir, split)
        resolved: list[str] = []
        missing: list[str] = []
        for language in languages:
            try:
                resolved.append(match_language(language, have))
            except UnknownLanguageError as error:
                if "several codes" in str(error):
                    raise MissingDataError(f"task {self.name!r} ({split}): {error}") from None
                missing.append(language)
        if missing:
            where = self.path(Path(data_dir), missing[0], split)
            hints = list(dict.fromkeys(c for m in missing for c in suggestions(m, have)))
            raise MissingDataError(
                f"task {self.name!r} ({split}): no data for language(s) {', '.join(missing)} "
                f"(expected e.g. {where})."
                + (f" Did you mean {' or '.join(hints)}?" if hints else "")
                + f" Languages available in {data_dir}: {', '.join(have) if have else '(none)'}"
                + ("" if have else "\n" + XTREME_LAYOUT_HELP)
            )
        return resolved

    def check_languages(
        self, data_dir: str | os.PathLike[str], languages: Sequence[str], split: str | None = None
    ) -> None:
        """Raise :class:`MissingDataError` naming what is missing and what exists."""
        self.resolve_languages(data_dir, languages, split)

    def load(
        self, data_dir: str | os.PathLike[str], language: str, split: str | None = None
    ) -> list[Any]:
        """Read one language; errors name the file and line.

        Raises
        ------
        MissingDataError
            The file for ``language`` is absent; the message lists the languages
            that exist.
        TaskDataError
            The file is malformed or holds no examples.
        """
        split = self.check_split(split)
        if is_hf_source(data_dir):
            from xcal.tasks import hf_datasets

            return hf_datasets.load(self, data_dir, language, split)
        (language,) = self.resolve_languages(data_dir, [language], split)
        examples = self._read(Path(data_dir), language, split)
        if not examples:
            raise TaskDataError(f"{self.path(Path(data_dir), language, split)}: no examples")
        seen: set[str] = set()
        for ex in examples:
            if ex.example_id in seen:
                raise TaskDataError(
                    f"{self.path(Path(data_dir), language, split)}: "
                    f"duplicate example id {ex.example_id!r}"
                )
            seen.add(ex.example_id)
        return examples

    def __repr__(self) -> str:
        return f"<Task {self.name} ({self.record_kind})>"


class RetrievalTask(Task):
    """A task whose queries are ranked against a pool of candidates."""

    record_kind = "retrieval"
    example_type = RetrievalExample
    text_fields = ("query",)

    def candidates(
        self, data_dir: str | os.PathLike[str], language: str, split: str | None = None
    ) -> list[Candidate]:
        """The candidate pool searched by the queries of ``language``."""
        split = self.check_split(split)
        if is_hf_source(data_dir):
            raise TaskDataError(f"{data_dir}: retrieval tasks read the XTREME files only")
        (language,) = self.resolve_languages(data_dir, [language], split)
        return self._read_candidates(Path(data_dir), language, split)

    def _read_candidates(self, data_dir: Path, language: str, split: str) -> list[Candidate]:
        raise NotImplementedError


def read_text(path: Path) -> str:
    """Read a UTF-8 file with an error that names it (and the line) when it is not UTF-8.

    Line ends are kept as they are: no universal-newline translation, so a lone
    ``\\r`` inside a sentence does not split it. A leading byte-order mark
    (written by some Windows tools) is dropped. A NUL byte is refused: text
    files have none, UTF-16/32 files and damaged blocks do.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingDataError(f"{path}: file not found\n{XTREME_LAYOUT_HELP}") from None
    except OSError as exc:
        raise TaskDataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TaskDataError(f"{path} line {line}: not valid UTF-8 ({exc.reason})") from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise TaskDataError(
            f"{path} line {line}: NUL byte (a binary, UTF-16 or damaged file, not UTF-8 text)"
        )
    return text.removeprefix("\ufeff")


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file without their line endings.

    Only ``\\n`` (and a preceding ``\\r``) ends a line: other Unicode line
    separators can occur inside real sentences.
    """
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]
