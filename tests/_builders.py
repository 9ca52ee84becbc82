"""Builders shared by tests: a run manifest, classification records, QA stores.

Each test file binds its own defaults with ``functools.partial`` (a store test
needs ``n_examples`` to match its records); keyword arguments given at the call
still win.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from xcal.store import RunManifest


def run_manifest(**changes: Any) -> RunManifest:
    """An XNLI dev run in German; ``changes`` replace any field."""
    base = RunManifest(
        model="xlm-roberta-base",
        task="xnli",
        split="dev",
        language="de",
        record_kind="classification",
        input_fingerprint="fp",
        n_examples=3,
    )
    return dataclasses.replace(base, **changes)


def classification_records(n: int = 4, c: int = 3, seed: int = 0) -> dict[str, Any]:
    """``n`` XNLI-style ids, float32 normal logits over ``c`` classes and random labels."""
    rng = np.random.default_rng(seed)
    return {
        "example_id": [f"xnli-dev-{i:06d}" for i in range(n)],
        "logits": rng.normal(size=(n, c)).astype(np.float32),
        "label": rng.integers(0, c, size=n),
    }


def qa_stores_with_and_without_paragraphs(root: Any, languages: list[str]) -> dict[str, Any]:
    """Two synthetic QA stores of the same runs: ``"paragraphs"`` records units of four
    questions, ``"questions"`` records none (a baseline and a system, 200 questions)."""
    from xcal.analyze.synthetic import SyntheticSystem, add_synthetic_qa
    from xcal.store import open_store

    systems = (SyntheticSystem("baseline"), SyntheticSystem("inter", logit_scale=lambda *a: 1.5))
    stores = {}
    for name, per_paragraph in (("paragraphs", 4), ("questions", None)):
        stores[name] = add_synthetic_qa(
            open_store(root / name),
            systems=systems,
            languages=languages,
            n_examples=200,
            questions_per_paragraph=per_paragraph,
        )
    return stores
