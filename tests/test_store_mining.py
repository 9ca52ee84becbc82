"""Mining runs in the store: queries without a gold partner are valid, the rest is checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcal.store import RunManifest, StoreValidationError, check_input_records, open_store


def _manifest(kind: str = "mining", n: int = 3) -> RunManifest:
    return RunManifest(
        model="m",
        task="bucc2018",
        split="dev",
        language="zh",
        record_kind=kind,  # type: ignore[arg-type]
        input_fingerprint="f",
        n_examples=n,
    )


def _records(**changes: Any) -> dict[str, Any]:
    records: dict[str, Any] = {
        "example_id": ["zh-1", "zh-2", "zh-3"],
        "candidate_ids": [["en-1", "en-2"], ["en-2", "en-3"], ["en-3", "en-1"]],
        "scores": np.array([[0.9, 0.5], [0.7, 0.6], [0.4, 0.4]]),
        "gold_ids": [["en-1"], [], []],
        "query_knn_mean": np.array([0.7, 0.65, 0.4]),
        "candidate_knn_mean": np.array([[0.8, 0.6], [0.6, 0.5], [0.5, 0.8]]),
    }
    records.update(changes)
    return records


def test_mining_run_without_partners_round_trips(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    run_id = store.write_run(_manifest(), _records())
    assert store.validate() == []
    back = store.load_records(run_id)
    assert back["gold_ids"] == [["en-1"], [], []]
    np.testing.assert_array_equal(back["query_knn_mean"], [0.7, 0.65, 0.4])
    np.testing.assert_array_equal(back["candidate_knn_mean"], _records()["candidate_knn_mean"])
    assert back["candidate_ids"] == _records()["candidate_ids"]
    # The same file, read as one table with every other kind's columns null.
    import pandas as pd

    frame = pd.read_parquet(tmp_path)
    assert frame["query_knn_mean"].tolist() == [0.7, 0.65, 0.4]


def test_retrieval_still_needs_a_gold_id(tmp_path: Path) -> None:
    records = _records()
    del records["query_knn_mean"], records["candidate_knn_mean"]
    with pytest.raises(StoreValidationError, match=r"'gold_ids', row 1: no gold id \(and 1 more"):
        open_store(tmp_path).write_run(_manifest("retrieval"), records)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gold_ids": [["en-1"], None, []]}, r"'gold_ids', row 1: missing gold ids \(null\)"),
        (
            {"query_knn_mean": np.array([0.7, np.nan, 0.4])},
            r"'query_knn_mean', row 1: NaN or infinite value nan",
        ),
        (
            {"candidate_knn_mean": np.array([[0.8], [0.6], [0.5]])},
            r"'candidate_knn_mean': 1 values per row but 2 candidate ids",
        ),
        (
            {"candidate_knn_mean": np.array([[0.8, 0.6], [0.6, np.inf], [0.5, 0.8]])},
            r"'candidate_knn_mean', row 1: NaN or infinite",
        ),
        ({"scores": np.array([[0.9, 0.5], [0.6, 0.7], [0.4, 0.4]])}, r"'scores', row 1: .*sorted"),
        ({"query_knn_mean": np.array([0.7, 0.65])}, r"'query_knn_mean': has 2 rows"),
    ],
)
def test_bad_mining_runs_are_refused(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(StoreValidationError, match=message):
        open_store(tmp_path).write_run(_manifest(), _records(**changes))
    assert open_store(tmp_path).runs().empty


def test_input_records_are_checked_like_a_write() -> None:
    ids = {"example_id": ["zh-1", "zh-2", "zh-2"], "gold_ids": [["en-1"], [], []]}
    mining = [str(p) for p in check_input_records(_manifest(), ids, "cell")]
    assert mining == [
        "cell, field 'example_id', row 2: duplicate example_id 'zh-2' (rows 1 and 2; 1 duplicated id(s) in all)"
    ]
    retrieval = [str(p) for p in check_input_records(_manifest("retrieval"), ids, "cell")]
    assert any("'gold_ids', row 1: no gold id" in p for p in retrieval)
    ok = {"example_id": ["zh-1", "zh-2", "zh-3"], "gold_ids": [["en-1"], [], []]}
    assert check_input_records(_manifest(), ok, "cell") == []


def test_store_diff_compares_mining_runs(tmp_path: Path) -> None:
    """Gold lists of different lengths (most empty) do not make an array; diff still works."""
    from xcal.store.diff import diff_stores

    a, b = open_store(tmp_path / "a"), open_store(tmp_path / "b")
    a.write_run(_manifest(), _records())
    run_id = b.write_run(_manifest(), _records(gold_ids=[["en-1"], [], ["en-2"]]))
    assert diff_stores(a, a).identical == [run_id]
    assert diff_stores(a, b).different == {run_id: ["gold_ids"]}
