"""A prediction store drawn from known distributions, with planted differences.

For trying ``xcal analyze`` without a GPU, for the notebook, and for tests
that check the analysis finds what was planted and nothing else.

The generative model is exact, so every population quantity is known:
example ``i`` has a label ``y_i`` drawn uniformly from ``C`` classes, shared
by every language, perturbation and system (parallel data). A system sees
``x_i ~ N(s * e_{y_i}, I_C)`` with separation ``s``; the Bayes posterior is
``softmax(s * x_i)``, so logits ``s * x_i`` are perfectly calibrated. A
system that stores ``t * s * x_i`` (``t > 1``) is overconfident with the same
accuracy: a planted calibration difference and no accuracy difference.
Lower separation (harder languages, stronger perturbations) lowers accuracy.
Two systems' noises are correlated (``rho``) as real models' errors are.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xcal.store import PredictionStore, RunManifest, fingerprint, open_store

#: Separation (signal strength) by language: high, mid and low resource.
DEFAULT_SEPARATION: dict[str, float] = {"en": 2.0, "de": 1.7, "sw": 1.3}


@dataclass(frozen=True)
class SyntheticSystem:
    """One system of the synthetic store.

    ``logit_scale(language, perturbation, severity)`` multiplies its
    calibrated logits (1 = calibrated, > 1 = overconfident).
    """

    name: str
    logit_scale: Callable[[str, str, float], float] = lambda language, perturbation, severity: 1.0
    architecture: str = "encoder-only"
    intermediate_tasks: tuple[str, ...] = ()


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def default_separation(language: str, perturbation: str, severity: float) -> float:
    """Separation of a language, reduced linearly by perturbation severity."""
    base = DEFAULT_SEPARATION.get(language, 1.5)
    return base * (1.0 - 0.6 * severity) if perturbation != "none" else base


def make_synthetic_store(
    path: str | os.PathLike[str],
    *,
    systems: Sequence[SyntheticSystem] = (
        SyntheticSystem("baseline"),
        SyntheticSystem("intermediate", intermediate_tasks=("pawsx",)),
    ),
    languages: Sequence[str] = ("en", "de", "sw"),
    conditions: Sequence[tuple[str, float]] = (("none", 0.0),),
    task: str = "xnli",
    n_examples: int = 1000,
    n_classes: int = 3,
    separation: Callable[[str, str, float], float] = default_separation,
    rho: float = 0.5,
    seed: int = 0,
    perturbation_params: Callable[[str, str, float], dict[str, object]] | None = None,
    record_kind: str = "classification",
) -> PredictionStore:
    """Write one classification run per system x language x condition.

    Parameters
    ----------
    path : path
        Store directory (created).
    systems : sequence of SyntheticSystem
        The models; their names are the ``model`` field of the runs.
    languages : sequence of str
    conditions : sequence of (perturbation, severity)
        ``("none", 0.0)`` is the clean run.
    task, n_examples, n_classes : as in a real run
    separation : callable
        ``separation(language, perturbation, severity)``: signal strength.
    rho : float
        Correlation of two systems' noise on the same example.
    seed : int
        Everything drawn is a function of the seed and the run's identity.
    perturbation_params : callable, optional
        ``perturbation_params(language, perturbation, severity)``: the runs'
        parameters (real ones may differ by language, e.g. a word segmenter).
    record_kind : {"classification", "multiple_choice"}
        Multiple-choice runs store the logits as option ``scores``.

    Returns
    -------
    PredictionStore

    Examples
    --------
    >>> import tempfile
    >>> store = make_synthetic_store(tempfile.mkdtemp(), languages=["en", "de"], n_examples=50)
    >>> sorted(store.runs()["model"].unique()), len(store.runs())
    (['baseline', 'intermediate'], 4)
    """
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"Expected `rho` in [0, 1), got {rho}")
    store = open_store(path)
    ids = np.array([f"{task}-test-{i:06d}" for i in range(n_examples)], dtype=object)
    labels = np.random.default_rng(_stable_seed(seed, task, "labels")).integers(
        0, n_classes, size=n_examples
    )
    for perturbation, severity in conditions:
        for language in languages:
            s = separation(language, perturbation, severity)
            # Noise shared by every system on this language and condition.
            shared = np.random.default_rng(
                _stable_seed(seed, task, language, perturbation, severity, "shared")
            ).standard_normal((n_examples, n_classes))
            for system in systems:
                own = np.random.default_rng(
                    _stable_seed(seed, task, language, perturbation, severity, system.name)
                ).standard_normal((n_examples, n_classes))
                noise = np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * own
                x = s * np.eye(n_classes)[labels] + noise
                scale = system.logit_scale(language, perturbation, severity)
                logits = (scale * s * x).astype(np.float32)
                params = (
                    perturbation_params(language, perturbation, severity)
                    if perturbation_params
                    else {}
                )
                manifest = RunManifest(
                    model=system.name,
                    task=task,
                    split="test",
                    language=language,
                    record_kind=record_kind,  # type: ignore[arg-type]
                    input_fingerprint=fingerprint(
                        task, language, perturbation, severity, seed, n_examples
                    ),
                    n_examples=n_examples,
                    n_classes=n_classes,
                    architecture=system.architecture,  # type: ignore[arg-type]
                    intermediate_tasks=system.intermediate_tasks,
                    perturbation=perturbation,
                    severity=float(severity),
                    perturbation_params=params,
                )
                column = "logits" if record_kind == "classification" else "scores"
                store.write_run(manifest, {"example_id": ids, column: logits, "label": labels})
    return store


def population_metrics(
    separation: float,
    logit_scale: float = 1.0,
    *,
    n_classes: int = 3,
    n_samples: int = 1_000_000,
    seed: int = 12345,
) -> dict[str, float]:
    """Large-sample values of the metrics for one synthetic system.

    Monte Carlo with ``n_samples`` draws (standard error of a mean about
    ``sd / 1000``); ``ece`` uses 15 equal-width bins, which at this sample
    size is the binned population calibration error.

    Returns
    -------
    dict
        ``accuracy``, ``nll``, ``brier``, ``ece``, ``confidence``.
    """
    from xcal.metrics import (
        accuracy_score,
        brier_score_loss,
        expected_calibration_error,
        nll_loss,
        softmax,
    )

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n_samples)
    x = separation * np.eye(n_classes)[labels] + rng.standard_normal((n_samples, n_classes))
    logits = logit_scale * separation * x
    probs = softmax(logits)
    return {
        "accuracy": accuracy_score(labels, logits=logits),
        "nll": nll_loss(labels, logits=logits),
        "brier": brier_score_loss(labels, y_prob=probs),
        "ece": expected_calibration_error(labels, y_prob=probs, n_bins=15),
        "confidence": float(probs.max(axis=1).mean()),
    }


def _top1_draws(
    rng: np.random.Generator, n: int, k: int, separation: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gold positions and calibrated logits ``s * x`` over ``k`` candidates."""
    gold = rng.integers(0, k, size=n)
    x = separation * np.eye(k)[gold] + rng.standard_normal((n, k))
    return gold, separation * x


