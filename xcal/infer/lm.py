"""Score answer options by their log-likelihood under a causal language model.

A request is a (context, continuation) pair; its score is
``sum_t log p(continuation_t | prefix, context, continuation_<t)``. This is
how prompting-style classification and multiple choice are evaluated (Brown
et al., 2020; lm-evaluation-harness), so decoder-only models can be compared
with encoders on the same tasks.

Details that change numbers, decided once here:

- Context and continuation are tokenised separately and concatenated, with
  any whitespace at the end of the context moved to the front of the
  continuation, so every option of an example shares the context's tokens.
- A prefix token (BOS, else EOS) comes first so the first token is predicted too.
- Inputs longer than ``max_length`` lose tokens from the left (the context),
  never from the continuation unless it alone is too long; such requests are
  counted as truncated.
- Batches are padded on the right and run without an attention mask, as in
  lm-evaluation-harness: under causal attention no real token sees the pads
  after it, and the model takes its plain causal path (no padding mask to
  build or to apply; positions are 0..L-1 as in an unpadded run).
- Only the continuation positions go through the output layer: the vocabulary
  projection of every position (250k x length x batch) would not fit in memory.
  A probe at load time checks that this equals the model's own logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xcal.infer.engine import Encoded, Progress, TokenBudget, run_batches


def _prefix_id(tokenizer: Any) -> int | None:
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return None


def encode_requests(
    tokenizer: Any, requests: Sequence[tuple[str, str]], *, max_length: int
) -> tuple[Encoded, np.ndarray, list[list[int]]]:
    """Model inputs, continuation lengths and targets of each request.

    The sequence is ``prefix + context + continuation``; the model input is
    the sequence without its last token, the targets are the sequence shifted
    by one, and the last ``n_cont[i]`` targets are the continuation.
    """
    contexts, continuations = [], []
    for context, continuation in requests:
        stripped = context.rstrip()
        continuations.append(context[len(stripped) :] + continuation)
        contexts.append(stripped)
    if not continuations or any(not c for c in continuations):
        raise ValueError("every request needs a non-empty continuation")
    ctx = tokenizer(contexts, add_special_tokens=False)["input_ids"]
    cont = tokenizer(continuations, add_special_tokens=False)["input_ids"]
    prefix = _prefix_id(tokenizer)
    head = [prefix] if prefix is not None else []
    seqs: list[list[int]] = []
    n_cont = np.zeros(len(requests), dtype=np.int64)
    truncated = np.zeros(len(requests), dtype=bool)
    for i, (c, x) in enumerate(zip(ctx, cont, strict=True)):
        if not x:
            raise ValueError(f"request {i}: the continuation has no tokens")
        full = head + list(c) + list(x)
        # The model sees len(full) - 1 tokens.
        if len(full) - 1 > max_length:
            full = full[len(full) - 1 - max_length :]
            truncated[i] = True
        # Without a prefix token the first token is never predicted.
        n_cont[i] = min(len(x), len(full) - 1)
        seqs.append(full)
    inputs = Encoded([s[:-1] for s in seqs], None, truncated)
    targets = [s[1:] for s in seqs]
    return inputs, n_cont, targets


def _lm_head_logits(model: Any, hidden: Any) -> Any:
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        import torch

        logits = torch.tanh(logits / cap) * cap
    return logits


def check_lm_head_route(model: Any, tokenizer: Any, device: str) -> bool:
    """True when base model + output layer reproduce the model's own logits.

    Some architectures scale or cap logits after the output layer; for those
    the runner falls back to full forward passes.
    """
    import torch

    base = getattr(model, "base_model", None)
    if base is None or base is model or model.get_output_embeddings() is None:
        return False
    ids = tokenizer("The quick brown fox jumps.", add_special_tokens=False)["input_ids"][:16]
    if len(ids) < 2:
        return False
    t = torch.tensor([ids], device=device)
    with torch.inference_mode():
        full = model(input_ids=t).logits.float()
        hidden = base(input_ids=t).last_hidden_state
        mine = _lm_head_logits(model, hidden).float()
    return bool(torch.allclose(full, mine, atol=1e-4, rtol=1e-4))


def score_requests(
    model: Any,
    tokenizer: Any,
    requests: Sequence[tuple[str, str]],
    *,
    max_length: int,
    batch_tokens: int | TokenBudget,
    device: str,
    head_route: bool = True,
    progress: Progress | None = None,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood (float64, summed over continuation tokens) of each request, and truncation flags."""
    import torch

    inputs, n_cont, targets = encode_requests(tokenizer, requests, max_length=max_length)
    width = max(len(t) for t in targets)
    target_mat = np.zeros((len(targets), width), dtype=np.int64)
    for i, t in enumerate(targets):
        target_mat[i, : len(t)] = t
    lengths = inputs.lengths

    def forward(ids: Any, _mask: Any, _types: Any, idx: np.ndarray) -> Any:
        b, width_b = ids.shape
        n_c = torch.from_numpy(n_cont[idx]).to(ids.device)
        lens = torch.from_numpy(lengths[idx]).to(ids.device)
        # Positions whose prediction is a continuation token: the last n_cont of each row.
        pos = torch.arange(width_b, device=ids.device).expand(b, width_b)
        want = (pos >= (lens - n_c)[:, None]) & (pos < lens[:, None])
        tgt = torch.from_numpy(target_mat[idx, :width_b]).to(ids.device)
        if head_route:
            hidden = model.base_model(input_ids=ids).last_hidden_state
            logits = _lm_head_logits(model, hidden[want])
        else:
            logits = model(input_ids=ids).logits[want]
        logp = torch.log_softmax(logits.float(), dim=-1)
        token_lp = logp.gather(1, tgt[want][:, None]).squeeze(1).double()
        row = torch.arange(b, device=ids.device)[:, None].expand(b, width_b)[want]
        return torch.zeros(b, dtype=torch.float64, device=ids.device).index_add_(0, row, token_lp)

    (scores,) = run_batches(
        inputs,
        forward,
        batch_tokens=batch_tokens,
        pad_id=int(tokenizer.pad_token_id),
        device=device,
        progress=progress,
        weights=weights,
    )
    return scores.astype(np.float64), inputs.truncated
