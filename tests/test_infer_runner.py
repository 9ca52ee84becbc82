"""The grid runner on tiny models and the real XTREME sample (a few examples per cell).

Resumption, fingerprints, shards, manifests and the errors raised before any
model is loaded.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcal.infer import (
    Grid,
    GridError,
    InferInputError,
    ModelSpec,
    PerturbationSpec,
    RunOptions,
    TaskSpec,
    grid_from_dict,
    parse_shard,
    run_grid,
    shard_cells,
    summarize,
)
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
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from xcal.models.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("tiny-runner")
    return {
        "cls": str(make_tiny_model(root / "bert-cls", "bert", head="classification", num_labels=3)),
        "cls2": str(
            make_tiny_model(root / "bert-cls2", "bert", head="classification", num_labels=2)
        ),
        "qa": str(make_tiny_model(root / "bert-qa", "bert", head="qa")),
        "bert": str(make_tiny_model(root / "bert", "bert")),
        "gpt2": str(make_tiny_model(root / "gpt2", "gpt2")),
    }


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the runner loads any weights."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("weights were loaded before the input was validated")

    monkeypatch.setattr("xcal.infer.runner.load_for", refuse)


def _run(grid: Grid, store: Path, data: Path, **options: Any) -> list[Any]:
    # CPU unless a test asks otherwise, so manifests and numbers match on a GPU machine too.
    opts = RunOptions(**{"limit": 12, "batch_tokens": 2048, "device": "cpu", **options})
    return run_grid(grid, store, data_dir=data, options=opts)


# --------------------------------------------------------------------------- resumption


def test_resume_skips_stored_cells_and_changed_inputs_are_detected(
    tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    grid = Grid((ModelSpec(tiny["cls"]),), (TaskSpec("xnli", ("de", "fr", "sw")),))
    first = _run(grid, store, xtreme_dir)
    assert [r.status for r in first] == ["written"] * 3
    runs = open_store(store).runs()
    assert len(runs) == 3 and set(runs.language) == {"de", "fr", "sw"}
    before = {r.run_id: open_store(store).load_classification(r.run_id).logits for r in first}

    # A restart does no work and changes nothing.
    again = _run(grid, store, xtreme_dir)
    assert [r.status for r in again] == ["skipped"] * 3
    assert [r.run_id for r in again] == [r.run_id for r in first]
    assert len(open_store(store).runs()) == 3

    # Other inputs for the same cells (13 examples instead of 12) are refused ...
    changed = _run(grid, store, xtreme_dir, limit=13)
    assert [r.status for r in changed] == ["failed"] * 3
    assert "another input fingerprint" in (changed[0].error or "")
    # ... unless asked to replace them.
    replaced = _run(grid, store, xtreme_dir, limit=13, overwrite=True)
    assert [r.status for r in replaced] == ["written"] * 3
    s = open_store(store)
    assert len(s.runs()) == 3
    for r in replaced:
        arrays = s.load_classification(r.run_id)
        assert arrays.logits.shape == (13, 3)
        # The first 12 examples give the same logits as before (batching does not matter).
        np.testing.assert_allclose(arrays.logits[:12], before[r.run_id], atol=1e-5)


def test_manifest_and_records(tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = ModelSpec(tiny["cls"], label="tiny-cls", intermediate_tasks=("mnli",), train_seed=3)
    grid = Grid(
        (spec,),
        (TaskSpec("xnli", ("de", "en")),),
        (PerturbationSpec(), PerturbationSpec("word_shuffle", 0.5, seed=7)),
    )
    results = _run(grid, store, xtreme_dir)
    assert [r.status for r in results] == ["written"] * 4
    s = open_store(store)
    runs = s.runs().set_index(["language", "perturbation"])
    clean, shuffled = runs.loc[("de", "none")], runs.loc[("de", "word_shuffle")]
    assert clean.model == "tiny-cls" and clean.architecture == "encoder-only"
    assert clean.intermediate_tasks == ("mnli",) and clean.train_seed == 3
    assert clean.n_examples == 12 and clean.n_classes == 3 and clean.device == "cpu"
    assert clean["dtype"] == "float32" and clean.model_revision.startswith("sha256:")
    assert shuffled.severity == 0.5 and shuffled.perturbation_seed == 7
    assert '"window"' in shuffled.perturbation_params  # the perturbation's parameters
    assert clean.input_fingerprint != shuffled.input_fingerprint
    # Example ids are the same across languages and perturbations; labels come from the data.
    ids = {key: list(s.load_classification(runs.loc[key].run_id).example_ids) for key in runs.index}
    assert len({tuple(v) for v in ids.values()}) == 1
    assert ids[("de", "none")][:2] == ["xnli-dev-000000", "xnli-dev-000001"]
    from xcal.tasks import get_task

    gold = [e.label for e in get_task("xnli").load(xtreme_dir, "de")[:12]]
    assert s.load_classification(clean.run_id).labels.tolist() == gold


def test_truncation_is_counted(tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from xcal.tasks import get_task

    grid = Grid((ModelSpec(tiny["cls"], max_length=80),), (TaskSpec("xnli", ("de",)),))
    (result,) = _run(grid, tmp_path / "store", xtreme_dir)
    tok = AutoTokenizer.from_pretrained(tiny["cls"])
    exs = get_task("xnli").load(xtreme_dir, "de")[:12]
    lengths = [
        len(x) for x in tok([e.premise for e in exs], [e.hypothesis for e in exs])["input_ids"]
    ]
    expected = sum(n > 80 for n in lengths)
    assert 0 < expected < 12
    assert result.n_truncated == expected
    assert open_store(tmp_path / "store").runs().n_truncated.tolist() == [expected]


def test_every_record_kind(tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    grids = [
        Grid((ModelSpec(tiny["qa"], label="qa"),), (TaskSpec("xquad", ("de",)),)),
        Grid(
            (ModelSpec(tiny["gpt2"], label="gpt2"),),
            (
                TaskSpec("tatoeba", ("deu",)),
                TaskSpec("xcopa", ("et",), split="val"),
                TaskSpec("pawsx", ("de",)),
            ),
        ),
        # An encoder without a multiple-choice head, allowed a (seeded) random one.
        Grid(
            (ModelSpec(tiny["bert"], label="bert", allow_new_head=True),),
            (TaskSpec("xcopa", ("et",), split="val"),),
        ),
    ]
    results = [r for g in grids for r in _run(g, store, xtreme_dir, top_k=5)]
    assert [r.status for r in results] == ["written"] * 5, [r.error for r in results]
    s = open_store(store)
    runs = s.runs().set_index(["model", "task"])
    # Decoder-only classification and multiple choice are scored by option log-likelihood.
    assert {m for m, t in runs.index if m.startswith("gpt2") and t != "tatoeba"} == {"gpt2#lm"}
    assert runs.loc[("gpt2#lm", "xcopa")].architecture == "decoder-only"
    mc = s.load_records(runs.loc[("gpt2#lm", "xcopa")].run_id)
    assert np.asarray(mc["scores"]).shape == (12, 2) and np.all(np.asarray(mc["scores"]) < 0)
    head = s.load_records(runs.loc[("bert", "xcopa")].run_id)
    assert np.asarray(head["scores"]).shape == (12, 2)
    assert runs.loc[("bert", "xcopa")].architecture == "encoder-only"
    qa = s.load_records(runs.loc[("qa", "xquad")].run_id)
    from xcal.tasks import get_task

    exs = {e.example_id: e for e in get_task("xquad").load(xtreme_dir, "de")}
    for qid, nbest, answers in zip(qa["example_id"], qa["nbest"], qa["answers"], strict=True):
        ctx = exs[qid].context
        assert nbest and len(nbest) <= 20
        for a in nbest:
            assert ctx[a["start_char"] : a["end_char"]] == a["text"]
        assert [x["text"] for x in answers] == [a.text for a in exs[qid].answers]
    # each question's paragraph, for the analysis's cluster bootstrap
    assert qa["unit"] == [exs[qid].unit for qid in qa["example_id"]]
    assert len(set(qa["unit"])) < len(qa["unit"])  # the first 12 questions share paragraphs
    ret = s.load_records(runs.loc[("gpt2", "tatoeba")].run_id)
    assert np.asarray(ret["scores"]).shape == (12, 5)
    assert all(len(c) == 5 for c in ret["candidate_ids"])
    assert [list(g) for g in ret["gold_ids"]] == [[f"tatoeba-{i:06d}"] for i in range(12)]
    # With --limit, Tatoeba keeps the first N pairs: candidates are the first N English lines.
    assert {c for row in ret["candidate_ids"] for c in row} <= {
        f"tatoeba-{i:06d}" for i in range(12)
    }


# --------------------------------------------------------------------------- shards


def test_shards_partition_the_grid(tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path) -> None:
    grid = Grid(
        (ModelSpec(tiny["cls"]),),
        (TaskSpec("xnli", ("de", "fr", "en", "sw", "zh")),),
        (PerturbationSpec(), PerturbationSpec("lowercase", 1.0)),
    )
    cells = grid.cells(xtreme_dir)
    assert len(cells) == 10
    for n in (1, 3, 4, 10, 13):
        parts = [shard_cells(cells, (i, n)) for i in range(n)]
        assert [c for p in parts for c in p] == cells  # disjoint, complete, in order
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # N jobs writing into one store cover the grid exactly once.
    store = tmp_path / "store"
    for i in range(3):
        run_grid(
            grid,
            store,
            data_dir=xtreme_dir,
            options=RunOptions(limit=6, device="cpu"),
            shard=(i, 3),
        )
    assert len(open_store(store).runs()) == 10
    assert {r.status for r in _run(grid, store, xtreme_dir, limit=6)} == {"skipped"}


def test_parse_shard_errors() -> None:
    assert parse_shard("0/1") == (0, 1)
    for bad in ("3/3", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(GridError, match="shard"):
            parse_shard(bad)


# --------------------------------------------------------------------------- bad input


@pytest.mark.usefixtures("no_loading")
@pytest.mark.parametrize(
    ("tasks", "perts", "message"),
    [
        (
            (TaskSpec("squad"),),
            (),
            r"unknown task 'squad' \(did you mean 'xquad'\?\); known: .*tatoeba",
        ),
        ((TaskSpec("xnli", ("de", "xx")),), (), r"language\(s\) xx .*available.*: ar, bg, de"),
        ((TaskSpec("tatoeba", ("xx",)),), (), r"available.*afr, amh"),
        ((TaskSpec("xnli", ("de",), split="train"),), (), "no split 'train'"),
        (
            (TaskSpec("xnli", ("de",)),),
            (PerturbationSpec("shuffle_everything", 0.5),),
            r"unknown perturbation .*known: char_delete.*, none, ",
        ),
    ],
)
def test_bad_grid_fails_before_loading(
    tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path, tasks: Any, perts: Any, message: str
) -> None:
    grid = Grid((ModelSpec(tiny["cls"]),), tasks, perts or (PerturbationSpec(),))
    with pytest.raises(InferInputError, match=message):
        _run(grid, tmp_path / "store", xtreme_dir)
    assert not (tmp_path / "store").exists()


@pytest.mark.usefixtures("no_loading")
@pytest.mark.parametrize(
    ("model", "task", "options", "message"),
    [
        ("cls", "pawsx", {}, r"3-label classification head but task 'pawsx' has 2 classes"),
        ("cls2", "xnli", {}, r"2-label classification head but task 'xnli' has 3 classes"),
        ("bert", "xnli", {}, r"has no classification head .*--allow-new-head"),
        ("bert", "xquad", {}, r"has no qa head"),
        ("bert", "xnli", {"scoring": "lm"}, "LM scoring needs a decoder-only"),
        ("gpt2", "xquad", {"scoring": "lm"}, "LM scoring does not apply"),
    ],
)
def test_model_task_mismatch_fails_before_loading(
    tiny: dict[str, str],
    xtreme_dir: Path,
    tmp_path: Path,
    model: str,
    task: str,
    options: dict,
    message: str,
) -> None:
    lang = {"pawsx": "de", "xnli": "de", "xquad": "de"}[task]
    grid = Grid((ModelSpec(tiny[model], **options),), (TaskSpec(task, (lang,)),))
    with pytest.raises(InferInputError, match=message):
        _run(grid, tmp_path / "store", xtreme_dir)


@pytest.mark.usefixtures("no_loading")
def test_all_problems_reported_together(
    tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(xtreme_dir / "pawsx", data / "pawsx")
    (data / "xnli").mkdir()
    (data / "xnli" / "dev-de.tsv").write_text("a\tb\tneutral\nbroken line\n", encoding="utf-8")
    (data / "xnli" / "dev-fr.tsv").write_text("", encoding="utf-8")
    grid = Grid(
        (ModelSpec(tiny["cls"]), ModelSpec(tiny["cls2"])),
        (TaskSpec("xnli", ("de", "fr")), TaskSpec("pawsx", ("de",))),
    )
    with pytest.raises(InferInputError) as info:
        _run(grid, tmp_path / "store", data)
    text = str(info.value)
    assert "dev-de.tsv line 2: expected 3 tab-separated fields" in text
    assert "dev-fr.tsv: no examples" in text
    assert "3-label classification head but task 'pawsx'" in text
    assert "2-label classification head but task 'xnli'" in text


@pytest.mark.usefixtures("no_loading")
def test_missing_model_and_remote_code(
    tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path
) -> None:
    import json

    grid = Grid((ModelSpec(str(tmp_path / "nope")),), (TaskSpec("xnli", ("de",)),))
    with pytest.raises(InferInputError, match="nope"):
        _run(grid, tmp_path / "store", xtreme_dir)
    sneaky = tmp_path / "sneaky"
    shutil.copytree(tiny["cls"], sneaky)
    cfg = json.loads((sneaky / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "evil.Model"}
    (sneaky / "config.json").write_text(json.dumps(cfg))
    grid = Grid((ModelSpec(str(sneaky)),), (TaskSpec("xnli", ("de",)),))
    with pytest.raises(InferInputError, match="asks to run its own Python code"):
        _run(grid, tmp_path / "store", xtreme_dir)


def test_fp16_on_cpu_refused(tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path) -> None:
    grid = Grid((ModelSpec(tiny["cls"]),), (TaskSpec("xnli", ("de",)),))
    with pytest.raises(InferInputError, match="fp16 needs a GPU"):
        _run(grid, tmp_path / "store", xtreme_dir, dtype="fp16", device="cpu")


# --------------------------------------------------------------------------- config files


def test_grid_from_config_files(tmp_path: Path, xtreme_dir: Path) -> None:
    from xcal.infer import read_config

    toml = tmp_path / "grid.toml"
    toml.write_text(
        """
