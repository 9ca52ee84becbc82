"""Sharing bottom layers across models: the same runs as model by model, with less work.

Systems fine-tuned from one encoder with frozen bottom layers (the demo's
recipe) are run with ``RunOptions(share_layers=True)`` and without, on real
XNLI lines under a perturbation; every stored array must be equal bit for
bit, and the shared prefix must really have been replayed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcal.demo.train import PairData, TrainConfig, fine_tune
from xcal.infer import Grid, ModelSpec, PerturbationSpec, RunOptions, TaskSpec, run_grid
from xcal.models.tiny import make_tiny_model
from xcal.store import open_store

pytestmark = pytest.mark.filterwarnings("ignore:.*placeholders:UserWarning")

XNLI_LABELS = ("entailment", "neutral", "contradiction")


def _pairs(seed: int, n: int = 24) -> PairData:
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran"]
    return PairData(
        [" ".join(rng.choice(words, 5)) for _ in range(n)],
        [" ".join(rng.choice(words, 4)) for _ in range(n)],
        [int(y) for y in rng.integers(0, 3, n)],
        XNLI_LABELS,
        f"toy{seed}",
    )


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two systems sharing all but their top layer, and one sharing nothing."""
    root = tmp_path_factory.mktemp("shared")
    base = make_tiny_model(root / "base", "bert")
    top_only = TrainConfig(trainable_layers=1, epochs=1, seed=0)
    return {
        "a": fine_tune(base, _pairs(0), root / "a", top_only),
        "b": fine_tune(base, _pairs(1), root / "b", TrainConfig(trainable_layers=1, seed=1)),
        "other": make_tiny_model(
            root / "other", "bert", head="classification", num_labels=3, seed=7
        ),
    }


def _grid(systems: dict[str, Path]) -> Grid:
    return Grid(
        models=tuple(ModelSpec(str(p), label=k) for k, p in systems.items()),
        tasks=(TaskSpec("xnli", languages=("en", "de")),),
        perturbations=(PerturbationSpec(), PerturbationSpec.parse("word_shuffle:0.5")),
    )


def _records(store: Any) -> dict[tuple[str, ...], dict[str, Any]]:
    out = {}
    for run in store.iter_runs():
        m = store.manifest(run.run_id)
        key = (m.model, m.language, m.perturbation)
        out[key] = {k: np.asarray(v) for k, v in store.load_records(run.run_id).items()}
    return out


def test_shared_layers_give_the_same_runs_and_are_replayed(
    systems: dict[str, Path], xtreme_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xcal.infer.shared_layers as shared

    memos: list[Any] = []

    class CountingMemo(shared.LayerMemo):
        def __init__(self) -> None:
            super().__init__()
            memos.append(self)

    monkeypatch.setattr(shared, "LayerMemo", CountingMemo)
    options = {"limit": 30, "batch_tokens": 512, "device": "cpu"}
    plain = run_grid(
        _grid(systems), tmp_path / "plain", data_dir=xtreme_dir, options=RunOptions(**options)
    )
    together = run_grid(
        _grid(systems),
        tmp_path / "shared",
        data_dir=xtreme_dir,
        options=RunOptions(**options, share_layers=True),
    )
    assert [r.status for r in plain] == ["written"] * 12
    assert [r.status for r in together] == ["written"] * 12
    assert [r.cell for r in together] == [r.cell for r in plain]

    (memo,) = memos
    # b replays a's prefix for every batch of every cell; "other" shares nothing
    assert memo.hits > 0 and memo.hits == memo.misses
    a, b = _records(open_store(tmp_path / "plain")), _records(open_store(tmp_path / "shared"))
    assert a.keys() == b.keys() and len(a) == 12
    for key in a:
        assert a[key].keys() == b[key].keys()
        for column in a[key]:
            np.testing.assert_array_equal(a[key][column], b[key][column], err_msg=str(key))
    # the systems do differ, so equal arrays are not an accident of equal models
    assert not np.array_equal(a[("a", "de", "none")]["logits"], a[("b", "de", "none")]["logits"])


def test_a_second_shared_run_skips_stored_cells(
    systems: dict[str, Path], xtreme_dir: Path, tmp_path: Path
) -> None:
    options = RunOptions(limit=6, batch_tokens=512, device="cpu", share_layers=True)
    first = run_grid(_grid(systems), tmp_path / "s", data_dir=xtreme_dir, options=options)
    again = run_grid(_grid(systems), tmp_path / "s", data_dir=xtreme_dir, options=options)
    assert {r.status for r in first} == {"written"}
    assert {r.status for r in again} == {"skipped"}


def test_shared_depth_counts_equal_bottom_layers(systems: dict[str, Path]) -> None:
    from transformers import AutoModelForSequenceClassification

    from xcal.infer.shared_layers import LayerMemo, share_bottom_layers, shared_depth

    a, b, other = (
        AutoModelForSequenceClassification.from_pretrained(systems[k]).eval()
        for k in ("a", "b", "other")
    )
    n_layers = len(a.base_model.encoder.layer)
    assert shared_depth(a, b) == n_layers - 1  # only the top layer was trained
    assert shared_depth(a, a) == n_layers
    assert shared_depth(a, other) == 0
    memo = LayerMemo()
    assert share_bottom_layers([a, other], memo) == 0  # nothing in common: nothing changed
    assert len(a.base_model.encoder.layer) == n_layers
    assert share_bottom_layers([a, b, other], memo) == n_layers - 1
    assert a.base_model.encoder.layer[0] is b.base_model.encoder.layer[0]
    assert len(other.base_model.encoder.layer) == n_layers


def test_a_prefix_replays_only_the_same_input(systems: dict[str, Path]) -> None:
    """Same shape, other values or another mask: computed, not replayed."""
    import torch
    from transformers import AutoModel

    from xcal.infer.shared_layers import LayerMemo, SharedPrefix

    layers = AutoModel.from_pretrained(systems["a"]).eval().encoder.layer
    memo = LayerMemo()
    prefix = SharedPrefix(list(layers[:2]), memo)

    def plain(x: Any, mask: Any) -> Any:
        for layer in layers[:2]:
            x = layer(x, mask)
            x = x[0] if isinstance(x, tuple) else x
        return x

    gen = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(2, 3, 5, layers[0].attention.self.query.in_features, generator=gen)
    open_mask = torch.zeros(3, 1, 1, 5)
    padded = open_mask.clone()
    padded[:, :, :, 3:] = torch.finfo(torch.float32).min
    with torch.inference_mode():
        for x, mask in [(x1, open_mask), (x2, open_mask), (x1, padded), (x1, open_mask)]:
            assert torch.equal(prefix(x, mask), plain(x, mask))
    assert (memo.misses, memo.hits, len(memo)) == (3, 1, 3)
