"""Loading a classification run of 1,000,000 x 3 logits from the prediction store.

Subject: ``PredictionStore.load_classification`` (Arrow list array -> flat
float32 values -> one reshape, plus every read-time check). Baseline: what one
writes without the store's loader, ``pandas.read_parquet`` of the same file
followed by a Python list -> array conversion of the logits column
(``np.array(df["logits"].tolist())``). Both read the same file from the page
cache (one untimed warm-up read first). Target: the issue's "a run of one
million 3-class predictions loads in a few seconds" (<= 3 s), and faster than
the baseline.

Run: ``python -m benchmarks store``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import Result, best_time
from xcal.store import RunManifest, open_store

N_EXAMPLES = 1_000_000
N_CLASSES = 3
TARGET_S = 3.0


def _baseline(path: Path) -> np.ndarray:
    frame = pd.read_parquet(path, columns=["example_id", "logits", "label"])
    logits = np.array(frame["logits"].tolist(), dtype=np.float32)
    frame["label"].to_numpy(dtype=np.int64)
    return logits


def run() -> list[Result]:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(N_EXAMPLES, N_CLASSES)).astype(np.float32)
    records = {
        "example_id": [f"xnli-dev-{i:07d}" for i in range(N_EXAMPLES)],
        "logits": logits,
        "label": rng.integers(0, N_CLASSES, size=N_EXAMPLES),
    }
    manifest = RunManifest(
        model="bench",
        task="xnli",
        split="dev",
        language="de",
        record_kind="classification",
        input_fingerprint="bench",
        n_examples=N_EXAMPLES,
    )
    with tempfile.TemporaryDirectory() as root:
        store = open_store(root)
        run_id = store.write_run(manifest, records)
        path = Path(store.runs()["path"][0])
        # Same numbers both ways, checked before timing.
        np.testing.assert_array_equal(store.load_classification(run_id).logits, logits)
        np.testing.assert_array_equal(_baseline(path), logits)
        subject_s = best_time(lambda: store.load_classification(run_id), repeat=3)
        baseline_s = best_time(lambda: _baseline(path), repeat=3)
    return [
        Result(
            benchmark=f"load a classification run, {N_EXAMPLES:,} x {N_CLASSES} logits",
            subject="PredictionStore.load_classification",
            subject_s=subject_s,
            baseline="pandas.read_parquet + np.array(logits.tolist())",
            baseline_s=baseline_s,
            target=f"<= {TARGET_S:g} s and faster than the baseline",
            passed=subject_s <= TARGET_S and subject_s < baseline_s,
        )
    ]


if __name__ == "__main__":
    for result in run():
        print(
            f"{result.benchmark}: {result.subject} {result.subject_s:.3f}s vs "
            f"{result.baseline} {result.baseline_s:.3f}s -> {result.speedup:.1f}x"
        )
