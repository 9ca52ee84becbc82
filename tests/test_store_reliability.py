"""Store guarantees under faults: crashes mid-write, full disks, concurrent writers, corrupt files."""

from __future__ import annotations

import errno
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow.dataset as ds
import pytest
from _builders import classification_records, run_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xcal.store.store as store_module
from xcal.store import StoreConflictError, StoreError, open_store

REPO = Path(__file__).resolve().parents[1]


manifest = partial(run_manifest, input_fingerprint="fp-1", n_examples=100)
classification = partial(classification_records, n=100)


def visible_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )


def hidden_temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".*.tmp"))


def errors(problems: list) -> list:
    return [p for p in problems if p.level == "error"]


# --------------------------------------------------------------------------- crash in-process


def half_then(exc: BaseException):
    """A table writer that writes part of the file, then fails."""

    def write(table: Any, sink: BinaryIO) -> None:
        sink.write(b"PAR1" + b"\x00" * 1000)
        sink.flush()
        raise exc

    return write


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EIO, "Input/output error"),
        RuntimeError("simulated crash"),
        KeyboardInterrupt(),
    ],
)
def test_failed_write_leaves_no_partial_run(monkeypatch, tmp_path: Path, exc) -> None:
    store = open_store(tmp_path)
    earlier = store.write_run(manifest(language="fr"), classification(seed=1))
    monkeypatch.setattr(store_module, "_write_table", half_then(exc))
    with pytest.raises((StoreError, type(exc))) as info:
        store.write_run(manifest(), classification())
    if isinstance(exc, OSError):
        # Disk errors become a StoreError that says what failed and that nothing was stored.
        assert isinstance(info.value, StoreError)
        assert exc.strerror is not None
        assert exc.strerror in str(info.value) and "nothing was stored" in str(info.value)
    assert not store.has_run(manifest())
    assert len(store.runs()) == 1 and store.runs()["run_id"][0] == earlier
    assert hidden_temp_files(tmp_path) == []
    np.testing.assert_array_equal(
        store.load_classification(earlier).logits, classification(seed=1)["logits"]
    )
    monkeypatch.undo()
    assert store.validate() == []
    store.write_run(manifest(), classification())  # the run can be written afterwards
    assert store.has_run(manifest())


def test_failed_overwrite_keeps_the_old_run(monkeypatch, tmp_path: Path) -> None:
    store = open_store(tmp_path)
    run_id = store.write_run(manifest(), classification(seed=1))
    monkeypatch.setattr(store_module, "_write_table", half_then(OSError(errno.ENOSPC, "full")))
    with pytest.raises(StoreError):
        store.write_run(manifest(input_fingerprint="fp-2"), classification(seed=2), overwrite=True)
    assert store.has_run(manifest())
    np.testing.assert_array_equal(
        store.load_classification(run_id).logits, classification(seed=1)["logits"]
    )


def test_failed_fsync_leaves_no_run(monkeypatch, tmp_path: Path) -> None:
    store = open_store(tmp_path)

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "fsync failed")

    monkeypatch.setattr(store_module.os, "fsync", failing_fsync)
    with pytest.raises(StoreError, match="fsync failed"):
        store.write_run(manifest(), classification())
    monkeypatch.undo()
    assert store.runs().empty and hidden_temp_files(tmp_path) == []


# --------------------------------------------------------------------------- kill -9 mid-write

CHILD = textwrap.dedent(
    """
    import sys, time, dataclasses
    import numpy as np
    import xcal.store.store as sm
    from xcal.store import RunManifest, open_store

    root, mode, fp = sys.argv[1], sys.argv[2], sys.argv[3]
    n = 200_000
    rng = np.random.default_rng(0)
    records = {
        "example_id": [f"xnli-dev-{i:07d}" for i in range(n)],
        "logits": rng.normal(size=(n, 3)).astype(np.float32),
        "label": rng.integers(0, 3, size=n),
    }
    m = RunManifest(model="m", task="xnli", split="dev", language="de",
                    record_kind="classification", input_fingerprint=fp, n_examples=n)
    if mode == "hang":
        real = sm._write_table
        def write(table, sink):
            # Write most of the file, tell the parent, then wait to be killed.
            sink.write(b"PAR1" + b"\\x01" * 100_000)
            sink.flush()
            print("WRITING", flush=True)
            time.sleep(600)
        sm._write_table = write
    store = open_store(root)
    print("READY", flush=True)
    while True:
        store.write_run(m, records, overwrite=True)
        if mode != "loop":
            break
    print("DONE", flush=True)
    """
)


