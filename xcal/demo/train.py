"""A small fine-tuning recipe for the demo: top layers and a head, on CPU, in minutes.

This is not a training framework. It exists so that the offline demo has real
systems to compare: a baseline fine-tuned on English XNLI only, and variants
first fine-tuned on an English intermediate task and then on the same English
XNLI part (the intermediate-task recipe of Phang et al. 2020, scaled down).
Every result is a normal transformers checkpoint (safetensors) that
``xcal infer`` loads like any other model. What each kind of task learns (its
encoding, head and loss) is in :mod:`xcal.demo.heads`.
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

from xcal.demo.heads import (
    ChoiceData,
    Head,
    PairData,
    Rows,
    SpanData,
    TaskData,
    TokenData,
    new_head,
)
from xcal.models.construct import one_at_a_time
from xcal.models.shared_tokenizer import shared_tokenizer

__all__ = [
    "ChoiceData",
    "FrozenStateCache",
    "PairData",
    "SpanData",
    "TokenData",
    "TrainConfig",
    "fine_tune",
    "fine_tune_mix",
    "training_stages",
    "truncate_encoder",
]

TRAINING_INFO = "xcal_training.json"
# Gain on the last layer's attention output when it is made a mean pooler (see
# truncate_encoder): large enough that the per-input average dominates [CLS].
MEAN_POOL_GAIN = 30.0


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
    data: TaskData,
    out: str | os.PathLike[str],
    config: TrainConfig = TrainConfig(),
    *,
    progress: Callable[[int, int, float], None] | None = None,
    cache: FrozenStateCache | None = None,
    encode_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fine-tune ``base`` on ``data`` and save a checkpoint at ``out``.

    Only the top ``config.trainable_layers`` layers and the head learn, so the
    frozen layers' output for each training row is computed once (no
    gradient, no dropout) and every epoch runs just the top of the network on
    it, in batches of similar length. That makes an epoch several times
    cheaper than a full forward and backward pass, and gives the same
    gradients as the full model with its frozen part in eval mode.

    The checkpoint's class follows the task (``data.auto_class``: sequence
    classification, multiple choice, token classification or question
    answering); its head is new whenever the base's does not fit (an
    intermediate task's head is replaced by the target task's). A stage
    whose head does not read the ``[CLS]`` pooler keeps the base's pooler
    unchanged, so a later sequence-level stage starts from the same pooler
    whatever task came before. The checkpoint is written to a temporary
    folder and renamed into place, so ``out`` either holds a complete
    checkpoint or does not exist.

    Parameters
    ----------
    base : path
        A transformers checkpoint folder (the bundled encoder, or the output
        of an earlier stage).
    data : PairData, ChoiceData, TokenData or SpanData
        The training examples (:mod:`xcal.demo.heads`).
    out : path
        Where the fine-tuned checkpoint goes.
    config : TrainConfig
        Hyper-parameters; ``config.seed`` fixes shuffling and head init.
    progress : callable, optional
        Called as ``progress(step, total_steps, loss)`` after every step.
    cache : FrozenStateCache, optional
        Keeps frozen-layer states between calls: stages that share their frozen
        layers and inputs (the XNLI stage of every demo system; a multi-task
        stage after its single tasks) encode each input once.
    encode_progress : callable, optional
        Called as ``encode_progress(rows_done, n_rows)`` while the frozen
        layers encode the training rows (not at all for cached rows).

    Returns
    -------
    Path
        ``out``.
    """
    import torch
    import transformers

    out, base = Path(out), Path(base)
    torch.manual_seed(config.seed)
    tokenizer = shared_tokenizer(base)
    with _quiet_transformers(), one_at_a_time():
        model = getattr(transformers, data.auto_class).from_pretrained(
            base,
            **data.model_kwargs(),
            ignore_mismatched_sizes=True,  # a previous stage's head has another shape
            use_safetensors=True,
        )
    _keep_pooler(model, base)
    rows = data.encode(tokenizer, config.max_length)
    _train(model, [(data, data.head(model), rows)], config, cache, progress, encode_progress)
    info = {
        "base": str(base),
        "task": data.name,
        "n_train": len(rows.items),
        "n_dropped": rows.n_dropped,
        "config": asdict(config),
        "stages": [*_previous_stages(base), data.name],
    }
    _save_atomically(model, tokenizer, info, out)
    return out


