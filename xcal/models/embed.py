"""Sentence embeddings from an encoder: mean (or CLS / last-token) pooling, fast.

Used for retrieval tasks (Tatoeba, BUCC) and for task and language distances.
Inputs are tokenised once, sorted by length and cut into batches that hold at
most ``batch_tokens`` tokens after padding, so short sentences share a batch
and a long one cannot exhaust memory; the forward pass runs under
``torch.inference_mode``. The default model is the bundled
multilingual-e5-small, which expects ``"query: "`` or ``"passage: "`` before
every input (https://huggingface.co/intfloat/multilingual-e5-small).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from xcal.models.bundled import BUNDLED_MODEL
from xcal.models.loading import LoadedModel, load_model_and_tokenizer

Pooling = Literal["mean", "cls", "last"]
POOLINGS: tuple[str, ...] = ("mean", "cls", "last")


@functools.lru_cache(maxsize=2)
def _cached_model(name: str, device: str, dtype: str) -> LoadedModel:
    return load_model_and_tokenizer(name, task_kind="retrieval", device=device, dtype=dtype)


def length_sorted_batches(
    lengths: Sequence[int] | np.ndarray, batch_tokens: int
) -> list[np.ndarray]:
    """Index batches, longest first, each within ``batch_tokens`` once padded.

    A batch's padded size is ``len(batch) * max(length in batch)``; a single
    input longer than ``batch_tokens`` gets a batch of its own.

    Examples
    --------
    >>> [b.tolist() for b in length_sorted_batches([3, 10, 4, 9], batch_tokens=20)]
    [[1, 3], [2, 0]]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if batch_tokens < 1:
        raise ValueError(f"Expected `batch_tokens` to be a positive int, got {batch_tokens}")
    # Stable sort keeps equal-length inputs in their original order (deterministic batches).
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(batch_tokens // longest, 1)
        batches.append(order[start : start + size])
        start += size
    return batches


def embed_texts(
    texts: Sequence[str],
    model: str | LoadedModel = BUNDLED_MODEL,
    *,
    prefix: str | None = "query: ",
    pooling: Pooling = "mean",
    batch_tokens: int = 8192,
    max_length: int | None = None,
    normalize: bool = True,
    device: str | None = "auto",
    dtype: Any = "auto",
) -> np.ndarray:
    """Embed sentences with an encoder.

    Parameters
    ----------
    texts : sequence of str
        The sentences.
    model : str or LoadedModel, default "bundled:multilingual-e5-small"
        A model name or path (loaded once and kept for later calls) or a
        model already loaded with :func:`load_model_and_tokenizer`.
    prefix : str or None, default "query: "
        Prepended to every text. e5 models expect ``"query: "`` for queries
        and symmetric tasks and ``"passage: "`` for documents; use ``None``
        (or ``""``) for other models.
    pooling : {"mean", "cls", "last"}, default "mean"
        Mean of the non-padding token states, the first token's state, or the
        last non-padding token's state (decoder-only models).
    batch_tokens : int, default 8192
        Upper bound on ``batch size * padded length`` per forward pass.
    max_length : int, optional
        Truncate inputs to this many tokens (default: the model's maximum).
    normalize : bool, default True
        L2-normalise the embeddings (dot product = cosine similarity).
    device, dtype
        As in :func:`load_model_and_tokenizer` (only used when ``model`` is a name).

    Returns
    -------
    numpy.ndarray
        ``(len(texts), hidden_size)`` float32, in the order of ``texts``.

    Examples
    --------
    >>> from xcal.models.embed import embed_texts
    >>> emb = embed_texts(["Der Hund bellt.", "The dog barks.", "Il pleut."])  # doctest: +SKIP
    >>> emb.shape, bool(emb[0] @ emb[1] > emb[0] @ emb[2])  # doctest: +SKIP
    ((3, 384), True)
    """
    import torch

    if pooling not in POOLINGS:
        raise ValueError(f"Expected `pooling` in {POOLINGS}, got {pooling!r}")
    if isinstance(texts, str):
        raise TypeError("Expected `texts` to be a sequence of strings, got a single str")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}]: expected str, got {type(text).__name__}")

    if isinstance(model, LoadedModel):
        loaded = model
    else:
        from xcal.models.loading import choose_device, resolve_dtype

        loaded = _cached_model(str(model), choose_device(device), resolve_dtype(dtype))
    # The bare encoder/decoder under any head (for a bare model, itself).
    net, tokenizer = loaded.model.base_model, loaded.tokenizer
    hidden = int(net.config.hidden_size)
    if not texts:
        return np.empty((0, hidden), dtype=np.float32)

    limit = min(max_length or loaded.max_length, loaded.max_length)
    inputs = [(prefix or "") + t for t in texts]
    encoded = tokenizer(inputs, truncation=True, max_length=limit, padding=False)
    ids: list[list[int]] = encoded["input_ids"]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))

    out = np.empty((len(texts), hidden), dtype=np.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.inference_mode():
        for batch in length_sorted_batches(lengths, batch_tokens):
            width = int(lengths[batch].max())
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                n = int(lengths[i])
                input_ids[row, :n] = torch.tensor(ids[i], dtype=torch.long)
                mask[row, :n] = 1
            states = net(
                input_ids=input_ids.to(loaded.device), attention_mask=mask.to(loaded.device)
            ).last_hidden_state.float()
            mask_f = mask.to(states.device).unsqueeze(-1).to(states.dtype)
            if pooling == "mean":
                pooled = (states * mask_f).sum(1) / mask_f.sum(1).clamp(min=1.0)
            elif pooling == "cls":
                pooled = states[:, 0]
            else:
                last = mask.sum(1).to(states.device) - 1
                pooled = states[torch.arange(len(batch), device=states.device), last]
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[batch] = pooled.cpu().numpy()
    return out
