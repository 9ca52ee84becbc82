"""Extractive QA: document-stride windows and n-best span extraction.

Long contexts are cut into overlapping windows (``doc_stride`` tokens shared
between neighbours, as in the SQuAD scripts of BERT and transformers). Every
window gets start and end logits; candidate spans are the ``n_best`` top
starts x top ends of each window that lie inside the context part of the
window, have start <= end and at most ``max_answer_length`` tokens. Spans are
mapped to characters of the original context with the tokenizer's offset
mapping, deduplicated across windows (keeping the best score), and the
``n_best`` highest ``start_logit + end_logit`` are kept, best first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xcal.infer.engine import Encoded, Progress, TokenBudget, run_batches, uses_token_types


@dataclass(frozen=True)
class QASettings:
    """Windowing and span-extraction settings (all part of a run's fingerprint)."""

    max_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best: int = 20

    def __post_init__(self) -> None:
        for name in ("max_length", "doc_stride", "max_query_length", "max_answer_length", "n_best"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Expected `{name}` to be a positive int, got {value!r}")
        if self.max_query_length + self.doc_stride + 4 >= self.max_length:
            raise ValueError(
                f"max_length {self.max_length} leaves no room for the context after a "
                f"{self.max_query_length}-token question and a {self.doc_stride}-token stride"
            )


@dataclass
class Windows:
    """Tokenised windows of n questions."""

    encoded: Encoded
    example_index: np.ndarray  # (n_windows,) which question each window belongs to
    offsets: list[list[tuple[int, int]]]  # per window, per token: character span in the context
    context_mask: list[np.ndarray]  # per window, per token: True for context tokens
    n_questions_truncated: int


def _truncate_questions(
    tokenizer: Any, questions: Sequence[str], limit: int
) -> tuple[list[str], int]:
    """Cut questions longer than ``limit`` tokens at a token boundary."""
    enc = tokenizer(
        list(questions),
        add_special_tokens=False,
        truncation=True,
        max_length=limit + 1,
        return_offsets_mapping=True,
    )
    out, n = [], 0
    for q, ids, offs in zip(questions, enc["input_ids"], enc["offset_mapping"], strict=True):
        if len(ids) > limit:
            out.append(q[: offs[limit - 1][1]])
            n += 1
        else:
            out.append(q)
    return out, n


def make_windows(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    settings: QASettings,
    *,
    token_types: bool = True,
) -> Windows:
    """Tokenise question/context pairs into overlapping windows of the context."""
    if tokenizer.padding_side != "right":
        raise ValueError("QA windows need a right-padding tokenizer")
    questions, n_trunc = _truncate_questions(tokenizer, questions, settings.max_query_length)
    enc = tokenizer(
        questions,
        list(contexts),
        truncation="only_second",
        max_length=settings.max_length,
        stride=settings.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=token_types,
        padding=False,
    )
    mapping = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
    offsets: list[list[tuple[int, int]]] = []
    masks: list[np.ndarray] = []
    for w in range(len(enc["input_ids"])):
        seq_ids = enc.sequence_ids(w)
        masks.append(np.array([s == 1 for s in seq_ids], dtype=bool))
        offsets.append([(int(a), int(b)) for a, b in enc["offset_mapping"][w]])
    encoded = Encoded(
        input_ids=enc["input_ids"],
        token_type_ids=enc.get("token_type_ids") if token_types else None,
        truncated=np.zeros(len(enc["input_ids"]), dtype=bool),
    )
    _check_coverage(tokenizer, contexts, mapping, offsets, masks)
    return Windows(encoded, mapping, offsets, masks, n_trunc)


def _check_coverage(
    tokenizer: Any,
    contexts: Sequence[str],
    mapping: np.ndarray,
    offsets: list[list[tuple[int, int]]],
    masks: list[np.ndarray],
) -> None:
    """Raise if the windows of a question stop before the end of its context.

    tokenizers 0.23.1 and 0.23.2 return a single overflowing window for
    pairs truncated ``only_second``, silently dropping the rest of a long
    context; answers there would be missing from the n-best lists.
    """
    ends = np.full(len(contexts), -1, dtype=np.int64)
    for w, q in enumerate(mapping):
        ctx = np.flatnonzero(masks[w])
        if ctx.size:
            ends[q] = max(ends[q], offsets[w][ctx[-1]][1])
    # whole contexts, longer than the model takes: only their offsets are read (no warning)
    alone = tokenizer(
        list(contexts), add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    for q, offs in enumerate(alone["offset_mapping"]):
        if offs and ends[q] < offs[-1][1]:
            import tokenizers

            raise RuntimeError(
                f"the tokenizer's document-stride windows of context {q} end at character "
                f"{ends[q]} of {offs[-1][1]}: the rest of the context would be lost. This is "
                f"a bug of tokenizers {tokenizers.__version__} (seen in 0.23.1 and 0.23.2); "
                "install tokenizers>=0.23.3"
            )


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context_mask: np.ndarray,
    *,
    n_best: int,
    max_answer_length: int,
) -> list[tuple[int, int, float, float]]:
    """Valid (start, end, start_logit, end_logit) token spans of one window, best first.

    Examples
    --------
    >>> s = np.array([0.0, 5.0, 1.0, 0.0]); e = np.array([0.0, 0.0, 4.0, 9.0])
    >>> mask = np.array([False, True, True, False])  # token 3 is not context
    >>> [(a, b) for a, b, _, _ in best_spans(s, e, mask, n_best=3, max_answer_length=5)]
    [(1, 2), (1, 1), (2, 2)]
    """
    ctx = np.flatnonzero(context_mask)
    if ctx.size == 0:
        return []
    k = min(n_best, ctx.size)
    starts = ctx[np.argsort(-start_logits[ctx], kind="stable")[:k]]
    ends = ctx[np.argsort(-end_logits[ctx], kind="stable")[:k]]
    s = np.repeat(starts, ends.size)
    e = np.tile(ends, starts.size)
    ok = (s <= e) & (e - s + 1 <= max_answer_length)
    s, e = s[ok], e[ok]
    score = start_logits[s] + end_logits[e]
    order = np.argsort(-score, kind="stable")[:n_best]
    return [
        (int(s[i]), int(e[i]), float(start_logits[s[i]]), float(end_logits[e[i]])) for i in order
    ]


def answer_questions(
    model: Any,
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    settings: QASettings,
    batch_tokens: int | TokenBudget,
    device: str,
    progress: Progress | None = None,
) -> tuple[list[list[dict[str, Any]]], int]:
    """The n-best answer list of every question, and how many questions were truncated.

    Each answer is ``{"text", "start_char", "end_char", "start_logit",
    "end_logit", "score"}`` with ``text == context[start_char:end_char]``.
    """
    windows = make_windows(
        tokenizer, questions, contexts, settings, token_types=uses_token_types(model)
    )
    n = len(questions)
    per_question = np.bincount(windows.example_index, minlength=n)
    weights = 1.0 / per_question[windows.example_index]

    def forward(ids: Any, mask: Any, types: Any, _idx: np.ndarray) -> Any:
        kwargs = {"attention_mask": mask}
        if types is not None:
            kwargs["token_type_ids"] = types
        out = model(input_ids=ids, **kwargs)
        return out.start_logits, out.end_logits

    starts, ends = run_batches(
        windows.encoded,
        forward,
        batch_tokens=batch_tokens,
        pad_id=int(tokenizer.pad_token_id),
        device=device,
        progress=progress,
        weights=weights,
        per_token=(True, True),
    )
    candidates: list[dict[tuple[int, int], dict[str, Any]]] = [{} for _ in range(n)]
    for w in range(len(windows.encoded)):
        q = int(windows.example_index[w])
        length = len(windows.encoded.input_ids[w])
        mask = windows.context_mask[w]
        offs = windows.offsets[w]
        for s, e, s_logit, e_logit in best_spans(
            starts[w, :length],
            ends[w, :length],
            mask,
            n_best=settings.n_best,
            max_answer_length=settings.max_answer_length,
        ):
            start_char, end_char = offs[s][0], offs[e][1]
            if end_char <= start_char:
                continue
            score = s_logit + e_logit
            key = (start_char, end_char)
            best = candidates[q].get(key)
            if best is None or score > best["score"]:
                candidates[q][key] = {
                    "text": contexts[q][start_char:end_char],
                    "start_char": int(start_char),
                    "end_char": int(end_char),
                    "start_logit": s_logit,
                    "end_logit": e_logit,
                    "score": score,
                }
    nbest = [
        sorted(c.values(), key=lambda a: (-a["score"], a["start_char"], a["end_char"]))[
            : settings.n_best
        ]
        for c in candidates
    ]
    return nbest, windows.n_questions_truncated
