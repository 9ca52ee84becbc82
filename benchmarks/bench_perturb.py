"""Perturbing 10,000 real sentences with each registered perturbation.

Sentences: the first 667 XNLI dev premises of each of the 15 languages (10,000
in all; Chinese and Thai go through the ICU segmenter), read once before
timing. Subject: ``get_perturbation(name)(text, language=..., severity=0.5,
seed=0, example_id=i)`` over all of them, every call validating its inputs
and seeding its own stream. Target: the issue's "perturbing 10,000 sentences
takes at most a few seconds" (<= 3 s per perturbation), so perturbation is
never the bottleneck of a run. There is no speedup column: no outside
library does the same work (script-aware segmentation, per-example seeded
streams, 16 perturbations), and a ratio against a naive whitespace shuffle
would compare unlike work.

Times are CPU seconds of this process (``time.process_time``, best of 3): the
code is single-threaded, so on an idle machine CPU time is the wall time, and
on a shared, oversubscribed machine wall time mostly measures the other jobs.

Run: ``python -m benchmarks perturb``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks._common import Result, best_times
from xcal.paths import data_dir
from xcal.perturb import get_perturbation, perturbation_names
from xcal.perturb.words import segment_raw

N_SENTENCES = 10_000
TARGET_S = 3.0
SEVERITY = 0.5


def _sentences() -> list[tuple[str, str]]:
    root = data_dir(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xtreme")
    files = sorted((root / "xnli").glob("dev-*.tsv"))
    per_language = -(-N_SENTENCES // len(files))
    out: list[tuple[str, str]] = []
    for path in files:
        lang = path.name[len("dev-") : -len(".tsv")]
        with path.open(encoding="utf-8") as f:
            for _, line in zip(range(per_language), f, strict=False):
                out.append((lang, line.split("\t")[0]))
    return out[:N_SENTENCES]


def _lexicon(sentences: list[tuple[str, str]], root: Path) -> str:
    """A lexicon per language mapping every third word of the sample to an English word."""
    words: dict[str, set[str]] = {}
    for lang, text in sentences:
        texts, flags = segment_raw(text, lang)
        words.setdefault(lang, set()).update(
            t.lower() for t, f in zip(texts, flags, strict=True) if f
        )
    for lang, vocab in words.items():
        lines = [f"{w}\tword{k}" for k, w in enumerate(sorted(vocab)) if k % 3 == 0]
        (root / f"{lang}-en.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(root / "{lang}-en.txt")


def run() -> list[Result]:
    sentences = _sentences()
    assert len(sentences) == N_SENTENCES
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        lexicon = _lexicon(sentences, Path(tmp))
        for name in perturbation_names():
            p = (
                get_perturbation(name, lexicon=lexicon)
                if name == "code_switch"
                else get_perturbation(name)
            )

            def perturb_all(p=p) -> list[str]:
                return [
                    p(text, language=lang, severity=SEVERITY, seed=0, example_id=i)
                    for i, (lang, text) in enumerate(sentences)
                ]

            perturb_all()  # warm-up: ICU dictionaries, stopword lists, lexicon
            (subject_s,) = best_times([perturb_all], repeat=3, clock=time.process_time)
            results.append(
                Result(
                    benchmark=f"perturb {N_SENTENCES:,} XNLI sentences (15 languages), severity {SEVERITY:g}, CPU s",
                    subject=f"xcal.perturb {name}",
                    subject_s=subject_s,
                    baseline="",
                    baseline_s=None,
                    target=f"<= {TARGET_S:g} s",
                    passed=subject_s <= TARGET_S,
                )
            )
    return results


if __name__ == "__main__":
    for result in run():
        print(
            f"{result.subject}: {result.subject_s:.3f}s "
            f"(target {result.target}: {'met' if result.passed else 'NOT met'})"
        )
