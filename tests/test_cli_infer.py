"""``xcal infer`` from the command line: exit codes, output, files, restarts after kill -9."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from xcal.cli import app
from xcal.store import open_store

pytestmark = pytest.mark.filterwarnings("ignore:.*placeholders:UserWarning")


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

    root = tmp_path_factory.mktemp("tiny-cli")
    return str(make_tiny_model(root / "bert-cls", "bert", head="classification", num_labels=3))


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["infer", *args])
    text = result.output + (getattr(result, "stderr", "") or "")
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, text


def test_infer_writes_then_skips(tiny_cls: str, xtreme_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ["--model", tiny_cls, "--task", "xnli", "--languages", "de,fr", "--store", str(store),
            "--data-dir", str(xtreme_dir), "--limit", "8", "--batch-tokens", "1024"]  # fmt: skip
    code, out = _invoke(*args)
    assert code == 0, out
    assert "2 written, 0 already stored, 0 failed (2 cells)" in out
    assert "xnli/dev" in out and "ex/s" in out  # the summary table
    assert len(open_store(store).runs()) == 2
    code, out = _invoke(*args, "--quiet")
    assert code == 0 and "0 written, 2 already stored, 0 failed" in out


def test_iso_639_3_codes_run_and_are_stored_as_the_data_names_them(
    tiny_cls: str, xtreme_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    args = ["--model", tiny_cls, "--task", "xnli", "--languages", "zho,deu", "--store", str(store),
            "--data-dir", str(xtreme_dir), "--limit", "4", "--batch-tokens", "1024"]  # fmt: skip
    code, out = _invoke(*args)
    assert code == 0, out
    assert sorted(open_store(store).runs()["language"]) == ["de", "zh"]
    code, out = _invoke(*[("chinese" if a == "zho,deu" else a) for a in args])
    assert code == 2 and "Did you mean zh?" in " ".join(out.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "squad"], "unknown task 'squad' (did you mean 'xquad'?); known:"),
        (["--task", "xnli", "--languages", "xx"], "available in"),
        (["--task", "xnli", "--perturbations", "nope:0.5"], "unknown perturbation 'nope'"),
        (["--task", "xnli", "--perturbations", "word_shuffle"], "expected name:severity"),
        (["--task", "pawsx", "--languages", "de"], "3-label classification head but task 'pawsx'"),
        (["--task", "xnli", "--shard", "2/2"], "bad --shard"),
        (["--task", "xnli", "--dtype", "fp8"], "option --dtype: expected"),
        (
            ["--task", "xnli", "--scoring", "vibes"],
            "option --scoring: expected 'auto', 'head' or 'lm'",
        ),
    ],
)
def test_bad_input_exit_2(
    tiny_cls: str, xtreme_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, out = _invoke(
        "--model", tiny_cls, "--store", str(tmp_path / "s"), "--data-dir", str(xtreme_dir), *args
    )
    assert code == 2, out
    assert message in " ".join(out.split())
    assert not (tmp_path / "s").exists()


def test_missing_store_and_data_dir(tiny_cls: str, xtreme_dir: Path, tmp_path: Path) -> None:
    code, out = _invoke("--model", tiny_cls, "--task", "xnli", "--data-dir", str(xtreme_dir))
    assert code == 2 and "no store" in out
    code, out = _invoke("--model", tiny_cls, "--task", "xnli", "--store", str(tmp_path / "s"),
                        "--data-dir", str(tmp_path / "nowhere"))  # fmt: skip
    assert code == 2 and "does not exist" in out


def test_config_file_and_shards(tiny_cls: str, xtreme_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    cfg = tmp_path / "grid.toml"
    cfg.write_text(
        f"""
store = "{store}"
data_dir = "{xtreme_dir}"
limit = 6
models = ["{tiny_cls}"]
tasks = ["xnli"]
languages = ["de", "fr", "en"]
perturbations = ["none", "lowercase:1.0"]
""",
        encoding="utf-8",
    )
    outs = []
    for i in range(3):
        code, out = _invoke("--config", str(cfg), "--shard", f"{i}/3", "-q")
        assert code == 0, out
        outs.append(out)
    assert all("2 written" in o and f"shard {i}/3" in o for i, o in enumerate(outs))
    runs = open_store(store).runs()
    assert len(runs) == 6 and set(runs.perturbation) == {"none", "lowercase"}
    # Options override the file (here in the old, hidden spellings).
    code, out = _invoke("--config", str(cfg), "--languages", "sw", "--perturbations", "none", "-q")
    assert code == 0 and "1 written, 0 already stored, 0 failed (1 cells)" in out


def test_options_override_task_tables_label_and_limit(
    tiny_cls: str, xtreme_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    cfg = tmp_path / "grid.toml"
    cfg.write_text(
        f"""
