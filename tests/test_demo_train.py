"""The demo's fine-tuning recipe, on a tiny BERT: it learns, saves safely, chains stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcal.demo.train import (
    TRAINING_INFO,
    ChoiceData,
    PairData,
    SpanData,
    TokenData,
    TrainConfig,
    fine_tune,
    training_stages,
)
from xcal.models.shared_tokenizer import tokenizer_digest
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
    # Every stage saves its base's tokenizer unchanged: the encoding's truncation
    # setting does not leak into the files, so all stages share one tokenizer.
    assert json.loads((first / "tokenizer.json").read_text())["truncation"] is None
    assert tokenizer_digest(second) == tokenizer_digest(first)


def test_same_seed_same_weights(tiny_bert: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    data, config = _separable(64), TrainConfig(trainable_layers=2, epochs=1, seed=3)
    one = load_file(fine_tune(tiny_bert, data, tmp_path / "one", config) / "model.safetensors")
    two = load_file(fine_tune(tiny_bert, data, tmp_path / "two", config) / "model.safetensors")
    assert one.keys() == two.keys()
    assert all(np.array_equal(one[k], two[k]) for k in one)


def _tasks() -> dict[str, Any]:
    """A small training set of every kind, on words the tiny tokenizer splits."""
    rng = np.random.default_rng(5)
    words = ["cat", "dog", "sun", "tree", "car", "book", "rain", "fish"]

    def sentence(n: int) -> list[str]:
        return [str(w) for w in rng.choice(words, size=n)]

    contexts = [" ".join(sentence(int(rng.integers(4, 9)))) for _ in range(10)]
    starts = [len(c.split(" ")[0]) + 1 for c in contexts]
    return {
        "pair": _separable(12, seed=4),
        "choice": ChoiceData(
            [" ".join(sentence(3)) for _ in range(6)],
            [(" ".join(sentence(2)), " ".join(sentence(4))) for _ in range(6)],
            [int(y) for y in rng.integers(0, 2, 6)],
            "choice",
        ),
        "token": _token_data(rng, words),
        "span": SpanData(
            [" ".join(sentence(3)) for _ in contexts],
            contexts,
            starts,
            [c.split(" ")[1] for c in contexts],
            "span",
        ),
    }


def _token_data(rng: np.random.Generator, words: list[str]) -> TokenData:
    sentences = [
        [str(w) for w in rng.choice(words, size=int(rng.integers(2, 7)))] for _ in range(8)
    ]
    tags = [[int(t) for t in rng.integers(0, 3, len(s))] for s in sentences]
    return TokenData(sentences, tags, ("O", "B", "I"), "token")


def _reference_loss(model: Any, tok: Any, data: Any) -> Any:
    """The loss of the transformers model's own forward on the same examples."""
    import torch

    from xcal.demo.heads import IGNORE

    rows = data.encode(tok, 128)
    width = max(len(r) for r in rows.input_ids)
    ids = torch.zeros((len(rows.input_ids), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows.input_ids):
        ids[i, : len(r)] = torch.as_tensor(r)
        mask[i, : len(r)] = 1
    assert int(mask.min()) == 0, "the check needs padded rows"
    if isinstance(data, ChoiceData):
        k = len(rows.items[0])
        labels = torch.as_tensor(rows.targets)
        return model(input_ids=ids.view(-1, k, width), attention_mask=mask.view(-1, k, width),
                     labels=labels).loss  # fmt: skip
    if isinstance(data, TokenData):
        labels = torch.full_like(ids, IGNORE)
        for i, t in enumerate(rows.targets):
            labels[i, : len(t)] = torch.as_tensor(t)
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss
    if isinstance(data, SpanData):
        # transformers' loss, with padding (never an answer) out of the softmax
        from xcal.demo.heads import PAD_LOGIT

        out = model(input_ids=ids, attention_mask=mask)
        gold = torch.as_tensor(rows.targets)
        padding = mask == 0
        return (
            sum(
                torch.nn.functional.cross_entropy(
                    logits.masked_fill(padding, PAD_LOGIT), gold[:, i]
                )
                for i, logits in enumerate((out.start_logits, out.end_logits))
            )
            / 2
        )
    return model(input_ids=ids, attention_mask=mask, labels=torch.as_tensor(rows.targets)).loss


@pytest.mark.parametrize("kind", ["pair", "choice", "token", "span"])
@pytest.mark.parametrize("trainable_layers", [0, 1, 2])
def test_frozen_states_then_top_layers_give_the_model_s_own_loss(
    tiny_bert: Path, trainable_layers: int, kind: str
) -> None:
    # Training runs the top of the network on cached frozen-layer states and
    # each kind's head and loss; in eval mode that must be the transformers
    # model's own forward and loss, padding included.
    import torch
    import transformers

    from xcal.demo.train import _frozen_states, _top_forward

    data = _tasks()[kind]
    tok = transformers.AutoTokenizer.from_pretrained(tiny_bert)
    model = getattr(transformers, data.auto_class).from_pretrained(tiny_bert, **data.model_kwargs())
    model.eval()
    n_frozen = model.config.num_hidden_layers - trainable_layers
    rows = data.encode(tok, 128)
    (states,) = _frozen_states(model, [rows], n_frozen, cache=None, batch_size=5)
    with torch.no_grad():
        hidden, attention = _top_forward(model, states, n_frozen)
        ours = data.loss(data.head(model), hidden, attention, rows.targets)
        reference = _reference_loss(model, tok, data)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["choice", "token", "span"])
