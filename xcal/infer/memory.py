"""How many padded tokens a batch may hold: the CPU default and ``"auto"`` on a GPU.

On a CPU the budget bounds latency more than memory and stays at
:data:`CPU_BATCH_TOKENS`. On a GPU, ``"auto"`` sizes it from the device
memory free once the weights are loaded and from the model's shape: the
activations alive at the peak of one layer, per token, in the model's dtype.
The estimate is deliberately generous (eager attention scores included), and
:class:`xcal.infer.engine.TokenBudget` halves the budget if a batch still
does not fit, so the estimate never costs a cell.
"""

from __future__ import annotations

from typing import Any

CPU_BATCH_TOKENS = 16384
# Above this the forward of a base-size encoder gains little on an H200
# (see the README's GPU table), while fewer, larger batches leave the host
# less to overlap with the device.
AUTO_MAX_TOKENS = 262144
AUTO_MIN_TOKENS = 4096
# Share of the free memory given to one batch's activations; the rest covers
# the allocator's fragmentation, outputs kept on the device and the next
# batch's inputs.
FREE_FRACTION = 0.5


def _first(config: Any, names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return default


def activation_bytes_per_token(config: Any, *, dtype_bytes: int, max_length: int) -> int:
    """Bytes of activations per token at the peak of one layer (an upper estimate).

    Counts the residual stream and its normalised copy, queries, keys,
    values and the attention output, the feed-forward's intermediate
    activations (three copies, for gated MLPs), one row of eager attention
    scores per head, and for causal language models float32 logits and
    log-probabilities over the vocabulary.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> bert_base = SimpleNamespace(hidden_size=768, intermediate_size=3072,
    ...                             num_attention_heads=12, vocab_size=30522)
    >>> activation_bytes_per_token(bert_base, dtype_bytes=2, max_length=512)
    39936
    """
    hidden = _first(config, ("hidden_size", "n_embd", "d_model"), 1024)
    inter = _first(config, ("intermediate_size", "n_inner", "ffn_dim", "d_ff"), 4 * hidden)
    heads = _first(config, ("num_attention_heads", "n_head", "encoder_attention_heads"), 16)
    per = dtype_bytes * (6 * hidden + 3 * inter + heads * max_length)
    if getattr(config, "is_decoder", False) or "CausalLM" in "".join(
        getattr(config, "architectures", None) or []
    ):
        per += 8 * _first(config, ("vocab_size",), 50000)
    return per


def auto_batch_tokens(
    model: Any,
    device: str,
    *,
    max_length: int,
    free_bytes: int | None = None,
    concurrent: int = 1,
) -> int:
    """The ``"auto"`` token budget for ``model`` (already loaded) on ``device``.

    On a CPU (or Apple MPS) this is :data:`CPU_BATCH_TOKENS`. On CUDA it is
    :data:`FREE_FRACTION` of the free device memory over
    :func:`activation_bytes_per_token` (shared by ``concurrent`` batches in
    flight), rounded down to a power of two and kept between :data:`AUTO_MIN_TOKENS` and :data:`AUTO_MAX_TOKENS`.

    Examples
    --------
    >>> auto_batch_tokens(None, "cpu", max_length=512)
    16384
    """
    import torch

    if torch.device(device).type != "cuda":
        return CPU_BATCH_TOKENS
    if free_bytes is None:
        free_bytes, _total = torch.cuda.mem_get_info(torch.device(device))
    param = next(iter(model.parameters()), None)
    dtype_bytes = param.element_size() if param is not None else 4
    per = activation_bytes_per_token(model.config, dtype_bytes=dtype_bytes, max_length=max_length)
    tokens = int(free_bytes * FREE_FRACTION) // (per * max(1, concurrent))
    if tokens < AUTO_MIN_TOKENS:
        return AUTO_MIN_TOKENS
    return min(AUTO_MAX_TOKENS, 1 << (tokens.bit_length() - 1))