def fine_tune_mix(
    base: str | os.PathLike[str],
    tasks: Sequence[TaskData],
    out: str | os.PathLike[str],
    config: TrainConfig = TrainConfig(),
    *,
    name: str = "mix",
    progress: Callable[[int, int, float], None] | None = None,
    cache: FrozenStateCache | None = None,
    encode_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fine-tune ``base`` on several tasks at once and save the shared encoder at ``out``.

    Every task gets its own new head on the same trainable layers; each
    batch holds one task's examples, and the batches of all tasks are
    shuffled together (multi-task intermediate training). The heads are
    dropped: the checkpoint is the encoder with its pooler (a plain
    ``AutoModel`` checkpoint), which a later stage gives a head of its own.
    Arguments are those of :func:`fine_tune`.
    """
    import torch
    from transformers import AutoModel

    if not tasks:
        raise ValueError("a multi-task stage needs at least one task")
    out, base = Path(out), Path(base)
    torch.manual_seed(config.seed)
    tokenizer = shared_tokenizer(base)
    with _quiet_transformers(), one_at_a_time():
        model = AutoModel.from_pretrained(base, use_safetensors=True)
    if model.pooler is None:
        raise ValueError(f"{base}: a multi-task stage needs an encoder with a pooler")
    heads = [new_head(t, model.config, model.pooler) for t in tasks]
    for i, head in enumerate(heads):  # registered, so they share the model's train/eval mode
        model.add_module(f"_mix_head{i}", torch.nn.ModuleList([head.output, head.dropout]))
    parts = [
        (t, h, t.encode(tokenizer, config.max_length)) for t, h in zip(tasks, heads, strict=True)
    ]
    _train(model, parts, config, cache, progress, encode_progress)
    for i in range(len(heads)):
        delattr(model, f"_mix_head{i}")
    info = {
        "base": str(base),
        "task": name,
        "tasks": [t.name for t in tasks],
        "n_train": sum(len(rows.items) for _, _, rows in parts),
        "config": asdict(config),
        "stages": [*_previous_stages(base), name],
    }
    _save_atomically(model, tokenizer, info, out)
    return out


def _train(
    model: Any,
    parts: Sequence[tuple[TaskData, Head, Rows]],
    config: TrainConfig,
    cache: FrozenStateCache | None,
    progress: Callable[[int, int, float], None] | None,
    encode_progress: Callable[[int, int], None] | None,
) -> None:
    """The training loop shared by single- and multi-task stages."""
    import torch

    rng = np.random.default_rng(config.seed)
    _freeze_lower_layers(model, config.trainable_layers)
    n_frozen = len(_bert_parts(model).encoder.layer) - config.trainable_layers
    model.eval()
    all_rows = [rows for _, _, rows in parts]
    states = _frozen_states(model, all_rows, n_frozen, cache, encode_progress)
    head_params = {id(p): p for _, head, _ in parts for p in _head_parameters(head)}
    body_params = [
        p for n, p in model.named_parameters() if p.requires_grad and id(p) not in head_params
    ]
    optimizer = torch.optim.AdamW(
        [
            {"params": body_params, "lr": config.learning_rate},
            {"params": list(head_params.values()), "lr": config.head_learning_rate},
        ],
        weight_decay=0.01,
    )
    # (part, item indices) batches: items of similar length, never two tasks in one
    per_part = [
        np.array([max(len(rows.input_ids[r]) for r in item) for item in rows.items])
        for rows in all_rows
    ]
    n_batches = sum(-(-len(lengths) // config.batch_size) for lengths in per_part)
    total = n_batches * config.epochs
    model.train()
    step = 0
    for _ in range(config.epochs):
        batches = [
            (k, idx)
            for k, lengths in enumerate(per_part)
            for idx in _length_batches(lengths, config.batch_size, rng)
        ]
        for b in rng.permutation(len(batches)):
            k, idx = batches[b]
            data, head, rows = parts[k]
            row_ids = [r for i in idx for r in rows.items[i]]
            hidden, attention = _top_forward(model, [states[k][r] for r in row_ids], n_frozen)
            loss = data.loss(head, hidden, attention, [rows.targets[i] for i in idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if progress is not None:
                progress(step, total, loss.item())
    model.eval()


def _head_parameters(head: Head) -> list[Any]:
    modules = [m for m in (head.output, head.pooler) if m is not None]
    return [p for m in modules for p in m.parameters() if p.requires_grad]


def _keep_pooler(model: Any, base: Path) -> None:
    """Give a head class without a pooler (token, QA) the base's pooler, frozen and saved.

    A later sequence-level stage then starts from the same pooler as it
    would without this stage.
    """
    import torch
    from safetensors import safe_open

    body = model.base_model
    if getattr(body, "pooler", "absent") is not None:
        return
    weights = base / "model.safetensors"
    if not weights.is_file():
        return
    with safe_open(str(weights), "pt") as f:
        names = {k.split("pooler.", 1)[1]: k for k in f.keys() if "pooler." in k}
        if set(names) != {"dense.weight", "dense.bias"}:
            return
        from transformers.models.bert.modeling_bert import BertPooler

        pooler = BertPooler(model.config)
        with torch.no_grad():
            pooler.dense.weight.copy_(f.get_tensor(names["dense.weight"]))
            pooler.dense.bias.copy_(f.get_tensor(names["dense.bias"]))
    pooler.requires_grad_(False)
    body.pooler = pooler


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
    """Frozen-layer states of training rows, keyed by the frozen weights and the row's tokens.

    The key hashes every frozen parameter, so a stage whose frozen layers
    differ in any bit never sees another stage's states.
    """

    def __init__(self) -> None:
        self._states: dict[tuple[str, tuple[int, ...], tuple[int, ...]], Any] = {}

    def get(self, key: tuple[str, tuple[int, ...], tuple[int, ...]]) -> Any | None:
        return self._states.get(key)

    def put(self, key: tuple[str, tuple[int, ...], tuple[int, ...]], state: Any) -> None:
        self._states[key] = state

    def __len__(self) -> int:
        return len(self._states)


def _frozen_digest(model: Any, n_frozen: int) -> str:
    """A hash of the modules that make frozen states: the embeddings and the bottom layers.

    Names are relative to the encoder, so every head class over the same
    encoder (and a plain encoder) gives the same digest.
    """
    base = _bert_parts(model)
    digest = hashlib.blake2b(digest_size=16)
    modules = [("embeddings", base.embeddings)]
    modules += [(f"layer.{i}", layer) for i, layer in enumerate(base.encoder.layer[:n_frozen])]
    for prefix, module in modules:
        for name, param in module.named_parameters():
            digest.update(f"{prefix}.{name}".encode())
            digest.update(param.detach().contiguous().numpy())  # no copy
    digest.update(str(n_frozen).encode())
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
    parts: Sequence[Rows],
    n_frozen: int,
    cache: FrozenStateCache | None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 64,
) -> list[list[Any]]:
    """Output of the embeddings and the bottom ``n_frozen`` layers, one (tokens, hidden) per row."""
    import torch

    digest = _frozen_digest(model, n_frozen) if cache is not None else ""
    base = _bert_parts(model)
    states: list[list[Any]] = [[None] * len(rows.input_ids) for rows in parts]

    def key(rows: Rows, r: int) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
        types = rows.token_type_ids[r] if rows.token_type_ids is not None else []
        return digest, tuple(rows.input_ids[r]), tuple(types)

    todo = []
    for k, rows in enumerate(parts):
        for r in range(len(rows.input_ids)):
            hit = cache.get(key(rows, r)) if cache is not None else None
            if hit is None:
                todo.append((k, r))
            else:
                states[k][r] = hit
    # length-sorted batches pad little; states are stored unpadded
    todo.sort(key=lambda kr: len(parts[kr[0]].input_ids[kr[1]]))
    with torch.no_grad():  # not inference_mode: the states feed the layers that learn
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            ids = [parts[k].input_ids[r] for k, r in chunk]
            width = max(len(x) for x in ids)
            input_ids = torch.zeros((len(chunk), width), dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            types = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (k, r) in enumerate(chunk):
                input_ids[row, : len(ids[row])] = torch.as_tensor(ids[row])
                attention[row, : len(ids[row])] = 1
                if (row_types := parts[k].token_type_ids) is not None:
                    types[row, : len(ids[row])] = torch.as_tensor(row_types[r])
            hidden = base.embeddings(input_ids=input_ids, token_type_ids=types)
            mask = _additive_mask(attention, hidden.dtype)
            for layer in base.encoder.layer[:n_frozen]:
                hidden = _layer_output(layer(hidden, attention_mask=mask))
            for row, (k, r) in enumerate(chunk):
                state = hidden[row, : len(ids[row])].clone()
                states[k][r] = state
                if cache is not None:
                    cache.put(key(parts[k], r), state)
            if progress is not None:
                progress(min(start + batch_size, len(todo)), len(todo))
    return states


def _top_forward(model: Any, states: Sequence[Any], n_frozen: int) -> tuple[Any, Any]:
    """Hidden states of the trainable layers over frozen-layer states, and the attention mask."""
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
    return hidden, attention


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
        # Encoding left truncation set on the tokenizer's backend; saved, it would
        # become part of this checkpoint's tokenizer files (and, loaded as a
        # setting, of every later stage's), so equal tokenizers would differ.
        tokenizer.backend_tokenizer.no_truncation()
        tokenizer.backend_tokenizer.no_padding()
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
