"""Load any Hugging Face checkpoint safely, on the best device, for one kind of task.

Everything the runner needs to know about a model comes back in one
:class:`LoadedModel`: the model (eval mode, on its device), its tokenizer, the
architecture family recorded in the manifest, a revision (the hub commit or a
hash of the weight files) and the parameters that were freshly initialised
(a classification or QA head on a base checkpoint starts random; that is
logged, and seeded so that a rerun gives the same logits).

Safety: weights are read from safetensors whenever the checkpoint has them; a
checkpoint with only ``pytorch_model.bin`` is read with
``torch.load(weights_only=True)``, which refuses to run code from the pickle;
and a checkpoint whose config or tokenizer config asks for custom code
(``auto_map``) is refused unless ``trust_remote_code=True`` is passed, even
when transformers could silently fall back to a built-in class (that fallback
would run a different model than its authors meant).

torch and transformers are imported inside the functions that need them, so
``import xcal.models`` stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xcal.models.bundled import (
    MARKER_FILE,
    BundledModelError,
    bundled_info,
    is_bundled,
    resolve_bundled,
)
from xcal.models.construct import one_at_a_time

logger = logging.getLogger(__name__)

TaskKind = Literal["classification", "qa", "multiple_choice", "retrieval", "causal_lm"]
TASK_KINDS: tuple[str, ...] = ("classification", "qa", "multiple_choice", "retrieval", "causal_lm")
Architecture = Literal["encoder-only", "decoder-only", "encoder-decoder"]

_AUTO_CLASSES = {
    "classification": "AutoModelForSequenceClassification",
    "qa": "AutoModelForQuestionAnswering",
    "multiple_choice": "AutoModelForMultipleChoice",
    "retrieval": "AutoModel",
    "causal_lm": "AutoModelForCausalLM",
}
_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}
# Models whose position ids start after the padding index (usable length = max - 2).
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer"}


class ModelLoadError(RuntimeError):
    """A model or tokenizer cannot be loaded (or must not be, for safety)."""


class RemoteCodeError(ModelLoadError):
    """The checkpoint asks to run its own code and ``trust_remote_code`` is off."""


@dataclass
class LoadedModel:
    """A model ready for inference, with what the run manifest records about it.

    Unpacks as ``model, tokenizer = load_model_and_tokenizer(...)``.
    """

    model: Any  # a torch.nn.Module in eval mode on `device`
    tokenizer: Any
    name: str  # as given by the user (hub id, path or "bundled:...")
    path: str  # the local directory or hub id actually loaded
    task_kind: str
    architecture: Architecture
    model_revision: str | None
    device: str
    dtype: str
    max_length: int  # longest input (in tokens, specials included) the model accepts
    num_labels: int | None = None
    weights_format: str = ""  # "safetensors", "pickle (weights_only)" or "hub"
    new_parameters: tuple[str, ...] = field(default=())  # randomly initialised on load

    def __iter__(self) -> Iterator[Any]:
        yield self.model
        yield self.tokenizer


# ----------------------------------------------------------------------------- helpers


def choose_device(device: str | None = "auto") -> str:
    """The device to run on: the one asked for, else CUDA, then Apple MPS, then CPU.

    Examples
    --------
    >>> choose_device("cpu")
    'cpu'
    """
    import torch

    if device not in (None, "auto"):
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ModelLoadError(f"unknown device {device!r}: {exc}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} requested but CUDA is not available")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ModelLoadError(f"device {device!r} requested but Apple MPS is not available")
        return str(dev)
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: Any = "auto") -> str:
    """Normalise a dtype name: "auto" (float32), "fp32", "bf16", "fp16" or a torch dtype.

    Examples
    --------
    >>> resolve_dtype("bf16"), resolve_dtype("auto")
    ('bfloat16', 'float32')
    """
    if dtype is None or dtype == "auto":
        # Calibration numbers move with precision: full precision unless asked.
        return "float32"
    key = str(dtype).removeprefix("torch.")
    if key not in _DTYPES:
        raise ModelLoadError(
            f"unknown dtype {dtype!r}; expected one of auto, {', '.join(sorted(_DTYPES))}"
        )
    return _DTYPES[key]


def architecture_family(config: Any) -> Architecture:
    """ "encoder-only", "decoder-only" or "encoder-decoder" for a transformers config.

    Uses ``config.is_encoder_decoder``, then ``config.is_decoder``, then the
    architectures the checkpoint was saved with, then whether transformers
    knows a causal LM but no masked LM for the model type.

    Examples
    --------
    >>> from types import SimpleNamespace as C
    >>> architecture_family(C(is_encoder_decoder=True, model_type="t5"))
    'encoder-decoder'
    >>> architecture_family(C(model_type="gpt2", architectures=["GPT2LMHeadModel"]))
    'decoder-only'
    >>> architecture_family(C(model_type="bert", architectures=["BertModel"]))
    'encoder-only'
    """
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    if getattr(config, "is_decoder", False):
        return "decoder-only"
    for arch in getattr(config, "architectures", None) or ():
        if arch.endswith(("ForCausalLM", "LMHeadModel")) and not arch.startswith("Bert"):
            return "decoder-only"
        if arch.endswith(("ForMaskedLM", "ForPreTraining")):
            return "encoder-only"
    model_type = getattr(config, "model_type", "")
    try:
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
            MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        )
    except ImportError:  # pragma: no cover - very old or very new transformers
        return "encoder-only"
    if (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    ):
        return "decoder-only"
    return "encoder-only"


_WEIGHT_HASHES: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _WEIGHT_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
        _WEIGHT_HASHES[key] = digest.hexdigest()
    return _WEIGHT_HASHES[key]


def weight_files(directory: str | os.PathLike[str]) -> tuple[str, list[Path]]:
    """The weight files a local checkpoint would be loaded from, and their format.

    Safetensors files win; ``pytorch_model*.bin`` pickles are used only when
    there are none (and are then read with ``torch.load(weights_only=True)``).
    """
    directory = Path(directory)
    safetensors = sorted(directory.glob("*.safetensors"))
    if safetensors:
        return "safetensors", safetensors
    pickles = sorted(directory.glob("pytorch_model*.bin"))
    if pickles:
        return "pickle (weights_only)", pickles
    found = ", ".join(sorted(p.name for p in directory.iterdir())) or "(empty)"
    raise ModelLoadError(
        f"{directory}: no model weights (expected model.safetensors or pytorch_model.bin); "
        f"found: {found}"
    )


def weights_sha256(directory: str | os.PathLike[str]) -> str:
    """A hash of a local checkpoint's weight files: the manifest's ``model_revision``.

    SHA-256 over ``"{file name}\\0{sha256 of file}\\n"`` for each weight file in
    name order, so a sharded checkpoint hashes the same wherever it lives.
    Hashes are memoised per (path, size, mtime) within a process.
    """
    _, files = weight_files(directory)
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\0{_file_sha256(path)}\n".encode())
    return "sha256:" + digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _raw_configs(source: str, local: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """config.json and tokenizer_config.json as plain dicts (no class is instantiated)."""
    if local:
        directory = Path(source)
        if not (directory / "config.json").is_file():
            raise ModelLoadError(f"{directory}: not a transformers checkpoint (no config.json)")
        config = _read_json(directory / "config.json")
        tok_path = directory / "tokenizer_config.json"
        return config, (_read_json(tok_path) if tok_path.is_file() else {})
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(source)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot find model {source!r}: {exc}") from exc
    try:
        from transformers.models.auto.tokenization_auto import get_tokenizer_config

        tok_config = dict(get_tokenizer_config(source) or {})
    except (OSError, ValueError, ImportError):
        tok_config = {}
    return config, tok_config


def _refuse_remote_code(
    source: str, config: Mapping[str, Any], tok_config: Mapping[str, Any]
) -> None:
    asks = {}
    if config.get("auto_map"):
        asks["config.json"] = config["auto_map"]
    if tok_config.get("auto_map"):
        asks["tokenizer_config.json"] = tok_config["auto_map"]
    if asks:
        where = "; ".join(f"{k} auto_map={v}" for k, v in asks.items())
        raise RemoteCodeError(
            f"{source}: the checkpoint asks to run its own Python code ({where}). "
            "xcal does not execute code from model files unless you pass "
            "trust_remote_code=True (--trust-remote-code), and only do that for "
            "code you have read."
        )


def _max_length(config: Any, tokenizer: Any) -> int:
    limits = []
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    for attr in ("max_position_embeddings", "n_positions"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            offset = 2 if getattr(config, "model_type", "") in _OFFSET_POSITIONS else 0
            limits.append(value - offset)
            break
    return min(limits) if limits else 512


class _CapturedLog(logging.Handler):
    """Keeps transformers' log records from one load (for an error message)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        # Drop the ANSI colour codes of transformers' report table.
        return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(r.getMessage() for r in self.records))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------------- loading


