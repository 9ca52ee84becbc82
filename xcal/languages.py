"""Language codes: ISO 639-1 (``de``), ISO 639-3 (``deu``) and BCP 47 tags, all normalised.

Task data name languages in their own scheme (XNLI ``zh``, Tatoeba ``cmn``);
users type whichever they know. :func:`language_key` reduces a code to one
canonical language subtag with ``langcodes`` (which keeps the IANA registry's
aliases and macrolanguage mappings up to date), and :func:`match_language`
finds the code a task's data uses for a requested language, with a "did you
mean" and the list of what exists when nothing matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache

import langcodes

# langcodes folds Tagalog (tl, tgl) into Filipino (fil), which has no two-letter
# code; stopword lists and most data sets key it as ``tl``.
_TWO_LETTER_OVERRIDES = {"fil": "tl"}


@lru_cache(maxsize=4096)
def language_key(code: str) -> str:
    """The canonical language subtag of ``code`` (ISO 639-1 where one exists).

    Region and script subtags are dropped; 639-3 codes, deprecated codes and
    macrolanguage members map to the language's shortest code
    (``deu`` -> ``de``, ``cmn`` -> ``zh``, ``iw`` -> ``he``). Codes langcodes
    cannot parse (``de-``, ``../de``) are lower-cased and kept whole.

    Examples
    --------
    >>> [language_key(c) for c in ("zho", "zh-CN", "cmn", "deu", "swh", "tgl", "yue", "DE")]
    ['zh', 'zh', 'zh', 'de', 'sw', 'tl', 'yue', 'de']
    """
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"Expected a non-empty language code, got {code!r}")
    text = code.strip().replace("_", "-")
    try:
        tag = langcodes.standardize_tag(text, macro=True)
        language = langcodes.Language.get(tag).language or text
    except (ValueError, LookupError):
        language = text  # not a tag: kept whole, so it matches nothing else
    language = language.lower()
    return _TWO_LETTER_OVERRIDES.get(language, language)


def is_known(code: str) -> bool:
    """Whether ``code`` is a valid language tag (ISO 639-1/-3 or BCP 47).

    >>> is_known("zho"), is_known("de-AT"), is_known("xx"), is_known("german")
    (True, True, False, False)
    """
    try:
        return bool(langcodes.tag_is_valid(code.strip().replace("_", "-"))) and bool(
            langcodes.Language.get(code.strip().replace("_", "-")).is_valid()
        )
    except (ValueError, LookupError):
        return False


class UnknownLanguageError(KeyError):
    """A requested language is not among those a task's data has."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _name(code: str) -> str:
    try:
        return str(langcodes.Language.get(code).display_name())
    except (ValueError, LookupError):
        return code


def suggestions(requested: str, available: Iterable[str], n: int = 3) -> list[str]:
    """Codes of ``available`` close to ``requested``: by spelling, or by English name.

    >>> suggestions("zhh", ["zh", "de", "en"]), suggestions("german", ["zh", "de"])
    (['zh'], ['de'])
    """
    codes = list(available)
    if not requested.strip():
        return []
    close = difflib.get_close_matches(requested.lower(), codes, n=n, cutoff=0.6)
    try:
        found = langcodes.find(requested)
        by_name = [c for c in codes if language_key(c) == language_key(str(found))]
    except (ValueError, LookupError):
        by_name = []
    return list(dict.fromkeys([*by_name, *close]))[:n]


def match_language(requested: str, available: Iterable[str], *, what: str = "the data") -> str:
    """The code in ``available`` that names the same language as ``requested``.

    An exact match wins; otherwise codes are compared by :func:`language_key`
    (so ``zho`` finds XNLI's ``zh`` and ``zh`` finds Tatoeba's ``cmn``).

    Raises
    ------
    UnknownLanguageError
        No code (or more than one) matches: the message has a "did you mean"
        and the list of available codes.

    Examples
    --------
    >>> match_language("zho", ["de", "en", "zh"]), match_language("de", ["deu", "cmn"])
    ('zh', 'deu')
    """
    codes = list(dict.fromkeys(available))
    if requested in codes:
        return requested
    key = language_key(requested) if isinstance(requested, str) and requested.strip() else None
    matches = [c for c in codes if key is not None and language_key(c) == key]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(sorted(codes)) if codes else "(none)"
    if len(matches) > 1:
        raise UnknownLanguageError(
            f"language {requested!r} matches several codes of {what}: {', '.join(matches)}; "
            f"pass one of them"
        )
    hint = suggestions(requested, codes)
    did_you_mean = (
        " Did you mean " + " or ".join(f"{c!r} ({_name(c)})" for c in hint) + "?" if hint else ""
    )
    known = "" if is_known(requested) else " (not a known ISO 639 code)"
    raise UnknownLanguageError(
        f"no language {requested!r}{known} in {what}.{did_you_mean} Available: {listing}"
    )
