"""Distributional-shift perturbations: character noise, normalisation loss, script and language.

``char_noise`` (and ``char_insert``, ``char_delete``, ``char_substitute``, ``char_swap``)
    Each letter (with its combining marks) is picked with probability
    ``severity`` and gets one of the enabled operations: a letter inserted
    before it, deletion, substitution, or a swap with the next letter of the
    same word. Inserted and substituted letters come from the same script and
    case as the letter they replace or precede (:mod:`xcal.perturb._scripts`).
``remove_diacritics``
    Each diacritic is removed with probability ``severity``: combining marks on
    Latin, Greek and Cyrillic letters (after canonical decomposition), the
    letters ``đ ł ø ħ ŧ`` that have no decomposition, Arabic harakat, Hebrew
    points, Thai tone marks and the Devanagari nukta. Vowel signs of abugidas
    are spelling, not diacritics, and are kept.
``remove_punctuation``
    Each punctuation character is removed with probability ``severity``.
``lowercase``
    Casing removal: each word containing an upper-case letter is lower-cased
    with probability ``severity`` (Turkish and Azeri dotted/dotless I handled).
``transliterate``
    Each piece of text outside ASCII is romanised with ``anyascii`` with
    probability ``severity``; in Chinese, Japanese and Thai a space separates
    adjacent romanised words, as romanised text is written.
``whitespace_noise``
    Each boundary between two adjacent words is toggled with probability
    ``severity``: a space there is removed (words merge), no space (Chinese,
    Japanese, Thai) gets one.
``code_switch``
    Each word found in a bilingual lexicon (source -> English; ``lexicon``
    parameter) is replaced by its English translation with probability
    ``severity``. Without a lexicon it raises.
"""

from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress, count
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar

from xcal.perturb._lang import base_language, is_unspaced
from xcal.perturb._scripts import CLUSTER_RE, MARK_RE, LetterPools, script_of
from xcal.perturb.base import Perturbation, Stream, check_choices, register
from xcal.perturb.words import segment_raw

CHAR_OPS = ("insert", "delete", "substitute", "swap")


@dataclass(frozen=True)
class CharNoise(Perturbation):
    """Typo-like character noise drawn from the text's own script.

    Examples
    --------
    >>> p = CharNoise("char_noise")
    >>> p("Привет, мир", language="ru", severity=0.0)
    'Привет, мир'
    >>> out = p("Привет, мир", language="ru", severity=1.0, seed=0, example_id=1)
    >>> from xcal.perturb._scripts import scripts_in
    >>> scripts_in(out) <= {"CYRILLIC"}
    True
    """

    ops: tuple[str, ...] = CHAR_OPS
    kind: ClassVar[str] = "noise"
    uses_segmenter: ClassVar[bool] = False

    @property
    def severity_meaning(self) -> str:  # type: ignore[override]
        names = {"insert": "an insertion", "delete": "a deletion",
                 "substitute": "a substitution", "swap": "a swap"}  # fmt: skip
        ops = [names[o] for o in self.ops]
        listed = ops[0] if len(ops) == 1 else ", ".join(ops[:-1]) + " or " + ops[-1]
        return f"fraction of letters hit by {listed}"

    def _validate(self) -> None:
        check_choices("ops", self.ops, CHAR_OPS)
        object.__setattr__(self, "ops", tuple(self.ops))

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        # Without combining marks every character is its own cluster.
        firsts: Iterator[str]
        if MARK_RE.search(text):
            clusters: list[str] = CLUSTER_RE.findall(text)
            firsts = map(itemgetter(0), clusters)
        else:
            clusters = list(text)
            firsts = iter(clusters)
        letter_idx = list(compress(count(), map(str.isalpha, firsts)))
        m = len(letter_idx)
        # Three draws per letter, laid out [selection | operation | replacement],
        # drawn whatever the severity so that severities stay nested.
        draws = stream.uniforms(3 * m)
        picked = list(compress(range(m), map(severity.__gt__, draws[:m])))
        if not picked:
            return text
        ops = self.ops
        n_ops = len(ops)
        pools = LetterPools(text)
        out = list(clusters)
        deleted: list[int] = []
        consumed = -1  # the cluster taken by the last swap
        n = len(clusters)
        for k in picked:
            i = letter_idx[k]
            if i == consumed:
                continue
            cluster = clusters[i]
            op = ops[min(int(draws[m + k] * n_ops), n_ops - 1)]
            if op == "swap":
                if i + 1 < n and clusters[i + 1][0].isalpha():
                    out[i], out[i + 1] = clusters[i + 1], cluster
                    consumed = i + 1
                    continue
                # The last letter of a word has no neighbour to swap with.
                op = "substitute" if "substitute" in ops else "insert"
            if op == "delete":
                out[i] = ""
                deleted.append(i)
                continue
            pool = pools.pool(cluster[0])
            new = pool[min(int(draws[2 * m + k] * len(pool)), len(pool) - 1)]
            # Substitution keeps the combining marks: they belong to the letter's slot.
            out[i] = new + cluster if op == "insert" else new + cluster[1:]
        if deleted and len(deleted) == m:
            out[deleted[0]] = clusters[deleted[0]]  # never delete every letter
        return "".join(out)


