"""The analysis cache: cell results and fitted temperatures on disk, keyed by content.

Keys are digests of the runs' identities (id, input fingerprint, write time),
the options and :data:`~xcal.analyze.options.ANALYSIS_VERSION`; only the
process that plans and aggregates reads and writes it, so workers of a
cluster need no access to the report folder.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xcal.analyze.options import ANALYSIS_VERSION, AnalysisOptions, Run
from xcal.atomic import atomic_write_bytes, atomic_write_text


class _Cache:
    """Cell results on disk, one Parquet file per cell key (written atomically).

    Also fitted temperatures, and the findings' units as JSON beside their arrays.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _path(self, key: str, part: str) -> Path:
        assert self.root is not None
        return self.root / "cells" / key[:2] / f"{key}.{part}.parquet"

    def get(self, key: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]] | None:
        if self.root is None:
            return None
        rows_path, bins_path = self._path(key, "rows"), self._path(key, "bins")
        notes_path = rows_path.with_name(f"{key}.notes.json")
        if not (rows_path.exists() and bins_path.exists() and notes_path.exists()):
            return None
        try:
            notes = [str(n) for n in json.loads(notes_path.read_text())]
            return pd.read_parquet(rows_path), pd.read_parquet(bins_path), notes
        except Exception:  # a damaged entry is recomputed, never trusted
            return None

    def put(self, key: str, rows: pd.DataFrame, bins: pd.DataFrame, notes: list[str]) -> None:
        if self.root is None:
            return
        for part, frame in (("bins", bins), ("rows", rows)):
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            atomic_write_bytes(self._path(key, part), buffer.getvalue())
        # written last: an entry counts only when its notes file exists
        atomic_write_text(self._path(key, "rows").with_name(f"{key}.notes.json"), json.dumps(notes))

    def _entry_path(self, kind: str, key: str) -> Path:
        assert self.root is not None
        return self.root / kind / key[:2] / f"{key}.json"

    def get_entry(self, kind: str, key: str) -> tuple[Any, dict[str, np.ndarray]] | None:
        """A JSON document and named arrays stored by :meth:`put_entry`, or None."""
        if self.root is None:
            return None
        meta_path = self._entry_path(kind, key)
        arrays_path = meta_path.with_suffix(".npz")
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            with np.load(arrays_path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            return meta, arrays
        except Exception:  # a damaged entry is recomputed, never trusted
            return None

    def put_entry(self, kind: str, key: str, meta: Any, arrays: dict[str, np.ndarray]) -> None:
        if self.root is None:
            return
        meta_path = self._entry_path(kind, key)
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        atomic_write_bytes(meta_path.with_suffix(".npz"), buffer.getvalue())
        # written last: an entry counts only when its JSON file exists
        atomic_write_text(meta_path, json.dumps(meta, default=_json_scalar))

    def get_temperature(self, key: str) -> float | None:
        if self.root is None:
            return None
        path = self.root / "temperatures" / f"{key}.json"
        try:
            return float(json.loads(path.read_text())["temperature"])
        except (OSError, ValueError, KeyError):
            return None

    def put_temperature(self, key: str, value: float) -> None:
        if self.root is None:
            return
        atomic_write_text(
            self.root / "temperatures" / f"{key}.json", json.dumps({"temperature": value})
        )


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the analysis cache")


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _run_signature(run: Run) -> list[Any]:
    # What identifies the content of a stored run: its key (run_id), its inputs
    # and when it was written (a rewrite of the same key changes created_at).
    return [
        str(run["run_id"]),
        str(run["input_fingerprint"]),
        str(run.get("created_at", "")),
        str(run.get("model_revision", "")),
        int(run["n_examples"]),
    ]


def _temperature_key(run: Run, options: AnalysisOptions) -> str:
    return _digest(
        [
            ANALYSIS_VERSION,
            _run_signature(run),
            options.fit_fraction,
            options.retrieval_temperature,
            options.qa_criterion,
        ]
    )