def load_model_and_tokenizer(
    name_or_path: str | os.PathLike[str],
    *,
    task_kind: TaskKind = "retrieval",
    num_labels: int | None = None,
    trust_remote_code: bool = False,
    device: str | None = "auto",
    dtype: Any = "auto",
    seed: int = 0,
    tokenizer: Any = None,
) -> LoadedModel:
    """Load a checkpoint and its tokenizer for one kind of task.

    Parameters
    ----------
    name_or_path : str or path-like
        A hub id (``"xlm-roberta-large"``), a local checkpoint directory, or a
        bundled model (``"bundled:multilingual-e5-small"``, materialised on
        first use; works offline).
    task_kind : {"classification", "qa", "multiple_choice", "retrieval", "causal_lm"}
        Which Auto class to use: sequence classification (encoders, and
        decoders via their last non-padding token), extractive QA, multiple
        choice, the bare model (embeddings for retrieval), or a causal LM (to
        score answer options by log-likelihood).
    num_labels : int, optional
        Required for ``"classification"``. A checkpoint that already has a
        trained classification head with another number of labels is refused.
    trust_remote_code : bool, default False
        Allow a checkpoint's own Python code to run. Off unless asked.
    device : str, default "auto"
        "auto" picks CUDA, then Apple MPS, then CPU.
    dtype : str or torch.dtype, default "auto"
        "auto" is float32; "bf16"/"fp16" halve memory on a GPU.
    seed : int, default 0
        Seeds the initialisation of parameters missing from the checkpoint (a
        new head), so repeated loads give identical predictions.
    tokenizer : optional
        The checkpoint's tokenizer, already loaded (it is then not read again;
        it is still checked and given a pad token like a freshly read one).

    Returns
    -------
    LoadedModel
        The model (eval mode, on ``device``), tokenizer and what the manifest
        records: architecture family, revision, device, dtype, max length.

    Raises
    ------
    ModelLoadError
        Unknown model, missing weights, label-count mismatch, unknown
        ``task_kind``, or a head the architecture does not have.
    RemoteCodeError
        The checkpoint needs custom code and ``trust_remote_code`` is False.

    Examples
    --------
    >>> from xcal.models import load_model_and_tokenizer, BUNDLED_MODEL
    >>> loaded = load_model_and_tokenizer(BUNDLED_MODEL, task_kind="retrieval")  # doctest: +SKIP
    >>> loaded.architecture, loaded.max_length  # doctest: +SKIP
    ('encoder-only', 512)
    """
    if task_kind not in _AUTO_CLASSES:
        raise ModelLoadError(
            f"unknown task_kind {task_kind!r}; expected one of {', '.join(TASK_KINDS)}"
        )
    if task_kind == "classification":
        if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 2:
            raise ModelLoadError(
                f"task_kind='classification' needs num_labels >= 2, got {num_labels!r}"
            )
    elif num_labels is not None and task_kind != "multiple_choice":
        raise ModelLoadError(f"num_labels is only meaningful for classification, not {task_kind!r}")

    name = str(name_or_path)
    if is_bundled(name):
        try:
            source = str(resolve_bundled(name))
        except BundledModelError as exc:
            raise ModelLoadError(str(exc)) from exc
    else:
        source = os.fspath(name_or_path)
        if source.startswith("~"):
            source = os.path.expanduser(source)
    local = Path(source).is_dir()
    if not local and (Path(source).exists() or source.startswith((".", "/", "~"))):
        raise ModelLoadError(f"model path {source!r} is not a checkpoint directory")

    # Only the boolean True is consent: a truthy string such as "false" is not.
    trust_remote_code = trust_remote_code is True
    config_dict, tok_config_dict = _raw_configs(source, local)
    if not trust_remote_code:
        _refuse_remote_code(source, config_dict, tok_config_dict)

    if local:
        weights_format, _ = weight_files(source)
    else:
        weights_format = "hub"

    # A trained head with another label count would silently mis-map labels.
    if task_kind == "classification":
        trained_head = any(
            str(a).endswith("ForSequenceClassification")
            for a in config_dict.get("architectures") or ()
        )
        id2label = config_dict.get("id2label") or {}
        # transformers leaves id2label out of config.json for its default of 2 labels.
        head_labels = len(id2label) if id2label else int(config_dict.get("num_labels", 2))
        if trained_head and head_labels != num_labels:
            names = ", ".join(map(str, id2label.values())) if id2label else "default names"
            raise ModelLoadError(
                f"{name}: its classification head has {head_labels} labels ({names}) "
                f"but the task has {num_labels}"
            )

    import torch
    import transformers

    resolved_device = choose_device(device)
    dtype_name = resolve_dtype(dtype)
    torch_dtype = getattr(torch, dtype_name)

    # Past our own checks, any failure inside transformers, safetensors or torch
    # on a user's checkpoint (truncated file, bad field type, ...) becomes one
    # ModelLoadError naming the model, with the original exception chained.
    try:
        config = transformers.AutoConfig.from_pretrained(
            source, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        raise ModelLoadError(f"{name}: cannot read its config: {_describe(exc)}") from exc
    architecture = architecture_family(config)

    extra: dict[str, Any] = {}
    if task_kind == "classification":
        extra["num_labels"] = num_labels
    elif task_kind == "qa":
        # A start and an end logit per token, whatever the checkpoint was trained for.
        extra["num_labels"] = 2
    auto_class = getattr(transformers, _AUTO_CLASSES[task_kind])
    if type(config) not in auto_class._model_mapping and not trust_remote_code:
        hint = (
            " (use task_kind='causal_lm' to score options by log-likelihood)"
            if task_kind == "multiple_choice" and architecture == "decoder-only"
            else ""
        )
        raise ModelLoadError(
            f"{name}: model type {config.model_type!r} has no {auto_class.__name__} head{hint}"
        )

    if weights_format == "pickle (weights_only)":
        logger.warning(
            "%s: no safetensors weights; reading pytorch_model.bin with torch.load(weights_only=True)",
            name,
        )
    # transformers logs its own load report as a warning; it is kept for the
    # error message if loading fails, and otherwise replaced by our one-line
    # summary below (which also says that a random head is untrained).
    captured = _CapturedLog()
    hf_logging = transformers.utils.logging
    hf_logging.disable_default_handler()
    hf_logging.add_handler(captured)
    try:
        # Seeded so a fresh head is the same on every load (restarted runs reproduce logits).
        with one_at_a_time(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model, info = auto_class.from_pretrained(
                source,
                trust_remote_code=trust_remote_code,
                use_safetensors=True if weights_format == "safetensors" else None,
                weights_only=True,
                dtype=torch_dtype,
                output_loading_info=True,
                **extra,
            )
    except Exception as exc:
        report = captured.text()
        raise ModelLoadError(
            f"{name}: cannot load weights: {_describe(exc)}" + (f"\n{report}" if report else "")
        ) from exc
    finally:
        hf_logging.remove_handler(captured)
        hf_logging.enable_default_handler()
    for record in captured.records:
        if "LOAD REPORT" not in record.getMessage():
            logger.warning("%s: transformers: %s", name, record.getMessage())
    try:
        if tokenizer is None:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                source, trust_remote_code=trust_remote_code
            )
    except Exception as exc:
        raise ModelLoadError(f"{name}: cannot load its tokenizer: {_describe(exc)}") from exc
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        # transformers builds an empty vocabulary when the tokenizer files are
        # missing: every word would silently become <unk>.
        raise ModelLoadError(
            f"{name}: its tokenizer has no vocabulary beyond special tokens "
            "(tokenizer.json, or vocab files and tokenizer_config.json, missing?)"
        )

    unused = info.get("unexpected_keys") or ()
    if unused:
        logger.info("%s: %d checkpoint tensor(s) not used by this head", name, len(unused))
    new_parameters = tuple(sorted(info.get("missing_keys") or ()))
    if new_parameters:
        if task_kind == "retrieval" and all(k.startswith("pooler.") for k in new_parameters):
            logger.info("%s: pooler not in the checkpoint (embeddings do not use it)", name)
        else:
            logger.warning(
                "%s: %d parameter tensor(s) newly initialised with random values (seed %d), "
                "e.g. %s: this %s head is untrained, so its predictions are not meaningful "
                "until fine-tuned",
                name,
                len(new_parameters),
                seed,
                ", ".join(new_parameters[:4]),
                task_kind,
            )

    # Decoder-only tokenizers often lack a pad token; batching and the
    # last-non-padding-token classification head both need one.
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id

    model.to(resolved_device)
    model.eval()

    if local:
        info_record = bundled_info(source) if (Path(source) / MARKER_FILE).is_file() else None
        revision = info_record["model_revision"] if info_record else weights_sha256(source)
    else:
        commit = getattr(config, "_commit_hash", None)
        revision = f"hub:{commit}" if commit else None

    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=name,
        path=source,
        task_kind=task_kind,
        architecture=architecture,
        model_revision=revision,
        device=resolved_device,
        dtype=dtype_name,
        max_length=_max_length(config, tokenizer),
        num_labels=getattr(model.config, "num_labels", None)
        if task_kind == "classification"
        else None,
        weights_format=weights_format,
        new_parameters=new_parameters,
    )
