"""Extractive QA: answer normalisation, exact match, F1, and top-span confidence.

Two normalisations, each reproducing an official evaluation script:

* ``language=None``: SQuAD v1.1 (``evaluate-v1.1.py``), which XTREME uses for
  XQuAD and TyDiQA-GoldP in every language: lowercase, drop ASCII punctuation
  (``string.punctuation``), drop the English articles ``a an the``, collapse
  whitespace.
* ``language="en" | "es" | "de" | "ar" | "hi" | "vi" | "zh"``: MLQA
  (``mlqa_evaluation_v1.py``): lowercase, drop every Unicode punctuation
  character (categories ``P*``) and ASCII punctuation, drop that language's
  articles (es ``un una unos unas el la los las``; de ``ein eine einen einem
  eines einer der die das den dem des``; vi ``của là cái chiếc những``; ar: every
  occurrence of ``ال``, as the official script's regular expression does; none
  for hi and zh), then split on whitespace; for zh each CJK character
  (U+4E00-U+9FA5) is its own token, so F1 is character-level.

F1 is the bag-of-tokens F1 of the normalised strings (0 when nothing is shared,
including when both are empty, as in SQuAD v1.1); both scores take the maximum
over the gold answers.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal

import numpy as np

__all__ = [
    "MLQA_LANGUAGES",
    "exact_match_score",
    "f1_score",
    "normalize_answer",
    "qa_confidence_correctness",
    "qa_exact_match_f1",
]

MLQA_LANGUAGES: tuple[str, ...] = ("en", "es", "de", "ar", "hi", "vi", "zh")

_SQUAD_PUNCT = frozenset(string.punctuation)


@cache
def _unicode_punct() -> frozenset[str]:
    """MLQA's PUNCT set, built on first use (scanning all code points takes ~0.3 s)."""
    return frozenset(
        chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")
    ) | frozenset(string.punctuation)


_ARTICLES: dict[str, re.Pattern[str] | None] = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "hi": None,
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    # The official pattern; its first branch cannot match, so every "ال" goes.
    "ar": re.compile(r"\sال^|ال"),
    "zh": None,
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def _check_language(language: str | None) -> None:
    if language is not None and language not in _ARTICLES:
        raise ValueError(
            f"Unknown MLQA answer language {language!r}; expected one of {list(MLQA_LANGUAGES)} "
            "or None for the SQuAD v1.1 normalisation (used by XTREME for XQuAD and TyDiQA)"
        )


def _mixed_segmentation(text: str) -> list[str]:
    """MLQA's zh tokenisation: CJK characters and punctuation stand alone."""
    punct = _unicode_punct()
    tokens: list[str] = []
    pending = ""
    for char in text:
        if _CJK.search(char) or char in punct:
            if pending:
                tokens.extend(pending.split())
                pending = ""
            tokens.append(char)
        else:
            pending += char
    if pending:
        tokens.extend(pending.split())
    return tokens


def normalize_answer(text: str, language: str | None = None) -> str:
    """Normalise an answer string as the official SQuAD or MLQA script does.

    Parameters
    ----------
    text : str
        A predicted or gold answer.
    language : str or None, default=None
        ``None`` for SQuAD v1.1; an MLQA language code for MLQA's rules (see the
        module docstring).

    Returns
    -------
    str

    Examples
    --------
    >>> normalize_answer("The  Eiffel Tower!")
    'eiffel tower'
    >>> normalize_answer("Die Brücke «alt»", language="de")
    'brücke alt'
    >>> normalize_answer("北京大学", language="zh")
    '北 京 大 学'
    """
    _check_language(language)
    text = text.lower()
    if language is None:
        text = "".join(ch for ch in text if ch not in _SQUAD_PUNCT)
        text = re.sub(r"\b(a|an|the)\b", " ", text)
        return " ".join(text.split())
    punct = _unicode_punct()
    text = "".join(ch for ch in text if ch not in punct)
    pattern = _ARTICLES[language]
    if pattern is not None:
        text = pattern.sub(" ", text)
    tokens = _mixed_segmentation(text) if language == "zh" else text.split()
    return " ".join(t for t in tokens if t.strip())


def _as_answer_list(gold: str | Sequence[Any]) -> list[str]:
    if isinstance(gold, str):
        return [gold]
    texts = [g["text"] if isinstance(g, Mapping) else g for g in gold]
    if not texts:
        raise ValueError("No gold answers given: at least one is needed")
    return [str(t) for t in texts]


