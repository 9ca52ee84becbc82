"""Tokenise once, run length-sorted padded batches, put results back in order.

Every task family goes through :func:`run_batches`: it sorts the encoded
inputs by length, cuts batches by a token budget, pads each batch only to its
own longest input, calls a model function under ``torch.inference_mode`` and
scatters the outputs back to input order. Outputs are returned as float32
numpy arrays whatever dtype the model ran in.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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

    fast = _backend_encoder(tokenizer, first, second, max_length + 1, token_types)
    enc = (
        fast(first, second, max_length + 1)
        if fast is not None
        else run(first, second, max_length + 1)
    )
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


@dataclass
class TokenBudget:
    """Padded tokens per batch, shared by the calls of one loaded model.

    When the device runs out of memory on a batch of ``t`` padded tokens,
    :func:`run_batches` calls :meth:`shrink` and retries the batch in
    halves; later batches and later calls are cut to the smaller budget, so
    one failure is paid once, not once per cell.

    Examples
    --------
    >>> b = TokenBudget(65536)
    >>> b.shrink(60000); b.tokens
    30000
    >>> b.shrink(60000); b.tokens   # never grows back
    30000
    """

    tokens: int

    def __post_init__(self) -> None:
        if isinstance(self.tokens, bool) or not isinstance(self.tokens, int | np.integer):
            raise TypeError(f"Expected `tokens` to be a positive int, got {self.tokens!r}")
        if self.tokens < 1:
            raise ValueError(f"Expected `tokens` to be a positive int, got {self.tokens}")
        self.tokens = int(self.tokens)

    def shrink(self, failed: int) -> None:
        """Halve the budget below a batch of ``failed`` padded tokens that did not fit."""
        self.tokens = max(1, min(self.tokens, int(failed) // 2))


Batch = Callable[[Sequence[str], Sequence[str] | None, int], dict[str, Any]]


def _backend_encoder(
    tokenizer: Any,
    first: Sequence[str],
    second: Sequence[str] | None,
    limit: int,
    token_types: bool,
) -> Batch | None:
    """The Rust tokenizer's ``encode_batch`` without transformers' per-input Python wrapping.

    transformers turns every encoding into a dict of lists (ids, masks,
    offsets...) while holding the GIL, which on a GPU starves the thread
    that feeds the device. This calls the backend directly with the
    truncation transformers would set and reads only ids (and token types).
    It is used only if it gives exactly transformers' output on a sample of
    the inputs (the shortest, the longest and the first few); else None.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", False):
        return None

    def batch(a: Sequence[str], b: Sequence[str] | None, max_length: int) -> dict[str, Any]:
        backend.enable_truncation(
            max_length, stride=0, strategy="longest_first", direction=tokenizer.truncation_side
        )
        if backend.padding is not None:
            backend.no_padding()
        split = bool(getattr(tokenizer, "split_special_tokens", False))
        if backend.encode_special_tokens != split:
            backend.encode_special_tokens = split
        inputs: list[Any] = list(zip(a, b, strict=True)) if b is not None else list(a)
        encodings = backend.encode_batch(inputs, add_special_tokens=True)
        out: dict[str, Any] = {"input_ids": [e.ids for e in encodings]}
        if token_types:
            out["token_type_ids"] = [e.type_ids for e in encodings]
        return out

    by_length = sorted(
        range(len(first)), key=lambda i: len(first[i]) + len(second[i] if second else "")
    )
    sample = sorted({*range(min(8, len(first))), *by_length[:4], *by_length[-4:]})
    a = [first[i] for i in sample]
    b = [second[i] for i in sample] if second is not None else None
    try:
        mine = batch(a, b, limit)
    except Exception:  # an input the backend cannot take directly: use transformers
        return None
    ref = dict(
        tokenizer(
            a,
            b,
            truncation=True,
            max_length=limit,
            padding=False,
            return_token_type_ids=token_types,
        )
    )
    same = mine["input_ids"] == ref["input_ids"] and (
        not token_types or mine["token_type_ids"] == ref.get("token_type_ids")
    )
    return batch if same else None


def uses_token_types(model: Any) -> bool:
    """True when the model has a token-type (segment) embedding worth feeding."""
    return int(getattr(model.config, "type_vocab_size", 0) or 0) > 1


