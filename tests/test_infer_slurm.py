"""``xcal infer`` at scale: the shard of a Slurm array task, the array script, overlapping arrays."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from xcal.infer import (
    Grid,
    GridError,
    ModelSpec,
    PerturbationSpec,
    RunOptions,
    TaskSpec,
    resolve_shard,
    run_grid,
    shard_cells,
)
from xcal.store import open_store

pytestmark = pytest.mark.filterwarnings("ignore:.*placeholders:UserWarning")

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "slurm" / "infer-array.sbatch"


def slurm(task_id: int, count: int, first: int = 0, step: int = 1) -> dict[str, str]:
    """The variables Slurm sets in a task of ``--array=first-...:step``."""
    return {
        "SLURM_ARRAY_JOB_ID": "4242",
        "SLURM_ARRAY_TASK_ID": str(task_id),
        "SLURM_ARRAY_TASK_COUNT": str(count),
        "SLURM_ARRAY_TASK_MIN": str(first),
        "SLURM_ARRAY_TASK_MAX": str(first + (count - 1) * step),
        "SLURM_ARRAY_TASK_STEP": str(step),
    }


def test_the_shard_of_an_array_task():
    assert [resolve_shard(None, slurm(i, 4)) for i in range(4)] == [(i, 4) for i in range(4)]
    # --array=1-8 and --array=10-24:2 number their tasks from the first index.
    assert [resolve_shard(None, slurm(i, 8, first=1))[0] for i in range(1, 9)] == list(range(8))
    assert resolve_shard(None, slurm(14, 8, first=10, step=2)) == (2, 8)
    # An explicit --shard wins; no array, no shard.
    assert resolve_shard("1/2", slurm(3, 4)) == (1, 2)
    assert resolve_shard(None, {}) == (0, 1) and resolve_shard("", {}) == (0, 1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLURM_ARRAY_TASK_ID": "3"}, "SLURM_ARRAY_TASK_COUNT is not"),
        ({**slurm(3, 4), "SLURM_ARRAY_TASK_COUNT": "four"}, "is not an integer"),
        # --array=1,3,7: three tasks, not evenly spaced from the first
        ({**slurm(7, 3, first=1), "SLURM_ARRAY_TASK_STEP": "1"}, "--array=0-2"),
    ],
)
def test_arrays_that_do_not_define_a_shard_are_refused(env, message):
    with pytest.raises(GridError, match=message):
        resolve_shard(None, env)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Any:
    """One intra-op thread: on a shared 2-core machine, more threads mostly wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_cls(tmp_path_factory: pytest.TempPathFactory) -> str:
    from xcal.models.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("tiny-slurm")
    return str(make_tiny_model(root / "bert-cls", "bert", head="classification", num_labels=3))


def _config(path: Path, store: Path, model: str, data: Path) -> Path:
    path.write_text(
        f"""
store = "{store}"
data_dir = "{data}"
limit = 6
models = ["{model}"]
tasks = ["xnli"]
languages = ["de", "fr", "en"]
perturbations = ["none", "lowercase:1.0"]
""",
        encoding="utf-8",
    )
    return path


def _run_array(config: Path, count: int, tmp: Path) -> list[subprocess.CompletedProcess[str]]:
    """Every task of an array at once, as Slurm starts them, each through the script."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONWARNINGS": "ignore",
        "SLURM_CPUS_PER_TASK": "1",
    }
    procs = [
        subprocess.Popen(
            ["bash", str(SCRIPT), str(config)],
            env={**env, **slurm(i, count)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp,
        )
        for i in range(count)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


@pytest.mark.slow
def test_the_array_script_covers_the_grid_and_a_second_array_finds_it_done(
    tiny_cls: str, xtreme_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    config = _config(tmp_path / "grid.toml", store, tiny_cls, xtreme_dir)
    first = _run_array(config, 3, tmp_path)
    for i, task in enumerate(first):
        assert task.returncode == 0, task.stderr
        assert f"2 written, 0 already stored, 0 failed (2 cells, shard {i}/3)" in task.stdout
    runs = open_store(store).runs()
    assert len(runs) == 6 and not runs["run_id"].duplicated().any()
    # An array of another size over the same grid (resubmitted, overlapping): nothing to do.
    second = _run_array(config, 2, tmp_path)
    for i, task in enumerate(second):
        assert task.returncode == 0, task.stderr
        assert f"0 written, 3 already stored, 0 failed (3 cells, shard {i}/2)" in task.stdout
    assert len(open_store(store).runs()) == 6


def test_two_arrays_running_at_once_store_every_run_once(
    tiny_cls: str, xtreme_dir: Path, tmp_path: Path
) -> None:
    """Shards of a 2-task and a 3-task array over one grid, all at once, into one store.

    Their blocks overlap; each cell is computed by one or two jobs, written
    under its run's lock, and stored exactly once (a second write of the same
    fingerprint changes nothing).
    """
    grid = Grid(
        (ModelSpec(tiny_cls),),
        (TaskSpec("xnli", ("de", "fr", "en")),),
        (PerturbationSpec(), PerturbationSpec("lowercase", 1.0)),
    )
    cells = grid.cells(xtreme_dir)
    store = tmp_path / "store"
    shards = [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    statuses: dict[tuple[int, int], list[Any]] = {}
    errors: list[BaseException] = []

    def job(shard: tuple[int, int]) -> None:
        try:
            results = run_grid(
                grid, store, data_dir=xtreme_dir, options=RunOptions(limit=6), shard=shard
            )
            statuses[shard] = [r.status for r in results]
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=job, args=(s,)) for s in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for shard in shards:
        assert len(statuses[shard]) == len(shard_cells(cells, shard))
        assert set(statuses[shard]) <= {"written", "skipped"}
    s = open_store(store)
    runs = s.runs()
    assert len(runs) == len(cells) and not runs["run_id"].duplicated().any()
    assert s.validate() == []
