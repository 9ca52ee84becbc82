"""PAN-X (WikiANN) named-entity files: one ``token<TAB>tag`` per line, sentences apart.

The demo trains on English PAN-X as an intermediate task (token
classification); no runner task reads it, so this is a reader only.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "train-en.tsv"
>>> _ = path.write_text("Paris\\tB-LOC\\nis\\tO\\n\\nBob\\tB-PER\\n")
>>> [(s.words, s.tags) for s in read_tagged(path)]
[(('Paris', 'is'), ('B-LOC', 'O')), (('Bob',), ('B-PER',))]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xcal.tasks.base import TaskDataError, read_text

#: PAN-X's IOB2 tags, in the order the demo numbers them.
PANX_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


@dataclass(frozen=True)
class TaggedSentence:
    """A sentence's words and one tag per word."""

    words: tuple[str, ...]
    tags: tuple[str, ...]


def read_tagged(
    path: Path, tags: tuple[str, ...] = PANX_TAGS, limit: int | None = None
) -> list[TaggedSentence]:
    """Read a ``token<TAB>tag`` file (blank lines between sentences).

    Raises :class:`~xcal.tasks.TaskDataError` naming the file and line for a
    line without exactly one tab, an empty token, or a tag outside ``tags``.
    ``limit`` stops after that many sentences.
    """
    known = set(tags)
    sentences: list[TaggedSentence] = []
    words: list[str] = []
    found: list[str] = []

    def close() -> None:
        if words:
            sentences.append(TaggedSentence(tuple(words), tuple(found)))
            words.clear()
            found.clear()

    for number, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            close()
            if limit is not None and len(sentences) >= limit:
                break
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip():
            raise TaskDataError(f"{path} line {number}: expected 'token<TAB>tag', got {line!r}")
        if parts[1] not in known:
            raise TaskDataError(
                f"{path} line {number}: unknown tag {parts[1]!r} (known: {', '.join(tags)})"
            )
        words.append(parts[0])
        found.append(parts[1])
    if limit is None or len(sentences) < limit:
        close()
    if not sentences:
        raise TaskDataError(f"{path}: no tagged sentences")
    return sentences
