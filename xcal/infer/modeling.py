"""What the runner needs to know about a model before and after loading it.

:func:`inspect_model` reads only the config and the tokenizer (no weights), so
the runner can compute input fingerprints, skip finished cells and reject a
model that does not fit a task (wrong number of labels, no head) before any
model work. :func:`load_for` then loads the weights with the right Auto class
on the chosen device.

Model loading itself (hub ids, local paths, ``bundled:`` names, safe formats)
is :mod:`xcal.models`' job; this module only decides *what* to load.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from xcal.tasks import Task

Scoring = Literal["auto", "head", "lm"]
Pooling = Literal["auto", "mean", "cls", "last"]
# The task kinds of xcal.models.load_model_and_tokenizer (which Auto class to load).
Head = Literal["classification", "qa", "multiple_choice", "causal_lm", "retrieval"]

SCORINGS: tuple[str, ...] = ("auto", "head", "lm")
POOLINGS: tuple[str, ...] = ("auto", "mean", "cls", "last")

# Marks the model name of runs scored by LM log-likelihood, so that they never
# share a store cell with runs of the same checkpoint's classification head.
LM_SCORING_SUFFIX = "#lm"


class ModelSpecError(ValueError):
    """A model cannot be used for a task (no head, wrong label count, bad option)."""


@dataclass(frozen=True)
class ModelSpec:
    """A model as the user names it, with the options that change its outputs.

    Parameters
    ----------
    name : str
        Hub id, local checkpoint directory, or ``bundled:multilingual-e5-small``.
    revision : str, optional
        A hub revision to pin. Refused for now: the loader
        (:func:`xcal.models.load_model_and_tokenizer`) cannot pin one, and
        loading another revision than the one recorded would be silent. Use a
        local snapshot directory (its weights are hashed into the manifest).
    label : str, optional
        The name written to the store (default: ``name``).
    scoring : {"auto", "head", "lm"}
        How classification and multiple choice are scored: the model's own head,
        or option log-likelihood under a causal LM. ``auto`` uses the head when
        the checkpoint has one and LM scoring for decoder-only models without one.
    pooling : {"auto", "mean", "cls", "last"}
        Sentence embedding for retrieval. ``auto``: the sentence-transformers
        pooling file if the checkpoint has one, else mean (last token for
        decoder-only models).
    prefix : str, optional
        Text put before every retrieval input (e5 models expect ``"query: "``;
        the bundled model gets it by default).
    max_length : int, optional
        Token limit (default: the tokenizer's / the model's maximum).
    allow_new_head : bool
        Score with a freshly initialised head when the checkpoint has none
        (random predictions: for smoke tests and speed measurements only).
    trust_remote_code : bool
        Passed to transformers; off unless asked for.
    """

    name: str
    revision: str | None = None
    label: str | None = None
    scoring: Scoring = "auto"
    pooling: Pooling = "auto"
    prefix: str | None = None
    max_length: int | None = None
    allow_new_head: bool = False
    trust_remote_code: bool = False
    intermediate_tasks: tuple[str, ...] = ()
    train_seed: int | None = None

    def __post_init__(self) -> None:
        # The typed schema (xcal.settings) decides: a string is never a bool
        # (trust_remote_code="false" would be truthy) nor a list of characters.
        from xcal.settings import ModelTable, SettingsError, validate

        name = self.name if isinstance(self.name, str) and self.name.strip() else None
        if name is None:
            raise ModelSpecError(f"Expected a model name, got {self.name!r}")
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        try:
            validate(ModelTable, values, f"model {name}")
        except SettingsError as exc:
            raise ModelSpecError(str(exc)) from None
        object.__setattr__(self, "intermediate_tasks", tuple(self.intermediate_tasks))

    @property
    def store_name(self) -> str:
        return self.label or self.name

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "model") -> ModelSpec:
        """Build from a config-file table, checked against :class:`xcal.settings.ModelTable`.

        Unknown keys, missing ``name`` and values of the wrong type are errors
        naming ``where``, the key and the expected type.
        """
        from xcal.settings import ModelTable, SettingsError, validate

        try:
            table = validate(ModelTable, data, where)
        except SettingsError as exc:
            raise ModelSpecError(str(exc)) from None
        values = table.model_dump()
        values["intermediate_tasks"] = tuple(table.intermediate_tasks)
        return cls(**values)


@dataclass
class ModelInfo:
    """A model inspected without loading its weights."""

    spec: ModelSpec
    source: str  # what transformers loads: a local directory or a hub id
    config: Any
    tokenizer: Any  # shared with models of the same tokenizer files: read-only
    architecture: str  # "encoder-only" | "decoder-only"
    max_length: int
    revision: str | None
    heads: frozenset[str] = field(default_factory=frozenset)

    @property
    def model_type(self) -> str:
        return str(getattr(self.config, "model_type", ""))


# --------------------------------------------------------------------------- inspection


def resolve_source(name: str) -> str:
    """The directory or hub id behind a model name (materialises ``bundled:`` models)."""
    from xcal.models.bundled import is_bundled, resolve_bundled

    if is_bundled(name):
        return str(resolve_bundled(name))
    return name


def _heads(config: Any) -> frozenset[str]:
    heads = set()
    for arch in getattr(config, "architectures", None) or ():
        if arch.endswith("ForSequenceClassification"):
            heads.add("classification")
        elif arch.endswith("ForQuestionAnswering"):
            heads.add("qa")
        elif arch.endswith("ForMultipleChoice"):
            heads.add("multiple_choice")
        elif arch.endswith(("ForCausalLM", "LMHeadModel")):
            heads.add("causal_lm")
    return frozenset(heads)


def architecture_family(config: Any) -> str:
    """``encoder-only`` or ``decoder-only`` (see :func:`xcal.models.architecture_family`).

    Encoder-decoder models are refused: the runner does not score them.
    """
    from xcal.models import architecture_family as family

    found = str(family(config))
    if found == "encoder-decoder":
        raise ModelSpecError(
            f"{getattr(config, 'model_type', '?')} is an encoder-decoder model; "
            "xcal infer scores encoder-only and decoder-only models"
        )
    return found


# Models whose position ids start after the padding index (RoBERTa family).
_POSITION_OFFSET_TYPES = {"roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "longformer"}


def model_max_length(config: Any, tokenizer: Any, explicit: int | None = None) -> int:
    """The token limit: ``explicit``, else the tokenizer's, capped by the position table."""
    limits = []
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    positions = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None
    )
    if isinstance(positions, int) and positions > 0:
        if getattr(config, "model_type", "") in _POSITION_OFFSET_TYPES:
            positions -= 2
        limits.append(positions)
    cap = min(limits) if limits else None
    if explicit is not None:
        if cap is not None and explicit > cap:
            raise ModelSpecError(
                f"max_length {explicit} exceeds the model's maximum of {cap} tokens"
            )
        return explicit
    if cap is None:
        raise ModelSpecError("cannot tell the model's maximum length; pass max_length")
    return cap


