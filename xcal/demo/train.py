"""A small fine-tuning recipe for the demo: top layers and a head, on CPU, in minutes.

This is not a training framework. It exists so that the offline demo has real
systems to compare: a baseline fine-tuned on English XNLI only, and variants
first fine-tuned on an English intermediate task and then on the same English
XNLI part (the intermediate-task recipe of Phang et al. 2020, scaled down).
Every result is a normal transformers checkpoint (safetensors) that
``xcal infer`` loads like any other model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xcal.models.construct import one_at_a_time

TRAINING_INFO = "xcal_training.json"
# Gain on the last layer's attention output when it is made a mean pooler (see
# truncate_encoder): large enough that the per-input average dominates [CLS].
MEAN_POOL_GAIN = 30.0


@dataclass(frozen=True)
class PairData:
    """Sentence pairs with integer labels: what every demo training stage sees."""

    text_a: Sequence[str]
    text_b: Sequence[str]
    labels: Sequence[int]
    label_names: tuple[str, ...]  # written to the config's id2label, so runners map columns
    name: str  # the task's name, recorded in the checkpoint

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.text_a) != n or len(self.text_b) != n:
            raise ValueError(
                f"{self.name}: text_a, text_b and labels differ in length "
                f"({len(self.text_a)}, {len(self.text_b)}, {n})"
            )
        if n == 0:
            raise ValueError(f"{self.name}: no training examples")
        bad = [i for i, y in enumerate(self.labels) if not 0 <= y < self.num_labels]
        if bad:
            raise ValueError(
                f"{self.name}: label out of range [0, {self.num_labels}) at row {bad[0]}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one fine-tuning stage."""

    trainable_layers: int = 4  # top encoder layers that learn; the rest stays frozen
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    max_length: int = 128
    seed: int = 0


