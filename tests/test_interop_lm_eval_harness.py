"""Acceptance: real lm-eval runs on tiny local decoders, imported, equal ``xcal infer``'s LM scores.

lm-eval (the CLI, offline) evaluates a tiny GPT-2 and a tiny Llama
checkpoint on YAML tasks that read the shared XNLI dev and XCOPA val files
with xcal's prompts; ``xcal import lm-eval`` brings the samples into a store
that also holds ``xcal infer`` runs of the same checkpoints (LM scoring) and
of a tiny encoder; the imported scores must equal xcal's, example by example,
and ``xcal analyze`` must run on the mixed store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lm_eval")

from _lm_eval_tasks import (
    write_tasks,
    xcopa_task,
    xnli_generation_task,
    xnli_task,
)
from typer.testing import CliRunner

from xcal.cli import app
from xcal.store import open_store

pytestmark = pytest.mark.slow

N_DOCS = 24
XNLI_LANGS = ("en", "de")
XCOPA_LANGS = ("et", "it")


def _lm_eval(model_dir: Path, model_args: str, tasks: list[str], include: Path, out: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["HF_DATASETS_CACHE"] = str(out.parent / "hf-datasets-cache")
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model_dir},dtype=float32{model_args}",
        "--tasks",
        ",".join(tasks),
        "--include_path",
        str(include),
        "--output_path",
        str(out),
        "--log_samples",
        "--limit",
        str(N_DOCS),
        "--batch_size",
        "8",
        "--device",
        "cpu",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory: pytest.TempPathFactory, xtreme_dir: Path) -> dict[str, Path]:
    from xcal.infer import Grid, ModelSpec, PerturbationSpec, RunOptions, TaskSpec, run_grid
    from xcal.models.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("lm-eval")
    gpt2 = make_tiny_model(root / "tiny-gpt2", "gpt2")
    llama = make_tiny_model(root / "tiny-llama", "llama")
    bert = make_tiny_model(root / "tiny-bert", "bert", head="classification")
    include = root / "tasks"
    xnli = write_tasks(include, [xnli_task(xtreme_dir, lang) for lang in XNLI_LANGS])
    xcopa = write_tasks(include, [xcopa_task(xtreme_dir, lang) for lang in XCOPA_LANGS])
    gen = write_tasks(include, [xnli_generation_task(xtreme_dir, "en")])
    # lm-eval conditions a non-empty context on no prefix token unless add_bos_token=True
    # (and the tokenizer adds one, as Llama's does); xcal always prepends BOS. XNLI's
    # empty context gets BOS in both, so GPT-2 runs XNLI only.
    _lm_eval(gpt2, "", xnli, include, root / "out-gpt2")
    _lm_eval(llama, ",add_bos_token=True", xnli + xcopa + gen, include, root / "out-llama")

    store = root / "store"
    runner = CliRunner()
    for name, out in (("gpt2", "out-gpt2"), ("llama", "out-llama")):
        result = runner.invoke(
            app,
            [
                "import",
                "lm-eval",
                str(root / out),
                "--store",
                str(store),
                "--model",
                f"{name}-lmeval",
            ],
        )
        assert result.exit_code == 0, result.output
    grid = Grid(
        models=(
            ModelSpec(str(gpt2), label="gpt2-xcal", scoring="lm"),
            ModelSpec(str(llama), label="llama-xcal", scoring="lm"),
            ModelSpec(str(bert), label="bert"),
        ),
        # The first N_DOCS examples, stored as dev[0:N] like lm_eval --limit's import.
        tasks=(TaskSpec("xnli", languages=XNLI_LANGS, examples=f"0:{N_DOCS}"),),
        perturbations=(PerturbationSpec(),),
    )
    opts = RunOptions(batch_tokens=2048, threads=1)
    results = run_grid(grid, store, data_dir=xtreme_dir, options=opts)
    xcopa_grid = Grid(
        models=(ModelSpec(str(llama), label="llama-xcal", scoring="lm"),),
        tasks=(TaskSpec("xcopa", languages=XCOPA_LANGS, split="val", examples=f"0:{N_DOCS}"),),
        perturbations=(PerturbationSpec(),),
    )
    results += run_grid(xcopa_grid, store, data_dir=xtreme_dir, options=opts)
    assert all(r.status == "written" for r in results), [r.error for r in results]
    return {"root": root, "store": store}


def _records(store: Path, model: str, task: str, language: str) -> dict[str, object]:
    s = open_store(store)
    runs = s.runs(model=model, task=task, language=language)
    assert len(runs) == 1, (model, task, language)
    return s.load_records(str(runs["run_id"].iloc[0]))


def _fresh_process_scores(
    root: Path, xtreme_dir: Path, kind: str, task: str, language: str
) -> np.ndarray:
    """The cell scored again by the xcal CLI in a new process (a failure's diagnosis)."""
    store = root / f"fresh-{kind}-{task}-{language}"
    split = ["--split", "val"] if task == "xcopa" else []
    cmd = [sys.executable, "-c", "from xcal.cli import app; app()", "infer"]
    cmd += ["-m", str(root / f"tiny-{kind}"), "--label", "fresh", "-t", task, "-l", language]
    cmd += ["--limit", str(N_DOCS), "--scoring", "lm", "--store", str(store), "-q"]
    cmd += ["--data-dir", str(xtreme_dir), "--threads", "1", "--batch-tokens", "2048", *split]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return np.array([done.stderr[-500:]])
    records = _records(store, "fresh#lm", task, language)
    return np.asarray(list(records["logits" if task == "xnli" else "scores"]), dtype=np.float64)


def _torch_setup() -> str:
    import torch

    return (
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads, default dtype {torch.get_default_dtype()}"
    )


@pytest.mark.parametrize(
    ("kind", "task", "language"),
    [("gpt2", "xnli", lang) for lang in XNLI_LANGS]
    + [("llama", "xnli", lang) for lang in XNLI_LANGS]
    + [("llama", "xcopa", lang) for lang in XCOPA_LANGS],
)
def test_imported_scores_equal_xcal_lm_scoring(
    mixed_store: dict[str, Path], xtreme_dir: Path, kind: str, task: str, language: str
) -> None:
    imported = _records(mixed_store["store"], f"{kind}-lmeval", task, language)
    ours = _records(mixed_store["store"], f"{kind}-xcal#lm", task, language)
    column = "logits" if task == "xnli" else "scores"
    assert list(imported["example_id"]) == list(ours["example_id"])
    assert len(imported["example_id"]) == N_DOCS
    np.testing.assert_array_equal(imported["label"], ours["label"])
    a = np.asarray(list(imported[column]), dtype=np.float64)
    b = np.asarray(list(ours[column]), dtype=np.float64)
    assert a.shape == b.shape == (N_DOCS, 3 if task == "xnli" else 2)
    # Sums of ~100 float32 log-probabilities: equal up to float32 rounding.
    if not np.allclose(a, b, rtol=1e-5, atol=1e-3):
        fresh = _fresh_process_scores(mixed_store["root"], xtreme_dir, kind, task, language)
        pytest.fail(
            f"lm-eval {a[:2].tolist()} != xcal in this process {b[:2].tolist()}; "
            f"xcal in a fresh process: {fresh[:2].tolist()}; {_torch_setup()}"
        )
    # Not vacuous: the options' scores differ by far more than the tolerance.
    assert np.ptp(a, axis=1).max() > 0.1


def test_import_records_decoder_runs_and_skips_generation(mixed_store: dict[str, Path]) -> None:
    s = open_store(mixed_store["store"])
    runs = s.runs()
    imported = runs[runs["model"].str.endswith("-lmeval")]
    assert len(imported) == 2 * len(XNLI_LANGS) + len(XCOPA_LANGS)
    assert set(imported["architecture"]) == {"decoder-only"}
    assert set(runs.loc[runs["model"] == "bert", "architecture"]) == {"encoder-only"}
    assert s.validate() == []
    from xcal.interop.lm_eval import read_lm_eval

    found = read_lm_eval(mixed_store["root"] / "out-llama")
    assert [(k.lm_eval_task, k.reason.split(":")[0]) for k in found.skipped] == [
        ("xnli_gen_en", "a generation task")
    ]


def test_analyze_runs_on_the_mixed_store(mixed_store: dict[str, Path]) -> None:
    import pandas as pd

    out = mixed_store["root"] / "report"
    result = CliRunner().invoke(
        app,
        [
            "analyze",
            str(mixed_store["store"]),
            "--baseline",
            "bert",
            "--out",
            str(out),
            "--n-boot",
            "50",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out / "results.csv")
    de = rows[(rows["task"] == "xnli") & (rows["language"] == "de")]
    diffs = de[(de["comparison"] == "difference") & (de["metric"] == "accuracy")]
    # Imported decoder runs pair with the encoder baseline on the same examples.
    assert {"gpt2-lmeval", "llama-lmeval", "gpt2-xcal#lm"} <= set(diffs["system"])
    assert set(de.loc[de["system"] == "llama-lmeval", "architecture"]) == {"decoder-only"}