def run_batches(
    encoded: Encoded,
    forward: Callable[..., Any],
    *,
    batch_tokens: int | TokenBudget,
    pad_id: int,
    device: str,
    progress: Progress | None = None,
    weights: np.ndarray | None = None,
    per_token: Sequence[bool] = (),
    pad_to_multiple_of: int = 1,
    prefetch: int | None = None,
) -> list[np.ndarray]:
    """Call ``forward(input_ids, attention_mask, token_type_ids, idx)`` over token-budget batches.

    On a GPU the host and the device work at the same time: a background
    thread pads the next batches into pinned memory while the device runs
    the current one, inputs are copied without blocking, and outputs stay on
    the device until the last batch, when they are moved to the host in one
    copy per output. Every batch is the same as in a plain serial loop, so
    the results are bit for bit those of the serial path.

    Parameters
    ----------
    forward : callable
        Takes padded ``(B, L)`` tensors on ``device`` (``token_type_ids`` may be
        None) and the indices of the batch's inputs, and returns a tensor whose
        first axis is B, or a tuple of them.
    batch_tokens : int or TokenBudget
        Padded tokens per batch. A :class:`TokenBudget` is shared between
        calls: when the device runs out of memory the batch is halved and
        retried, and the budget stays halved for later batches and calls.
    weights : numpy.ndarray, optional
        Progress units per input (e.g. ``1 / windows`` for QA); default 1 each.
    per_token : sequence of bool
        For each output of ``forward``, whether its second axis is the token
        axis (QA start/end logits); missing entries mean False.
    prefetch : int, optional
        Batches prepared ahead by the background thread; 0 prepares each
        batch when it is needed. Default: 2 on CUDA, 0 elsewhere (on a CPU the
        forward already uses every core).

    Returns
    -------
    list of numpy.ndarray
        One float32 array per output of ``forward``, rows in input order. An
        output with a length axis (e.g. QA start logits) is kept padded to the
        longest input; callers slice rows to their own lengths.
    """
    import torch

    budget = batch_tokens if isinstance(batch_tokens, TokenBudget) else TokenBudget(batch_tokens)
    n = len(encoded)
    if n == 0:
        return []
    lengths = encoded.lengths
    m = max(int(pad_to_multiple_of), 1)
    batches = token_budget_batches(lengths, budget.tokens, pad_to_multiple_of=m)
    on_cuda = torch.device(device).type == "cuda"
    depth = (2 if on_cuda else 0) if prefetch is None else prefetch

    def prepare(idx: np.ndarray) -> _HostBatch:
        ids, mask = pad_sequences([encoded.input_ids[i] for i in idx], pad_id, pad_to_multiple_of=m)
        types = None
        if encoded.token_type_ids is not None:
            types, _ = pad_sequences(
                [encoded.token_type_ids[i] for i in idx], 0, pad_to_multiple_of=m
            )
        tensors = [torch.from_numpy(a) if a is not None else None for a in (ids, mask, types)]
        if on_cuda:  # page-locked, so the copy to the device can run without blocking
            tensors = [t.pin_memory() if t is not None else None for t in tensors]
        return _HostBatch(idx, *tensors)

    collected: list[list[Any]] = []
    order: list[np.ndarray] = []

    def run_rows(batch: _HostBatch, t: tuple[Any, ...], rows: slice) -> list[Any]:
        """Forward rows of a batch on the device, halving them when memory runs out."""
        idx = batch.idx[rows]
        width = -(-int(lengths[idx].max()) // m) * m
        whole = rows == slice(None) and width == t[0].shape[1]
        ids, mask, types = (x if x is None or whole else x[rows, :width].contiguous() for x in t)
        parts: Any = None
        if len(idx) * width <= budget.tokens or len(idx) == 1:
            try:
                result = forward(ids, mask, types, idx)
                parts = result if isinstance(result, tuple) else (result,)
                return [[p.detach().float() for p in parts]]
            except torch.cuda.OutOfMemoryError:
                if len(idx) == 1:
                    raise
                del parts
                budget.shrink(len(idx) * width)
                torch.cuda.empty_cache()
        start = rows.start or 0
        stop = rows.stop if rows.stop is not None else len(batch.idx)
        half = (stop - start + 1) // 2
        return run_rows(batch, t, slice(start, start + half)) + run_rows(
            batch, t, slice(start + half, stop)
        )

    with torch.inference_mode(), _ahead(prepare, batches, depth) as host_batches:
        for batch in host_batches:
            t = tuple(
                x.to(device, non_blocking=on_cuda) if x is not None else None
                for x in (batch.ids, batch.mask, batch.types)
            )
            for piece in run_rows(batch, t, slice(None)):
                if not collected:
                    collected = [[] for _ in piece]
                for store, p in zip(collected, piece, strict=True):
                    store.append(p)
            order.append(batch.idx)
            if progress is not None:
                idx = batch.idx
                progress(float(weights[idx].sum()) if weights is not None else float(len(idx)))
        return _gather(collected, np.concatenate(order), n, int(lengths.max()), per_token)


def _gather(
    collected: list[list[Any]],
    order: np.ndarray,
    n: int,
    longest: int,
    per_token: Sequence[bool],
) -> list[np.ndarray]:
    """Concatenate per-batch outputs on their device, move each to the host once, reorder."""
    import torch

    outputs: list[np.ndarray] = []
    for k, pieces in enumerate(collected):
        if k < len(per_token) and per_token[k]:
            # Size the token axis for the longest input of all batches; zeros beyond a row's batch.
            width = max(longest, *(int(p.shape[1]) for p in pieces))
            pieces = [
                torch.nn.functional.pad(p, (0, 0) * (p.dim() - 2) + (0, width - p.shape[1]))
                if p.shape[1] < width
                else p
                for p in pieces
            ]
        host = torch.cat(pieces).cpu().numpy()
        out = np.empty((n, *host.shape[1:]), dtype=np.float32)
        out[order] = host
        outputs.append(out)
    return outputs


@dataclass
class _HostBatch:
    idx: np.ndarray
    ids: Any
    mask: Any
    types: Any


@contextmanager
def _ahead(
    make: Callable[[np.ndarray], _HostBatch], items: list[np.ndarray], depth: int
) -> Iterator[Iterator[_HostBatch]]:
    """Yield ``make(item)`` for each item, computed up to ``depth`` items ahead in a thread.

    The thread's work (padding, pinning) is mostly numpy and torch copies
    that release the GIL. An error in it is raised in the caller; leaving
    the block early stops the thread.
    """
    if depth <= 0:
        yield (make(item) for item in items)
        return
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                value = make(item)
                while not stop.is_set():
                    try:
                        ready.put(value, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put(_Failure(exc))

    def consume() -> Iterator[_HostBatch]:
        while True:
            value = ready.get()
            if value is done:
                return
            if isinstance(value, _Failure):
                raise value.error
            yield value

    thread = threading.Thread(target=produce, name="xcal-batches", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)


@dataclass
class _Failure:
    error: BaseException
