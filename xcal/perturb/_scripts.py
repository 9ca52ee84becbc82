"""Writing scripts of characters and per-script letter inventories.

Character noise must draw its replacement letters from the same script as the
text (a German sentence gets Latin typos, a Hindi one Devanagari typos). The
script of a character is read from its Unicode name ("CYRILLIC SMALL LETTER A"
-> "CYRILLIC"), which needs no extra dependency and is exact for letters.
Inventories come from fixed code point ranges of each script's core block,
filtered to letters, so they do not change when a newer Python brings a newer
Unicode database (characters in these ranges were all assigned long ago).
"""

from __future__ import annotations

import unicodedata
from functools import cache, lru_cache

import regex

# A user-perceived character for our purposes: a non-mark followed by its
# combining marks and joiners. Defined here rather than with ``\X`` so that the
# clusters do not depend on the Unicode version of the regex module.
CLUSTER_RE = regex.compile(r"\P{M}[\p{M}\u200c\u200d]*|[\p{M}\u200c\u200d]+")
MARK_RE = regex.compile(r"[\p{M}\u200c\u200d]")

# Name prefixes that are not scripts; characters named so count as "COMMON".
_NOT_SCRIPTS = frozenset({"DIGIT", "FULLWIDTH", "HALFWIDTH", "SUPERSCRIPT", "SUBSCRIPT"})

# Script -> code point ranges (inclusive) of its basic letters. Kept to each
# script's base alphabet (ASCII letters for Latin, А-я for Cyrillic, the 28
# Arabic letters...) so that noise in an English sentence does not produce
# Vietnamese or Urdu letters; the letters of the text itself are added to the
# pool at run time (German ä, Ukrainian ї, Urdu ٹ come from the text).
_CORE_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "LATIN": ((0x41, 0x5A), (0x61, 0x7A)),
    "GREEK": ((0x391, 0x3A9), (0x3B1, 0x3C9)),
    "CYRILLIC": ((0x410, 0x44F),),
    "ARMENIAN": ((0x531, 0x556), (0x561, 0x586)),
    "HEBREW": ((0x5D0, 0x5EA),),
    "ARABIC": ((0x621, 0x63A), (0x641, 0x64A)),
    "SYRIAC": ((0x710, 0x72F),),
    "THAANA": ((0x780, 0x7A5),),
    "DEVANAGARI": ((0x905, 0x939),),
    "BENGALI": ((0x985, 0x9B9),),
    "GURMUKHI": ((0xA05, 0xA39),),
    "GUJARATI": ((0xA85, 0xAB9),),
    "ORIYA": ((0xB05, 0xB39),),
    "TAMIL": ((0xB85, 0xBB9),),
    "TELUGU": ((0xC05, 0xC39),),
    "KANNADA": ((0xC85, 0xCB9),),
    "MALAYALAM": ((0xD05, 0xD39),),
    "SINHALA": ((0xD85, 0xDC6),),
    "THAI": ((0xE01, 0xE30), (0xE32, 0xE33), (0xE40, 0xE45)),
    "LAO": ((0xE81, 0xEB0),),
    "TIBETAN": ((0xF40, 0xF6C),),
    "MYANMAR": ((0x1000, 0x102A),),
    "GEORGIAN": ((0x10D0, 0x10FA),),
    "HANGUL": ((0xAC00, 0xD7A3),),
    "ETHIOPIC": ((0x1200, 0x135A),),
    "KHMER": ((0x1780, 0x17B3),),
    "HIRAGANA": ((0x3041, 0x3096),),
    "KATAKANA": ((0x30A1, 0x30FA),),
    # The Unicode 1.1 unified ideographs: every Han character in common use
    # (and many rare ones: without a frequency list the draw is uniform).
    "CJK": ((0x4E00, 0x9FA5),),
}

_LETTER_CATEGORIES = frozenset({"Lu", "Ll", "Lo"})


@lru_cache(maxsize=65536)
def script_of(char: str) -> str:
    """The script of one character, or ``"COMMON"`` for digits, punctuation, space, symbols.

    Han ideographs are ``"CJK"``; Hangul syllables and jamo are ``"HANGUL"``.

    >>> script_of("ж"), script_of("語"), script_of("ก"), script_of("7"), script_of(",")
    ('CYRILLIC', 'CJK', 'THAI', 'COMMON', 'COMMON')
    """
    category = unicodedata.category(char)
    if category[0] not in "LM":
        return "COMMON"
    name = unicodedata.name(char, "")
    if not name:
        return "UNKNOWN"
    head = name.split(" ", 1)[0]
    if head in _NOT_SCRIPTS:
        return "COMMON"
    if head == "MODIFIER" or head == "COMBINING":
        # Spacing modifier letters and generic combining marks are script-neutral.
        return "COMMON"
    return head


def scripts_in(text: str) -> set[str]:
    """The set of scripts used by the letters and marks of ``text`` (``COMMON`` excluded).

    >>> sorted(scripts_in("Tokyo 東京 とうきょう 2024!"))
    ['CJK', 'HIRAGANA', 'LATIN']
    """
    return {s for s in map(script_of, set(text)) if s != "COMMON"}


@cache
def _inventory(script: str, category: str) -> tuple[str, ...]:
    """Letters of ``script`` with general category ``category`` from its core ranges."""
    out = []
    for lo, hi in _CORE_RANGES.get(script, ()):
        for cp in range(lo, hi + 1):
            char = chr(cp)
            if unicodedata.category(char) == category and script_of(char) == script:
                out.append(char)
    return tuple(out)


class LetterPools:
    """Letters that may replace, or be inserted before, a letter of one text.

    The pool of a letter is the basic alphabet of its script (in code point
    order) followed by the other letters of that script found in the text
    (sorted), restricted to the letter's case (general category Lu/Ll/Lo)
    where the script has case. The order is fixed, so draws are reproducible.

    >>> pools = LetterPools("Grüße")
    >>> "ü" in pools.pool("e"), "Ü" in pools.pool("G"), "ж" in pools.pool("e")
    (True, False, False)
    """

    def __init__(self, text: str) -> None:
        self._chars = set(text)
        self._cache: dict[tuple[str, str], tuple[str, ...]] = {}
        self._by_char: dict[str, tuple[str, ...]] = {}

    def pool(self, char: str) -> tuple[str, ...]:
        found = self._by_char.get(char)
        if found is None:
            found = self._by_char[char] = self._pool(char)
        return found

    def _pool(self, char: str) -> tuple[str, ...]:
        script = script_of(char)
        category = unicodedata.category(char)
        if category not in _LETTER_CATEGORIES:
            category = "Lo"
        key = (script, category)
        found = self._cache.get(key)
        if found is None:
            base = _inventory(script, category)
            members = _inventory_set(script, category)
            extra = sorted(
                c for c in self._chars
                if c not in members and unicodedata.category(c) == category
                and script_of(c) == script
            )  # fmt: skip
            # Reuse the inventory when the text adds nothing (no 20,000-letter CJK copy).
            found = (base + tuple(extra) if extra else base) or (char,)
            self._cache[key] = found
        return found


@cache
def _inventory_set(script: str, category: str) -> frozenset[str]:
    return frozenset(_inventory(script, category))


def is_letter(char: str) -> bool:
    """True for a letter (general category L*)."""
    return unicodedata.category(char)[0] == "L"
