"""Tokenise once, run length-sorted padded batches, put results back in order.

Every task family goes through :func:`run_batches`: it sorts the encoded
inputs by length, cuts batches by a token budget, pads each batch only to its
own longest input, calls a model function under ``torch.inference_mode`` and
scatters the outputs back to input order. Outputs are returned as float32
numpy arrays whatever dtype the model ran in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xcal.infer.batching import pad_sequences, token_budget_batches

Progress = Callable[[float], None]


@dataclass
class Encoded:
    """Token ids of n inputs (unpadded), their token types, and which were truncated."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self))

    @property
    def n_truncated(self) -> int:
        return int(self.truncated.sum())


def encode(
    tokenizer: Any,
    first: Sequence[str],
    second: Sequence[str] | None = None,
    *,
    max_length: int,
    token_types: bool = False,
) -> Encoded:
    """Tokenise single texts or pairs with special tokens, truncating to ``max_length``.

    ``token_types`` asks for segment ids (for models with a token-type
    embedding, e.g. BERT); otherwise none are returned.

    Pairs are truncated longest-first. Inputs are tokenised once with a limit
    of ``max_length + 1``, so an input is known to be truncated exactly when
    it reaches that length; only those few are tokenised again at the limit.
    """
    if second is not None and len(second) != len(first):
        raise ValueError(f"got {len(first)} first texts but {len(second)} second texts")
    if not len(first):
        return Encoded([], None, np.zeros(0, dtype=bool))

    def run(a: Sequence[str], b: Sequence[str] | None, limit: int) -> dict[str, Any]:
        return dict(
            tokenizer(
                list(a),
                list(b) if b is not None else None,
                truncation=True,
                max_length=limit,
                padding=False,
                return_token_type_ids=token_types,
            )
        )

    enc = run(first, second, max_length + 1)
    ids: list[list[int]] = enc["input_ids"]
    types: list[list[int]] | None = enc.get("token_type_ids") if token_types else None
    over = [i for i, x in enumerate(ids) if len(x) > max_length]
    if over:
        again = run(
            [first[i] for i in over],
            [second[i] for i in over] if second is not None else None,
            max_length,
        )
        for j, i in enumerate(over):
            ids[i] = again["input_ids"][j]
            if types is not None:
                types[i] = again["token_type_ids"][j]
    truncated = np.zeros(len(ids), dtype=bool)
    truncated[over] = True
    return Encoded(ids, types, truncated)


def uses_token_types(model: Any) -> bool:
    """True when the model has a token-type (segment) embedding worth feeding."""
    return int(getattr(model.config, "type_vocab_size", 0) or 0) > 1


def run_batches(
    encoded: Encoded,
    forward: Callable[..., Any],
    *,
    batch_tokens: int,
    pad_id: int,
    device: str,
    progress: Progress | None = None,
    weights: np.ndarray | None = None,
    per_token: Sequence[bool] = (),
    pad_to_multiple_of: int = 1,
) -> list[np.ndarray]:
    """Call ``forward(input_ids, attention_mask, token_type_ids, idx)`` over token-budget batches.

    Parameters
    ----------
    forward : callable
        Takes padded ``(B, L)`` tensors on ``device`` (``token_type_ids`` may be
        None) and the indices of the batch's inputs, and returns a tensor whose
        first axis is B, or a tuple of them.
    weights : numpy.ndarray, optional
        Progress units per input (e.g. ``1 / windows`` for QA); default 1 each.
    per_token : sequence of bool
        For each output of ``forward``, whether its second axis is the token
        axis (QA start/end logits); missing entries mean False.

    Returns
    -------
    list of numpy.ndarray
        One float32 array per output of ``forward``, rows in input order. An
        output with a length axis (e.g. QA start logits) is kept padded to the
        longest input; callers slice rows to their own lengths.
    """
    import torch

    n = len(encoded)
    lengths = encoded.lengths
    batches = token_budget_batches(lengths, batch_tokens, pad_to_multiple_of=pad_to_multiple_of)
    outputs: list[np.ndarray] | None = None
    longest = int(lengths.max()) if n else 0
    with torch.inference_mode():
        for idx in batches:
            ids, mask = pad_sequences(
                [encoded.input_ids[i] for i in idx], pad_id, pad_to_multiple_of=pad_to_multiple_of
            )
            types = None
            if encoded.token_type_ids is not None:
                types, _ = pad_sequences(
                    [encoded.token_type_ids[i] for i in idx],
                    0,
                    pad_to_multiple_of=pad_to_multiple_of,
                )
            t_ids = torch.from_numpy(ids).to(device)
            t_mask = torch.from_numpy(mask).to(device)
            t_types = torch.from_numpy(types).to(device) if types is not None else None
            result = forward(t_ids, t_mask, t_types, idx)
            parts = result if isinstance(result, tuple) else (result,)
            arrays = [p.detach().float().cpu().numpy() for p in parts]
            token_axis = [k < len(per_token) and per_token[k] for k in range(len(arrays))]
            if outputs is None:
                outputs = []
                for a, tok in zip(arrays, token_axis, strict=True):
                    shape: tuple[int, ...] = (n, *a.shape[1:])
                    if tok:
                        # Size the token axis for the longest input of all batches.
                        shape = (n, max(longest, a.shape[1]), *a.shape[2:])
                    outputs.append(np.zeros(shape, dtype=np.float32))
            for out, a, tok in zip(outputs, arrays, token_axis, strict=True):
                if tok:
                    out[idx, : a.shape[1]] = a
                else:
                    out[idx] = a
            if progress is not None:
                progress(float(weights[idx].sum()) if weights is not None else float(len(idx)))
    return outputs or []
