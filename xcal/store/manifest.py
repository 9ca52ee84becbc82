"""What a run is: the manifest that identifies and describes one stored run.

A run is one model x task x split x language x perturbation (with its
parameters, severity and seed). Its *key* fields decide where it lives in the
store; its *input fingerprint* decides whether a stored run can be reused.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

SCHEMA_VERSION = 1

RecordKind = Literal["classification", "multiple_choice", "qa", "retrieval", "mining"]
RECORD_KINDS: tuple[str, ...] = ("classification", "multiple_choice", "qa", "retrieval", "mining")

Architecture = Literal["encoder-only", "decoder-only", "encoder-decoder"]
ARCHITECTURES: tuple[str, ...] = ("encoder-only", "decoder-only", "encoder-decoder")

# The fields that identify a run; two runs with equal keys are the same cell.
KEY_FIELDS: tuple[str, ...] = (
    "task",
    "split",
    "model",
    "language",
    "perturbation",
    "severity",
    "perturbation_seed",
    "perturbation_params",
)


@dataclass(frozen=True)
class RunManifest:
    """Everything recorded about one run.

    Fields set by the caller describe the model and the inputs; ``store``
    fills ``xcal_version``, ``created_at`` and ``schema_version`` when a run is
    written if they are left empty.
    """

    # What was run.
    model: str
    task: str
    split: str
    language: str  # ISO 639 code as the task's data names it (e.g. "de", "deu")
    record_kind: RecordKind
    input_fingerprint: str  # hash of the (perturbed) input examples, see fingerprint()
    n_examples: int
    n_classes: int | None = None  # classification and multiple choice only
    model_revision: str | None = None  # hub revision or a hash of the weights
    architecture: Architecture = "encoder-only"
    intermediate_tasks: tuple[str, ...] = ()  # empty for a baseline
    train_seed: int | None = None
    perturbation: str = "none"
    perturbation_params: dict[str, Any] = field(default_factory=dict)
    severity: float = 0.0
    perturbation_seed: int = 0
    n_truncated: int = 0
    # How it was run.
    device: str = ""
    dtype: str = ""
    wall_time_s: float = 0.0
    # Filled in by the store.
    xcal_version: str = ""
    created_at: str = ""
    schema_version: int = SCHEMA_VERSION

    # Read back with the typed schema (xcal.settings): strict types, no unknown keys.
    __pydantic_config__: ClassVar[dict[str, Any]] = {"strict": True, "extra": "forbid"}

    def key(self) -> tuple[Any, ...]:
        """The identity of the cell this run fills (hashable, order-stable)."""
        values = []
        for name in KEY_FIELDS:
            value = getattr(self, name)
            if isinstance(value, dict):
                value = json.dumps(value, sort_keys=True)
            values.append(value)
        return tuple(values)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["intermediate_tasks"] = list(self.intermediate_tasks)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "manifest") -> RunManifest:
        """A manifest from a dict, every field checked for its type (strict: no coercion).

        Raises
        ------
        ManifestError
            Naming ``where``, each bad field and its expected type; a string
            for ``intermediate_tasks`` is an error, not a tuple of characters.
        """
        # Through JSON, as the store reads it back: one set of rules for both.
        try:
            text = json.dumps(dict(data), allow_nan=False, default=_json_scalar)
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{where}: not a JSON-serialisable manifest: {exc}") from None
        return _validate_manifest(text, where)

    @classmethod
    def from_json(cls, raw: bytes | str, where: str = "manifest") -> RunManifest:
        """A manifest from its JSON text (as stored in a run file's footer), strictly typed."""
        return _validate_manifest(raw, where)


class ManifestError(ValueError):
    """A manifest field has the wrong type or an unknown name (the message names both)."""


@functools.cache
def _manifest_adapter() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(RunManifest)


def _json_scalar(value: Any) -> Any:
    """numpy scalars as Python numbers (anything else is not part of a manifest)."""
    import numpy as np

    if isinstance(value, np.integer | np.floating | np.bool_):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a manifest value")


def _validate_manifest(raw: bytes | str, where: str) -> RunManifest:
    from pydantic import ValidationError

    from xcal.settings import format_errors

    try:
        manifest = _manifest_adapter().validate_json(raw)
    except ValidationError as exc:
        text = format_errors(exc, where).replace(": key '", ": field '")
        text = text.replace("unknown key '", "unknown field '")
        raise ManifestError(text) from None
    assert isinstance(manifest, RunManifest)
    return manifest


def fingerprint(*parts: Any) -> str:
    """A stable SHA-256 hex digest of JSON-serialisable parts.

    Used for the input fingerprint of a run: pass the task's example ids and
    texts (after perturbation) and anything else that changes the inputs.

    >>> fingerprint(["a", "b"], 1) == fingerprint(["a", "b"], 1)
    True
    >>> fingerprint(["a", "b"]) == fingerprint(["b", "a"])
    False
    """
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\x00")
    return digest.hexdigest()