# Letters whose diacritic is not a combining mark under canonical decomposition.
_UNDECOMPOSABLE = str.maketrans("đĐłŁøØħĦŧŦ", "dDlLoOhHtT")
_STRIP_BASE_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC"})


@lru_cache(maxsize=4096)
def _is_standalone_diacritic(char: str) -> bool:
    """Marks removed wherever they occur, not only on a Latin/Greek/Cyrillic letter."""
    cp = ord(char)
    if unicodedata.category(char) != "Mn":
        return False
    return (
        0x064B <= cp <= 0x0652  # Arabic harakat: tanwin, short vowels, shadda, sukun
        or 0x0656 <= cp <= 0x065F  # further Arabic vowel marks (not madda/hamza: spelling)
        or cp == 0x0670  # Arabic superscript alef
        or 0x06D6 <= cp <= 0x06ED  # Arabic Quranic annotation marks
        or 0x0591 <= cp <= 0x05C7  # Hebrew points and cantillation
        or 0x0E48 <= cp <= 0x0E4B  # Thai tone marks
        or cp == 0x093C  # Devanagari nukta
    )


@lru_cache(maxsize=8192)
def _decompose(char: str) -> tuple[str, tuple[bool, ...]]:
    """(canonical decomposition, which of its characters are removable diacritics)."""
    decomposed = unicodedata.normalize("NFD", char)
    strip_all = script_of(decomposed[0]) in _STRIP_BASE_SCRIPTS
    flags = tuple(
        i > 0 and (_is_standalone_diacritic(c) or (strip_all and unicodedata.category(c) == "Mn"))
        for i, c in enumerate(decomposed)
    )
    return decomposed, flags


@dataclass(frozen=True)
class RemoveDiacritics(Perturbation):
    """Strip diacritics (accents, tones, harakat, niqqud, Thai tone marks, nukta).

    Examples
    --------
    >>> p = RemoveDiacritics("remove_diacritics")
    >>> p("Tiếng Việt, façade, Ελληνικά, Łódź", language="vi", severity=1.0)
    'Tieng Viet, facade, Ελληνικα, Lodz'
    """

    kind: ClassVar[str] = "noise"
    severity_meaning: ClassVar[str] = "fraction of diacritics removed"
    uses_segmenter: ClassVar[bool] = False

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        if text.isascii():
            return text
        kinds = {c: _diacritic_kind(c) for c in set(text)}
        if not any(kinds.values()):
            return text
        out = list(text)
        for i, char in enumerate(text):
            kind = kinds[char]
            if kind == _NONE:
                continue
            if kind == _MARK_ON_LETTER:
                # A combining mark stored on its own after a Latin/Greek/Cyrillic letter.
                if _base_script(text, i) not in _STRIP_BASE_SCRIPTS:
                    continue
                kind = _STANDALONE
            if kind == _STANDALONE:
                if stream.uniform() < severity:
                    out[i] = ""
            elif kind == _UNDECOMPOSABLE_LETTER:
                if stream.uniform() < severity:
                    out[i] = char.translate(_UNDECOMPOSABLE)
            else:  # a precomposed letter with removable marks
                decomposed, removable = _decompose(char)
                kept = [
                    c for c, flag in zip(decomposed, removable, strict=True)
                    if not (flag and stream.uniform() < severity)
                ]  # fmt: skip
                if len(kept) != len(decomposed):
                    out[i] = unicodedata.normalize("NFC", "".join(kept))
        return "".join(out)


_NONE, _STANDALONE, _MARK_ON_LETTER, _UNDECOMPOSABLE_LETTER, _PRECOMPOSED = range(5)


@lru_cache(maxsize=8192)
def _diacritic_kind(char: str) -> int:
    """How ``remove_diacritics`` treats one character (context aside)."""
    if char.isascii():
        return _NONE
    if unicodedata.category(char) == "Mn":
        return _STANDALONE if _is_standalone_diacritic(char) else _MARK_ON_LETTER
    if char.translate(_UNDECOMPOSABLE) != char:
        return _UNDECOMPOSABLE_LETTER
    return _PRECOMPOSED if any(_decompose(char)[1]) else _NONE