def test_every_kind_learns_and_saves_its_head_class(
    tiny_bert: Path, tmp_path: Path, kind: str
) -> None:
    import transformers

    data = _tasks()[kind]
    config = TrainConfig(trainable_layers=2, epochs=30, learning_rate=3e-3, head_learning_rate=3e-3)
    losses: list[float] = []
    out = fine_tune(
        tiny_bert, data, tmp_path / kind, config, progress=lambda s, t, loss: losses.append(loss)
    )
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    expected = data.auto_class.removeprefix("AutoModelFor")
    assert json.loads((out / "config.json").read_text())["architectures"] == [
        f"Bert{'For' + expected}"
    ]
    getattr(transformers, data.auto_class).from_pretrained(out)  # loads as its own class
    assert training_stages(out) == [kind]


def test_a_token_stage_keeps_the_pooler_for_the_next_stage(tiny_bert: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    first = fine_tune(
        tiny_bert, _separable(16), tmp_path / "pair", TrainConfig(trainable_layers=1, epochs=1)
    )
    token = fine_tune(
        first, _tasks()["token"], tmp_path / "tok", TrainConfig(trainable_layers=1, epochs=1)
    )
    before, after = (load_file(p / "model.safetensors") for p in (first, token))
    for name in ("bert.pooler.dense.weight", "bert.pooler.dense.bias"):
        np.testing.assert_array_equal(after[name], before[name])


def test_a_multi_task_stage_trains_one_encoder_for_every_task(
    tiny_bert: Path, tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    from xcal.demo.train import FrozenStateCache, fine_tune_mix

    tasks = _tasks()
    cache = FrozenStateCache()
    singles = [
        fine_tune(
            tiny_bert,
            tasks[k],
            tmp_path / k,
            TrainConfig(trainable_layers=1, epochs=1),
            cache=cache,
        )
        for k in ("pair", "choice", "token", "span")
    ]
    encoded: list[tuple[int, int]] = []
    losses: list[float] = []
    out = fine_tune_mix(
        tiny_bert,
        [tasks[k] for k in ("pair", "choice", "token", "span")],
        tmp_path / "mix",
        TrainConfig(trainable_layers=1, epochs=2),
        cache=cache,
        encode_progress=_append(encoded),
        progress=lambda s, t, loss: losses.append(loss),
    )
    assert encoded == [], "every row was encoded by the single-task stages"
    # one batch per task and epoch (each set is smaller than a batch)
    assert len(losses) == 2 * 4
    assert training_stages(out) == ["mix"]
    weights = load_file(out / "model.safetensors")
    assert not any("classifier" in k or "qa_outputs" in k for k in weights), "heads are dropped"
    top = f"encoder.layer.{len([k for k in weights if k.endswith('attention.self.query.weight')]) - 1}"
    base = load_file(singles[0] / "model.safetensors")
    assert not np.array_equal(
        weights[f"{top}.output.dense.weight"], base[f"bert.{top}.output.dense.weight"]
    )
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(out, num_labels=3)  # a next stage loads it


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
    assert len(cache) == 32
    # more trainable layers: other frozen layers, so other entries
    fine_tune(shared, data, tmp_path / "c", TrainConfig(trainable_layers=2, epochs=1), cache=cache)
    assert len(cache) == 64
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
