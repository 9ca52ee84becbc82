"""``xcal infer`` as real processes: SIGKILLed at random points, run concurrently, out of file space.

Every job here is a separate process running the ``xcal`` command line
(``xcal.cli.main`` with ``sys.argv``) on tiny random models and the real
XTREME sample, over one grid of 16 cells (2 models x 4 XNLI languages x
{none, word_shuffle 0.5}, 6 examples each). The grid is also run once,
uninterrupted, into a reference store; whatever happens to the other jobs,
the numbers they leave must be that run's, bit for bit, under the same input
fingerprints.

Importing torch takes most of a cold start (half a minute on a loaded CI
machine), so jobs are forked from a *job server*: a process that has imported
xcal, torch and transformers once and forks one child per job; the child
redirects its output and calls ``xcal.cli.main()``, exactly what the ``xcal``
script does, then exits. SIGKILL, file locks and file-size limits act on the
child as on any process. One test runs the installed entry point itself
(``.venv/bin/xcal``, a fresh interpreter with another hash seed) and resumes
its killed job from the server, so resumption is also checked across
interpreters.

Checked after every kill: the store validates (a hidden temporary file is
only a warning), a pyarrow dataset read of the store root (no xcal code) sees
exactly ``6 x runs`` rows, every stored cell appears once, and no finished run
was changed or lost. Kill times are random (seeded) over a whole job: reading
and perturbing data, loading a model, inference, writing; some kills are aimed
at the moment a run's temporary file exists (mid-write).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow.dataset as ds
import pytest

from xcal.store import open_store

pytestmark = pytest.mark.slow

LANGUAGES = ("de", "fr", "sw", "en")
PERTURBATIONS = "none,word_shuffle:0.5"
LIMIT = 6
N_CELLS = 2 * len(LANGUAGES) * 2
# Generous: a cold start imports torch and transformers on a loaded machine.
STEP_TIMEOUT = 300.0

SERVER = textwrap.dedent(
    """
    import json, os, signal, sys, traceback

    # Import what an `xcal infer` job imports, once: forked jobs start warm.
    import torch, transformers
    from transformers import BertForSequenceClassification, PreTrainedTokenizerFast
    import xcal.cli, xcal.infer, xcal.infer.classify, xcal.models, xcal.store, xcal.tasks
    from xcal.models.tiny import make_tiny_model
    from xcal.perturb import get_perturbation

    get_perturbation("word_shuffle")("a b c d", language="de", severity=0.5, seed=0,
                                     example_id="warm-up")
    for seed, path in enumerate(sys.argv[1:]):
        if not os.path.exists(path):
            make_tiny_model(path, "bert", head="classification", num_labels=3, seed=seed)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished jobs
    print("READY", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 1
            try:
                for fd, name in ((1, "out"), (2, "err")):
                    f = os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.dup2(f, fd)
                    os.close(f)
                if job["file_size_limit"] is not None:
                    import resource
                    limit = job["file_size_limit"]
                    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
                sys.argv = ["xcal", *job["argv"]]
                try:
                    xcal.cli.main()
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                with open(job["rc"], "w") as f:
                    f.write(str(code))
                os._exit(code)
        print(pid, flush=True)
    """
)


def child_env(hash_seed: int) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "COLUMNS": "200",
        "PYTHONHASHSEED": str(hash_seed),
    }


@dataclass
class Job:
    """A running ``xcal infer``: a server's child (``proc`` None) or a fresh process."""

    pid: int
    out: Path
    err: Path
    rc_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.monotonic)

    def returncode(self) -> int | None:
        """The exit status once the job has ended (a negative signal number if killed)."""
        if self.proc is not None:
            return self.proc.poll()
        assert self.rc_file is not None
        try:
            os.kill(self.pid, 0)
            return None  # still running
        except ProcessLookupError:
            pass
        if self.rc_file.exists():
            return int(self.rc_file.read_text() or 1)
        return -signal.SIGKILL

    def running(self) -> bool:
        return self.returncode() is None

    def wait(self, timeout: float = STEP_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while (rc := self.returncode()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"job still running after {timeout}s:\n{self.output()}")
            time.sleep(0.02)
        return rc

    def kill(self) -> bool:
        """SIGKILL the job; False if it had already ended."""
        if not self.running():
            return False
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.wait(60)
        return True

    def output(self) -> str:
        texts = [p.read_text(errors="replace") for p in (self.out, self.err) if p.exists()]
        return "\n".join(texts)


def infer_args(
    store: Path, models: Sequence[str], data: Path, languages: Sequence[str] = LANGUAGES
) -> list[str]:
    args = ["infer"]
    for model in models:
        args += ["--model", model]
    return [
        *args,
        "--task",
        "xnli",
        "--languages",
        ",".join(languages),
        "--perturbations",
        PERTURBATIONS,
        "--limit",
        str(LIMIT),
        "--store",
        str(store),
        "--data-dir",
        str(data),
        "--quiet",
    ]


class JobServer:
    """Forks warm ``xcal`` jobs on request."""

    def __init__(self, workdir: Path, models: list[str]) -> None:
        self.workdir = workdir
        self.models = models
        self.count = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, *models],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(1),
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdin: IO[str] = self.proc.stdin
        self.stdout: IO[str] = self.proc.stdout
        line = self.stdout.readline().strip()
        assert line == "READY", f"job server failed to start (rc={self.proc.poll()})"

    def start(
        self,
        store: Path,
        data: Path,
        *,
        models: Sequence[str] | None = None,
        languages: Sequence[str] = LANGUAGES,
        file_size_limit: int | None = None,
    ) -> Job:
        self.count += 1
        base = self.workdir / f"job{self.count}"
        out, err, rc = Path(f"{base}.out"), Path(f"{base}.err"), Path(f"{base}.rc")
        job = {
            "argv": infer_args(store, models or self.models, data, languages),
            "out": str(out),
            "err": str(err),
            "rc": str(rc),
            "file_size_limit": file_size_limit,
        }
        self.stdin.write(json.dumps(job) + "\n")
        self.stdin.flush()
        pid = int(self.stdout.readline())
        return Job(pid, out, err, rc_file=rc)

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(timeout=60)


