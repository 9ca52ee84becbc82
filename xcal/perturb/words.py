"""Script-aware word segmentation for the perturbations.

A text is cut into *pieces* whose concatenation is the text again, exactly.
Each piece is either a word (a unit that word-level perturbations may move,
drop or rewrite) or fixed (whitespace and punctuation, which stay in place).
Keeping the fixed pieces in place is what lets a shuffle work on Chinese,
Japanese and Thai without inserting spaces, unlike tools that split on ``\\W``
and rejoin with spaces.

Three segmenters:

``whitespace``
    Languages written with spaces: a word is a whitespace-delimited chunk with
    its leading and trailing punctuation split off as fixed pieces, so
    ``"world."`` is the word ``world`` then the fixed ``.`` while ``don't``,
    ``l'homme`` and ``3.5`` stay whole. Vietnamese words are therefore
    syllables.
``icu-<version>``
    Chinese, Japanese, Thai, Lao, Khmer and Burmese (see
    :data:`xcal.perturb._lang.UNSPACED_LANGUAGES`): ICU's word break iterator,
    whose dictionaries segment these scripts into words (PyICU; the
    ``pyicu-wheels`` distribution bundles ICU so no system library is needed).
``characters``
    The documented fallback for those languages when PyICU is not importable:
    every user-perceived character (a letter with its combining marks, so Thai
    vowel and tone marks stay on their consonant) is a word. Perturbations
    still run, but "words" are then characters; the segmenter's name goes into
    the run manifest so the two are never confused.

Examples
--------
>>> [p.text for p in segment("Hello, world.", "en") if p.is_word]
['Hello', 'world']
>>> "".join(p.text for p in segment("我喜欢猫。", "zh")) == "我喜欢猫。"
True
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import regex

from xcal.perturb._lang import base_language, is_unspaced
from xcal.perturb._scripts import CLUSTER_RE


class Piece(NamedTuple):
    """One piece of a segmented text: its exact characters and whether it is a word."""

    text: str
    is_word: bool


_CHUNK_RE = regex.compile(r"\s+|\S+")
_WORDISH_RE = regex.compile(r"[\p{L}\p{N}]")

SEGMENTERS = ("auto", "whitespace", "icu", "characters")

# Raw segmentation: parallel lists of piece texts and word flags. The
# perturbations use this form; building NamedTuples costs more than the
# segmentation itself on short sentences.
Raw = tuple[list[str], list[bool]]

_PUNCT: dict[str, bool] = {}


def _is_punct(char: str) -> bool:
    """Punctuation or symbol (general category P* or S*), cached per character."""
    value = _PUNCT.get(char)
    if value is None:
        value = _PUNCT[char] = unicodedata.category(char)[0] in "PS"
    return value


def _icu_module() -> Any | None:
    try:
        import icu
    except ImportError:  # pragma: no cover - exercised only without PyICU
        return None
    return icu


@lru_cache(maxsize=1)
def icu_version() -> str | None:
    """The ICU version behind PyICU, or None when PyICU is not importable.

    >>> icu_version() is None or icu_version()[0].isdigit()
    True
    """
    icu = _icu_module()
    return None if icu is None else str(icu.ICU_VERSION)


def segmenter_name(language: str, segmenter: str = "auto") -> str:
    """The segmenter used for ``language``: ``whitespace``, ``icu-<version>`` or ``characters``.

    This string goes into the run manifest: two runs segmented differently are
    different runs.

    >>> segmenter_name("de")
    'whitespace'
    >>> segmenter_name("th").startswith(("icu-", "characters"))
    True
    """
    if segmenter not in SEGMENTERS:
        raise ValueError(f"Expected `segmenter` in {SEGMENTERS}, got {segmenter!r}")
    if segmenter == "auto":
        if not is_unspaced(language):
            return "whitespace"
        segmenter = "icu" if icu_version() is not None else "characters"
    if segmenter == "icu":
        version = icu_version()
        if version is None:
            raise ImportError(
                "segmenter='icu' needs PyICU: pip install pyicu-wheels (or PyICU with libicu)"
            )
        return f"icu-{version}"
    return segmenter


def _add_chunk(chunk: str, texts: list[str], flags: list[bool]) -> None:
    """Append a non-space chunk as [leading punct] word [trailing punct]."""
    n = len(chunk)
    if not _is_punct(chunk[0]) and not _is_punct(chunk[-1]):
        texts.append(chunk)
        flags.append(True)
        return
    i = 0
    while i < n and _is_punct(chunk[i]):
        i += 1
    if i == n:
        texts.append(chunk)
        flags.append(False)
        return
    j = n
    while _is_punct(chunk[j - 1]):
        j -= 1
    if i:
        texts.append(chunk[:i])
        flags.append(False)
    texts.append(chunk[i:j])
    flags.append(True)
    if j < n:
        texts.append(chunk[j:])
        flags.append(False)


def _segment_whitespace(text: str) -> Raw:
    texts: list[str] = []
    flags: list[bool] = []
    # Fast path for the common case of single ASCII spaces between chunks
    # (isprintable() is False for every other whitespace character).
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        chunks = text.split(" ")
        for k, chunk in enumerate(chunks):
            if k:
                texts.append(" ")
                flags.append(False)
            # Most chunks are plain words: letters or digits at both ends.
            if chunk[0].isalnum() and chunk[-1].isalnum():
                texts.append(chunk)
                flags.append(True)
            else:
                _add_chunk(chunk, texts, flags)
        return texts, flags
    for chunk in _CHUNK_RE.findall(text):
        if chunk[0].isspace():
            texts.append(chunk)
            flags.append(False)
        else:
            _add_chunk(chunk, texts, flags)
    return texts, flags


def _segment_characters(text: str) -> Raw:
    texts: list[str] = CLUSTER_RE.findall(text)
    return texts, [bool(_WORDISH_RE.match(t)) for t in texts]


_local = threading.local()


def _break_iterator(language: str) -> Any:
    # Creating an ICU break iterator loads dictionaries (milliseconds), so keep
    # one per locale; they are not thread-safe, hence one set per thread.
    cache: dict[str, Any] | None = getattr(_local, "iterators", None)
    if cache is None:
        cache = _local.iterators = {}
    iterator = cache.get(language)
    if iterator is None:
        icu = _icu_module()
        assert icu is not None
        iterator = icu.BreakIterator.createWordInstance(icu.Locale(language))
        cache[language] = iterator
    return iterator


def _segment_icu(text: str, language: str) -> Raw:
    iterator = _break_iterator(base_language(language))
    iterator.setText(text)
    # ICU reports UTF-16 offsets; map them back when the text has astral characters.
    index: list[int] | None = None
    if any(ord(c) > 0xFFFF for c in text):
        index = []
        for i, c in enumerate(text):
            index.append(i)
            if ord(c) > 0xFFFF:
                index.append(i)
        index.append(len(text))
    texts: list[str] = []
    flags: list[bool] = []
    start = 0
    for end16 in iterator:
        end = end16 if index is None else index[end16]
        if end <= start:
            continue
        piece = text[start:end]
        # Rule status >= 100: number, letter, kana or ideograph (UBRK_WORD_*).
        texts.append(piece)
        flags.append(iterator.getRuleStatus() >= 100 and not piece.isspace())
        start = end
    if start < len(text):  # pragma: no cover - ICU always ends at the text's end
        texts.append(text[start:])
        flags.append(False)
    return texts, flags


def segment_raw(text: str, language: str, segmenter: str = "auto") -> Raw:
    """:func:`segment` as two parallel lists (piece texts, word flags), for speed."""
    name = segmenter_name(language, segmenter)
    if not text:
        return [], []
    if name == "whitespace":
        return _segment_whitespace(text)
    if name == "characters":
        return _segment_characters(text)
    return _segment_icu(text, language)


def segment(text: str, language: str, segmenter: str = "auto") -> list[Piece]:
    """Cut ``text`` into word and fixed pieces whose concatenation is ``text``.

    Parameters
    ----------
    text : str
        The text to segment.
    language : str
        ISO 639-1 or 639-3 code; decides the segmenter when ``segmenter="auto"``.
    segmenter : {"auto", "whitespace", "icu", "characters"}
        Force a segmenter (the perturbations always use ``"auto"``).

    Returns
    -------
    list of Piece

    Examples
    --------
    >>> [(p.text, p.is_word) for p in segment("Hi, you!", "en")]
    [('Hi', True), (',', False), (' ', False), ('you', True), ('!', False)]
    >>> [p.text for p in segment("ภาษาไทย", "th", segmenter="characters")]
    ['ภ', 'า', 'ษ', 'า', 'ไ', 'ท', 'ย']
    """
    texts, flags = segment_raw(text, language, segmenter)
    return [Piece(t, f) for t, f in zip(texts, flags, strict=True)]


def words(text: str, language: str, segmenter: str = "auto") -> list[str]:
    """The word pieces of ``text`` in order.

    >>> words("Where is the cat?", "en")
    ['Where', 'is', 'the', 'cat']
    """
    return [p.text for p in segment(text, language, segmenter) if p.is_word]


def join(pieces: Sequence[Piece]) -> str:
    """The text of ``pieces``, the inverse of :func:`segment`."""
    return "".join(p.text for p in pieces)


def fill_word_slots(texts: Sequence[str], flags: Sequence[bool], new_words: Sequence[str]) -> str:
    """Put ``new_words`` into the word slots of a raw segmentation; fixed pieces stay.

    Word-order perturbations compute a new order of the words and call this, so
    whitespace and punctuation keep their positions.

    >>> texts, flags = segment_raw("one, two three.", "en")
    >>> fill_word_slots(texts, flags, ["three", "one", "two"])
    'three, one two.'
    """
    out = list(texts)
    slots = [i for i, f in enumerate(flags) if f]
    if len(slots) != len(new_words):
        raise ValueError(f"Expected {len(slots)} words for the word slots, got {len(new_words)}")
    for i, word in zip(slots, new_words, strict=True):
        out[i] = word
    return "".join(out)
