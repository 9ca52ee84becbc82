"""Bitext retrieval: Tatoeba (LASER release) and BUCC-style bitext mining files.

Tatoeba: ``tatoeba/v1/tatoeba.{xxx}-eng.{xxx}`` and ``.eng`` hold translation
pairs line by line (ISO 639-3 codes). Each non-English sentence is a query
searched against the English sentences of the same file pair; its gold
candidate is the English line with the same index. Ids are line indices
(``tatoeba-000123``) for both queries and candidates. The English side differs
between languages, so scores are not comparable across languages.

BUCC 2018 (as XTREME lays it out): ``bucc2018/{lang}-en.{split}.{lang}`` and
``.en`` with ``id<TAB>sentence`` lines, and ``.gold`` with
``source_id<TAB>english_id`` lines. Every source sentence is a query; most
have no gold partner (an empty ``gold_ids``), which is what mining means, so
BUCC runs are stored as ``mining`` records (see docs/store.md) and scored by
the margin of Artetxe & Schwenk (2019) (:mod:`xcal.metrics.mining`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from xcal.tasks.base import (
    Candidate,
    RetrievalExample,
    RetrievalTask,
    TaskDataError,
    read_lines,
)
from xcal.tasks.registry import register_task


@register_task
class Tatoeba(RetrievalTask):
    """Tatoeba sentence retrieval, non-English to English (Artetxe & Schwenk, 2019)."""

    name = "tatoeba"
    paired = True  # query i and candidate i are a translation pair
    splits = ("test",)
    default_split = "test"
    description = "bitext retrieval xx -> eng, 112 languages"

    def path(self, data_dir: Path, language: str, split: str) -> Path:
        return data_dir / "tatoeba" / "v1" / f"tatoeba.{language}-eng.{language}"

    def english_path(self, data_dir: Path, language: str) -> Path:
        return data_dir / "tatoeba" / "v1" / f"tatoeba.{language}-eng.eng"

    def available(self, data_dir: Path, split: str) -> list[str]:
        root = data_dir / "tatoeba" / "v1"
        if not root.is_dir():
            return []
        langs = []
        for p in root.glob("tatoeba.*-eng.eng"):
            lang = p.name[len("tatoeba.") : -len("-eng.eng")]
            if self.path(data_dir, lang, split).is_file():
                langs.append(lang)
        return langs

    def _pairs(self, data_dir: Path, language: str) -> tuple[list[str], list[str]]:
        src_path = self.path(data_dir, language, "test")
        eng_path = self.english_path(data_dir, language)
        src, eng = read_lines(src_path), read_lines(eng_path)
        if len(src) != len(eng):
            raise TaskDataError(
                f"{src_path} has {len(src)} lines but {eng_path} has {len(eng)}; "
                "line i of each must be a translation pair"
            )
        for path, lines in ((src_path, src), (eng_path, eng)):
            for lineno, line in enumerate(lines, start=1):
                if not line.strip():
                    raise TaskDataError(f"{path} line {lineno}: empty sentence")
        return src, eng

    def _read(self, data_dir: Path, language: str, split: str) -> list[RetrievalExample]:
        src, _ = self._pairs(data_dir, language)
        return [
            RetrievalExample(f"tatoeba-{i:06d}", language, text, (f"tatoeba-{i:06d}",))
            for i, text in enumerate(src)
        ]

    def _read_candidates(self, data_dir: Path, language: str, split: str) -> list[Candidate]:
        _, eng = self._pairs(data_dir, language)
        return [Candidate(f"tatoeba-{i:06d}", text) for i, text in enumerate(eng)]


def _read_id_sentences(path: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(read_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0] or not fields[1].strip():
            raise TaskDataError(
                f"{path} line {lineno}: expected 'id<TAB>sentence', got {len(fields)} field(s)"
            )
        if fields[0] in seen:
            raise TaskDataError(f"{path} line {lineno}: duplicate id {fields[0]!r}")
        seen.add(fields[0])
        rows.append((fields[0], fields[1]))
    return rows


@register_task
class BUCC(RetrievalTask):
    """BUCC 2018 bitext mining (Zweigenbaum et al., 2018), source to English."""

    name = "bucc2018"
    record_kind = "mining"
    paired = False
    splits = ("dev", "test")
    default_split = "dev"
    description = "bitext mining xx -> en"
    #: Neighbours on each side whose mean similarity is the margin's denominator
    #: (XTREME's and LASER's ``neighborhood=4``).
    margin_k = 4

    def path(self, data_dir: Path, language: str, split: str) -> Path:
        return data_dir / "bucc2018" / f"{language}-en.{split}.{language}"

    def _side(self, data_dir: Path, language: str, split: str, suffix: str) -> Path:
        return data_dir / "bucc2018" / f"{language}-en.{split}.{suffix}"

    def available(self, data_dir: Path, split: str) -> list[str]:
        root = data_dir / "bucc2018"
        if not root.is_dir():
            return []
        langs = []
        for p in root.glob(f"*-en.{split}.en"):
            lang = p.name.split("-en.")[0]
            if lang != "en" and self.path(data_dir, lang, split).is_file():
                langs.append(lang)
        return langs

    def _read(self, data_dir: Path, language: str, split: str) -> list[RetrievalExample]:
        src = _read_id_sentences(self.path(data_dir, language, split))
        english_ids = {
            i for i, _ in _read_id_sentences(self._side(data_dir, language, split, "en"))
        }
        source_ids = {i for i, _ in src}
        gold_path = self._side(data_dir, language, split, "gold")
        gold: dict[str, list[str]] = {}
        if gold_path.is_file():
            for lineno, line in enumerate(read_lines(gold_path), start=1):
                fields = line.split("\t")
                if len(fields) != 2:
                    raise TaskDataError(
                        f"{gold_path} line {lineno}: expected 'source_id<TAB>english_id'"
                    )
                if fields[0] not in source_ids:
                    raise TaskDataError(
                        f"{gold_path} line {lineno}: unknown source id {fields[0]!r}"
                    )
                if fields[1] not in english_ids:
                    raise TaskDataError(
                        f"{gold_path} line {lineno}: unknown English id {fields[1]!r}"
                    )
                pairs = gold.setdefault(fields[0], [])
                if fields[1] in pairs:
                    raise TaskDataError(
                        f"{gold_path} line {lineno}: duplicate pair {fields[0]!r}, {fields[1]!r}"
                    )
                pairs.append(fields[1])
        else:
            warnings.warn(f"{gold_path} not found: no gold pairs for {language}", stacklevel=2)
        return [
            RetrievalExample(sid, language, text, tuple(gold.get(sid, ()))) for sid, text in src
        ]

    def _read_candidates(self, data_dir: Path, language: str, split: str) -> list[Candidate]:
        return [
            Candidate(i, text)
            for i, text in _read_id_sentences(self._side(data_dir, language, split, "en"))
        ]