def start_child(root: Path, mode: str, fp: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), mode, fp],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def wait_for(proc: subprocess.Popen, word: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == word:
            return
    raise AssertionError(f"child exited (rc={proc.wait()}) before printing {word}")


def assert_store_consistent(root: Path) -> None:
    if not root.exists():  # killed before its first write began: nothing to see
        return
    store = open_store(root)
    assert errors(store.validate()) == []
    # A reader that knows nothing of xcal sees only complete runs.
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 200_000 * len(store.runs())


@pytest.mark.slow
def test_kill_during_write_leaves_old_run_or_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    # First: killed while writing a new run -> no run visible, only a hidden temp file.
    child = start_child(root, "hang", "fp-1")
    wait_for(child, "WRITING")
    child.send_signal(signal.SIGKILL)
    child.wait()
    store = open_store(root)
    assert store.runs().empty and visible_files(root) == []
    assert len(hidden_temp_files(root)) == 1
    assert_store_consistent(root)
    problems = store.validate()
    assert [p.level for p in problems] == ["warning"] and "interrupted" in problems[0].message

    # A complete run, then a kill while overwriting it -> the complete old run stays.
    child = start_child(root, "once", "fp-1")
    assert child.wait() == 0
    assert hidden_temp_files(root) == []  # the next write of the run cleaned the leftover
    run_id = open_store(root).runs()["run_id"][0]
    before = open_store(root).load_classification(run_id).logits
    child = start_child(root, "hang", "fp-2")
    wait_for(child, "WRITING")
    child.send_signal(signal.SIGKILL)
    child.wait()
    store = open_store(root)
    assert store.runs()["input_fingerprint"].tolist() == ["fp-1"]
    np.testing.assert_array_equal(store.load_classification(run_id).logits, before)
    assert_store_consistent(root)

    # validate --fix removes the stale temporary file, and only that.
    fixed = store.validate(fix=True)
    assert [p.message for p in fixed] == ["removed stale temporary file"]
    assert hidden_temp_files(root) == [] and store.validate() == []


@pytest.mark.slow
def test_kill_at_random_points_never_leaves_a_partial_run(tmp_path: Path) -> None:
    root = tmp_path / "store"
    rng = np.random.default_rng(12345)
    for attempt in range(6):
        child = start_child(root, "loop", f"fp-{attempt}")
        wait_for(child, "READY")
        time.sleep(float(rng.uniform(0.0, 1.5)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert len(visible_files(root)) <= 1
        assert_store_consistent(root)


# --------------------------------------------------------------------------- concurrent writers


def _write_grid(root: str, languages: list[str], fingerprint: str, n: int) -> list[str]:
    store = open_store(root)
    out = []
    for lang in languages:
        m = manifest(language=lang, input_fingerprint=fingerprint, n_examples=n)
        out.append(store.write_run(m, classification(n=n, seed=len(lang))))
    return out


def _write_one(root: str, fingerprint: str, barrier: Any) -> str:
    store = open_store(root)
    m = manifest(input_fingerprint=fingerprint, n_examples=50_000)
    records = classification(n=50_000, seed=int(fingerprint.split("-")[1]))
    barrier.wait()
    try:
        store.write_run(m, records)
    except StoreConflictError:
        return "conflict"
    return "written"


@pytest.mark.slow
def test_concurrent_writers_of_overlapping_grids(tmp_path: Path) -> None:
    languages = ["en", "de", "fr", "sw", "ar", "zh"]
    grids = [languages, languages[::-1], languages[2:] + languages[:2]]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_write_grid, [(str(tmp_path), g, "fp-1", 20_000) for g in grids])
    # Every process saw every cell done, with the same run id for the same cell.
    assert sorted(results[0]) == sorted(results[1]) == sorted(results[2])
    store = open_store(tmp_path)
    assert sorted(store.runs()["language"]) == sorted(languages)
    assert len(visible_files(tmp_path)) == len(languages)
    assert hidden_temp_files(tmp_path) == [] and store.validate() == []
    for lang in languages:
        (run_id,) = store.runs(language=lang)["run_id"]
        want = classification(n=20_000, seed=len(lang))["logits"]
        np.testing.assert_array_equal(store.load_classification(run_id).logits, want)


@pytest.mark.slow
def test_concurrent_writers_with_different_inputs_one_wins(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    n = 4
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            outcomes = pool.starmap(
                _write_one, [(str(tmp_path), f"fp-{i}", barrier) for i in range(n)]
            )
    assert sorted(outcomes) == ["conflict"] * (n - 1) + ["written"]
    winner = outcomes.index("written")
    store = open_store(tmp_path)
    assert store.runs()["input_fingerprint"].tolist() == [f"fp-{winner}"]
    (run_id,) = store.runs()["run_id"]
    want = classification(n=50_000, seed=winner)["logits"]
    np.testing.assert_array_equal(store.load_classification(run_id).logits, want)
    assert store.validate() == []


def test_lock_timeout_gives_a_clear_error(tmp_path: Path) -> None:
    store = open_store(tmp_path, lock_timeout=0.2)
    run_id = store.run_id(manifest())
    holder = open_store(tmp_path)._lock(run_id)
    with holder:
        with pytest.raises(StoreError, match=r"timed out .* waiting for the lock"):
            store.write_run(manifest(), classification())
    store.write_run(manifest(), classification())


# --------------------------------------------------------------------------- corrupted files


def _reference_file() -> tuple[bytes, Path, np.ndarray]:
    root = Path(tempfile.mkdtemp())
    store = open_store(root)
    records = classification(n=300)
    run_id = store.write_run(manifest(n_examples=300), records)
    path = Path(store.runs(run_id=run_id)["path"][0])
    return path.read_bytes(), path.relative_to(root), records["logits"]


REFERENCE = _reference_file()


def _check_corrupted(data: bytes) -> None:
    _, rel, logits = REFERENCE
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / rel
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        store = open_store(root)
        problems = store.validate()  # never raises
        try:
            arrays = store.load_classification(path.stem)
        except StoreError:
            assert errors(problems), "load failed but validate found nothing"
            return
        # If the corruption went unnoticed, the numbers must be the original ones.
        np.testing.assert_array_equal(arrays.logits, logits)
        assert errors(problems) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=len(REFERENCE[0]) - 1))
def test_truncated_file_gives_store_error(cut: int) -> None:
    _check_corrupted(REFERENCE[0][:cut])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=len(REFERENCE[0]) - 1),
    value=st.integers(min_value=0, max_value=255),
)
def test_corrupted_byte_gives_store_error_or_the_same_numbers(position: int, value: int) -> None:
    data = bytearray(REFERENCE[0])
    if data[position] == value:
        value ^= 0xFF
    data[position] = value
    _check_corrupted(bytes(data))


@settings(max_examples=50, deadline=None)
@given(garbage=st.binary(max_size=2000))
def test_random_bytes_give_store_error(garbage: bytes) -> None:
    _check_corrupted(garbage)
