"""Loading a classification run of 1,000,000 x 3 logits from the prediction store.

Subject: ``PredictionStore.load_classification`` on a store opened afresh for
every timing, so no footer or path cache carries over from one repeat to the
next (Arrow list array -> flat float32 values -> one reshape, plus finding the
run, reading its manifest and every read-time check). Baselines, timed in
alternation with it the same number of times:

* the one that counts, the floor: pyarrow alone, ``pq.read_table`` of the same
  columns, then the logits' ``flatten().to_numpy().reshape(n, 3)`` (no checks,
  no manifest);
* what one writes with pandas, ``pandas.read_parquet`` followed by a Python
  list -> array conversion (``np.array(df["logits"].tolist())``), for context.

All read the same file from the page cache and give the same arrays (checked
before timing). Target: the issue's "a run of one million 3-class predictions
loads in a few seconds" (<= 3 s), and within 2x of the pyarrow floor.

Run: ``python -m benchmarks store``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from benchmarks._common import Result, best_times
from xcal.store import RunManifest, open_store

N_EXAMPLES = 1_000_000
N_CLASSES = 3
TARGET_S = 3.0
FLOOR_RATIO = 2.0
COLUMNS = ["example_id", "logits", "label"]


def _pyarrow(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = pq.read_table(path, columns=COLUMNS)
    logits = table["logits"].combine_chunks()
    values = logits.flatten().to_numpy(zero_copy_only=False).reshape(len(logits), -1)
    ids = table["example_id"].to_numpy()
    return ids, values, table["label"].to_numpy().astype(np.int64, copy=False)


def _pandas(path: Path) -> np.ndarray:
    frame = pd.read_parquet(path, columns=COLUMNS)
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
        # Same numbers every way, checked before timing.
        loaded = store.load_classification(run_id)
        np.testing.assert_array_equal(loaded.logits, logits)
        ids, values, labels = _pyarrow(path)
        np.testing.assert_array_equal(values, logits)
        np.testing.assert_array_equal(ids, loaded.example_ids)
        np.testing.assert_array_equal(labels, loaded.labels)
        np.testing.assert_array_equal(_pandas(path), logits)
        del store, loaded, ids, values, labels
        subject_s, floor_s, pandas_s = best_times(
            [
                lambda: open_store(root).load_classification(run_id),
                lambda: _pyarrow(path),
                lambda: _pandas(path),
            ],
            repeat=5,
        )
    bench = f"load a classification run, {N_EXAMPLES:,} x {N_CLASSES} logits"
    subject = "PredictionStore.load_classification (fresh store each time)"
    return [
        Result(
            benchmark=bench,
            subject=subject,
            subject_s=subject_s,
            baseline="floor: pyarrow read_table + flatten().to_numpy().reshape",
            baseline_s=floor_s,
            target=f"<= {TARGET_S:g} s and within {FLOOR_RATIO:g}x of the floor",
            passed=subject_s <= TARGET_S and subject_s <= FLOOR_RATIO * floor_s,
        ),
        Result(
            benchmark=bench,
            subject=subject,
            subject_s=subject_s,
            baseline="pandas.read_parquet + np.array(logits.tolist())",
            baseline_s=pandas_s,
            target=f"<= {TARGET_S:g} s and faster",
            passed=subject_s <= TARGET_S and subject_s < pandas_s,
        ),
    ]


if __name__ == "__main__":
    for result in run():
        print(
            f"{result.benchmark}: {result.subject} {result.subject_s:.3f}s vs "
            f"{result.baseline} {result.baseline_s:.3f}s -> {result.speedup:.1f}x"
        )
