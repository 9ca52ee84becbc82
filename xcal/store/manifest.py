"""What a run is: the manifest that identifies and describes one stored run.

A run is one model x task x split x language x perturbation (with its
parameters, severity and seed). Its *key* fields decide where it lives in the
store; its *input fingerprint* decides whether a stored run can be reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

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
    def from_dict(cls, data: dict[str, Any]) -> RunManifest:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown manifest field(s): {', '.join(unknown)}")
        data = dict(data)
        data["intermediate_tasks"] = tuple(data.get("intermediate_tasks") or ())
        return cls(**data)


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
