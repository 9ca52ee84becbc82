"""Where a run lives in the store: Hive-style partition directories and a file name.

A run's key fields map to ``name=value`` directories, one per field, in the
order of :data:`PARTITION_FIELDS`, and the file is ``<run_id>.parquet`` where
the run id is a hash of the whole key (including ``perturbation_params``, which
has no directory of its own). Values are percent-encoded (RFC 3986: every byte
except ``A-Z a-z 0-9 - . _ ~`` becomes ``%XX``), which is the encoding pyarrow,
Spark and DuckDB decode for Hive partitions. Since ``/``, NUL and ``%`` are always
encoded and every directory name starts with ``field=``, no key value can name a
parent directory, an absolute path or a hidden file: a run path never leaves
the store root. :func:`run_path` checks that once more on the resolved path.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from xcal.store.errors import StoreError

# Directory levels, outermost first: the fields a reader most often filters on.
PARTITION_FIELDS: tuple[str, ...] = (
    "task",
    "split",
    "model",
    "language",
    "perturbation",
    "severity",
    "perturbation_seed",
)
RUN_SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"
LOCK_DIR = "_locks"
# Keep each directory name well under the 255-byte limit of common file systems.
MAX_SEGMENT_VALUE = 160


def canonical_key(key_values: dict[str, Any]) -> dict[str, Any]:
    """Key values with the types the layout uses (float severity, int seed, JSON params)."""
    params = key_values["perturbation_params"]
    if not isinstance(params, str):
        params = json.dumps(params, sort_keys=True, ensure_ascii=False)
    return {
        "task": str(key_values["task"]),
        "split": str(key_values["split"]),
        "model": str(key_values["model"]),
        "language": str(key_values["language"]),
        "perturbation": str(key_values["perturbation"]),
        "severity": float(key_values["severity"]),
        "perturbation_seed": int(key_values["perturbation_seed"]),
        "perturbation_params": params,
    }


def run_id_for(key_values: dict[str, Any]) -> str:
    """The run id: 16 hex digits of a SHA-256 over the canonical key.

    >>> key = dict(task="xnli", split="dev", model="m", language="de", perturbation="none",
    ...            severity=0, perturbation_seed=0, perturbation_params={})
    >>> run_id_for(key) == run_id_for({**key, "severity": 0.0})
    True
    >>> len(run_id_for(key))
    16
    """
    canon = canonical_key(key_values)
    payload = json.dumps(["xcal-run-v1", canon], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def encode_value(value: Any) -> str:
    """Percent-encode one partition value so it is a single, safe path segment.

    Floats use ``repr`` (``0.0``, ``0.25``) so a float always encodes one way.
    A value whose encoding is too long for a directory name is cut and suffixed
    with ``~`` and a hash (the run's manifest keeps the full value).

    >>> encode_value("facebook/xlm-roberta-base")
    'facebook%2Fxlm-roberta-base'
    >>> encode_value("..")
    '..'
    >>> encode_value(0.5)
    '0.5'
    """
    text = repr(float(value)) if isinstance(value, float) else str(value)
    encoded = quote(text, safe="", encoding="utf-8", errors="strict")
    if len(encoded) > MAX_SEGMENT_VALUE:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        head = encoded[: MAX_SEGMENT_VALUE - 17]
        # Do not cut a %XX escape in half.
        cut = head.rfind("%")
        if cut >= len(head) - 2:
            head = head[:cut]
        encoded = f"{head}~{digest}"
    return encoded


def relative_run_path(key_values: dict[str, Any]) -> Path:
    """The run's path relative to the store root.

    >>> key = dict(task="xnli", split="dev", model="org/m", language="de", perturbation="none",
    ...            severity=0.0, perturbation_seed=0, perturbation_params={})
    >>> str(relative_run_path(key).parent)
    'task=xnli/split=dev/model=org%2Fm/language=de/perturbation=none/severity=0.0/perturbation_seed=0'
    """
    canon = canonical_key(key_values)
    parts = [f"{name}={encode_value(canon[name])}" for name in PARTITION_FIELDS]
    return Path(*parts, run_id_for(canon) + RUN_SUFFIX)


def run_path(root: Path, key_values: dict[str, Any]) -> Path:
    """The absolute path of a run under ``root``; refuses anything outside it."""
    rel = relative_run_path(key_values)
    path = root / rel
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        raise StoreError(f"run path {str(rel)!r} resolves outside the store root {str(root)!r}")
    return path


def is_hidden(name: str) -> bool:
    """Names that dataset readers (pyarrow, Spark, DuckDB globs) skip."""
    return name.startswith((".", "_"))


def temp_name(run_id: str, token: str) -> str:
    """A hidden temporary file name for a run being written."""
    return f".{run_id}.{os.getpid()}.{token}{TEMP_SUFFIX}"


def temp_run_id(name: str) -> str | None:
    """The run id a temporary file belongs to, or None if ``name`` is not one of ours."""
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return None
    run_id = name[1:].split(".", 1)[0]
    if len(run_id) == 16 and all(c in "0123456789abcdef" for c in run_id):
        return run_id
    return None
