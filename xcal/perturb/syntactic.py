"""Syntactic perturbations: word order and function words.

All of them work on the word pieces of :func:`xcal.perturb.words.segment`
and leave whitespace and punctuation where they were, so Chinese, Japanese and
Thai are reordered in words and rejoined without spaces.

``word_shuffle``
    Local shuffle (Lample et al. 2018): each word is picked with probability
    ``severity``; the picked words are reordered among their own positions by
    sorting ``position + U(0, window + 1)``, the others stay. No word moves
    more than ``window`` places; severity 1 is Lample et al.'s word shuffle.
``ngram_shuffle``
    The text's words are cut into consecutive n-grams; each n-gram is picked
    with probability ``severity`` and the picked n-grams are permuted among
    their positions, keeping every n-gram intact (Sinha et al. 2021). At
    severity 1 this is their full n-gram shuffle.
``clause_swap``
    Clauses are the stretches between clause punctuation (``, ; :`` and their
    CJK and Arabic forms) or a coordinating conjunction; each such boundary is
    picked with probability ``severity`` and the two clauses around it swap
    (left to right, a clause swaps at most once). Sentence ends are barriers.
``function_word_drop`` / ``function_word_move``
    Function words are the closed-class words (pronouns, determiners,
    adpositions, conjunctions, auxiliaries, particles) of
    :mod:`xcal.perturb.function_words`, checked against that definition for
    the XNLI languages and Japanese (stopword lists are too broad: they hold
    content words such as Arabic "returned" or Thai "arrive"). A language
    without a list is left unchanged and says so in its manifest parameters
    (``stopwords: "none"``); pass ``stopwords_file`` to supply one. Each function word is picked with
    probability ``severity`` and deleted, or moved to a random word position.

References
----------
G. Lample, A. Conneau, L. Denoyer, M. Ranzato (2018). Unsupervised machine
translation using monolingual corpora only. ICLR.
K. Sinha, P. Parthasarathi, J. Pineau, A. Williams (2021). UnNatural Language
Inference. ACL. K. Sinha, R. Jia, D. Hupkes, J. Pineau, A. Williams, D. Kiela
(2021). Masked language modeling and the distributional hypothesis: order word
matters pre-training for little. EMNLP.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from xcal.perturb._lang import base_language
from xcal.perturb.base import (
    Perturbation,
    Stream,
    check_positive_int,
    register,
)
from xcal.perturb.function_words import CLOSED_CLASS, FUNCTION_WORDS_VERSION
from xcal.perturb.words import fill_word_slots, segment_raw


@dataclass(frozen=True)
class WordShuffle(Perturbation):
    """Local word shuffle within a window.

    Examples
    --------
    >>> p = WordShuffle("word_shuffle", window=3)
    >>> p("the cat sat on the mat", language="en", severity=0.0)
    'the cat sat on the mat'
    >>> out = p("the cat sat on the mat", language="en", severity=1.0, seed=1, example_id="a")
    >>> sorted(out.split()) == sorted("the cat sat on the mat".split())
    True
    """

    window: int = 3
    kind: ClassVar[str] = "syntactic"
    severity_meaning: ClassVar[str] = (
        "fraction of words shuffled locally (at most `window` positions)"
    )

    def _validate(self) -> None:
        check_positive_int("window", self.window)

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        texts, flags = segment_raw(text, language)
        words = [t for t, f in zip(texts, flags, strict=True) if f]
        m = len(words)
        if m < 2:
            return text
        draws = stream.uniforms(2 * m)
        reach = self.window + 1
        picked = [i for i in range(m) if draws[2 * i] < severity]
        keys = sorted((i + reach * draws[2 * i + 1], i) for i in picked)
        order = list(range(m))
        for slot, (_, i) in zip(picked, keys, strict=True):
            order[slot] = i
        return fill_word_slots(texts, flags, [words[i] for i in order])


@dataclass(frozen=True)
class NgramShuffle(Perturbation):
    """Permute word n-grams, keeping each n-gram intact (Sinha et al. 2021).

    Examples
    --------
    >>> p = NgramShuffle("ngram_shuffle", n=2)
    >>> out = p("a b c d e f", language="en", severity=1.0, seed=3, example_id=0)
    >>> pairs = {("a", "b"), ("c", "d"), ("e", "f")}
    >>> words = out.split()
    >>> {(words[i], words[i + 1]) for i in range(0, 6, 2)} == pairs
    True
    """

    n: int = 2
    kind: ClassVar[str] = "syntactic"
    severity_meaning: ClassVar[str] = "fraction of word n-grams permuted among themselves"

    def _validate(self) -> None:
        check_positive_int("n", self.n)

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        texts, flags = segment_raw(text, language)
        words = [t for t, f in zip(texts, flags, strict=True) if f]
        chunks = [words[i : i + self.n] for i in range(0, len(words), self.n)]
        c = len(chunks)
        if c < 2:
            return text
        draws = stream.uniforms(2 * c)
        picked = [j for j in range(c) if draws[2 * j] < severity]
        shuffled = sorted(picked, key=lambda j: (draws[2 * j + 1], j))
        order = list(range(c))
        for slot, j in zip(picked, shuffled, strict=True):
            order[slot] = j
        return fill_word_slots(texts, flags, [w for j in order for w in chunks[j]])


# Coordinating conjunctions that separate clauses, for the languages we could
# check; every other language splits clauses at punctuation only. Arabic and
# Hebrew conjunctions are prefixes (و, ו) and cannot be split off by whitespace.
CONJUNCTIONS: dict[str, frozenset[str]] = {
    k: frozenset(v.split())
    for k, v in {
        "en": "and but or so yet",
        "de": "und aber oder denn sondern",
        "fr": "et mais ou donc car",
        "es": "y e pero o u sino",
        "pt": "e mas ou porém",
        "it": "e ma o oppure però",
        "nl": "en maar of want",
        "ru": "и но или а",
        "bg": "и но или а",
        "uk": "і й але або а",
        "el": "και αλλά ή",
        "tr": "ve ama fakat veya",
        "hi": "और लेकिन या पर",
        "ur": "اور لیکن یا",
        "sw": "na lakini au",
        "vi": "và nhưng hoặc",
        "id": "dan tetapi atau",
        "ms": "dan tetapi atau",
        "fi": "ja mutta tai",
        "et": "ja aga või",
        "zh": "和 但 但是 可是 或者 而且",
        "th": "และ แต่ หรือ",
        "ko": "그리고 하지만 그러나 또는",
    }.items()
}
# Clause punctuation (soft boundaries) and sentence ends (barriers).
_CLAUSE_PUNCT = frozenset(",;:、，；：،؛")
_SENTENCE_END = frozenset(".!?。！？؟।۔")


@dataclass(frozen=True)
class ClauseSwap(Perturbation):
    """Swap clauses around clause punctuation and coordinating conjunctions.

    Examples
    --------
    >>> p = ClauseSwap("clause_swap")
    >>> p("It rained, and we stayed home.", language="en", severity=1.0)
    'we stayed home, and It rained.'
    """

    kind: ClassVar[str] = "syntactic"
    severity_meaning: ClassVar[str] = "fraction of clause boundaries at which two clauses swap"

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        conjunctions = CONJUNCTIONS.get(base_language(language), frozenset())
        texts, flags = segment_raw(text, language)
        kinds = [_separator_kind(t, f, conjunctions) for t, f in zip(texts, flags, strict=True)]
        # Runs of pieces between separators; a run with a word is a clause whose
        # core spans its first to last word (what lies outside the core stays).
        cores: list[tuple[int, int]] = []  # (first word index, last word index)
        barrier_before: list[bool] = []
        hard_seen = False
        first = last = -1
        for i, kind in enumerate([*kinds, "hard"]):  # a sentinel closes the last run
            if kind is None:
                if i < len(flags) and flags[i]:
                    if first < 0:
                        first = i
                    last = i
                continue
            if first >= 0:
                cores.append((first, last))
                barrier_before.append(hard_seen)
                hard_seen = False
                first = last = -1
            if kind == "hard":
                hard_seen = True
        k = len(cores)
        if k < 2:
            return text
        draws = stream.uniforms(k - 1)
        order = list(range(k))
        b = 0
        while b < k - 1:
            if draws[b] < severity and not barrier_before[b + 1]:
                order[b], order[b + 1] = order[b + 1], order[b]
                b += 2
            else:
                b += 1
        if order == list(range(k)):
            return text
        out: list[str] = []
        cursor = 0
        for slot, j in enumerate(order):
            start, end = cores[slot]
            out.extend(texts[cursor:start])
            src_start, src_end = cores[j]
            out.extend(texts[src_start : src_end + 1])
            cursor = end + 1
        out.extend(texts[cursor:])
        return "".join(out)


def _separator_kind(piece: str, is_word: bool, conjunctions: frozenset[str]) -> str | None:
    if is_word:
        return "soft" if conjunctions and piece.lower() in conjunctions else None
    if _SENTENCE_END.isdisjoint(piece):
        return None if _CLAUSE_PUNCT.isdisjoint(piece) else "soft"
    return "hard"


@lru_cache(maxsize=64)
def _file_stopwords(path: str) -> frozenset[str]:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"stopword file {path!r} does not exist")
    words = (line.strip().lower() for line in file.read_text(encoding="utf-8").splitlines())
    return frozenset(w for w in words if w and not w.startswith("#"))


def function_words(language: str, stopwords_file: str | None = None) -> frozenset[str]:
    """The function words (lower-cased) for ``language``; empty when none are known.

    The closed-class list of :mod:`xcal.perturb.function_words`;
    ``stopwords_file`` (one word per line, ``{lang}`` replaced by the language
    code) overrides it.

    >>> {"the", "of", "and"} <= function_words("en"), "said" in function_words("en")
    (True, False)
    >>> function_words("qu")
    frozenset()
    """
    code = base_language(language)
    if stopwords_file is not None:
        return _file_stopwords(stopwords_file.replace("{lang}", code))
    return CLOSED_CLASS.get(code, frozenset())


def _stopword_source(language: str, stopwords_file: str | None) -> str:
    if stopwords_file is not None:
        return stopwords_file.replace("{lang}", base_language(language))
    if not function_words(language):
        return "none"
    return f"xcal-closed-class-{FUNCTION_WORDS_VERSION}"


@dataclass(frozen=True)
class _FunctionWordPerturbation(Perturbation):
    """Shared by the function-word perturbations: the stopword list and its source."""

    stopwords_file: str | None = None
    kind: ClassVar[str] = "syntactic"

    def manifest_params(self, language: str) -> dict[str, Any]:
        out = super().manifest_params(language)
        out["stopwords"] = _stopword_source(language, self.stopwords_file)
        return out


@dataclass(frozen=True)
class FunctionWordDrop(_FunctionWordPerturbation):
    """Delete function words.

    Examples
    --------
    >>> p = FunctionWordDrop("function_word_drop")
    >>> p("The cat sat on the mat.", language="en", severity=1.0)
    'cat sat mat.'
    """

    severity_meaning: ClassVar[str] = "fraction of function words deleted"

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        stop = function_words(language, self.stopwords_file)
        if not stop:
            return text
        texts, flags = segment_raw(text, language)
        word_idx = [i for i, f in enumerate(flags) if f]
        n_words = len(word_idx)
        draws = stream.uniforms(n_words)
        drop = {
            i for k, i in enumerate(word_idx) if draws[k] < severity and texts[i].lower() in stop
        }
        if not drop:
            return text
        if len(drop) == n_words:
            # Keep the word picked last (largest draw) so a text never loses every word.
            keep = max(range(n_words), key=lambda k: (draws[k], k))
            drop.discard(word_idx[keep])
        return _drop_pieces(texts, drop)


def _drop_pieces(texts: list[str], drop: set[int]) -> str:
    """Remove the pieces at ``drop`` and one whitespace gap next to each."""
    out: list[str] = []
    skip_space = False
    n = len(texts)
    for i, piece in enumerate(texts):
        if skip_space and piece.isspace():
            skip_space = False
            continue
        skip_space = False
        if i not in drop:
            out.append(piece)
            continue
        next_is_space = i + 1 < n and texts[i + 1].isspace()
        prev_is_space = bool(out) and out[-1].isspace()
        if next_is_space and (not out or prev_is_space):
            skip_space = True
        elif prev_is_space and not next_is_space:
            out.pop()
    return "".join(out)


@dataclass(frozen=True)
class FunctionWordMove(_FunctionWordPerturbation):
    """Move function words to random word positions.

    Examples
    --------
    >>> p = FunctionWordMove("function_word_move")
    >>> out = p("The cat sat on the mat.", language="en", severity=1.0, seed=2, example_id="x")
    >>> sorted(out.rstrip(".").split()) == sorted("The cat sat on the mat".split())
    True
    """

    severity_meaning: ClassVar[str] = "fraction of function words moved to a random position"

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        stop = function_words(language, self.stopwords_file)
        if not stop:
            return text
        texts, flags = segment_raw(text, language)
        words = [t for t, f in zip(texts, flags, strict=True) if f]
        m = len(words)
        if m < 2:
            return text
        draws = stream.uniforms(2 * m)
        moved = [i for i in range(m) if draws[2 * i] < severity and words[i].lower() in stop]
        if not moved:
            return text
        moved_set = set(moved)
        current = [w for i, w in enumerate(words) if i not in moved_set]
        for i in moved:
            current.insert(Stream.index(draws[2 * i + 1], len(current) + 1), words[i])
        return fill_word_slots(texts, flags, current)


register(WordShuffle("word_shuffle"))
register(NgramShuffle("ngram_shuffle"))
register(ClauseSwap("clause_swap"))
register(FunctionWordDrop("function_word_drop"))
register(FunctionWordMove("function_word_move"))