def _base_script(text: str, i: int) -> str:
    """Script of the nearest non-mark character before position ``i``."""
    for j in range(i - 1, -1, -1):
        if unicodedata.category(text[j]) != "Mn":
            return script_of(text[j])
    return "COMMON"


@dataclass(frozen=True)
class RemovePunctuation(Perturbation):
    """Delete punctuation characters.

    A removed mark that stood between spaces (or at either end) takes the
    spaces after it (or before it, at the end) along, so no double spaces
    appear.

    Examples
    --------
    >>> p = RemovePunctuation("remove_punctuation")
    >>> p("Well - yes, «quoted» !", language="fr", severity=1.0)
    'Well yes quoted'
    """

    kind: ClassVar[str] = "noise"
    severity_meaning: ClassVar[str] = "fraction of punctuation characters removed"
    uses_segmenter: ClassVar[bool] = False

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        out: list[str] = []
        n = len(text)
        skip_space = False
        for i, char in enumerate(text):
            if skip_space and char.isspace():
                continue
            skip_space = False
            if unicodedata.category(char)[0] != "P" or stream.uniform() >= severity:
                out.append(char)
                continue
            before_space = not out or out[-1].isspace()
            at_end = i + 1 >= n
            if before_space and (at_end or text[i + 1].isspace()):
                if at_end:
                    while out and out[-1].isspace():
                        out.pop()
                else:
                    skip_space = True
        return "".join(out)


@dataclass(frozen=True)
class Lowercase(Perturbation):
    """Casing removal, word by word.

    Examples
    --------
    >>> p = Lowercase("lowercase")
    >>> p("İstanbul ve Irak", language="tr", severity=1.0)
    'istanbul ve ırak'
    """

    kind: ClassVar[str] = "noise"
    severity_meaning: ClassVar[str] = "fraction of words with capitals that are lower-cased"

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        if text.islower() or not any(c.isupper() for c in text):
            return text
        turkic = base_language(language) in {"tr", "az"}
        texts, flags = segment_raw(text, language)
        out: list[str] = []
        for piece, is_word in zip(texts, flags, strict=True):
            if not is_word:
                out.append(piece)
                continue
            u = stream.uniform()
            if u < severity and not piece.islower() and any(c.isupper() for c in piece):
                if turkic:
                    piece = piece.replace("I", "ı").replace("İ", "i")
                out.append(piece.lower())
            else:
                out.append(piece)
        return "".join(out)


def _join_inserted(flags: list[bool], new: list[str], changed: list[bool], spaced: bool) -> str:
    """Join pieces with replacements; in unspaced scripts put spaces around changed words."""
    if not spaced:
        return "".join(new)
    out: list[str] = []
    for i, text in enumerate(new):
        if i > 0 and flags[i] and flags[i - 1] and (changed[i] or changed[i - 1]):
            out.append(" ")
        out.append(text)
    return "".join(out)


@dataclass(frozen=True)
class Transliterate(Perturbation):
    """Romanise into Latin script with ``anyascii``.

    Examples
    --------
    >>> p = Transliterate("transliterate")
    >>> p("Москва — столица", language="ru", severity=1.0)
    'Moskva - stolitsa'
    """

    kind: ClassVar[str] = "noise"
    severity_meaning: ClassVar[str] = "fraction of non-ASCII words and marks romanised"
    keeps_script: ClassVar[bool] = False

    def manifest_params(self, language: str) -> dict[str, Any]:
        from importlib.metadata import version

        out = super().manifest_params(language)
        out["anyascii"] = version("anyascii")
        return out

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        if text.isascii():
            return text
        from anyascii import anyascii

        texts, flags = segment_raw(text, language)
        new: list[str] = []
        changed: list[bool] = []
        for piece in texts:
            if not piece.isascii() and stream.uniform() < severity:
                new.append(anyascii(piece))
                changed.append(True)
            else:
                new.append(piece)
                changed.append(False)
        return _join_inserted(flags, new, changed, is_unspaced(language))


@dataclass(frozen=True)
class WhitespaceNoise(Perturbation):
    """Remove spaces between words, or insert them where the script has none.

    Examples
    --------
    >>> p = WhitespaceNoise("whitespace_noise")
    >>> p("the cat sat, then left", language="en", severity=1.0)
    'thecatsat, thenleft'
    """

    kind: ClassVar[str] = "noise"
    severity_meaning: ClassVar[str] = "fraction of word boundaries whose spacing is toggled"

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        texts, flags = segment_raw(text, language)
        out: list[str] = []
        n = len(texts)
        for i, piece in enumerate(texts):
            if flags[i]:
                out.append(piece)
                if i + 1 < n and flags[i + 1]:  # adjacent words, no space
                    if stream.uniform() < severity:
                        out.append(" ")
                continue
            between_words = 0 < i < n - 1 and flags[i - 1] and flags[i + 1] and piece.isspace()
            if between_words and stream.uniform() < severity:
                continue
            out.append(piece)
        return "".join(out)