def _f1_one(prediction_tokens: list[str], gold_tokens: list[str]) -> float:
    common = Counter(prediction_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(
    prediction: str, ground_truths: str | Sequence[Any], language: str | None = None
) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0.

    Parameters
    ----------
    prediction : str
    ground_truths : str, list of str, or list of ``{"text": ...}`` dicts
    language : str or None, default=None
        See :func:`normalize_answer`.

    Returns
    -------
    float

    Examples
    --------
    >>> exact_match_score("the Louvre", ["Louvre Museum", "Louvre"])
    1.0
    """
    pred = normalize_answer(prediction, language)
    return float(any(pred == normalize_answer(g, language) for g in _as_answer_list(ground_truths)))


def f1_score(
    prediction: str, ground_truths: str | Sequence[Any], language: str | None = None
) -> float:
    """Token-level F1 against the best-matching gold answer.

    Parameters
    ----------
    prediction : str
    ground_truths : str, list of str, or list of ``{"text": ...}`` dicts
    language : str or None, default=None
        See :func:`normalize_answer`.

    Returns
    -------
    float

    Examples
    --------
    Two of three predicted tokens in a two-token answer: P = 2/3, R = 1,
    F1 = 2 * (2/3) / (2/3 + 1)

    >>> f1_score("Louvre museum Paris", "Louvre Museum")
    0.8
    """
    pred = normalize_answer(prediction, language).split()
    return max(
        _f1_one(pred, normalize_answer(g, language).split()) for g in _as_answer_list(ground_truths)
    )


def _top_span(
    entries: Sequence[Mapping[str, Any]], row: int, score_key: str
) -> tuple[int, np.ndarray]:
    if len(entries) == 0:
        raise ValueError(f"nbest row {row} is empty: every example needs at least one span")
    try:
        scores = np.array([float(e[score_key]) for e in entries], dtype=np.float64)
    except KeyError:
        raise ValueError(f"nbest row {row}: a span has no {score_key!r} field") from None
    if not np.isfinite(scores).all():
        raise ValueError(f"nbest row {row}: span scores must be finite, got {scores.tolist()}")
    return int(np.argmax(scores)), scores


def qa_exact_match_f1(
    nbest: Sequence[Sequence[Mapping[str, Any]]],
    answers: Sequence[Any],
    *,
    language: str | None = None,
    score_key: str = "score",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact match and F1 of the top-scoring span of every example.

    Parameters
    ----------
    nbest : list (n) of lists of span dicts
        Each span has at least ``"text"`` and ``score_key``.
    answers : list (n) of gold answers
        Each a list of strings or of ``{"text": ...}`` dicts.
    language : str or None, default=None
        See :func:`normalize_answer`.
    score_key : str, default="score"

    Returns
    -------
    exact_match : numpy.ndarray of shape (n,), float (0.0 or 1.0)
    f1 : numpy.ndarray of shape (n,)

    Examples
    --------
    >>> em, f1 = qa_exact_match_f1([[{"text": "Paris", "score": 2.0}]], [["Paris"]])
    >>> em.tolist(), f1.tolist()
    ([1.0], [1.0])
    """
    _check_language(language)
    if len(nbest) != len(answers):
        raise ValueError(f"`nbest` has {len(nbest)} examples but `answers` has {len(answers)}")
    em = np.empty(len(nbest))
    f1 = np.empty(len(nbest))
    for i, (entries, gold) in enumerate(zip(nbest, answers, strict=True)):
        top, _ = _top_span(entries, i, score_key)
        text = str(entries[top]["text"])
        golds = _as_answer_list(gold)
        em[i] = exact_match_score(text, golds, language)
        f1[i] = f1_score(text, golds, language)
    return em, f1


def qa_confidence_correctness(
    nbest: Sequence[Sequence[Mapping[str, Any]]],
    answers: Sequence[Any],
    *,
    language: str | None = None,
    criterion: Literal["em", "f1"] = "em",
    f1_threshold: float = 0.5,
    score_key: str = "score",
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and correctness of the top span, ready for calibration metrics.

    The confidence is the softmax probability of the top span among the n-best
    span scores (``score / temperature``; ``score`` is usually start plus end
    logit). The value therefore depends on how many spans were kept: compare
    runs with the same n-best size. A span is correct by exact match
    (``criterion="em"``) or when its F1 is at least ``f1_threshold``.

    Parameters
    ----------
    nbest : list (n) of lists of span dicts
        As stored by ``xcal infer``: each span has ``"text"`` and ``score_key``.
    answers : list (n) of gold answers
        Each a list of strings or ``{"text": ...}`` dicts.
    language : str or None, default=None
        ``None`` for SQuAD v1.1 normalisation (XQuAD, TyDiQA), an MLQA language
        code for MLQA.
    criterion : {"em", "f1"}, default="em"
    f1_threshold : float, default=0.5
        Used when ``criterion="f1"``.
    score_key : str, default="score"
    temperature : float, default=1.0
        Positive; divides the span scores before the softmax.

    Returns
    -------
    confidence : numpy.ndarray of shape (n,)
    correct : numpy.ndarray of shape (n,), bool

    Examples
    --------
    Scores 2 and 0: the top span gets ``1 / (1 + exp(-2))``

    >>> conf, correct = qa_confidence_correctness(
    ...     [[{"text": "the Seine", "score": 2.0}, {"text": "Paris", "score": 0.0}]],
    ...     [["Seine"]])
    >>> round(float(conf[0]), 6), bool(correct[0])
    (0.880797, True)
    """
    _check_language(language)
    if criterion not in ("em", "f1"):
        raise ValueError(f"Expected `criterion` to be 'em' or 'f1', got {criterion!r}")
    if not (isinstance(temperature, int | float) and temperature > 0 and np.isfinite(temperature)):
        raise ValueError(f"Expected `temperature` to be a positive number, got {temperature!r}")
    if criterion == "f1" and not 0 <= f1_threshold <= 1:
        raise ValueError(f"Expected `f1_threshold` in [0, 1], got {f1_threshold!r}")
    if len(nbest) != len(answers):
        raise ValueError(f"`nbest` has {len(nbest)} examples but `answers` has {len(answers)}")
    confidence = np.empty(len(nbest))
    correct = np.empty(len(nbest), dtype=bool)
    for i, (entries, gold) in enumerate(zip(nbest, answers, strict=True)):
        top, scores = _top_span(entries, i, score_key)
        z = scores / temperature
        confidence[i] = 1.0 / np.exp(z - z[top]).sum()
        text = str(entries[top]["text"])
        golds = _as_answer_list(gold)
        if criterion == "em":
            correct[i] = exact_match_score(text, golds, language) == 1.0
        else:
            correct[i] = f1_score(text, golds, language) >= f1_threshold
    return confidence, correct
