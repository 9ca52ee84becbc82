"""Classification and multiple choice with a model's own head.

Encoder models use their head's logits as they are. Decoder-only models are
pooled at the last non-padding token found from the attention mask (not by
searching for the pad id, which breaks when the pad token is the end-of-text
token that also occurs in the input) and scored by their ``score`` head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xcal.infer.batching import pad_sequences, token_budget_batches
from xcal.infer.engine import Progress, TokenBudget, encode, run_batches, uses_token_types


def _model_kwargs(mask: Any, types: Any) -> dict[str, Any]:
    kwargs = {"attention_mask": mask}
    if types is not None:
        kwargs["token_type_ids"] = types
    return kwargs


def last_token_logits(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    """Sequence-classification logits of a decoder pooled at the last real token.

    Requires right padding. Falls back to the model's own pooling when it has
    no separate ``score`` head over its base model.
    """
    import torch

    score = getattr(model, "score", None)
    base = getattr(model, "base_model", None)
    if score is None or base is None or base is model:
        return model(input_ids=input_ids, attention_mask=attention_mask).logits
    hidden = base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    last = attention_mask.sum(dim=1) - 1
    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    return score(pooled)


def classify(
    model: Any,
    tokenizer: Any,
    first: Sequence[str],
    second: Sequence[str] | None,
    *,
    max_length: int,
    batch_tokens: int | TokenBudget,
    device: str,
    decoder: bool = False,
    label_order: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """Logits ``(n, n_classes)`` (float32) of a sequence-classification model and the truncation count.

    ``label_order[j]`` is the model column holding task label ``j`` (see
    :func:`xcal.infer.modeling.label_order`).
    """
    encoded = encode(
        tokenizer, first, second, max_length=max_length, token_types=uses_token_types(model)
    )

    def forward(ids: Any, mask: Any, types: Any, _idx: np.ndarray) -> Any:
        if decoder:
            return last_token_logits(model, ids, mask)
        return model(input_ids=ids, **_model_kwargs(mask, types)).logits

    (logits,) = run_batches(
        encoded,
        forward,
        batch_tokens=batch_tokens,
        pad_id=int(tokenizer.pad_token_id),
        device=device,
        progress=progress,
    )
    if label_order is not None:
        logits = logits[:, list(label_order)]
    return logits, encoded.n_truncated


def multiple_choice(
    model: Any,
    tokenizer: Any,
    options: Sequence[Sequence[tuple[str, str]]],
    *,
    max_length: int,
    batch_tokens: int | TokenBudget,
    device: str,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """Per-option logits ``(n, K)`` of a ``*ForMultipleChoice`` model.

    ``options[i]`` holds the K (first, second) text pairs of example i. The K
    options of an example always travel in one batch (the model scores them
    jointly); the token budget counts all K.
    """
    import torch

    n = len(options)
    k = len(options[0]) if n else 0
    if any(len(o) != k for o in options):
        raise ValueError("every example needs the same number of options")
    flat_a = [a for opts in options for a, _ in opts]
    flat_b = [b for opts in options for _, b in opts]
    flat = encode(
        tokenizer, flat_a, flat_b, max_length=max_length, token_types=uses_token_types(model)
    )
    truncated = flat.truncated.reshape(n, k).any(axis=1)
    per_option = [[flat.input_ids[i * k + j] for j in range(k)] for i in range(n)]
    per_types = (
        [[flat.token_type_ids[i * k + j] for j in range(k)] for i in range(n)]
        if flat.token_type_ids is not None
        else None
    )
    # A batch of b examples costs b x k x (longest option) padded tokens.
    sizes = np.array([k * max(len(x) for x in opts) for opts in per_option], dtype=np.int64)

    pad_id = int(tokenizer.pad_token_id)
    out = np.zeros((n, k), dtype=np.float32)
    tokens = batch_tokens.tokens if isinstance(batch_tokens, TokenBudget) else batch_tokens
    batches = token_budget_batches(sizes, tokens)
    with torch.inference_mode():
        for idx in batches:
            seqs = [per_option[i][j] for i in idx for j in range(k)]
            ids, mask = pad_sequences(seqs, pad_id)
            types = None
            if per_types is not None:
                types, _ = pad_sequences([per_types[i][j] for i in idx for j in range(k)], 0)
            shape = (len(idx), k, ids.shape[1])
            t_ids = torch.from_numpy(ids).to(device).view(shape)
            t_mask = torch.from_numpy(mask).to(device).view(shape)
            t_types = torch.from_numpy(types).to(device).view(shape) if types is not None else None
            logits = model(input_ids=t_ids, **_model_kwargs(t_mask, t_types)).logits
            out[idx] = logits.float().cpu().numpy()
            if progress is not None:
                progress(float(len(idx)))
    return out, int(truncated.sum())