models = ["{tiny_cls}"]
[[task]]
name = "xnli"
languages = ["de", "fr"]
""",
        encoding="utf-8",
    )
    common = ("--config", str(cfg), "-s", str(store), "--data-dir", str(xtreme_dir), "-q")
    # --lang replaces a [[task]]'s own languages (ISO 639-3 accepted), --label names the model.
    code, out = _invoke(*common, "-l", "swa", "--limit", "4", "--label", "tiny")
    assert code == 0, out
    runs = open_store(store).runs()
    assert runs[["model", "language", "split", "n_examples"]].values.tolist() == [
        ["tiny", "sw", "dev[0:4]", 4]
    ]
    # A full run of the same cell is another run, not a fingerprint conflict.
    code, out = _invoke(*common, "-l", "sw", "--label", "tiny")
    assert code == 0 and "1 written" in out, out
    assert sorted(open_store(store).runs()["split"]) == ["dev", "dev[0:4]"]
    # Without --lang the file's languages hold; one label per model.
    code, out = _invoke(*common, "--limit", "2", "--label", "a,b")
    assert code == 2 and "--label gives 2 name(s) for 1 model(s)" in out


@pytest.mark.slow
def test_kill_9_and_restart_gives_the_uninterrupted_result(
    tiny_cls: str, xtreme_dir: Path, tmp_path: Path
) -> None:
    """Kill the real CLI at random points, restart until done: every run once, same logits."""
    from xcal.infer import Grid, ModelSpec, PerturbationSpec, RunOptions, TaskSpec, run_grid

    langs = ["de", "fr", "en", "es", "ru", "zh"]
    perts = ["none", "lowercase:1.0"]
    limit, batch_tokens = 150, 512
    reference = tmp_path / "reference"
    grid = Grid(
        (ModelSpec(tiny_cls),),
        # --limit N is the example range 0:N (stored as dev[0:N]).
        (TaskSpec("xnli", tuple(langs), examples=f"0:{limit}"),),
        tuple(PerturbationSpec.parse(p) for p in perts),
    )
    run_grid(
        grid,
        reference,
        data_dir=xtreme_dir,
        options=RunOptions(batch_tokens=batch_tokens),
    )

    store = tmp_path / "store"
    cmd = [sys.executable, "-c", "from xcal.cli import main; main()", "infer", "--model", tiny_cls,
           "--task", "xnli", "--lang", ",".join(langs), "--perturbation", ",".join(perts),
           "--store", str(store), "--data-dir", str(xtreme_dir), "--limit", str(limit),
           "--batch-tokens", str(batch_tokens), "--threads", "1", "--quiet"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    rng = random.Random(20261127)

    def n_runs() -> int:
        return sum(
            1 for p in store.rglob("*.parquet") if not any(part.startswith(".") for part in p.parts)
        )

    kills = 0
    for _ in range(3):
        before = n_runs()
        if before == 12:
            break
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        # Let it finish at least one more run, then kill it at a random moment.
        while n_runs() == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2, "the job finished before it could be killed; make the cells bigger"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "failed" in done.stdout and " 0 failed" in done.stdout

    s, ref = open_store(store), open_store(reference)
    assert s.validate() == []  # no partial run, no leftover temporary file
    runs, ref_runs = s.runs(), ref.runs()
    assert len(runs) == 12 and runs.run_id.is_unique
    assert sorted(runs.run_id) == sorted(ref_runs.run_id)
    assert sorted(runs.input_fingerprint) == sorted(ref_runs.input_fingerprint)
    for run_id in runs.run_id:
        got, want = s.load_classification(run_id), ref.load_classification(run_id)
        assert list(got.example_ids) == list(want.example_ids)
        np.testing.assert_array_equal(got.logits, want.logits)


def test_batch_tokens_auto_and_bad_values(tiny_cls: str, xtreme_dir: Path, tmp_path: Path) -> None:
    base = ["--model", tiny_cls, "--task", "xnli", "--languages", "de", "--store",
            str(tmp_path / "store"), "--data-dir", str(xtreme_dir), "--limit", "4",
            "--device", "cpu"]  # fmt: skip
    code, out = _invoke(*base, "--batch-tokens", "auto", "--quiet")
    assert code == 0, out
    code, out = _invoke(*base, "--batch-tokens", "lots")
    assert code == 2 and "--batch-tokens: expected an integer >= 16 or 'auto', got 'lots'" in out


@pytest.mark.parametrize("where", ["flag", "config"])
def test_share_layers_reaches_the_runner_from_the_flag_and_the_config(
    tiny_cls: str, xtreme_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    seen: list[Any] = []

    def fake_run_grid(grid: Any, store: Any, **kwargs: Any) -> list[Any]:
        seen.append(kwargs["options"])
        return []

    monkeypatch.setattr("xcal.infer.run_grid", fake_run_grid)
    args = ["--store", str(tmp_path / "s"), "--data-dir", str(xtreme_dir), "--quiet"]
    if where == "flag":
        args += ["--model", tiny_cls, "--task", "xnli", "--lang", "en", "--share-layers"]
    else:
        config = tmp_path / "grid.toml"
        config.write_text(
            f'models = ["{tiny_cls}"]\ntasks = ["xnli"]\nlanguages = ["en"]\nshare_layers = true\n'
        )
        args += ["--config", str(config)]
    code, out = _invoke(*args)
    assert code == 0, out
    assert [o.share_layers for o in seen] == [True]
    # a quoted boolean is refused, as for every other setting
    config = tmp_path / "bad.toml"
    config.write_text(f'models = ["{tiny_cls}"]\ntasks = ["xnli"]\nshare_layers = "false"\n')
    code, out = _invoke("--config", str(config), "--store", str(tmp_path / "t"), "--quiet")
    assert code == 2 and "share_layers" in out
