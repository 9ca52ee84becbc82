"""Language codes as the perturbations need them.

Task data names languages in two ways: ISO 639-1 (XNLI ``de``) and ISO 639-3
(Tatoeba ``deu``). Stopword lists and the choice of word segmenter are keyed
by ISO 639-1 where one exists, so every perturbation first maps the code it is
given with :func:`base_language` (``langcodes``, via :mod:`xcal.languages`).
"""

from __future__ import annotations

from xcal.languages import language_key

# Languages written without spaces between words: segmented with ICU's
# dictionary-based word break rules (or characters when ICU is missing).
# Cantonese and Wu Chinese (Tatoeba ``yue``, ``wuu``) are written in Han.
UNSPACED_LANGUAGES: frozenset[str] = frozenset(
    {"zh", "ja", "th", "lo", "km", "my", "yue", "wuu", "lzh"}
)


def base_language(language: str) -> str:
    """The ISO 639-1 code for ``language`` when one exists, else the code lower-cased.

    Region and script subtags are dropped (``pt-BR`` -> ``pt``, ``zh_Hant`` -> ``zh``).

    Examples
    --------
    >>> base_language("deu"), base_language("zh-CN"), base_language("cmn"), base_language("yue")
    ('de', 'zh', 'zh', 'yue')
    """
    if not isinstance(language, str) or not language.strip():
        raise ValueError(f"Expected `language` to be a non-empty language code, got {language!r}")
    key = language_key(language)
    # A code langcodes cannot parse keeps only its first subtag here, as before.
    return key.split("-")[0]


def is_unspaced(language: str) -> bool:
    """True for languages written without spaces between words (zh, ja, th, ...).

    >>> is_unspaced("jpn"), is_unspaced("de")
    (True, False)
    """
    return base_language(language) in UNSPACED_LANGUAGES