@lru_cache(maxsize=32)
def _read_lexicon(path: str, mtime_ns: int, size: int) -> tuple[dict[str, str], str]:
    """Parse a bilingual lexicon; returns (source -> English, sha256 of the file)."""
    raw = Path(path).read_bytes()
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"lexicon {path}: not UTF-8 ({err})") from None
    lexicon: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split("\t") if "\t" in stripped else stripped.split()
        if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(
                f"lexicon {path} line {lineno}: expected 'source<TAB>english' "
                f"(or two space-separated words), got {line!r}"
            )
        # MUSE-style lexicons list several translations; the first one wins.
        lexicon.setdefault(parts[0].strip().lower(), parts[1].strip())
    if not lexicon:
        raise ValueError(f"lexicon {path}: no entries")
    return lexicon, hashlib.sha256(raw).hexdigest()


def load_lexicon(path: str) -> tuple[dict[str, str], str]:
    """Load a bilingual lexicon file: one ``source<TAB>english`` pair a line.

    Pairs separated by a single space (the MUSE dictionaries' format) are
    accepted too; lines starting with ``#`` are comments; the first translation
    of a repeated source word is used. Returns the mapping (lower-cased source
    words) and the file's SHA-256, which goes into the run manifest.
    """
    # One stat per call: the parsed file is cached by path, time and size.
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"lexicon file {path!r} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileNotFoundError(f"lexicon file {path!r} is not a regular file")
    return _read_lexicon(path, info.st_mtime_ns, info.st_size)


@dataclass(frozen=True)
class CodeSwitch(Perturbation):
    """Replace words by their English translation from a bilingual lexicon.

    ``lexicon`` is a file path; ``{lang}`` in it is replaced by the language
    code (ISO 639-1 where one exists), so one parameter serves all languages,
    e.g. ``"lexicons/{lang}-en.txt"``.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "de-en.txt"), "w", encoding="utf-8") as f:
    ...     _ = f.write("hund\\tdog\\nkatze\\tcat\\n")
    >>> p = CodeSwitch("code_switch", lexicon=os.path.join(d, "{lang}-en.txt"))
    >>> p("Der Hund und die Katze.", language="deu", severity=1.0)
    'Der Dog und die Cat.'
    """

    lexicon: str | None = None
    kind: ClassVar[str] = "noise"
    severity_meaning: ClassVar[str] = (
        "fraction of lexicon words replaced by their English translation"
    )
    keeps_script: ClassVar[bool] = False

    def lexicon_path(self, language: str) -> str:
        if self.lexicon is None:
            raise ValueError(
                "code_switch needs a bilingual lexicon: pass lexicon='path/{lang}-en.txt' "
                "(one 'source<TAB>english' pair per line)"
            )
        return self.lexicon.replace("{lang}", base_language(language))

    def manifest_params(self, language: str) -> dict[str, Any]:
        out = super().manifest_params(language)
        out["lexicon_sha256"] = load_lexicon(self.lexicon_path(language))[1]
        return out

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        lexicon, _ = load_lexicon(self.lexicon_path(language))
        texts, flags = segment_raw(text, language)
        new: list[str] = []
        changed: list[bool] = []
        for piece, is_word in zip(texts, flags, strict=True):
            if not is_word:
                new.append(piece)
                changed.append(False)
                continue
            u = stream.uniform()
            english = lexicon.get(piece.lower())
            if english is not None and u < severity:
                if piece[:1].isupper() and english[:1].islower():
                    english = english[:1].upper() + english[1:]
                new.append(english)
                changed.append(True)
            else:
                new.append(piece)
                changed.append(False)
        return _join_inserted(flags, new, changed, is_unspaced(language))


register(CharNoise("char_noise"))
register(CharNoise("char_insert", ops=("insert",)))
register(CharNoise("char_delete", ops=("delete",)))
register(CharNoise("char_substitute", ops=("substitute",)))
register(CharNoise("char_swap", ops=("swap",)))
register(RemoveDiacritics("remove_diacritics"))
register(RemovePunctuation("remove_punctuation"))
register(Lowercase("lowercase"))
register(Transliterate("transliterate"))
register(WhitespaceNoise("whitespace_noise"))
register(CodeSwitch("code_switch"))
