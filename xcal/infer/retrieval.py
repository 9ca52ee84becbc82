"""Retrieval: sentence embeddings, cosine similarity and the top-k candidates.

Embeddings pool the last hidden states over the attention mask (mean), take
the first token (CLS) or the last real token (decoder-only models), and are
L2-normalised, so a dot product is the cosine similarity. Similarities are
computed in blocks of queries so memory stays bounded for large pools (BUCC).
For bitext mining, :func:`mining_neighbours` also keeps, in the same pass over
the blocks, each candidate's nearest queries (the backward direction of the
margin score).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xcal.infer.engine import Progress, TokenBudget, encode, run_batches, uses_token_types


def pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """Pool ``(B, L, H)`` hidden states to ``(B, H)`` by ``mean``, ``cls`` or ``last``."""
    import torch

    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "mean":
        m = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
    raise ValueError(f"unknown pooling {pooling!r}; known: mean, cls, last")


def embed(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    pooling: str,
    prefix: str = "",
    max_length: int,
    batch_tokens: int | TokenBudget,
    device: str,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """L2-normalised sentence embeddings ``(n, hidden)`` (float32) and the truncation count."""
    import torch

    encoded = encode(
        tokenizer,
        [prefix + t for t in texts],
        max_length=max_length,
        token_types=uses_token_types(model),
    )

    def forward(ids: Any, mask: Any, types: Any, _idx: np.ndarray) -> Any:
        kwargs = {"attention_mask": mask}
        if types is not None:
            kwargs["token_type_ids"] = types
        hidden = model(input_ids=ids, **kwargs).last_hidden_state
        pooled = pool(hidden.float(), mask, pooling)
        return torch.nn.functional.normalize(pooled, p=2, dim=-1)

    (emb,) = run_batches(
        encoded,
        forward,
        batch_tokens=batch_tokens,
        pad_id=int(tokenizer.pad_token_id),
        device=device,
        progress=progress,
    )
    return emb, encoded.n_truncated


def top_k(
    queries: np.ndarray, candidates: np.ndarray, k: int, *, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine scores of the ``k`` most similar candidates per query, best first.

    Both inputs are L2-normalised rows. Among the k returned, equal scores are
    ordered by candidate index.

    Examples
    --------
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> c = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    >>> idx, s = top_k(q, c, 2)
    >>> idx.tolist(), [[round(float(x), 2) for x in row] for row in s]
    ([[1, 2], [0, 2]], [[1.0, 0.6], [1.0, 0.8]])
    """
    k = min(int(k), candidates.shape[0])
    if k <= 0:
        raise ValueError("top_k needs k >= 1 and at least one candidate")
    n = queries.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)
    c = np.ascontiguousarray(candidates, dtype=np.float32)
    for lo in range(0, n, block):
        sim = np.asarray(queries[lo : lo + block], dtype=np.float32) @ c.T
        idx[lo : lo + block], scores[lo : lo + block] = _block_top_k(sim, k)
    return idx, scores


def _block_top_k(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of each row of ``sim``, best first, ties by column index."""
    if k < sim.shape[1]:
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(sim.shape[1]), sim.shape).copy()
    part_scores = np.take_along_axis(sim, part, axis=1)
    # Sort the k by score, breaking ties by candidate index (lexsort: last key first).
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def mining_neighbours(
    queries: np.ndarray, candidates: np.ndarray, k: int, margin_k: int, *, block: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` candidates per query and the k-NN means of both directions, in one pass.

    The ratio margin of Artetxe & Schwenk (2019) divides the cosine of a pair
    by the mean cosine of each side's ``margin_k`` nearest neighbours on the
    other side; the forward means come from each query's own row, the backward
    means (each candidate's nearest queries) are merged block by block, so the
    similarity matrix is computed once and never held whole.

    Parameters
    ----------
    queries, candidates : numpy.ndarray of shape (n, d) and (m, d)
        L2-normalised rows.
    k : int
        Candidates kept per query (best first, ties by candidate index).
    margin_k : int
        Neighbourhood size of the margin (LASER and XTREME use 4); capped at
        the other side's size, as LASER's ``knn`` does.

    Returns
    -------
    idx : numpy.ndarray of int64, shape (n, min(k, m))
    scores : numpy.ndarray of float32, shape (n, min(k, m))
        Cosine of each kept candidate, best first.
    query_knn_mean : numpy.ndarray of float64, shape (n,)
        Mean cosine of each query's ``margin_k`` nearest candidates.
    candidate_knn_mean : numpy.ndarray of float64, shape (m,)
        Mean cosine of each candidate's ``margin_k`` nearest queries.

    Examples
    --------
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> c = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    >>> idx, s, qm, cm = mining_neighbours(q, c, 1, 2)
    >>> idx.tolist(), np.round(qm, 2).tolist(), np.round(cm, 2).tolist()
    ([[1], [0]], [0.8, 0.9], [0.5, 0.5, 0.7])
    """
    n, m = queries.shape[0], candidates.shape[0]
    k_fwd = min(int(k), m)
    k_margin = int(margin_k)
    if k_fwd <= 0 or k_margin <= 0 or n == 0:
        raise ValueError(
            "mining_neighbours needs k >= 1, margin_k >= 1, at least one query and one candidate"
        )
    k_keep = max(k_fwd, min(k_margin, m))
    k_back = min(k_margin, n)
    idx = np.empty((n, k_fwd), dtype=np.int64)
    scores = np.empty((n, k_fwd), dtype=np.float32)
    query_mean = np.empty(n, dtype=np.float64)
    best_back = np.full((k_back, m), -np.inf, dtype=np.float32)  # running top per candidate
    c = np.ascontiguousarray(candidates, dtype=np.float32)
    for lo in range(0, n, block):
        sim = np.asarray(queries[lo : lo + block], dtype=np.float32) @ c.T
        top_idx, top_scores = _block_top_k(sim, k_keep)
        idx[lo : lo + block] = top_idx[:, :k_fwd]
        scores[lo : lo + block] = top_scores[:, :k_fwd]
        query_mean[lo : lo + block] = top_scores[:, : min(k_margin, m)].mean(
            axis=1, dtype=np.float64
        )
        merged = np.concatenate([best_back, sim], axis=0)
        best_back = -np.partition(-merged, k_back - 1, axis=0)[:k_back]
    candidate_mean = best_back.mean(axis=0, dtype=np.float64)
    return idx, scores, query_mean, candidate_mean
