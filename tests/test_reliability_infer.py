"""``xcal infer`` under faults, in process: disk errors mid-grid and a job racing another.

The store's own guarantees (atomic writes, locks, corrupt files) are tested in
``tests/test_store_reliability.py``; here the runner and the CLI on top of it
are checked end to end on tiny models and the real XTREME sample: a write that
fails part-way through a grid is reported (the cell ``failed``, the CLI exits 1
with the reason), is never recorded as done, leaves the cells written before it
intact and no temporary file, and the next run completes the grid. The
subprocess tests (kill -9, concurrent jobs, a real file-size limit) are in
``tests/test_reliability_cli.py``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

import xcal.store.store as store_module
from xcal.infer import Grid, ModelSpec, PerturbationSpec, RunOptions, TaskSpec, run_grid
from xcal.store import PredictionStore, open_store

# Each test runs a grid through tiny models (torch): tens of seconds together.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*placeholders:UserWarning")]

LANGUAGES = ("de", "fr", "sw")
LIMIT = 6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    from xcal.models.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("tiny-reliability")
    return str(make_tiny_model(root / "bert-cls", "bert", head="classification", num_labels=3))


def grid_of(model: str) -> Grid:
    return Grid(
        (ModelSpec(model),),
        (TaskSpec("xnli", LANGUAGES),),
        (PerturbationSpec(), PerturbationSpec("word_shuffle", 0.5)),
    )


def run(model: str, store: Path | PredictionStore, data: Path) -> list[Any]:
    return run_grid(
        grid_of(model), store, data_dir=data, options=RunOptions(limit=LIMIT, batch_tokens=2048)
    )


@pytest.fixture(scope="module")
def reference(tiny: str, xtreme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid run once, uninterrupted, into its own store."""
    root = tmp_path_factory.mktemp("reference") / "store"
    results = run(tiny, root, xtreme_dir)
    assert [r.status for r in results] == ["written"] * len(LANGUAGES) * 2
    return root


def logits_by_key(root: Path) -> dict[tuple[Any, ...], np.ndarray]:
    store = open_store(root)
    out = {}
    for row in store.runs().itertuples():
        key = (row.model, row.language, row.perturbation, row.severity, row.input_fingerprint)
        out[key] = store.load_classification(str(row.run_id)).logits
    return out


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


def writer_failing_from(call: int, exc: OSError) -> tuple[Callable[..., None], list[int]]:
    """A table writer that writes normally ``call - 1`` times, then half a file and fails."""
    real = store_module._write_table
    calls: list[int] = []

    def write(table: Any, sink: BinaryIO) -> None:
        calls.append(1)
        if len(calls) < call:
            real(table, sink)
            return
        sink.write(b"PAR1" + b"\x00" * 4096)
        sink.flush()
        raise exc

    return write, calls


# --------------------------------------------------------------------------- disk errors


@pytest.mark.parametrize(
    "exc",
    [OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EIO, "Input/output error")],
    ids=["ENOSPC", "EIO"],
)
def test_disk_error_mid_grid_fails_the_cell_and_keeps_earlier_runs(
    monkeypatch: pytest.MonkeyPatch,
    tiny: str,
    xtreme_dir: Path,
    reference: Path,
    tmp_path: Path,
    exc: OSError,
) -> None:
    root = tmp_path / "store"
    # The disk fills on the third write and stays full.
    failing, calls = writer_failing_from(3, exc)
    monkeypatch.setattr(store_module, "_write_table", failing)
    results = run(tiny, root, xtreme_dir)
    statuses = [r.status for r in results]
    assert statuses == ["written", "written"] + ["failed"] * (len(results) - 2)
    assert len(calls) == len(results)  # every later cell was tried, and failed the same way
    for r in results[2:]:
        assert r.run_id is None
        assert exc.strerror in (r.error or "") and "nothing was stored" in (r.error or "")

    store = open_store(root)
    # Only the two cells written before the disk filled are recorded as done ...
    assert sorted(store.runs()["run_id"]) == sorted(r.run_id for r in results[:2])
    assert temp_files(root) == []
    assert store.validate() == []
    # ... a plain dataset reader sees exactly their rows ...
    assert ds.dataset(root, format="parquet", partitioning="hive").count_rows() == 2 * LIMIT
    # ... and their numbers are the uninterrupted run's.
    want = logits_by_key(reference)
    got = logits_by_key(root)
    for key, logits in got.items():
        np.testing.assert_array_equal(logits, want[key])

    # Space freed: the same command completes the grid, skipping what was written.
    monkeypatch.undo()
    again = run(tiny, root, xtreme_dir)
    assert [r.status for r in again] == ["skipped", "skipped"] + ["written"] * (len(again) - 2)
    assert [r.run_id for r in again[:2]] == [r.run_id for r in results[:2]]
    got = logits_by_key(root)
    assert got.keys() == want.keys()
    for key, logits in got.items():
        np.testing.assert_array_equal(logits, want[key])
    assert open_store(root).validate() == []