def add_synthetic_retrieval(
    store: PredictionStore,
    *,
    systems: Sequence[SyntheticSystem],
    languages: Sequence[str],
    task: str = "tatoeba",
    n_examples: int = 300,
    k: int = 10,
    temperature: float = 1.0,
    separation: Callable[[str, str, float], float] = default_separation,
    seed: int = 0,
) -> PredictionStore:
    """Add retrieval runs: top-``k`` candidates of which one is gold.

    The candidates' scores are ``temperature * scale * s * x`` so that the raw
    retrieval confidence (softmax of ``scores / temperature``) is calibrated
    for ``scale == 1``. Queries are not parallel across languages (Tatoeba
    pairs each language with English separately): ids carry the language.
    """
    for language in languages:
        s = separation(language, "none", 0.0)
        ids = [f"{task}-{language}-{i:05d}" for i in range(n_examples)]
        for system in systems:
            rng = np.random.default_rng(_stable_seed(seed, task, language, system.name))
            gold, logits = _top1_draws(rng, n_examples, k, s)
            scores = temperature * system.logit_scale(language, "none", 0.0) * logits
            order = np.argsort(-scores, axis=1, kind="stable")
            candidates = [[f"{language}-{i}-{j}" for j in order[i]] for i in range(n_examples)]
            manifest = RunManifest(
                model=system.name,
                task=task,
                split="test",
                language=language,
                record_kind="retrieval",
                input_fingerprint=fingerprint(task, language, seed, n_examples),
                n_examples=n_examples,
                architecture=system.architecture,  # type: ignore[arg-type]
                intermediate_tasks=system.intermediate_tasks,
            )
            store.write_run(
                manifest,
                {
                    "example_id": ids,
                    "candidate_ids": candidates,
                    "scores": np.take_along_axis(scores, order, axis=1),
                    "gold_ids": [[f"{language}-{i}-{gold[i]}"] for i in range(n_examples)],
                },
            )
    return store


