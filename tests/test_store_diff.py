"""`xcal store diff`: two stores compared run by run, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _builders import run_manifest
from typer.testing import CliRunner

from xcal.cli import app
from xcal.store import open_store
from xcal.store.diff import diff_stores

RECORDS = {"example_id": ["a", "b", "c"], "logits": np.eye(3), "label": [0, 1, 2]}
RETRIEVAL = {
    "example_id": ["q0", "q1"],
    "candidate_ids": [["c0", "c1"], ["c1", "c0"]],
    "scores": [[0.9, 0.1], [0.8, 0.2]],
    "gold_ids": [["c0"], ["c1"]],
}


def _store(path: Path, logits: np.ndarray = RECORDS["logits"], fingerprint: str = "fp") -> Path:
    store = open_store(path)
    store.write_run(
        run_manifest(model="sys", input_fingerprint=fingerprint), {**RECORDS, "logits": logits}
    )
    store.write_run(
        run_manifest(
            model="enc", task="tatoeba", split="test", record_kind="retrieval", n_examples=2
        ),
        RETRIEVAL,
    )
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_identical_stores_in_other_folders_pass(tmp_path: Path) -> None:
    a = _store(tmp_path / "a", fingerprint="path-a")
    b = _store(tmp_path / "b", fingerprint="path-b")
    result = diff_stores(open_store(a), open_store(b))
    assert result.same_predictions and len(result.identical) == 2
    assert len(result.other_fingerprint) == 1  # reported, not a failure
    out = invoke("store", "diff", str(a), str(b))
    assert out.exit_code == 0, out.output
    assert "2 run(s) identical, 0 different" in out.output


# one float32 ulp above 1.0 on the diagonal (the store keeps float32); -0.0 where eye has 0.0 (equal as numbers, not as bits)
@pytest.mark.parametrize(
    ("row", "col", "value"),
    [(1, 1, float(np.nextafter(np.float32(1), np.float32(2)))), (1, 0, -0.0)],
)
def test_one_float_changed_in_its_bits_is_a_difference(
    tmp_path: Path, row: int, col: int, value: float
) -> None:
    logits = np.eye(3)
    logits[row, col] = value
    a, b = _store(tmp_path / "a"), _store(tmp_path / "b", logits=logits)
    result = diff_stores(open_store(a), open_store(b))
    assert not result.same_predictions
    assert list(result.different.values()) == [["logits"]]
    out = invoke("store", "diff", str(a), str(b))
    assert out.exit_code == 1
    assert "different:" in out.output and "logits" in out.output and "model=sys" in out.output


def test_missing_runs_are_named_on_either_side(tmp_path: Path) -> None:
    a = _store(tmp_path / "a")
    b = tmp_path / "b"
    open_store(b).write_run(run_manifest(model="sys", input_fingerprint="fp"), RECORDS)
    open_store(b).write_run(run_manifest(model="sys", language="sw"), RECORDS)
    result = diff_stores(open_store(a), open_store(b))
    assert len(result.only_in_a) == 1 and len(result.only_in_b) == 1
    out = invoke("store", "diff", str(a), str(b))
    assert out.exit_code == 1
    assert "only in" in out.output and "tatoeba/test" in out.output and "language=sw" in out.output


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    a = _store(tmp_path / "a")
    out = invoke("store", "diff", str(a), str(tmp_path / "nope"))
    assert out.exit_code == 1 and "does not exist" in out.output


def test_a_truncated_run_file_is_a_one_line_error(tmp_path: Path) -> None:
    a, b = _store(tmp_path / "a"), _store(tmp_path / "b")
    run_file = next(b.rglob("*.parquet"))
    run_file.write_bytes(run_file.read_bytes()[:100])
    result = CliRunner().invoke(app, ["store", "diff", str(a), str(b)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    assert "error:" in text and run_file.name in text
