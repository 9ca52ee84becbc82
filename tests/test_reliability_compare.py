"""Runs that cannot be compared are never mixed in one comparison.

Two runs can be compared example by example only if they hold the same
examples (by ``example_id``), under the same label space, with the same gold
labels, from the same split and the same perturbation. Each comparison path
is checked here with runs that break one of these conditions:

* :func:`xcal.stats.paired_bootstrap` (alignment by id is tested in
  ``tests/test_stats_bootstrap.py``; here: two different metrics);
* :func:`xcal.transfer.statistics_from_store` feeding :func:`xcal.transfer.paired_gains`;
* :func:`xcal.analyze.analyze_store`.

Each is refused with a message that says why (or, where the design compares
on the shared examples, says so in a note), never turned into a number.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcal.store import PredictionStore, RunManifest, fingerprint, open_store

N = 60


def ids(n: int = N, start: int = 0) -> list[str]:
    return [f"xnli-dev-{i:06d}" for i in range(start, start + n)]


def gold(n: int = N, n_classes: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_classes, n)


def write(
    store: PredictionStore,
    model: str,
    *,
    language: str = "de",
    example_ids: list[str] | None = None,
    labels: np.ndarray | None = None,
    n_classes: int = 3,
    seed: int = 1,
    **manifest: Any,
) -> str:
    example_ids = ids() if example_ids is None else example_ids
    labels = gold(len(example_ids), n_classes) if labels is None else labels
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(example_ids), n_classes)).astype(np.float32)
    logits[np.arange(len(labels)), labels] += 1.0
    m = RunManifest(
        model=model,
        task="xnli",
        split="dev",
        language=language,
        record_kind="classification",
        input_fingerprint=fingerprint(example_ids, labels.tolist(), model, manifest),
        n_examples=len(example_ids),
        n_classes=n_classes,
    )
    m = dataclasses.replace(m, **manifest)
    return store.write_run(m, {"example_id": example_ids, "logits": logits, "label": labels})


@pytest.fixture
def store(tmp_path: Path) -> PredictionStore:
    return open_store(tmp_path / "store")


# --------------------------------------------------------------------------- xcal.stats


def test_paired_bootstrap_refuses_two_different_metrics() -> None:
    from xcal.stats import metric_statistic, paired_bootstrap

    y = gold()
    logits = np.random.default_rng(3).normal(size=(N, 3))
    ece = metric_statistic("ece", y, logits=logits, example_ids=ids())
    acc = metric_statistic("accuracy", y, logits=logits, example_ids=ids())
    nll = metric_statistic("nll", y, logits=logits, example_ids=ids())
    for a, b in ((ece, acc), (acc, nll)):
        with pytest.raises(ValueError, match="different metrics") as info:
            paired_bootstrap(a, b, B=50, rng=0, names=("inter", "base"))
        assert a.name in str(info.value) and b.name in str(info.value)
    # The same metric with other binning is another metric too.
    ece10 = metric_statistic("ece", y, logits=logits, n_bins=10, example_ids=ids())
    with pytest.raises(ValueError, match="different metrics"):
        paired_bootstrap(ece, ece10, B=50, rng=0)
    # Same metric: fine.
    assert len(paired_bootstrap(ece, ece, B=50, rng=0)) == 1


# --------------------------------------------------------------------------- xcal.transfer


def test_gains_refuse_runs_with_different_examples(store: PredictionStore) -> None:
    from xcal.transfer import paired_gains, statistics_from_store

    labels = gold(N + 5)  # one gold label per example id
    write(store, "base", labels=labels[:N])
    write(store, "base+mnli", example_ids=ids(start=5), labels=labels[5:])
    stats = statistics_from_store(store, "accuracy")
    with pytest.raises(ValueError) as info:
        paired_gains(stats, baseline="base", B=50, rng=0)
    message = str(info.value)
    assert message.startswith("xnli/de: ")  # where
    assert "do not hold the same example ids" in message  # why
    assert "5 only in 'base+mnli'" in message and "5 only in 'base'" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("perturbation", "word_shuffle"),
        ("severity", 0.5),
        ("perturbation_seed", 3),
        ("perturbation_params", {"window": 5}),
        ("split", "test"),
    ],
)
def test_gains_refuse_runs_of_different_conditions(
    store: PredictionStore, field: str, value: Any
) -> None:
    # The baseline ran on clean dev data, the other system on other inputs: the
    # example ids match (perturbations keep them) but the comparison is void.
    from xcal.transfer import statistics_from_store

    base: dict[str, Any] = {}
    if field in ("severity", "perturbation_seed", "perturbation_params"):
        base = {"perturbation": "word_shuffle", "severity": 0.25}
    write(store, "base", **base)
    write(store, "base+mnli", **{**base, field: value})
    with pytest.raises(ValueError, match=rf"xnli/de.*differ in {field}") as info:
        statistics_from_store(store, "accuracy")
    assert "'base'" in str(info.value) and "'base+mnli'" in str(info.value)
    # Selecting one condition makes the comparison valid again.
    stored = store.runs(model="base")[field].iloc[0]
    selected: dict[str, Any] = {field: {} if field == "perturbation_params" else stored}
    assert len(statistics_from_store(store, "accuracy", **selected)) == 1


def test_gains_refuse_runs_with_different_label_spaces(store: PredictionStore) -> None:
    from xcal.transfer import statistics_from_store

    write(store, "base")
    write(store, "two-class-head", n_classes=2, labels=gold(n_classes=2))
    with pytest.raises(ValueError, match=r"xnli/de.*label space.*3.*2|xnli/de.*n_classes"):
        statistics_from_store(store, "ece")


def test_gains_refuse_runs_whose_gold_labels_disagree(store: PredictionStore) -> None:
    from xcal.transfer import statistics_from_store

    labels = gold()
    permuted = (labels + 1) % 3  # e.g. a label order (contradiction, entailment, neutral) shifted
    write(store, "base", labels=labels)
    write(store, "base+mnli", labels=permuted)
    with pytest.raises(ValueError, match=r"xnli/de.*gold labels") as info:
        statistics_from_store(store, "accuracy")
    assert "xnli-dev-000000" in str(info.value)  # an example at fault
    # Other languages are independent: a clean pair elsewhere is fine.
    write(store, "base", language="fr", labels=labels)
    write(store, "base+mnli", language="fr", labels=labels)
    assert len(statistics_from_store(store, "accuracy", language="fr")) == 2


# --------------------------------------------------------------------------- xcal.analyze


def analyze(store: PredictionStore, **kwargs: Any) -> Any:
    from xcal.analyze import analyze_store

    return analyze_store(
        store,
        baseline="base",
        metrics=["accuracy", "ece"],
        n_boot=20,
        recalibrate=False,
        cache=False,
        progress=False,
        **kwargs,
    )


def test_analyze_compares_partly_shared_examples_only_on_those_and_says_so(
    store: PredictionStore,
) -> None:
    labels = gold(N + 10)
    write(store, "base", example_ids=ids(N + 10), labels=labels)
    write(store, "base+mnli", example_ids=ids(N), labels=labels[:N])
    with pytest.raises(ValueError, match=rf"'base\+mnli' holds {N} of the {N + 10} ids"):
        analyze(store)  # refused unless asked
    res = analyze(store, shared_examples=True)
    diff = res.select(comparison="difference")
    assert len(diff) and (diff["n_examples"] == N).all()
    assert any("share" in note and str(N) in note for note in res.notes)


def test_analyze_refuses_a_comparison_without_shared_examples(store: PredictionStore) -> None:
    write(store, "base")
    write(store, "base+mnli", example_ids=ids(start=N))
    for shared in (False, True):
        with pytest.raises(ValueError, match="share no example id"):
            analyze(store, shared_examples=shared)


def test_analyze_refuses_runs_with_different_label_spaces(store: PredictionStore) -> None:
    write(store, "base")
    write(store, "two-class-head", n_classes=2, labels=gold(n_classes=2))
    with pytest.raises(ValueError, match=r"label space|n_classes") as info:
        analyze(store)
    assert "xnli" in str(info.value) and "two-class-head" in str(info.value)


def test_analyze_refuses_runs_whose_gold_labels_disagree(store: PredictionStore) -> None:
    labels = gold()
    write(store, "base", labels=labels)
    write(store, "base+mnli", labels=(labels + 1) % 3)
    with pytest.raises(ValueError, match="gold labels") as info:
        analyze(store)
    assert "xnli-dev-000000" in str(info.value)
