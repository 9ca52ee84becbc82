"""Language codes as the perturbations need them.

Task data names languages in two ways: ISO 639-1 (XNLI ``de``) and ISO 639-3
(Tatoeba ``deu``). Stopword lists and the choice of word segmenter are keyed
by ISO 639-1 where one exists, so every perturbation first maps the code it is
given with :func:`base_language`.
"""

from __future__ import annotations

# ISO 639-3 (and 639-2/T) -> ISO 639-1 for the codes in the XTREME data (Tatoeba's
# 112 languages plus the XTREME and XCOPA sets). Generated once with
# ``langcodes.standardize_tag(code, macro=True)`` and checked in, so that no
# runtime dependency is needed; codes without a 639-1 equivalent are kept as is.
_ISO3_TO_ISO1: dict[str, str] = {
    "afr": "af", "amh": "am", "ara": "ar", "aze": "az", "bel": "be", "ben": "bn",
    "bos": "bs", "bre": "br", "bul": "bg", "cat": "ca", "ces": "cs", "cha": "ch",
    "cmn": "zh", "cor": "kw", "cym": "cy", "dan": "da", "deu": "de", "ell": "el",
    "epo": "eo", "est": "et", "eus": "eu", "fao": "fo", "fas": "fa", "fin": "fi",
    "fra": "fr", "fry": "fy", "gla": "gd", "gle": "ga", "glg": "gl", "guj": "gu",
    "hat": "ht", "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu", "hye": "hy",
    "ido": "io", "ile": "ie", "ina": "ia", "ind": "id", "isl": "is", "ita": "it",
    "jav": "jv", "jpn": "ja", "kan": "kn", "kat": "ka", "kaz": "kk", "khm": "km",
    "kor": "ko", "kur": "ku", "lao": "lo", "lat": "la", "lit": "lt", "lvs": "lv",
    "mal": "ml", "mar": "mr", "mkd": "mk", "mlt": "mt", "mon": "mn", "msa": "ms",
    "mya": "my", "nep": "ne", "nld": "nl", "nno": "nn", "nob": "nb", "nor": "no",
    "oci": "oc", "ori": "or", "pan": "pa", "pes": "fa", "pol": "pl", "por": "pt",
    "que": "qu", "ron": "ro", "rus": "ru", "sin": "si", "slk": "sk", "slv": "sl",
    "spa": "es", "sqi": "sq", "srp": "sr", "swe": "sv", "swh": "sw", "tam": "ta",
    "tat": "tt", "tel": "te", "tgl": "tl", "tha": "th", "tuk": "tk", "tur": "tr",
    "uig": "ug", "ukr": "uk", "urd": "ur", "uzb": "uz", "vie": "vi", "xho": "xh",
    "yid": "yi", "yor": "yo", "zho": "zh", "zsm": "ms",
}  # fmt: skip

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
    code = language.strip().replace("_", "-").split("-")[0].lower()
    return _ISO3_TO_ISO1.get(code, code)


def is_unspaced(language: str) -> bool:
    """True for languages written without spaces between words (zh, ja, th, ...).

    >>> is_unspaced("jpn"), is_unspaced("de")
    (True, False)
    """
    return base_language(language) in UNSPACED_LANGUAGES
