"""Bound the work and memory one example can cost before it is tokenised.

A hostile or broken data file can hold a line of megabytes; tokenising it
costs gigabytes of memory (offsets, ids, word splits) although the model sees
at most a few thousand tokens of it. :func:`cut_long_texts` cuts any text
field longer than ``max_chars`` characters before perturbation and
tokenisation, far beyond what any model reads:

- most fields keep their first and last ``max_chars / 2`` characters (joined
  by a space): encoders truncate on the right and causal LM scoring on the
  left, and both read the same tokens from the cut text as from the original
  as long as each half holds more tokens than the model's limit;
- a QA ``context`` keeps its first ``max_chars`` characters: windows run from
  the start of the context, and answer offsets stay valid.

The number of cut inputs is reported in the run's summary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

#: Characters kept of one text field: 100k at each end, over 10k tokens each.
MAX_TEXT_CHARS = 200_000

# Fields that are identifiers, not text the model reads.
_NOT_TEXT = frozenset({"example_id", "language", "candidate_id", "question_type"})
# Fields cut at the end only (their start is what the model reads first).
_HEAD_ONLY = frozenset({"context"})

E = TypeVar("E")


def cut_text(text: str, max_chars: int = MAX_TEXT_CHARS, *, keep: str = "ends") -> str:
    """``text`` cut to at most ``max_chars`` characters, keeping both ends or the head.

    Examples
    --------
    >>> cut_text("abcdefghij", 5)
    'ab ij'
    >>> cut_text("abcdefghij", 5, keep="head")
    'abcde'
    >>> cut_text("short", 5)
    'short'
    """
    if max_chars < 3:
        raise ValueError(f"Expected `max_chars` >= 3, got {max_chars}")
    if len(text) <= max_chars:
        return text
    if keep == "head":
        return text[:max_chars]
    head = max_chars // 2
    tail = max_chars - head - 1
    return text[:head] + " " + text[len(text) - tail :]


def cut_long_texts(examples: Sequence[E], max_chars: int = MAX_TEXT_CHARS) -> tuple[list[E], int]:
    """Cut every text field over ``max_chars`` characters; return the examples and how many were cut.

    Works on any frozen dataclass example (and retrieval candidates); an
    example with no long field is returned as is (the same object).

    Examples
    --------
    >>> from xcal.tasks.base import PairExample
    >>> exs = [PairExample("a", "en", "x" * 10, "short", 0), PairExample("b", "en", "p", "h", 1)]
    >>> cut, n = cut_long_texts(exs, max_chars=5)
    >>> n, cut[0].premise, cut[1] is exs[1]
    (1, 'xx xx', True)
    """
    out: list[E] = []
    n_cut = 0
    for example in examples:
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(example):  # type: ignore[arg-type]
            value = getattr(example, f.name)
            if f.name in _NOT_TEXT or not isinstance(value, str) or len(value) <= max_chars:
                continue
            keep = "head" if f.name in _HEAD_ONLY else "ends"
            changes[f.name] = cut_text(value, max_chars, keep=keep)
        if changes:
            example = dataclasses.replace(example, **changes)  # type: ignore[type-var]
            n_cut += 1
        out.append(example)
    return out, n_cut