def _revision(spec: ModelSpec, source: str, config: Any) -> str | None:
    """The revision :func:`xcal.models.load_model_and_tokenizer` will report, without loading.

    A local checkpoint is identified by a hash of its weight files (the bundled
    model by its provenance record), a hub checkpoint by its commit.
    """
    from pathlib import Path

    from xcal.models import ModelLoadError, weights_sha256
    from xcal.models.bundled import bundled_info

    if Path(source).is_dir():
        info = bundled_info(source)
        if info and info.get("model_revision"):
            return str(info["model_revision"])
        try:
            return weights_sha256(source)
        except ModelLoadError as exc:
            raise ModelSpecError(str(exc)) from exc
    commit = getattr(config, "_commit_hash", None)
    return f"hub:{commit}" if commit else None


def _ensure_pad_token(tokenizer: Any) -> None:
    # Decoder tokenizers often have no pad token; padding positions are masked
    # out by the attention mask, so any id works, and eos is the convention.
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token


def _prepare_tokenizer(tokenizer: Any) -> None:
    """What the runner's batching expects: a pad token, padding on the right."""
    _ensure_pad_token(tokenizer)
    tokenizer.padding_side = "right"


def _refuse_remote_code(spec: ModelSpec, source: str) -> None:
    """Refuse a checkpoint that asks for its own code unless ``trust_remote_code`` is True."""
    if spec.trust_remote_code is True:
        return
    import json
    from pathlib import Path

    asks = []
    for name in ("config.json", "tokenizer_config.json"):
        path = Path(source) / name
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("auto_map"):
                asks.append(name)
    if asks:
        raise ModelSpecError(
            f"model {spec.name!r} asks to run its own Python code ({', '.join(asks)} has "
            "auto_map); xcal does not run code from model files unless you pass "
            "--trust-remote-code"
        )