def add_synthetic_qa(
    store: PredictionStore,
    *,
    systems: Sequence[SyntheticSystem],
    languages: Sequence[str],
    task: str = "xquad",
    n_examples: int = 300,
    n_best: int = 5,
    separation: Callable[[str, str, float], float] = default_separation,
    seed: int = 0,
    questions_per_paragraph: int | None = None,
) -> PredictionStore:
    """Add extractive-QA runs: ``n_best`` spans, one of them the gold answer.

    Span scores are ``scale * s * x``: the softmax over the n-best (what
    :func:`xcal.metrics.qa.qa_confidence_correctness` calls the confidence)
    is calibrated for ``scale == 1``. Ids are shared by every language
    (XQuAD is parallel); the gold span is too. With
    ``questions_per_paragraph``, consecutive questions share a paragraph and
    the runs record it (the ``unit`` column, as ``xcal infer`` does).
    """
    ids = [f"{task}-{i:05d}" for i in range(n_examples)]
    gold = np.random.default_rng(_stable_seed(seed, task, "gold")).integers(
        0, n_best, size=n_examples
    )
    for language in languages:
        s = separation(language, "none", 0.0)
        for system in systems:
            rng = np.random.default_rng(_stable_seed(seed, task, language, system.name))
            x = s * np.eye(n_best)[gold] + rng.standard_normal((n_examples, n_best))
            scores = system.logit_scale(language, "none", 0.0) * s * x
            nbest = []
            for i in range(n_examples):
                row = []
                for j in np.argsort(-scores[i], kind="stable"):
                    text = f"span {j} of {i}"
                    row.append(
                        {
                            "text": text,
                            "start_char": 10 * int(j),
                            "end_char": 10 * int(j) + len(text),
                            "start_logit": float(scores[i, j] / 2),
                            "end_logit": float(scores[i, j] / 2),
                            "score": float(scores[i, j]),
                        }
                    )
                nbest.append(row)
            answers = [
                [{"text": f"span {gold[i]} of {i}", "answer_start": 10 * int(gold[i])}]
                for i in range(n_examples)
            ]
            manifest = RunManifest(
                model=system.name,
                task=task,
                split="test",
                language=language,
                record_kind="qa",
                input_fingerprint=fingerprint(task, language, seed, n_examples),
                n_examples=n_examples,
                architecture=system.architecture,  # type: ignore[arg-type]
                intermediate_tasks=system.intermediate_tasks,
            )
            records = {"example_id": ids, "nbest": nbest, "answers": answers}
            if questions_per_paragraph:
                k = questions_per_paragraph
                records["unit"] = [ids[i - i % k] for i in range(n_examples)]
            store.write_run(manifest, records)
    return store