def fine_tune(
    base: str | os.PathLike[str],
    data: PairData,
    out: str | os.PathLike[str],
    config: TrainConfig = TrainConfig(),
    *,
    progress: Callable[[int, int, float], None] | None = None,
    cache: FrozenStateCache | None = None,
    encode_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fine-tune ``base`` on ``data`` and save a checkpoint at ``out``.

    Only the top ``config.trainable_layers`` layers and the head learn, so the
    frozen layers' output for each training pair is computed once (no
    gradient, no dropout) and every epoch runs just the top of the network on
    it, in batches of similar length. That makes an epoch several times
    cheaper than a full forward and backward pass, and gives the same
    gradients as the full model with its frozen part in eval mode.

    The classification head is new whenever the base has another number of
    labels (an intermediate task's head is replaced by the target task's).
    The checkpoint is written to a temporary folder and renamed into place,
    so ``out`` either holds a complete checkpoint or does not exist.

    Parameters
    ----------
    base : path
        A transformers checkpoint folder (the bundled encoder, or the output
        of an earlier stage).
    data : PairData
        The training pairs.
    out : path
        Where the fine-tuned checkpoint goes.
    config : TrainConfig
        Hyper-parameters; ``config.seed`` fixes shuffling and head init.
    progress : callable, optional
        Called as ``progress(step, total_steps, loss)`` after every step.
    cache : FrozenStateCache, optional
        Keeps frozen-layer states between calls: stages that share their frozen
        layers and training pairs (the XNLI stage of every demo system) encode
        the pairs once.
    encode_progress : callable, optional
        Called as ``encode_progress(pairs_done, n_pairs)`` while the frozen
        layers encode the training pairs (not at all on a cache hit).

    Returns
    -------
    Path
        ``out``.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = Path(out)
    base = Path(base)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    tokenizer = AutoTokenizer.from_pretrained(base)
    with _quiet_transformers(), one_at_a_time():
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            id2label=dict(enumerate(data.label_names)),
            label2id={name: i for i, name in enumerate(data.label_names)},
            ignore_mismatched_sizes=True,  # a previous stage's head has another shape
            use_safetensors=True,
        )
    _freeze_lower_layers(model, config.trainable_layers)
    n_frozen = len(_bert_parts(model).encoder.layer) - config.trainable_layers
    model.eval()
    states = _frozen_states(
        model, tokenizer, data, n_frozen, config.max_length, cache, encode_progress
    )

    head_params = [p for n, p in model.named_parameters() if p.requires_grad and _is_head(n)]
    body_params = [p for n, p in model.named_parameters() if p.requires_grad and not _is_head(n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": body_params, "lr": config.learning_rate},
            {"params": head_params, "lr": config.head_learning_rate},
        ],
        weight_decay=0.01,
    )
    lengths = np.array([s.shape[0] for s in states])
    total = -(-len(states) // config.batch_size) * config.epochs
    labels = torch.as_tensor(np.asarray(data.labels, dtype=np.int64))
    model.train()
    step = 0
    for _ in range(config.epochs):
        for idx in _length_batches(lengths, config.batch_size, rng):
            logits = _top_forward(model, [states[i] for i in idx], n_frozen)
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if progress is not None:
                progress(step, total, loss.item())
    model.eval()

    info = {
        "base": str(base),
        "task": data.name,
        "num_labels": data.num_labels,
        "n_train": len(states),
        "config": asdict(config),
        "stages": [*_previous_stages(base), data.name],
    }
    _save_atomically(model, tokenizer, info, out)
    return out


def truncate_encoder(
    base: str | os.PathLike[str],
    out: str | os.PathLike[str],
    n_layers: int,
    *,
    mean_pool_last_layer: bool = True,
) -> Path:
    """Save the bottom ``n_layers`` transformer layers of an encoder as a new checkpoint.

    Inference cost grows with depth, and on two CPU cores the demo cannot
    afford all twelve layers for every system x language x condition; the
    lower layers of a multilingual encoder keep most of its cross-lingual
    alignment. The result is an ordinary checkpoint with
    ``num_hidden_layers = n_layers``, written atomically like :func:`fine_tune`.

    With ``mean_pool_last_layer`` the last kept layer is turned into a mean
    pooler for the ``[CLS]`` position, which is what a classification head
    reads. e5 models are trained with mean pooling and their ``[CLS]`` state
    is nearly the same for every input (its spread across XNLI pairs is about
    1e-3 of the other positions'), so a head on it cannot learn in a few
    hundred steps. Zeroing the layer's query projection makes its attention
    uniform over the real tokens, and scaling its attention output by
    ``MEAN_POOL_GAIN`` lets that average outweigh the constant residual. The
    model stays a standard BERT; only the weights change.
    """
    from transformers import AutoModel, AutoTokenizer

    base, out = Path(base), Path(out)
    with _quiet_transformers(), one_at_a_time():
        model = AutoModel.from_pretrained(base, use_safetensors=True)
    layers = model.encoder.layer
    if not 1 <= n_layers <= len(layers):
        raise ValueError(f"Expected `n_layers` in [1, {len(layers)}], got {n_layers}")
    model.encoder.layer = layers[:n_layers]
    model.config.num_hidden_layers = n_layers
    if mean_pool_last_layer:
        import torch

        last = model.encoder.layer[-1].attention
        with torch.no_grad():
            last.self.query.weight.zero_()
            last.self.query.bias.zero_()
            last.output.dense.weight.mul_(MEAN_POOL_GAIN)
            last.output.dense.bias.mul_(MEAN_POOL_GAIN)
    info = {
        "base": str(base),
        "truncated_to_layers": n_layers,
        "mean_pool_last_layer": mean_pool_last_layer,
        "stages": [],
    }
    _save_atomically(model, AutoTokenizer.from_pretrained(base), info, out)
    return out


class FrozenStateCache:
    """Frozen-layer states of training pairs, keyed by the frozen weights and the inputs.

    The key hashes every frozen parameter, so a stage whose frozen layers
    differ in any bit never sees another stage's states.
    """

    def __init__(self) -> None:
        self._states: dict[str, list[Any]] = {}

    def get(self, key: str) -> list[Any] | None:
        return self._states.get(key)

    def put(self, key: str, states: list[Any]) -> None:
        self._states[key] = states


def _frozen_key(model: Any, data: PairData, n_frozen: int, max_length: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().contiguous().numpy())  # no copy
    digest.update(json.dumps([n_frozen, max_length, list(data.text_a), list(data.text_b)]).encode())
    return digest.hexdigest()


def _bert_parts(model: Any) -> Any:
    base = model.base_model
    for part in ("embeddings", "encoder"):
        if not hasattr(base, part):
            raise ValueError(
                f"the demo recipe trains BERT-style encoders (embeddings + encoder.layer); "
                f"{type(model).__name__} has no `{part}`"
            )
    return base


def _frozen_states(
    model: Any,
    tokenizer: Any,
    data: PairData,
    n_frozen: int,
    max_length: int,
    cache: FrozenStateCache | None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 64,
) -> list[Any]:
    """Output of the embeddings and the bottom ``n_frozen`` layers, one (tokens, hidden) per pair."""
    import torch

    key = _frozen_key(model, data, n_frozen, max_length) if cache is not None else ""
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    base = _bert_parts(model)
    n = len(data.labels)
    # length-sorted batches pad little; states are stored unpadded
    order = np.argsort([len(a) + len(b) for a, b in zip(data.text_a, data.text_b, strict=True)])
    states: list[Any] = [None] * n
    with torch.no_grad():  # not inference_mode: the states feed the layers that learn
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [data.text_a[i] for i in idx],
                [data.text_b[i] for i in idx],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            hidden = base.embeddings(
                input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids")
            )
            mask = _additive_mask(batch["attention_mask"], hidden.dtype)
            for layer in base.encoder.layer[:n_frozen]:
                hidden = _layer_output(layer(hidden, attention_mask=mask))
            for row, i in enumerate(idx):
                n_tokens = int(batch["attention_mask"][row].sum())
                states[i] = hidden[row, :n_tokens].clone()
            if progress is not None:
                progress(min(start + batch_size, n), n)
    if cache is not None:
        cache.put(key, states)
    return states


def _top_forward(model: Any, states: Sequence[Any], n_frozen: int) -> Any:
    """Logits from frozen-layer states: the trainable layers, the pooler and the classifier."""
    import torch

    base = _bert_parts(model)
    width = max(s.shape[0] for s in states)
    hidden = states[0].new_zeros((len(states), width, states[0].shape[1]))
    attention = torch.zeros((len(states), width), dtype=torch.long)
    for row, s in enumerate(states):
        hidden[row, : s.shape[0]] = s
        attention[row, : s.shape[0]] = 1
    mask = _additive_mask(attention, hidden.dtype)
    for layer in base.encoder.layer[n_frozen:]:
        hidden = _layer_output(layer(hidden, attention_mask=mask))
    pooled = base.pooler(hidden) if base.pooler is not None else hidden[:, 0]
    return model.classifier(model.dropout(pooled))


def _additive_mask(attention_mask: Any, dtype: Any) -> Any:
    """(batch, 1, 1, tokens): 0 on real tokens, the dtype's minimum on padding.

    The form every BERT attention implementation (eager and SDPA) accepts.
    """
    import torch

    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


def _layer_output(output: Any) -> Any:
    # a tuple in transformers 4, the hidden states alone in 5
    return output[0] if isinstance(output, tuple) else output


def _length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[Any]:
    """Batches of similar length, their order and membership reshuffled every epoch.

    Less padding makes an epoch about 1.6x faster on XNLI. The price: where
    length alone gives the label away, batches become single-class; natural
    sentence pairs are far from that.
    """
    shuffled = rng.permutation(lengths.shape[0])
    by_length = shuffled[np.argsort(lengths[shuffled], kind="stable")]
    batches = [by_length[i : i + batch_size] for i in range(0, len(by_length), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _save_atomically(model: Any, tokenizer: Any, info: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with _quiet_transformers():
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / TRAINING_INFO).write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def training_stages(checkpoint: str | os.PathLike[str]) -> list[str]:
    """The tasks a demo checkpoint was fine-tuned on, in order ([] if unknown)."""
    return _previous_stages(Path(checkpoint))


def _previous_stages(checkpoint: Path) -> list[str]:
    info = checkpoint / TRAINING_INFO
    if not info.is_file():
        return []
    stages = json.loads(info.read_text()).get("stages", [])
    return [str(s) for s in stages]


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and save bar: a new head is expected here."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def _is_head(name: str) -> bool:
    return name.startswith("classifier") or ".pooler." in name or name.startswith("pooler")


def _freeze_lower_layers(model: object, trainable_layers: int) -> None:
    """Freeze embeddings and all but the top ``trainable_layers`` encoder layers."""
    base = model.base_model  # type: ignore[attr-defined]
    layers = base.encoder.layer
    if not 0 <= trainable_layers <= len(layers):
        raise ValueError(
            f"Expected `trainable_layers` in [0, {len(layers)}], got {trainable_layers}"
        )
    for param in base.embeddings.parameters():
        param.requires_grad = False
    for layer in layers[: len(layers) - trainable_layers]:
        for param in layer.parameters():
            param.requires_grad = False