def inspect_model(spec: ModelSpec, *, tokenizer: bool = True) -> ModelInfo:
    """Read a model's config and, unless ``tokenizer=False``, its tokenizer and revision.

    No weights are loaded. With ``tokenizer=False`` (a cheap check of every
    model of a grid before the run starts) ``max_length`` is 0 and
    ``revision`` None.

    Raises
    ------
    ModelSpecError
        If the config or tokenizer cannot be read, with the underlying reason.
    """
    from transformers import AutoConfig

    from xcal.models.shared_tokenizer import shared_tokenizer

    try:
        source = resolve_source(spec.name)
    except Exception as exc:
        raise ModelSpecError(f"model {spec.name!r}: {exc}") from exc
    if spec.revision is not None:
        raise ModelSpecError(
            f"model {spec.name!r}: pinning revision {spec.revision!r} is not supported yet "
            "(the loader cannot pin one); download that revision to a directory and pass its path"
        )
    _refuse_remote_code(spec, source)
    try:
        config = AutoConfig.from_pretrained(
            source, revision=spec.revision, trust_remote_code=spec.trust_remote_code is True
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelSpecError(f"cannot read the config of model {spec.name!r}: {exc}") from exc
    info = ModelInfo(
        spec=spec,
        source=source,
        config=config,
        tokenizer=None,
        architecture=architecture_family(config),
        max_length=0,
        revision=None,
        heads=_heads(config),
    )
    if not tokenizer:
        return info
    try:
        # shared by every model with the same tokenizer files (one read per process)
        tok = shared_tokenizer(
            source, trust_remote_code=spec.trust_remote_code is True, prepare=_prepare_tokenizer
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelSpecError(f"cannot read the tokenizer of model {spec.name!r}: {exc}") from exc
    if not getattr(tok, "is_fast", False):
        raise ModelSpecError(
            f"model {spec.name!r}: xcal needs a fast tokenizer (offset mappings for QA)"
        )
    info.tokenizer = tok
    info.max_length = model_max_length(config, tok, spec.max_length)
    info.revision = _revision(spec, source, config)
    return info


# --------------------------------------------------------------------------- task fit


@dataclass(frozen=True)
class Plan:
    """How one model runs one task: which head to load and how to score."""

    head: Head
    method: str  # "head", "lm" or "embedding"
    label_order: tuple[int, ...] | None = None  # model column for each task label
    pooling: str = "mean"
    prefix: str = ""
    new_head: bool = False

    @property
    def lm(self) -> bool:
        return self.method == "lm"


def _norm_label(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def label_order(config: Any, label_names: tuple[str, ...]) -> tuple[int, ...] | None:
    """Map task labels to the model's output columns using ``id2label``.

    Returns the model column of every task label when the model's label names
    are a permutation of the task's (an MNLI model ordered contradiction,
    neutral, entailment is reordered to the task's order), None for generic
    ``LABEL_i`` names (the model is taken to use the task's order).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> cfg = SimpleNamespace(id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"})
    >>> label_order(cfg, ("contradiction", "entailment", "neutral"))
    (0, 2, 1)
    >>> label_order(SimpleNamespace(id2label={0: "LABEL_0", 1: "LABEL_1"}), ("a", "b")) is None
    True
    """
    id2label = getattr(config, "id2label", None) or {}
    names = {int(k): _norm_label(v) for k, v in id2label.items()}
    wanted = [_norm_label(n) for n in label_names]
    if sorted(names.values()) == sorted(wanted) and len(set(wanted)) == len(wanted):
        by_name = {v: k for k, v in names.items()}
        order = tuple(by_name[n] for n in wanted)
        return None if order == tuple(range(len(wanted))) else order
    if not all(re.fullmatch(r"label\d+", v) for v in names.values()):
        warnings.warn(
            f"model labels {[id2label[k] for k in sorted(id2label)]} do not name the task's labels "
            f"{list(label_names)}; taking the model's columns in the task's order",
            stacklevel=2,
        )
    return None


def plan_for(info: ModelInfo, task: Task) -> Plan:
    """Decide how ``info``'s model runs ``task``; raise before loading if it cannot.

    Raises
    ------
    ModelSpecError
        The checkpoint lacks the head the task needs (and ``allow_new_head`` is
        off), its number of labels differs from the task's, or LM scoring is
        asked of an encoder.
    """
    spec = info.spec
    kind = task.record_kind
    name = spec.name
    if kind in ("retrieval", "mining"):
        pooling: str = spec.pooling
        if pooling == "auto":
            pooling = _sentence_transformers_pooling(info.source) or (
                "last" if info.architecture == "decoder-only" else "mean"
            )
        prefix = spec.prefix
        if prefix is None:
            prefix = "query: " if _is_e5(spec.name, info.source) else ""
        return Plan("retrieval", "embedding", pooling=pooling, prefix=prefix)

    if spec.scoring == "lm" and info.architecture != "decoder-only":
        raise ModelSpecError(
            f"model {name!r} is {info.architecture}: LM scoring needs a decoder-only (causal) model"
        )
    if kind == "qa":
        if spec.scoring == "lm":
            raise ModelSpecError(f"task {task.name!r} is extractive QA: LM scoring does not apply")
        return _head_plan(info, task, "qa")
    if kind == "classification":
        wants_lm = spec.scoring == "lm" or (
            spec.scoring == "auto"
            and info.architecture == "decoder-only"
            and "classification" not in info.heads
        )
        if wants_lm:
            return Plan("causal_lm", "lm")
        return _head_plan(info, task, "classification")
    if kind == "multiple_choice":
        if info.architecture == "decoder-only" and spec.scoring != "head":
            return Plan("causal_lm", "lm")
        return _head_plan(info, task, "multiple_choice")
    raise ModelSpecError(f"task {task.name!r}: unsupported record kind {kind!r}")


def _head_plan(info: ModelInfo, task: Task, head: Head) -> Plan:
    spec = info.spec
    n_classes = task.n_classes if head == "classification" else None
    if head not in info.heads:
        archs = ", ".join(getattr(info.config, "architectures", None) or ["(none listed)"])
        if not spec.allow_new_head:
            raise ModelSpecError(
                f"model {spec.name!r} has no {head} head (architectures: {archs}), which task "
                f"{task.name!r} needs; use a fine-tuned checkpoint, or allow_new_head "
                "(--allow-new-head) to score with a randomly initialised head"
            )
        return Plan(head, "head", new_head=True)
    order = None
    if n_classes is not None:
        n_model = int(getattr(info.config, "num_labels", 0))
        if n_model != n_classes:
            raise ModelSpecError(
                f"model {spec.name!r} has a {n_model}-label classification head but task "
                f"{task.name!r} has {n_classes} classes ({', '.join(task.label_names)})"
            )
        order = label_order(info.config, task.label_names)
    return Plan(head, "head", label_order=order)


def _is_e5(name: str, source: str) -> bool:
    return "e5" in name.lower().replace("bundled:", "").split("/")[-1].split("-")


def _sentence_transformers_pooling(source: str) -> str | None:
    import json
    from pathlib import Path

    path = Path(source) / "1_Pooling" / "config.json"
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    if cfg.get("pooling_mode_lasttoken"):
        return "last"
    if cfg.get("pooling_mode_mean_tokens"):
        return "mean"
    return None


# --------------------------------------------------------------------------- loading


def pick_device(explicit: str | None = None) -> str:
    """``explicit`` if given, else CUDA, then Apple MPS, then CPU."""
    from xcal.models import choose_device

    return str(choose_device(explicit or "auto"))


DTYPES = ("auto", "fp32", "bf16", "fp16")


def check_dtype(name: str, device: str) -> str:
    """The canonical dtype name for ``--dtype`` on ``device`` (``auto`` is float32)."""
    from xcal.models import ModelLoadError, resolve_dtype

    try:
        dtype = str(resolve_dtype(name))
    except ModelLoadError as exc:
        raise ModelSpecError(str(exc)) from None
    if dtype == "float16" and device == "cpu":
        raise ModelSpecError("fp16 needs a GPU; on CPU use fp32 (the default) or bf16")
    return dtype


def load_for(info: ModelInfo, plan: Plan, task: Task, *, device: str, dtype: str) -> Any:
    """Load the weights ``plan`` needs with :func:`xcal.models.load_model_and_tokenizer`.

    Raises
    ------
    ModelSpecError
        If the weights on disk changed since :func:`inspect_model` (their hash
        is part of the runs' fingerprints).
    """
    from transformers.utils import logging as hf_logging

    from xcal.models import load_model_and_tokenizer

    # The runner draws its own progress; transformers' per-tensor bar is noise here.
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        loaded = load_model_and_tokenizer(
            info.source,
            task_kind=plan.head,
            num_labels=task.n_classes if plan.head == "classification" else None,
            trust_remote_code=info.spec.trust_remote_code is True,
            device=device,
            dtype=dtype,
            # read once already by inspect_model (a large vocabulary takes seconds)
            tokenizer=info.tokenizer,
        )
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    if loaded.model_revision != info.revision:
        raise ModelSpecError(
            f"model {info.spec.name!r} changed while the job ran (revision "
            f"{info.revision} when planned, {loaded.model_revision} when loaded); restart the job"
        )
    model = loaded.model
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = info.tokenizer.pad_token_id
    return model
