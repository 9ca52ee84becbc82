"""Realistic BUCC 2018 files and embeddings for the mining tests.

The real zh-en dev set has 8,624 Chinese and 13,589 English sentences and 257
gold pairs: about 3% of source sentences have a partner and there are more
English than source sentences. The real files are not distributed with xcal
(``../shared/data`` has no ``bucc2018``), so the tests generate files with the
same layout, sizes and gold density (``id<TAB>sentence`` lines, ids like
``zh-000000123``; a ``.gold`` file of ``source_id<TAB>english_id`` lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Sizes of the real zh-en dev set.
DEV_SOURCE, DEV_ENGLISH, DEV_GOLD = 8_624, 13_589, 257

_SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "ve", "du"]


@dataclass(frozen=True)
class BuccFiles:
    source_ids: list[str]
    english_ids: list[str]
    gold: list[tuple[str, str]]  # (source id, English id)


def _sentences(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` sentences of 4-15 words drawn from a 2,000-word made-up vocabulary."""
    vocab = np.array(
        ["".join(rng.choice(_SYLLABLES, size=int(rng.integers(1, 4)))) for _ in range(2000)]
    )
    lengths = rng.integers(4, 16, size=n)
    words = vocab[rng.integers(0, len(vocab), size=int(lengths.sum()))]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [" ".join(words[bounds[i] : bounds[i + 1]]) for i in range(n)]


def write_bucc(
    data_dir: Path,
    *,
    language: str = "zh",
    split: str = "dev",
    n_source: int = DEV_SOURCE,
    n_english: int = DEV_ENGLISH,
    n_gold: int = DEV_GOLD,
    seed: int = 0,
) -> BuccFiles:
    """Write ``bucc2018/{language}-en.{split}.{language,en,gold}`` under ``data_dir``.

    Ids are shuffled in the files (not in id order), as in the real release.
    """
    rng = np.random.default_rng(seed)
    root = data_dir / "bucc2018"
    root.mkdir(parents=True, exist_ok=True)
    source_ids = [f"{language}-{i:09d}" for i in rng.permutation(n_source)]
    english_ids = [f"en-{i:09d}" for i in rng.permutation(n_english)]
    src_pick = rng.choice(n_source, size=n_gold, replace=False)
    eng_pick = rng.choice(n_english, size=n_gold, replace=False)
    gold = [(source_ids[s], english_ids[e]) for s, e in zip(src_pick, eng_pick, strict=True)]
    prefix = root / f"{language}-en.{split}"
    for suffix, ids in ((language, source_ids), ("en", english_ids)):
        lines = [f"{i}\t{text}\n" for i, text in zip(ids, _sentences(rng, len(ids)), strict=True)]
        Path(f"{prefix}.{suffix}").write_text("".join(lines), encoding="utf-8")
    Path(f"{prefix}.gold").write_text("".join(f"{s}\t{e}\n" for s, e in gold), encoding="utf-8")
    return BuccFiles(source_ids, english_ids, gold)


def planted_embeddings(
    n_source: int,
    n_english: int,
    gold_pairs: list[tuple[int, int]],
    *,
    dim: int = 32,
    noise: float = 0.6,
    hub_fraction: float = 0.02,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings where gold pairs are near each other, plus hubs.

    Each gold pair shares a direction up to ``noise``; a few English "hubs"
    lie near the centre of the source cloud, so that plain cosine prefers them
    for many queries and the margin (which divides by the neighbourhood's
    mean similarity) is needed to reject them, as on real data.
    """
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=dim)
    q = rng.normal(size=(n_source, dim)) + 0.8 * centre
    c = rng.normal(size=(n_english, dim)) + 0.8 * centre
    for s, e in gold_pairs:
        c[e] = q[s] + noise * rng.normal(size=dim)
    partnered = {e for _, e in gold_pairs}
    others = np.array([e for e in range(n_english) if e not in partnered])
    hubs = rng.choice(others, size=max(1, int(hub_fraction * n_english)), replace=False)
    c[hubs] = 2.5 * centre + 0.3 * rng.normal(size=(len(hubs), dim))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return q.astype(np.float32), c.astype(np.float32)
