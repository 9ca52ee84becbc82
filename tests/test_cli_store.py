"""`xcal store ls` and `xcal store validate`, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _builders import run_manifest
from typer.testing import CliRunner

from xcal.cli import app
from xcal.store import open_store

runner = CliRunner()


manifest = partial(run_manifest, model="org/xlmr")


RECORDS = {"example_id": ["a", "b", "c"], "logits": np.eye(3), "label": [0, 1, 2]}


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    store = open_store(tmp_path / "store")
    store.write_run(manifest(), RECORDS)
    store.write_run(manifest(language="sw", perturbation="typos", severity=0.25), RECORDS)
    pawsx = {**RECORDS, "logits": np.ones((3, 2)), "label": [0, 1, 1]}
    store.write_run(manifest(task="pawsx", language="fr"), pawsx)
    return tmp_path / "store"


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_ls_prints_a_table_of_runs(store_dir: Path) -> None:
    result = invoke("store", "ls", str(store_dir))
    assert result.exit_code == 0, result.output
    assert "3 run(s)" in result.output
    for header in ("task", "model", "lang", "perturbation", "severity", "n", "created_at"):
        assert header in result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert ["xnli", "dev", "org/xlmr", "sw", "typos", "0.25", "3"] in [line[:7] for line in lines]
    assert ["pawsx", "dev", "org/xlmr", "fr", "none", "0", "3"] in [line[:7] for line in lines]


def test_ls_filters(store_dir: Path) -> None:
    result = invoke("store", "ls", str(store_dir), "--task", "pawsx")
    assert result.exit_code == 0 and "1 run(s)" in result.output
    assert "xnli" not in result.output


def test_ls_filters_take_comma_lists_and_iso_codes(store_dir: Path) -> None:
    # The first manifest's language is the builder's default; sw and fr are set above.
    result = invoke("store", "ls", str(store_dir), "-l", "swa,fra", "-t", "xnli,pawsx")
    assert result.exit_code == 0, result.output
    assert "2 run(s)" in result.output
    old = invoke("store", "ls", str(store_dir), "--language", "sw")  # the hidden old spelling
    assert old.exit_code == 0 and "1 run(s)" in old.output


def test_ls_filter_matching_nothing_is_an_error(store_dir: Path) -> None:
    result = invoke("store", "ls", str(store_dir), "--task", "xnl")
    assert result.exit_code == 1
    assert "unknown task 'xnl' (did you mean 'xnli'?)" in result.output
    assert "; known: pawsx, xnli" in result.output
    model = invoke("store", "ls", str(store_dir), "-m", "org/xlm")
    assert model.exit_code == 1 and "did you mean 'org/xlmr'" in model.output
    # Each value exists, but no run has both.
    both = invoke("store", "ls", str(store_dir), "--task", "pawsx", "--lang", "sw")
    assert both.exit_code == 1 and "no run" in both.output


def test_ls_missing_store(tmp_path: Path) -> None:
    result = invoke("store", "ls", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_ls_empty_store(tmp_path: Path) -> None:
    result = invoke("store", "ls", str(tmp_path))
    assert result.exit_code == 0 and "0 run(s)" in result.output


def test_validate_clean_store(store_dir: Path) -> None:
    result = invoke("store", "validate", str(store_dir))
    assert result.exit_code == 0, result.output
    assert "3 run file(s) checked, 0 error(s), 0 warning(s)" in result.output


def test_validate_lists_every_problem_and_fails(store_dir: Path) -> None:
    runs = open_store(store_dir).runs()
    broken = Path(runs["path"][0])
    broken.write_bytes(broken.read_bytes()[:100])  # truncated
    (store_dir / "stray.csv").write_text("a,b\n")
    result = invoke("store", "validate", str(store_dir))
    assert result.exit_code == 1
    assert f"error: {broken}" in result.output and "unreadable Parquet file" in result.output
    assert "stray.csv" in result.output and "not a run file" in result.output
    assert "2 error(s)" in result.output


def test_validate_n_classes_option(store_dir: Path) -> None:
    result = invoke("store", "validate", str(store_dir), "--n-classes", "pawsx=3")
    assert result.exit_code == 1
    assert "task 'pawsx' has 3 classes" in result.output and "1 error(s)" in result.output
    assert invoke("store", "validate", str(store_dir), "--n-classes", "xnli=3").exit_code == 0
    bad = invoke("store", "validate", str(store_dir), "--n-classes", "xnli")
    assert bad.exit_code == 2 and "TASK=C" in bad.output


def test_validate_fix_removes_stale_temp_files(store_dir: Path) -> None:
    run_dir = Path(open_store(store_dir).runs()["path"][0]).parent
    run_id = Path(open_store(store_dir).runs()["path"][0]).stem
    stale = run_dir / f".{run_id}.12345.deadbeef.tmp"
    stale.write_bytes(b"PAR1 half a file")
    result = invoke("store", "validate", str(store_dir))
    assert result.exit_code == 0  # a warning, not an error
    assert "warning:" in result.output and stale.exists()
    result = invoke("store", "validate", str(store_dir), "--fix")
    assert result.exit_code == 0 and "removed stale temporary file" in result.output
    assert not stale.exists()


def test_validate_missing_store(tmp_path: Path) -> None:
    result = invoke("store", "validate", str(tmp_path / "nope"))
    assert result.exit_code == 1 and "does not exist" in result.output


def test_real_entry_point(store_dir: Path) -> None:
    xcal = Path(sys.executable).parent / "xcal"
    done = subprocess.run(
        [str(xcal), "store", "validate", str(store_dir)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "0 error(s)" in done.stdout


def test_validate_checks_the_registered_task_label_space(store_dir: Path) -> None:
    # XNLI has 3 labels: a 2-class XNLI run is valid on its own but not as XNLI.
    store = open_store(store_dir)
    two = {**RECORDS, "logits": np.ones((3, 2)), "label": [0, 1, 1]}
    store.write_run(manifest(language="fr"), two)
    result = invoke("store", "validate", str(store_dir))
    assert result.exit_code == 1
    assert "language=fr" in result.output and "task 'xnli' has 3 classes" in result.output
    assert "1 error(s)" in result.output


def test_ls_warns_about_unreadable_files(store_dir: Path) -> None:
    broken = Path(open_store(store_dir).runs(language="sw")["path"][0])
    broken.write_bytes(b"garbage")
    result = invoke("store", "ls", str(store_dir))
    assert result.exit_code == 0
    assert "2 run(s)" in result.output
    assert "1 file(s) could not be read" in result.output and "xcal store validate" in result.output
