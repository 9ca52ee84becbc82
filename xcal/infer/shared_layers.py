"""Compute the bottom layers that several encoders share once per batch.

Systems fine-tuned from one encoder with its bottom layers frozen (the
intermediate-task recipe) have bit-identical embeddings and bottom layers.
Run model by model, a grid recomputes those layers for every system. With
``RunOptions(share_layers=True)`` the runner loads such models together and
runs each cell through all of them: :func:`share_bottom_layers` makes the
models use one set of shared modules, wrapped in a :class:`SharedPrefix` that
remembers its output for the batch it last saw, and every later model replays
it instead of computing it again.

Exact by construction: layers are shared only when their weights are equal
bit for bit, and an output is replayed only for an input whose tensors
(hidden states, attention mask) are equal byte for byte to the one that
produced it; anything else is computed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch


class LayerMemo:
    """Outputs of a shared prefix, keyed by the bytes of its inputs.

    The runner clears it after each cell, so it holds at most one cell's
    prefix outputs.
    """

    def __init__(self) -> None:
        self._outputs: dict[str, Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        out = self._outputs.get(key)
        if out is None:
            self.misses += 1
        else:
            self.hits += 1
        return out

    def put(self, key: str, output: Any) -> None:
        self._outputs[key] = output

    def clear(self) -> None:
        self._outputs.clear()

    def __len__(self) -> int:
        return len(self._outputs)


def _input_key(tensors: Sequence[Any], others: Sequence[Any]) -> str:
    digest = hashlib.blake2b(digest_size=20)
    for t in tensors:
        array = t.detach().contiguous().cpu()
        digest.update(repr((tuple(array.shape), str(array.dtype))).encode())
        # bytes of any dtype (bfloat16 has no NumPy twin): view them as uint8
        digest.update(array.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(repr(others).encode())
    return digest.hexdigest()


class SharedPrefix(torch.nn.Module):
    """The bottom layers of an encoder, run once per distinct input.

    Called like one encoder layer (hidden states first, the layer's other
    arguments after), it runs its layers in turn and returns what the last
    one returns, or replays the output it computed for the same input.
    """

    def __init__(self, layers: Sequence[Any], memo: LayerMemo) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.memo = memo

    def forward(self, hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
        tensors = [hidden_states]
        others: list[Any] = []
        for name, value in [*enumerate(args), *sorted(kwargs.items())]:
            if isinstance(value, torch.Tensor):
                tensors.append(value)
                others.append(name)
            else:
                others.append((name, repr(value)))
        key = _input_key(tensors, others)
        if (hit := self.memo.get(key)) is not None:
            return hit
        out: Any = hidden_states
        for layer in self.layers:
            # transformers 4 layers return a tuple, 5 the hidden states alone
            out = layer(out[0] if isinstance(out, tuple) else out, *args, **kwargs)
        self.memo.put(key, out)
        return out


def _parts(model: Any) -> tuple[Any, Any] | None:
    """(embeddings, encoder layer list) of a BERT-style encoder, or None."""
    base = getattr(model, "base_model", None)
    embeddings = getattr(base, "embeddings", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if embeddings is None or layers is None or len(layers) == 0:
        return None
    if any(isinstance(layer, SharedPrefix) for layer in layers):
        raise ValueError("the model's layers are already shared")
    return embeddings, layers


def _same_weights(a: Any, b: Any) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        return False
    return all(
        sa[k].shape == sb[k].shape and sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k])
        for k in sa
    )


def shared_depth(leader: Any, other: Any) -> int:
    """How many bottom layers ``other`` shares with ``leader`` bit for bit (embeddings included).

    0 when either is not a BERT-style encoder, or their embeddings differ.
    """
    a, b = _parts(leader), _parts(other)
    if a is None or b is None or type(a[0]) is not type(b[0]) or not _same_weights(a[0], b[0]):
        return 0
    depth = 0
    for la, lb in zip(a[1], b[1], strict=False):
        if type(la) is not type(lb) or not _same_weights(la, lb):
            break
        depth += 1
    return depth


def share_bottom_layers(models: Sequence[Any], memo: LayerMemo) -> int:
    """Make ``models`` compute their common bottom layers once per batch; return that depth.

    The first model leads. Every model that shares at least one layer with
    it gets the leader's embeddings and one :class:`SharedPrefix` over the
    depth all of them share; a model sharing nothing is left as it is. A
    prefix covers at most all but the top layer of any member, so that every
    model still runs a layer of its own (a model identical to the leader
    would otherwise replay the leader's last layer, which is still exact).
    Returns 0, changing nothing, when fewer than two models share a layer.
    """
    if len(models) < 2:
        return 0
    leader = models[0]
    depths = [shared_depth(leader, m) for m in models[1:]]
    members = [leader, *(m for m, d in zip(models[1:], depths, strict=True) if d > 0)]
    if len(members) < 2:
        return 0
    depth = min(
        [d for d in depths if d > 0] + [len(_parts(m)[1]) - 1 for m in members]  # type: ignore[index]
    )
    if depth < 1:
        return 0
    embeddings, leader_layers = _parts(leader)  # type: ignore[misc]
    prefix = SharedPrefix(list(leader_layers[:depth]), memo)
    for model in members:
        base = model.base_model
        own = list(base.encoder.layer[depth:])
        base.embeddings = embeddings
        base.encoder.layer = torch.nn.ModuleList([prefix, *own])
    return depth
