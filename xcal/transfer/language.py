"""Language metadata for transfer analysis: typological distance, script, resource class.

Typological distances come from the URIEL feature vectors that the ``lang2vec``
package ships (Littell et al. 2017). The package's own Python module imports
``pkg_resources`` (gone from current setuptools) and its precomputed distance
matrix is a separate download, so this module reads the shipped ``.npz``
feature files directly (``allow_pickle=False``) and computes cosine or angular
distances itself; nothing touches the network.

The resource class of Joshi et al. (2020) and the script of each language's
evaluation text come from ``data/joshi2020_resource_classes.csv`` (sources in
``data/README.md``).
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
RESOURCE_CLASS_FILE = DATA_DIR / "joshi2020_resource_classes.csv"

# URIEL view -> (file in lang2vec/data, feature-name prefix). The *_knn views are
# URIEL's kNN-imputed typology (no missing values); fam is membership in
# Glottolog family-tree nodes; geo is closeness to 299 fixed points on the globe.
URIEL_VIEWS: dict[str, tuple[str, str]] = {
    "syntax_knn": ("feature_predictions.npz", "S_"),
    "phonology_knn": ("feature_predictions.npz", "P_"),
    "inventory_knn": ("feature_predictions.npz", "INV_"),
    "fam": ("family_features.npz", ""),
    "geo": ("geocoord_features.npz", ""),
}
DEFAULT_VIEWS: tuple[str, ...] = tuple(URIEL_VIEWS)

DistanceMetric = Literal["cosine", "angular"]

# XTREME (and XCOPA, XQuAD) two-letter codes -> the ISO 639-3 code URIEL knows.
# Macrolanguage codes (ara, zho, msa, swa, fas, est) are used where URIEL's
# individual-language entry lacks family data; this follows lang2vec's own
# letter_codes.json, written out here so the mapping is visible and tested.
ISO639_1_TO_3: dict[str, str] = {
    "af": "afr", "am": "amh", "ar": "ara", "az": "aze", "be": "bel", "bg": "bul",
    "bn": "ben", "bs": "bos", "ca": "cat", "ch": "cha", "cs": "ces", "cy": "cym", "da": "dan",
    "de": "deu", "el": "ell", "en": "eng", "eo": "epo", "es": "spa", "et": "est",
    "eu": "eus", "fa": "fas", "fi": "fin", "fo": "fao", "fr": "fra", "ga": "gle",
    "gd": "gla", "gl": "glg", "he": "heb", "hi": "hin", "hr": "hrv", "ht": "hat",
    "hu": "hun", "hy": "hye", "ia": "ina", "id": "ind", "ie": "ile", "io": "ido",
    "is": "isl", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz",
    "km": "khm", "ko": "kor", "kw": "cor", "la": "lat", "lt": "lit", "lv": "lav",
    "mk": "mkd", "ml": "mal", "mn": "mon", "mr": "mar", "ms": "msa", "my": "mya",
    "nb": "nob", "nl": "nld", "nn": "nno", "oc": "oci", "pl": "pol", "pt": "por",
    "qu": "que", "ro": "ron", "ru": "rus", "sk": "slk", "sl": "slv", "sq": "sqi",
    "sr": "srp", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel", "th": "tha",
    "tk": "tuk", "tl": "tgl", "tr": "tur", "tt": "tat", "ug": "uig", "uk": "ukr",
    "ur": "urd", "uz": "uzb", "vi": "vie", "xh": "xho", "yi": "yid", "yo": "yor",
    "zh": "zho",
}  # fmt: skip

# Unicode-name first word -> ISO 15924 script code.
_SCRIPT_OF_NAME: dict[str, str] = {
    "LATIN": "Latn", "CYRILLIC": "Cyrl", "GREEK": "Grek", "ARABIC": "Arab",
    "HEBREW": "Hebr", "ARMENIAN": "Armn", "GEORGIAN": "Geor", "DEVANAGARI": "Deva",
    "BENGALI": "Beng", "GURMUKHI": "Guru", "GUJARATI": "Gujr", "ORIYA": "Orya",
    "TAMIL": "Taml", "TELUGU": "Telu", "KANNADA": "Knda", "MALAYALAM": "Mlym",
    "SINHALA": "Sinh", "THAI": "Thai", "LAO": "Laoo", "TIBETAN": "Tibt",
    "MYANMAR": "Mymr", "KHMER": "Khmr", "ETHIOPIC": "Ethi", "HANGUL": "Hang",
    "CJK": "Hani", "HIRAGANA": "Kana", "KATAKANA": "Kana", "KATAKANA-HIRAGANA": "Kana",
    "THAANA": "Thaa", "JAVANESE": "Java", "TIFINAGH": "Tfng", "SYRIAC": "Syrc",
}  # fmt: skip


class LanguageDataError(LookupError):
    """A language is unknown to a table or to URIEL, or a data file is missing."""


# ----------------------------------------------------------------------------- codes
def to_iso639_3(code: str) -> str:
    """Map an XTREME two-letter code to ISO 639-3; three-letter codes pass through.

    Examples
    --------
    >>> to_iso639_3("de"), to_iso639_3("zh"), to_iso639_3("swh")
    ('deu', 'zho', 'swh')
    """
    if not isinstance(code, str) or not code:
        raise LanguageDataError(f"Expected a language code string, got {code!r}")
    code = code.strip().lower()
    if len(code) == 2:
        if code not in ISO639_1_TO_3:
            raise LanguageDataError(
                f"no ISO 639-3 mapping for two-letter code {code!r}; pass the three-letter code"
            )
        return ISO639_1_TO_3[code]
    return code


# ----------------------------------------------------------------------------- URIEL
def _lang2vec_data_dir() -> Path:
    # Located through the installed distribution's metadata rather than by import:
    # lang2vec.py fails on `import pkg_resources`, and the wheel also installs a
    # `bin/lang2vec.py` script that shadows the package when bin/ is on sys.path.
    try:
        dist = importlib.metadata.distribution("lang2vec")
    except importlib.metadata.PackageNotFoundError:
        raise LanguageDataError(
            "the lang2vec package is not installed; install xcal with the [offline] extra "
            "(pip install 'lang2vec>=1.1')"
        ) from None
    path = Path(str(dist.locate_file("lang2vec/data")))
    if not path.is_dir():
        raise LanguageDataError(f"lang2vec data directory {path} is missing")
    return path


@lru_cache(maxsize=8)
def _uriel_file(filename: str) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    path = _lang2vec_data_dir() / filename
    if not path.is_file():
        raise LanguageDataError(f"URIEL feature file {path} is missing from the lang2vec package")
    with np.load(path, allow_pickle=False) as npz:
        langs = npz["langs"]
        feats = npz["feats"]
        data = npz["data"]
    if data.ndim != 3 or data.shape[:2] != (langs.size, feats.size):
        raise LanguageDataError(f"{path}: unexpected array shapes {data.shape}")
    index = {str(lang): i for i, lang in enumerate(langs)}
    return index, feats, data


def uriel_languages() -> list[str]:
    """ISO 639-3 codes that the shipped URIEL feature files cover."""
    index, _, _ = _uriel_file("feature_predictions.npz")
    return sorted(index)


def uriel_features(languages: Sequence[str], view: str = "syntax_knn") -> np.ndarray:
    """URIEL feature vectors of ``languages`` in one view, shape ``(n_languages, n_features)``.

    Parameters
    ----------
    languages
        Two-letter XTREME codes or ISO 639-3 codes.
    view
        One of ``syntax_knn``, ``phonology_knn``, ``inventory_knn``, ``fam``, ``geo``.

    Returns
    -------
    numpy.ndarray
        float64 features; in the ``*_knn`` views every value is 0 or 1.

    References
    ----------
    Littell et al. (2017). URIEL and lang2vec: Representing languages as
    typological, geographical, and phylogenetic vectors. EACL.

    Examples
    --------
    >>> uriel_features(["en", "de"], "syntax_knn").shape
    (2, 103)
    """
    if view not in URIEL_VIEWS:
        raise LanguageDataError(f"unknown URIEL view {view!r}; known: {', '.join(URIEL_VIEWS)}")
    filename, prefix = URIEL_VIEWS[view]
    index, feats, data = _uriel_file(filename)
    columns = np.flatnonzero(np.char.startswith(feats.astype(str), prefix))
    rows = []
    for language in languages:
        code = to_iso639_3(language)
        if code not in index:
            raise LanguageDataError(f"language {language!r} ({code}) is not in URIEL ({filename})")
        rows.append(index[code])
    values = data[np.asarray(rows, dtype=np.intp)][:, columns, 0].astype(np.float64)
    if np.any(values == -1.0):
        # -1 marks a missing value in lang2vec's files; the views used here have none,
        # so finding one means the file is not what this code was written against.
        raise LanguageDataError(f"{filename}: missing values (-1) in view {view!r}")
    return values


def _vector_distance(a: np.ndarray, b: np.ndarray, metric: DistanceMetric) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0:
        # A zero vector has no direction: in `fam` it means URIEL records no family
        # node for the language (isolates such as Basque, or uncoded varieties).
        return float("nan")
    cos = float(np.clip(np.dot(a, b) / norm, -1.0, 1.0))
    if metric == "cosine":
        return max(0.0, 1.0 - cos)
    return float(np.arccos(cos) / np.pi)


def language_distance(
    language_a: str,
    language_b: str,
    view: str = "syntax_knn",
    *,
    metric: DistanceMetric = "cosine",
) -> float:
    """Typological distance between two languages in one URIEL view.

    Cosine distance is ``1 - cos(a, b)``; angular distance is
    ``arccos(cos(a, b)) / pi`` (a metric, in [0, 1]). NaN when either vector is
    all zeros (no family node in ``fam``: isolates and uncoded varieties).

    Examples
    --------
    >>> language_distance("en", "en")
    0.0
    >>> language_distance("en", "de") < language_distance("en", "ja")
    True
    """
    if metric not in ("cosine", "angular"):
        raise ValueError(f"Expected `metric` to be 'cosine' or 'angular', got {metric!r}")
    features = uriel_features([language_a, language_b], view)
    return _vector_distance(features[0], features[1], metric)


def language_distances(
    languages: Iterable[str],
    *,
    reference: str = "en",
    views: Sequence[str] = DEFAULT_VIEWS,
    metric: DistanceMetric = "cosine",
) -> pd.DataFrame:
    """Distance of each language from ``reference`` in each URIEL view, tidy.

    Returns
    -------
    pandas.DataFrame
        Columns ``language, iso639_3, reference, view, metric, distance``.

    Examples
    --------
    >>> df = language_distances(["de", "ja"], views=["syntax_knn"])
    >>> list(df["language"]), bool(df["distance"].is_monotonic_increasing)
    (['de', 'ja'], True)
    """
    if metric not in ("cosine", "angular"):
        raise ValueError(f"Expected `metric` to be 'cosine' or 'angular', got {metric!r}")
    languages = list(languages)
    rows = []
    for view in views:
        features = uriel_features([reference, *languages], view)
        for i, language in enumerate(languages, start=1):
            rows.append(
                {
                    "language": language,
                    "iso639_3": to_iso639_3(language),
                    "reference": reference,
                    "view": view,
                    "metric": metric,
                    "distance": _vector_distance(features[0], features[i], metric),
                }
            )
    return pd.DataFrame(
        rows, columns=["language", "iso639_3", "reference", "view", "metric", "distance"]
    )


# ------------------------------------------------------------------ resource classes
RESOURCE_CLASS_NAMES: dict[int, str] = {
    0: "The Left-Behinds",
    1: "The Scraping-Bys",
    2: "The Hopefuls",
    3: "The Rising Stars",
    4: "The Underdogs",
    5: "The Winners",
}


@lru_cache(maxsize=1)
def _resource_table() -> pd.DataFrame:
    path = RESOURCE_CLASS_FILE
    if not path.is_file():
        raise LanguageDataError(f"resource-class table {path} is missing")
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    reader = csv.DictReader(lines)
    expected = ["language", "iso639_3", "name", "script", "class"]
    if reader.fieldnames != expected:
        raise LanguageDataError(f"{path}: expected columns {expected}, got {reader.fieldnames}")
    records = []
    for row_number, row in enumerate(reader, start=2):
        try:
            klass = int(row["class"])
        except ValueError:
            raise LanguageDataError(
                f"{path} row {row_number}: class {row['class']!r} is not an integer"
            ) from None
        if not 0 <= klass <= 5:
            raise LanguageDataError(f"{path} row {row_number}: class {klass} is not in 0-5")
        records.append({**row, "class": klass})
    table = pd.DataFrame(records, columns=expected)
    for column in ("language", "iso639_3"):
        duplicated = table[column][table[column].duplicated()].tolist()
        if duplicated:
            raise LanguageDataError(f"{path}: duplicate {column} {duplicated}")
    return table


def resource_classes() -> pd.DataFrame:
    """The shipped table: ``language, iso639_3, name, script, class`` (Joshi et al. 2020).

    References
    ----------
    Joshi, Santy, Budhiraja, Bali and Choudhury (2020). The State and Fate of
    Linguistic Diversity and Inclusion in the NLP World. ACL.

    Examples
    --------
    >>> table = resource_classes()
    >>> int(table.loc[table["language"] == "en", "class"].iloc[0])
    5
    """
    return _resource_table().copy()


def _lookup(code: str) -> pd.Series:
    table = _resource_table()
    key = code.strip().lower()
    hit = table[(table["language"] == key) | (table["iso639_3"] == key)]
    if hit.empty:
        raise LanguageDataError(
            f"language {code!r} is not in {RESOURCE_CLASS_FILE.name} (a language whose class "
            "could not be established with confidence is left out on purpose)"
        )
    return hit.iloc[0]


def resource_class(code: str) -> int:
    """Joshi et al. (2020) resource class (0-5) of a language code (2- or 3-letter).

    Examples
    --------
    >>> resource_class("de"), resource_class("swh"), resource_class("te")
    (5, 2, 1)
    """
    return int(_lookup(code)["class"])


def script(code: str) -> str:
    """ISO 15924 script of a language's evaluation text (XTREME / Tatoeba).

    Examples
    --------
    >>> script("ru"), script("ja"), script("zh")
    ('Cyrl', 'Jpan', 'Hani')
    """
    return str(_lookup(code)["script"])


def family(code: str) -> str:
    """Top-level Glottolog family of a language, from URIEL's family features.

    A language's ``fam`` features mark every family-tree node above it; the
    node with the most member languages is its family's root. Returns ``""``
    where URIEL records no family (isolates such as Basque, constructed and
    some uncoded varieties).

    Examples
    --------
    >>> family("hi"), family("sw"), family("ja"), family("eu")
    ('Indo-European', 'Atlantic-Congo', 'Japonic', '')
    """
    iso = to_iso639_3(code)
    families = _families()
    if iso not in families:
        raise LanguageDataError(f"language {code!r} ({iso}) is not in URIEL")
    return families[iso]


@lru_cache(maxsize=1)
def _families() -> dict[str, str]:
    # Read once into a small table: the family matrix (7,970 x 3,718) is not kept.
    path = _lang2vec_data_dir() / URIEL_VIEWS["fam"][0]
    with np.load(path, allow_pickle=False) as npz:
        langs, names, member = npz["langs"], npz["feats"], npz["data"][:, :, 0] == 1
    size = member.sum(axis=0)
    out: dict[str, str] = {}
    for i, lang in enumerate(langs):
        nodes = np.flatnonzero(member[i])
        root = str(names[nodes[np.argmax(size[nodes])]]).removeprefix("F_") if len(nodes) else ""
        out[str(lang)] = root
    return out


def dominant_script(texts: Iterable[str]) -> str:
    """The ISO 15924 script of most letters in ``texts``.

    Han text with at least 10% kana counts as Japanese (``Jpan``). Returns
    ``"Zyyy"`` (undetermined) when there are no letters.

    Examples
    --------
    >>> dominant_script(["Привет, мир"]), dominant_script(["言う価値のあること"])
    ('Cyrl', 'Jpan')
    """
    counts: Counter[str] = Counter()
    for text in texts:
        for char in text:
            if char.isalpha():
                name = unicodedata.name(char, "")
                counts[_SCRIPT_OF_NAME.get(name.split(" ", 1)[0], "Zzzz")] += 1
    if not counts:
        return "Zyyy"
    kana, han = counts.pop("Kana", 0), counts.get("Hani", 0)
    if kana and kana >= 0.1 * (kana + han):
        return "Jpan"
    if kana:
        counts["Hani"] += kana
    return counts.most_common(1)[0][0]


def language_metadata(
    languages: Iterable[str],
    *,
    reference: str = "en",
    views: Sequence[str] = DEFAULT_VIEWS,
    metric: DistanceMetric = "cosine",
) -> pd.DataFrame:
    """One row per language: codes, script, resource class, family and URIEL distances (wide).

    Languages missing from the resource-class table get ``<NA>`` class and script
    rather than an error, since URIEL covers far more languages than the table.

    Examples
    --------
    >>> meta = language_metadata(["de", "sw"], views=["syntax_knn"])
    >>> meta[["language", "script", "resource_class"]].to_dict("records")
    [{'language': 'de', 'script': 'Latn', 'resource_class': 5}, {'language': 'sw', 'script': 'Latn', 'resource_class': 2}]
    """
    languages = list(languages)
    distances = language_distances(languages, reference=reference, views=views, metric=metric)
    wide = distances.pivot(index="language", columns="view", values="distance")
    rows = []
    for language in languages:
        try:
            found = _lookup(language)
            klass: object = int(found["class"])
            script_code: object = str(found["script"])
        except LanguageDataError:
            klass, script_code = pd.NA, pd.NA
        row: dict[str, object] = {
            "language": language,
            "iso639_3": to_iso639_3(language),
            "script": script_code,
            "resource_class": klass,
            "family": family(language),
        }
        for view in views:
            row[f"{view}_distance"] = float(wide.at[language, view])  # type: ignore[arg-type]
        rows.append(row)
    out = pd.DataFrame(rows)
    out["resource_class"] = out["resource_class"].astype("Int64")
    return out


def lang2vec_letter_codes() -> dict[str, str]:
    """lang2vec's own two-letter -> ISO 639-3 table (for cross-checking the mapping)."""
    path = _lang2vec_data_dir() / "letter_codes.json"
    with path.open(encoding="utf-8") as handle:
        return {str(k): str(v) for k, v in json.load(handle).items()}