def start_installed_entry_point(store: Path, models: Sequence[str], data: Path, logs: Path) -> Job:
    """``.venv/bin/xcal infer ...`` in a fresh interpreter (another hash seed than the server)."""
    script = Path(sys.executable).with_name("xcal")
    command = (
        [str(script)]
        if script.is_file()
        else [sys.executable, "-c", "from xcal.cli import main; main()"]
    )
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / "entry.out", logs / "entry.err"
    with open(out, "wb") as fout, open(err, "wb") as ferr:
        proc = subprocess.Popen(
            [*command, *infer_args(store, models, data)],
            stdout=fout,
            stderr=ferr,
            stdin=subprocess.DEVNULL,
            env=child_env(2),
        )
    return Job(proc.pid, out, err, proc=proc)


# --------------------------------------------------------------------------- store checks


def visible_files(root: Path) -> list[Path]:
    """Files a dataset reader would read (no hidden or ``_`` names on the way)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))]
        found += [Path(dirpath) / f for f in filenames if not f.startswith((".", "_"))]
    return sorted(found)


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


def cell_key(row: Any) -> tuple[Any, ...]:
    return (row.model, row.language, row.perturbation, float(row.severity))


def assert_consistent(root: Path, before: dict[Path, bytes]) -> dict[Path, bytes]:
    """What any reader must see after a kill; returns the new snapshot of run files."""
    if not root.exists():
        assert before == {}
        return {}
    store = open_store(root)
    problems = store.validate()
    assert [p for p in problems if p.level == "error"] == []
    assert all("temporary file" in p.message for p in problems), problems
    runs = store.runs()
    files = visible_files(root)
    assert all(f.suffix == ".parquet" for f in files)
    assert len(files) == len(runs)
    keys = [cell_key(r) for r in runs.itertuples()]
    assert len(set(keys)) == len(keys), "a cell is stored twice"
    if files:
        # A reader that knows nothing of xcal sees complete runs only.
        table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
        assert table.num_rows == LIMIT * len(runs)
    now = {p: p.read_bytes() for p in files}
    # A finished run is never changed or lost by a kill or a restart.
    for path, data in before.items():
        assert now.get(path) == data, f"{path} changed or vanished"
    return now


def logits_by_cell(root: Path) -> dict[tuple[Any, ...], tuple[str, np.ndarray]]:
    store = open_store(root)
    return {
        cell_key(r): (str(r.input_fingerprint), store.load_classification(str(r.run_id)).logits)
        for r in store.runs().itertuples()
    }


def assert_same_numbers(root: Path, reference: Path, *, complete: bool = True) -> None:
    got, want = logits_by_cell(root), logits_by_cell(reference)
    if complete:
        assert got.keys() == want.keys()
    for key, (fp, logits) in got.items():
        assert fp == want[key][0], f"{key}: input fingerprint differs from the reference run"
        np.testing.assert_array_equal(logits, want[key][1], err_msg=str(key))


def summary_of(job: Job) -> str:
    return " ".join(job.output().split())


def wait_for_new_run(job: Job, root: Path, have: int) -> bool:
    """Poll until the job stores one more run than ``have``; False if it ended first."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        if not job.running():
            return False
        if len(visible_files(root)) > have:
            return True
        time.sleep(0.02)
    raise AssertionError(f"no new run within {STEP_TIMEOUT}s:\n{job.output()}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobServer]:
    root = tmp_path_factory.mktemp("job-server")
    models = [str(root / "models" / f"bert-{seed}") for seed in (0, 1)]
    srv = JobServer(root, models)
    yield srv
    srv.close()


@dataclass
class Reference:
    root: Path
    seconds: float


@pytest.fixture(scope="module")
def reference(
    server: JobServer, xtreme_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Reference:
    root = tmp_path_factory.mktemp("reference") / "store"
    job = server.start(root, xtreme_dir)
    assert job.wait() == 0, job.output()
    seconds = time.monotonic() - job.started
    assert f"{N_CELLS} written, 0 already stored, 0 failed" in summary_of(job), job.output()
    assert len(open_store(root).runs()) == N_CELLS
    return Reference(root, seconds)


# --------------------------------------------------------------------------- kill -9


def test_kill_9_at_random_points_then_restart_until_done(
    server: JobServer, xtreme_dir: Path, reference: Reference, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    seed = 20240601
    rng = np.random.default_rng(seed)
    # Random moments over a whole job (data, perturbation, model loading,
    # inference, writes), then two kills aimed at a write in progress.
    # A restarted job has less to do: its kill time is drawn over the time that
    # the cells left would take (at least a quarter of a whole job).
    plan = ["mid-write", "random", "random", "random", "mid-write", "random", "random", "random"]
    state: dict[Path, bytes] = {}
    history: list[str] = []
    for mode in plan:
        if len(state) == N_CELLS:
            break
        left = max((N_CELLS - len(state)) / N_CELLS, 0.25)
        when: str | float = mode
        if mode == "random":
            when = float(rng.uniform(0.0, reference.seconds * left))
        job = server.start(root, xtreme_dir)
        if mode == "mid-write":
            while job.running() and not temp_files(root):
                time.sleep(0.001)
        else:
            time.sleep(float(when))
        temps = len(temp_files(root))
        killed = job.kill()
        stored = len(visible_files(root))
        history.append(
            f"{when if isinstance(when, str) else f'{when:.2f}s'}: "
            + (f"killed with {stored} runs, {temps} temp files" if killed else "had finished")
        )
        if not killed:
            assert job.returncode() == 0, job.output()
        state = assert_consistent(root, state)

    print(f"kills (seed {seed}, reference job {reference.seconds:.1f}s):", *history, sep="\n  ")
    assert any("killed" in h for h in history), "every job finished before its kill"

    # Restart until done: the last job finds the finished cells and does the rest.
    job = server.start(root, xtreme_dir)
    assert job.wait() == 0, job.output()
    summary = f"{N_CELLS - len(state)} written, {len(state)} already stored, 0 failed"
    assert summary in summary_of(job), f"seed {seed}; {history}\n{job.output()}"
    state = assert_consistent(root, state)
    assert len(state) == N_CELLS
    assert temp_files(root) == [], "leftovers of killed writes are removed by the rewrite"
    assert open_store(root).validate() == []
    assert_same_numbers(root, reference.root)


def test_installed_entry_point_killed_mid_grid_then_resumed_by_another_interpreter(
    server: JobServer, xtreme_dir: Path, reference: Reference, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    rng = np.random.default_rng(7)
    job = start_installed_entry_point(root, server.models, xtreme_dir, tmp_path / "logs")
    if wait_for_new_run(job, root, 0):
        time.sleep(float(rng.uniform(0.0, 1.5)))
        job.kill()
    else:
        assert job.returncode() == 0, job.output()
    state = assert_consistent(root, {})
    assert len(state) >= 1
    # The server has another hash seed: the fingerprints must still match, so the
    # cells the killed job finished are skipped, not recomputed or refused.
    resumed = server.start(root, xtreme_dir)
    assert resumed.wait() == 0, resumed.output()
    summary = f"{N_CELLS - len(state)} written, {len(state)} already stored, 0 failed"
    assert summary in summary_of(resumed), resumed.output()
    state = assert_consistent(root, state)
    assert len(state) == N_CELLS and temp_files(root) == []
    assert_same_numbers(root, reference.root)


# --------------------------------------------------------------------------- concurrent jobs


def test_concurrent_jobs_on_overlapping_grids(
    server: JobServer, xtreme_dir: Path, reference: Reference, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    models = server.models
    jobs = [
        # Two jobs with the same grid in the same order race for every cell ...
        server.start(root, xtreme_dir),
        server.start(root, xtreme_dir),
        # ... a third overlaps them in another order (models and languages reversed) ...
        server.start(root, xtreme_dir, models=models[::-1], languages=LANGUAGES[::-1]),
        # ... and a fourth covers part of the grid.
        server.start(root, xtreme_dir, models=models[1:], languages=LANGUAGES[1:3]),
    ]
    for job in jobs:
        assert job.wait() == 0, job.output()
        assert "0 failed" in summary_of(job), job.output()
    state = assert_consistent(root, {})
    assert len(state) == N_CELLS
    assert temp_files(root) == [] and open_store(root).validate() == []
    # Every cell once, with the numbers of a job that ran alone.
    assert_same_numbers(root, reference.root)


# --------------------------------------------------------------------------- full disk


def test_file_size_limit_mid_grid_fails_with_a_message_and_keeps_earlier_runs(
    server: JobServer, xtreme_dir: Path, reference: Reference, tmp_path: Path
) -> None:
    # A real write error from the kernel, no monkeypatching: RLIMIT_FSIZE makes
    # any write past 2 KB fail with EFBIG ("File too large"), as a full disk
    # makes it fail with ENOSPC. Run files here are about 7 KB.
    root = tmp_path / "store"
    # An earlier job stored the first model's cells.
    shutil.copytree(reference.root, root, ignore=shutil.ignore_patterns("_locks"))
    first = open_store(root).runs()
    for row in first.itertuples():
        if row.model != first.model.iloc[0]:
            Path(str(row.path)).unlink()
    state = assert_consistent(root, {})
    assert len(state) == N_CELLS // 2

    job = server.start(root, xtreme_dir, file_size_limit=2048)
    assert job.wait() == 1, job.output()
    text = summary_of(job)
    assert f"0 written, {N_CELLS // 2} already stored, {N_CELLS // 2} failed" in text
    assert "failed:" in text and "File too large" in text and "nothing was stored" in text
    # Nothing recorded for the failed cells, the earlier runs untouched, no temp file.
    state = assert_consistent(root, state)
    assert len(state) == N_CELLS // 2
    assert temp_files(root) == [] and open_store(root).validate() == []
    assert_same_numbers(root, reference.root, complete=False)

    # With space again, the same command completes the grid.
    job = server.start(root, xtreme_dir)
    assert job.wait() == 0, job.output()
    assert f"{N_CELLS // 2} written, {N_CELLS // 2} already stored, 0 failed" in summary_of(job)
    assert_consistent(root, state)
    assert_same_numbers(root, reference.root)
