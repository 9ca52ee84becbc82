"""Compare the predictions of two stores run by run: is a rerun bit-identical?

Runs are matched by run id, which names the model label and the cell (task,
split, language, perturbation), not where the model was loaded from, so the
same experiment run in two folders pairs up. Records are compared exactly
(floats bit for bit, NaN equal to NaN); input fingerprints are reported but
not required to match, since they include the checkpoint's path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xcal.store.store import PredictionStore


@dataclass
class StoreDiff:
    """What differs between store ``a`` and store ``b``."""

    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    # run id -> the record columns whose values differ
    different: dict[str, list[str]] = field(default_factory=dict)
    identical: list[str] = field(default_factory=list)
    other_fingerprint: list[str] = field(default_factory=list)  # identical records, though

    @property
    def same_predictions(self) -> bool:
        return not (self.only_in_a or self.only_in_b or self.different)


def diff_stores(a: PredictionStore, b: PredictionStore) -> StoreDiff:
    """Compare every run of ``a`` with the run of the same id in ``b``."""
    runs_a = {r.run_id: r.manifest for r in a.iter_runs()} if a.root.is_dir() else {}
    runs_b = {r.run_id: r.manifest for r in b.iter_runs()} if b.root.is_dir() else {}
    result = StoreDiff(
        only_in_a=sorted(runs_a.keys() - runs_b.keys()),
        only_in_b=sorted(runs_b.keys() - runs_a.keys()),
    )
    for run_id in sorted(runs_a.keys() & runs_b.keys()):
        left, right = a.load_records(run_id), b.load_records(run_id)
        columns = sorted(set(left) | set(right))
        changed = [c for c in columns if not _same(left.get(c), right.get(c))]
        if changed:
            result.different[run_id] = changed
            continue
        result.identical.append(run_id)
        if runs_a[run_id].input_fingerprint != runs_b[run_id].input_fingerprint:
            result.other_fingerprint.append(run_id)
    return result


def _same(x: Any, y: Any) -> bool:
    if x is None or y is None:
        return x is None and y is None
    try:
        ax, ay = np.asarray(x), np.asarray(y)
    except ValueError:  # ragged lists, e.g. mining gold ids (most empty)
        return bool(_plain(x) == _plain(y))
    if ax.dtype.kind == "f" and ay.dtype.kind == "f":
        # bit for bit: -0.0 vs 0.0 or another NaN payload counts as a difference
        return ax.shape == ay.shape and ax.dtype == ay.dtype and ax.tobytes() == ay.tobytes()
    if ax.dtype != object and ay.dtype != object:
        return ax.shape == ay.shape and bool(np.array_equal(ax, ay))
    return bool(_plain(x) == _plain(y))


def _plain(value: Any) -> Any:
    """Nested lists of Python values, so that records of dicts and arrays compare with ==."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.dtype == object else value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
