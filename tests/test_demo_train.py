"""The demo's fine-tuning recipe, on a tiny BERT: it learns, saves safely, chains stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcal.demo.train import TRAINING_INFO, PairData, TrainConfig, fine_tune, training_stages
from xcal.models.tiny import make_tiny_model


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "bert", "bert")


def _separable(n: int, seed: int = 0) -> PairData:
    """Label 1 iff the second text contains "fish": learnable from tokens alone.

    Not from length alone, though: both classes draw words of every length,
    and batches group pairs by length (a label that length gives away would
    make every batch one class).
    """
    rng = np.random.default_rng(seed)
    words = ["cat", "dog", "sun", "tree", "car", "book", "rain"]
    a, b, y = [], [], []
    for _ in range(n):
        second = list(rng.choice(words, size=3))
        present = bool(rng.integers(2))
        if present:
            second[rng.integers(3)] = "fish"
        a.append(" ".join(rng.choice(words, size=3)))
        b.append(" ".join(second))
        y.append(int(present))
    return PairData(a, b, y, ("absent", "present"), "toy")


def _accuracy(checkpoint: Path, data: PairData) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    batch = tok(list(data.text_a), list(data.text_b), padding=True, return_tensors="pt")
    with torch.inference_mode():
        pred = model(**batch).logits.argmax(-1).numpy()
    return float((pred == np.asarray(data.labels)).mean())


def test_fine_tune_learns_and_records_labels(tiny_bert: Path, tmp_path: Path) -> None:
    train, held_out = _separable(256, seed=0), _separable(128, seed=1)
    config = TrainConfig(trainable_layers=2, epochs=20, learning_rate=3e-3, head_learning_rate=3e-3)
    out = fine_tune(tiny_bert, train, tmp_path / "ckpt", config)
    assert (out / "model.safetensors").is_file()
    assert not list(out.glob("*.bin")), "weights must be saved as safetensors, not pickles"
    assert _accuracy(out, held_out) >= 0.9
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["id2label"] == {"0": "absent", "1": "present"}
    info = json.loads((out / TRAINING_INFO).read_text())
    assert info["stages"] == ["toy"] and info["n_train"] == 256


def test_stages_chain_and_head_is_replaced(tiny_bert: Path, tmp_path: Path) -> None:
    quick = TrainConfig(trainable_layers=2, epochs=1)
    first = fine_tune(tiny_bert, _separable(32), tmp_path / "a", quick)
    three_way = PairData(["x"] * 6, ["y"] * 6, [0, 1, 2, 0, 1, 2], ("p", "q", "r"), "three")
    second = fine_tune(first, three_way, tmp_path / "b", quick)
    assert training_stages(second) == ["toy", "three"]
    assert json.loads((second / "config.json").read_text())["id2label"]["2"] == "r"


def test_same_seed_same_weights(tiny_bert: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    data, config = _separable(64), TrainConfig(trainable_layers=2, epochs=1, seed=3)
    one = load_file(fine_tune(tiny_bert, data, tmp_path / "one", config) / "model.safetensors")
    two = load_file(fine_tune(tiny_bert, data, tmp_path / "two", config) / "model.safetensors")
    assert one.keys() == two.keys()
    assert all(np.array_equal(one[k], two[k]) for k in one)


@pytest.mark.parametrize("trainable_layers", [0, 1, 2])
def test_frozen_states_then_top_layers_equal_the_full_forward(
    tiny_bert: Path, trainable_layers: int
) -> None:
    # Training runs the top of the network on cached frozen-layer states; in
    # eval mode that must be the model's own forward, padding included.
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from xcal.demo.train import _frozen_states, _top_forward

    data = _separable(12, seed=4)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2).eval()
    n_frozen = model.config.num_hidden_layers - trainable_layers
    states = _frozen_states(model, tok, data, n_frozen, 128, cache=None, batch_size=5)
    batch = tok(list(data.text_a), list(data.text_b), padding=True, return_tensors="pt")
    assert int(batch["attention_mask"].min()) == 0, "the check needs padded rows"
    with torch.no_grad():
        full = model(**batch).logits
        cached = _top_forward(model, states, n_frozen)
    torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-6)


def _append(calls: list[tuple[int, int]]) -> Any:
    return lambda done, total: calls.append((done, total))


def test_frozen_state_cache_is_keyed_by_frozen_weights(tiny_bert: Path, tmp_path: Path) -> None:
    from xcal.demo.train import FrozenStateCache

    cache = FrozenStateCache()
    data, config = _separable(32), TrainConfig(trainable_layers=1, epochs=1)
    encoded: list[tuple[int, int]] = []
    shared = fine_tune(
        tiny_bert, data, tmp_path / "a", config, cache=cache, encode_progress=_append(encoded)
    )
    assert encoded[-1] == (32, 32)
    encoded.clear()
    # same frozen layers: nothing to encode
    fine_tune(shared, data, tmp_path / "b", config, cache=cache, encode_progress=_append(encoded))
    assert encoded == []
    assert len(cache._states) == 1
    # more trainable layers: other frozen layers, so another entry
    fine_tune(shared, data, tmp_path / "c", TrainConfig(trainable_layers=2, epochs=1), cache=cache)
    assert len(cache._states) == 2
    # cached or not, the result is the same checkpoint
    from safetensors.numpy import load_file

    fine_tune(shared, data, tmp_path / "d", config)
    one, two = (load_file(tmp_path / d / "model.safetensors") for d in ("b", "d"))
    assert all(np.array_equal(one[k], two[k]) for k in one)


def test_bad_training_data_is_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        PairData(["a"], ["b", "c"], [0], ("x", "y"), "bad")
    with pytest.raises(ValueError, match=r"label out of range .* row 1"):
        PairData(["a", "b"], ["c", "d"], [0, 2], ("x", "y"), "bad")
    with pytest.raises(ValueError, match="no training examples"):
        PairData([], [], [], ("x", "y"), "empty")


def test_too_many_trainable_layers_is_refused(tiny_bert: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trainable_layers"):
        fine_tune(tiny_bert, _separable(8), tmp_path / "x", TrainConfig(trainable_layers=99))
    assert not (tmp_path / "x").exists()


def test_truncated_encoder_keeps_bottom_layers_and_pools_the_last(
    tiny_bert: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModel

    from xcal.demo.train import MEAN_POOL_GAIN, truncate_encoder

    full = AutoModel.from_pretrained(tiny_bert)
    out = truncate_encoder(tiny_bert, tmp_path / "l1", 1)
    cut = AutoModel.from_pretrained(out)
    assert cut.config.num_hidden_layers == 1 and len(cut.encoder.layer) == 1
    last = cut.encoder.layer[0].attention
    assert torch.count_nonzero(last.self.query.weight) == 0
    assert torch.equal(last.self.key.weight, full.encoder.layer[0].attention.self.key.weight)
    assert torch.allclose(
        last.output.dense.weight,
        full.encoder.layer[0].attention.output.dense.weight * MEAN_POOL_GAIN,
    )
    plain = AutoModel.from_pretrained(
        truncate_encoder(tiny_bert, tmp_path / "p", 1, mean_pool_last_layer=False)
    )
    assert torch.equal(
        plain.encoder.layer[0].attention.self.query.weight,
        full.encoder.layer[0].attention.self.query.weight,
    )
    with pytest.raises(ValueError, match="n_layers"):
        truncate_encoder(tiny_bert, tmp_path / "x", 3)