store = "preds"
batch_tokens = 4096
models = ["m1"]
languages = ["de", "fr"]
perturbations = ["none", "word_shuffle:0.25"]
seeds = [0, 1]

[[model]]
name = "m2"
label = "m2-mnli"
intermediate_tasks = ["mnli"]

[[task]]
name = "xnli"

[[task]]
name = "tatoeba"
languages = ["deu"]
""",
        encoding="utf-8",
    )
    cfg = grid_from_dict(read_config(toml), str(toml))
    assert [m.store_name for m in cfg.grid.models] == ["m1", "m2-mnli"]
    assert cfg.grid.models[1].intermediate_tasks == ("mnli",)
    assert [(t.name, t.languages) for t in cfg.grid.tasks] == [
        ("xnli", ("de", "fr")),
        ("tatoeba", ("deu",)),
    ]
    assert [p.label for p in cfg.grid.perturbations] == [
        "none",
        "word_shuffle:0.25",
        "word_shuffle:0.25:1",
    ]
    assert cfg.settings == {"store": "preds", "batch_tokens": 4096}
    assert len(cfg.grid.cells(xtreme_dir)) == 2 * (2 + 1) * 3

    yaml_file = tmp_path / "grid.yaml"
    yaml_file.write_text("models: [m1]\ntasks: [xnli]\nlanguages: all\n", encoding="utf-8")
    cells = grid_from_dict(read_config(yaml_file)).grid.cells(xtreme_dir)
    assert len(cells) == 15  # every XNLI language in the data

    bad = tmp_path / "bad.toml"
    bad.write_text('models = ["m"]\ntasks = ["xnli"]\nbatch_size = 3\n', encoding="utf-8")
    with pytest.raises(GridError, match=r"unknown key 'batch_size'"):
        read_config(bad)
    bad.write_text('models = ["m"\n', encoding="utf-8")
    with pytest.raises(GridError, match="invalid TOML"):
        read_config(bad)
    with pytest.raises(GridError, match="unknown key"):
        grid_from_dict({"models": [{"name": "m", "pooling_mode": "cls"}], "tasks": ["xnli"]})


def test_perturbation_spec_parsing() -> None:
    assert PerturbationSpec.parse("word_shuffle:0.25:seed=3") == PerturbationSpec(
        "word_shuffle", 0.25, 3
    )
    for bad, message in [
        ("word_shuffle", "expected name:severity"),
        ("word_shuffle:x", "not a number"),
        ("word_shuffle:1.5", r"expected a value <= 1.0"),
        ("none:0.5", "takes no severity"),
        ("word_shuffle:0.5:seed=x", "not an int"),
    ]:
        with pytest.raises(GridError, match=message):
            PerturbationSpec.parse(bad)


def test_duplicate_cells_refused(xtreme_dir: Path) -> None:
    with pytest.raises(GridError, match="listed twice"):
        Grid((ModelSpec("a"), ModelSpec("a")), (TaskSpec("xnli"),))
    grid = Grid((ModelSpec("a"),), (TaskSpec("xnli", ("de",)), TaskSpec("xnli", ("de",))))
    with pytest.raises(GridError, match="same cell twice"):
        grid.cells(xtreme_dir)


def test_warnings_do_not_leak(xtreme_dir: Path) -> None:
    # Reading XNLI (real labels) raises no placeholder warning.
    from xcal.tasks import get_task

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_task("xnli").load(xtreme_dir, "de")


def test_example_range(tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    grid = Grid((ModelSpec(tiny["cls"]),), (TaskSpec("xnli", ("de", "en"), examples="100:110"),))
    results = _run(grid, store, xtreme_dir)
    assert [r.status for r in results] == ["written", "written"]
    s = open_store(store)
    runs = s.runs()
    assert set(runs.split) == {"dev[100:110]"}
    ids = list(s.load_classification(runs.run_id[0]).example_ids)
    assert ids == [f"xnli-dev-{i:06d}" for i in range(100, 110)]
    with pytest.raises(GridError, match="start < stop"):
        TaskSpec("xnli", examples="10:5")
    with pytest.raises(GridError, match="'start:stop'"):
        TaskSpec("xnli", examples="first-ten")
    late = Grid((ModelSpec(tiny["cls"]),), (TaskSpec("xnli", ("de",), examples="5000:"),))
    with pytest.raises(InferInputError, match="starts at 5000 but de has 2490 examples"):
        _run(late, store, xtreme_dir)


@pytest.mark.usefixtures("no_loading")
def test_unpinnable_revision_and_missing_device_refused(
    tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path
) -> None:
    grid = Grid((ModelSpec(tiny["cls"], revision="v1.0"),), (TaskSpec("xnli", ("de",)),))
    with pytest.raises(InferInputError, match=r"pinning revision 'v1\.0' is not supported"):
        _run(grid, tmp_path / "store", xtreme_dir)
    import torch

    if not torch.cuda.is_available():
        grid = Grid((ModelSpec(tiny["cls"]),), (TaskSpec("xnli", ("de",)),))
        with pytest.raises(InferInputError, match="CUDA is not available"):
            _run(grid, tmp_path / "store", xtreme_dir, device="cuda")


def test_languages_all(xtreme_dir: Path) -> None:
    cfg = grid_from_dict({"models": ["m"], "tasks": ["pawsx"], "languages": ["all"]})
    assert [c.language for c in cfg.grid.cells(xtreme_dir)] == [
        "de",
        "en",
        "es",
        "fr",
        "ja",
        "ko",
        "zh",
    ]


def test_a_run_stored_meanwhile_by_another_job_counts_as_reused(
    tiny: dict[str, str], xtreme_dir: Path, tmp_path: Path
) -> None:
    """Two jobs that both found a cell missing: only the one whose write stored it says written.

    The store below answers "not stored" when the runner looks (as it would
    for a job that looked before the other job's write landed); the write is
    then a no-op, which must be counted as reused, not written.
    """
    from xcal.store import PredictionStore

    grid = Grid((ModelSpec(tiny["cls"]),), (TaskSpec("xnli", ("de", "fr")),))

    class LookedTooEarly(PredictionStore):
        """Says "not stored" when asked; the other job's write lands just before ours."""

        def has_run(self, manifest: Any) -> bool:
            return False

        def write_run(self, manifest: Any, records: Any, **kwargs: Any) -> str:
            open_store(self.root).write_run(manifest, records, **kwargs)  # the other job
            return super().write_run(manifest, records, **kwargs)

        def write_run_outcome(self, manifest: Any, records: Any, **kwargs: Any) -> Any:
            open_store(self.root).write_run(manifest, records, **kwargs)  # the other job
            return super().write_run_outcome(manifest, records, **kwargs)

    empty = tmp_path / "empty"
    second = run_grid(
        grid,
        LookedTooEarly(empty),
        data_dir=xtreme_dir,
        options=RunOptions(limit=12, batch_tokens=2048),
    )
    assert [r.status for r in second] == ["skipped"] * 2, [r.error for r in second]
    assert summarize(second) == {"written": 0, "skipped": 2, "failed": 0, "cut": 0}
    assert len(open_store(empty).runs()) == 2
