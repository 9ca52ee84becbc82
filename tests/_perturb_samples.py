"""Real sentences for the perturbation tests, read straight from the shared XTREME files.

Deliberately independent of ``xcal.tasks``: the raw XNLI TSV, XQuAD JSON and
Tatoeba lines are read here, so the perturbation tests check the perturbations
and nothing else. Collected at import time so tests can be parametrised by
language.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    env = os.environ.get("XCAL_DATA_DIR")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data" / "xtreme"


def _lines(path: Path, limit: int) -> list[str]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n").removesuffix("\r")
            if line.strip():
                out.append(line)
            if len(out) >= limit:
                break
    return out


def xnli_languages() -> list[str]:
    return sorted(p.name[4:-4] for p in (data_root() / "xnli").glob("dev-*.tsv"))


def xquad_languages() -> list[str]:
    return sorted(p.name[6:-5] for p in (data_root() / "xquad").glob("xquad.*.json"))


def tatoeba_languages() -> list[str]:
    root = data_root() / "tatoeba" / "v1"
    return sorted(p.name[8:-8] for p in root.glob("tatoeba.*-eng.eng"))


@cache
def xnli_rows(lang: str, limit: int = 40) -> list[tuple[str, str, str]]:
    """(premise, hypothesis, label) rows of XNLI dev."""
    rows = []
    for line in _lines(data_root() / "xnli" / f"dev-{lang}.tsv", limit):
        premise, hypothesis, label = line.split("\t")
        rows.append((premise, hypothesis, label))
    return rows


@cache
def xquad_items(lang: str, limit: int = 40) -> list[dict]:
    """{"id", "question", "context", "answers"} for the first questions of XQuAD."""
    data = json.loads((data_root() / "xquad" / f"xquad.{lang}.json").read_text(encoding="utf-8"))
    out: list[dict] = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                out.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "context": paragraph["context"],
                        "answers": [
                            {"text": a["text"], "answer_start": a["answer_start"]}
                            for a in qa["answers"]
                        ],
                    }
                )
                if len(out) >= limit:
                    return out
    return out


@cache
def tatoeba_lines(lang: str, limit: int = 40) -> list[str]:
    return _lines(data_root() / "tatoeba" / "v1" / f"tatoeba.{lang}-eng.{lang}", limit)


def sentences(dataset: str, lang: str, limit: int = 20) -> list[str]:
    """Short real texts of one language: XNLI premises/hypotheses, XQuAD questions, Tatoeba."""
    if dataset == "xnli":
        rows = xnli_rows(lang)
        return [t for row in rows[: (limit + 1) // 2] for t in row[:2]][:limit]
    if dataset == "xquad":
        return [item["question"] for item in xquad_items(lang)][:limit]
    if dataset == "tatoeba":
        return tatoeba_lines(lang)[:limit]
    raise ValueError(dataset)


def all_language_cases() -> list[tuple[str, str]]:
    """(dataset, language) for every language in shared XNLI, XQuAD and Tatoeba."""
    return (
        [("xnli", lang) for lang in xnli_languages()]
        + [("xquad", lang) for lang in xquad_languages()]
        + [("tatoeba", lang) for lang in tatoeba_languages()]
    )