def test_failing_rename_is_a_disk_error_too(
    monkeypatch: pytest.MonkeyPatch, tiny: str, xtreme_dir: Path, tmp_path: Path
) -> None:
    # The last step of a write (the rename into place) fails, e.g. on a full
    # directory block or a quota: still nothing recorded, no temporary file.
    real_replace = store_module.os.replace
    calls: list[int] = []

    def replace(src: Any, dst: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        real_replace(src, dst)

    monkeypatch.setattr(store_module.os, "replace", replace)
    root = tmp_path / "store"
    results = run(tiny, root, xtreme_dir)
    assert [r.status for r in results].count("failed") == 1
    assert results[1].status == "failed" and "Disk quota exceeded" in (results[1].error or "")
    store = open_store(root)
    assert len(store.runs()) == len(results) - 1
    assert results[1].run_id is None and temp_files(root) == []
    assert store.validate() == []


def test_cli_exits_non_zero_with_the_reason_on_a_full_disk(
    monkeypatch: pytest.MonkeyPatch, tiny: str, xtreme_dir: Path, tmp_path: Path
) -> None:
    from xcal.cli import app

    root = tmp_path / "store"
    failing, _ = writer_failing_from(2, OSError(errno.ENOSPC, "No space left on device"))
    monkeypatch.setattr(store_module, "_write_table", failing)
    args = [
        "infer",
        "--model",
        tiny,
        "--task",
        "xnli",
        "--languages",
        ",".join(LANGUAGES),
        "--limit",
        str(LIMIT),
        "--store",
        str(root),
        "--data-dir",
        str(xtreme_dir),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    # Rich wraps long lines at the terminal width: compare with whitespace collapsed.
    output = " ".join(result.output.split())
    assert "1 written, 0 already stored, 2 failed (3 cells)" in output
    assert "failed:" in output and "No space left on device" in output
    assert "nothing was stored" in output
    assert len(open_store(root).runs()) == 1 and temp_files(root) == []

    monkeypatch.undo()
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "2 written, 1 already stored, 0 failed (3 cells)" in " ".join(result.output.split())


# --------------------------------------------------------------------------- racing jobs


def test_cell_stored_by_another_job_meanwhile_is_not_a_conflict(
    monkeypatch: pytest.MonkeyPatch,
    tiny: str,
    xtreme_dir: Path,
    reference: Path,
    tmp_path: Path,
) -> None:
    # Job B asks has_run just before job A renames the same cell into place:
    # B then finds a file at the cell's path. It holds the same inputs, so B
    # must treat the cell as done (or rewrite it as a no-op), never as a
    # conflict with "another input fingerprint".
    import shutil

    root = tmp_path / "store"
    shutil.copytree(reference, root)
    real_has_run = PredictionStore.has_run
    asked: set[tuple[Any, ...]] = set()

    def has_run_before_the_rename(self: PredictionStore, manifest: Any) -> bool:
        if manifest.key() not in asked:
            asked.add(manifest.key())
            return False  # the answer B got a moment before A's rename
        return real_has_run(self, manifest)

    monkeypatch.setattr(PredictionStore, "has_run", has_run_before_the_rename)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")}
    results = run(tiny, root, xtreme_dir)
    assert [r.status for r in results if r.status == "failed"] == [], [r.error for r in results]
    monkeypatch.undo()
    store = open_store(root)
    assert len(store.runs()) == len(results)
    # The stored runs were not replaced.
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")} == before
    assert store.validate() == []
