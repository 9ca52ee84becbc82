"""``xcal import lm-eval`` on small lm-eval 0.4.x output folders written here.

The files follow what lm-eval 0.4.13 writes with ``--log_samples`` (see
tests/test_interop_lm_eval_harness.py for the real thing): log-likelihoods
as strings, ``arguments`` as ``gen_args_<i>`` objects, ``target`` as a string.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from xcal.cli import app
from xcal.interop.lm_eval import LmEvalImportError, import_lm_eval, read_lm_eval, resolve_task
from xcal.store import open_store

DATE = "2026-12-04T10-00-00.000000"
XNLI_WORDS = ("Yes", "Also", "No")  # lm-eval's option order: entailment, neutral, contradiction


def xnli_sample(doc_id: int, scores: list[float], target: int, premise: str = "P") -> dict:
    hyp = f"H{doc_id}"
    args = {
        f"gen_args_{k}": {"arg_0": "", "arg_1": f"{premise}{doc_id}, right? {w}, {hyp}"}
        for k, w in enumerate(XNLI_WORDS)
    }
    return {
        "doc_id": doc_id,
        "doc": {"premise": f"{premise}{doc_id}", "hypothesis": hyp},
        "target": str(target),
        "arguments": args,
        "resps": [[[str(s), "False"]] for s in scores],
        "filtered_resps": [[str(s), "False"] for s in scores],
        "filter": "none",
        "metrics": ["acc"],
        "doc_hash": f"hash-{premise}{doc_id}",
        "acc": 1.0,
    }


def copa_sample(doc_id: int, scores: list[float], target: Any) -> dict:
    return {
        "doc_id": doc_id,
        "doc": {"premise": f"P{doc_id}."},
        "target": str(target),
        "arguments": {
            "gen_args_0": {"arg_0": f"P{doc_id} because", "arg_1": " a."},
            "gen_args_1": {"arg_0": f"P{doc_id} because", "arg_1": " b."},
        },
        "resps": [[[str(s), "False"]] for s in scores],
        "filtered_resps": [[str(s), "False"] for s in scores],
        "filter": "none",
        "doc_hash": f"copa-{doc_id}",
    }


def write_results(
    folder: Path,
    tasks: dict[str, tuple[str, list[dict] | None]],
    *,
    model: str = "org/decoder-1b",
    splits: dict[str, str] | None = None,
) -> Path:
    """An lm-eval output folder: {task: (output_type, samples)}."""
    folder.mkdir(parents=True, exist_ok=True)
    configs = {}
    for name, (output_type, samples) in tasks.items():
        configs[name] = {
            "task": name,
            "output_type": output_type,
            "validation_split": (splits or {}).get(name, "validation"),
            "num_fewshot": 0,
        }
        if samples is not None:
            lines = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples)
            (folder / f"samples_{name}_{DATE}.jsonl").write_text(lines, encoding="utf-8")
    results = {
        "results": {name: {"acc,none": 0.5} for name in tasks},
        "configs": configs,
        "config": {"model": "hf", "model_args": f"pretrained={model},dtype=float32"},
        "lm_eval_version": "0.4.13",
        "model_name": model,
    }
    path = folder / f"results_{DATE}.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    return path


def xnli_folder(folder: Path, **kwargs: Any) -> Path:
    samples = [xnli_sample(i, [-1.0 - i, -2.0, -3.0 + 0.5 * i], target=i % 3) for i in (2, 0, 1, 3)]
    write_results(
        folder,
        {
            "xnli_en": ("multiple_choice", samples),
            "mgsm_direct_de": ("generate_until", None),
            "arc_easy": ("multiple_choice", [copa_sample(0, [-1.0, -2.0], 0)]),
        },
        **kwargs,
    )
    return folder


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()
    }


def test_task_names_map_to_tasks_and_languages() -> None:
    assert resolve_task("xnli_de")[:2] == ("xnli", "de")
    assert resolve_task("paws_zh")[:2] == ("pawsx", "zh")
    assert resolve_task("xcopa_local_ht")[:2] == ("xcopa", "ht")
    assert resolve_task("xwinograd_jp")[:2] == ("xwinograd", "ja")
    assert resolve_task("xstorycloze_sw")[:2] == ("xstorycloze", "sw")
    assert resolve_task("belebele_zho_Hans")[:2] == ("belebele", "zho_Hans")
    assert resolve_task("hellaswag") is None
    assert resolve_task("xnli") is None  # a group, no language


def test_xnli_options_are_reordered_into_xcal_labels(tmp_path: Path) -> None:
    found = read_lm_eval(xnli_folder(tmp_path / "out"))
    (run,) = found.runs
    m = run.manifest
    assert (m.task, m.split, m.language, m.record_kind) == ("xnli", "dev", "en", "classification")
    assert (m.model, m.architecture, m.n_classes, m.n_examples) == (
        "org/decoder-1b",
        "decoder-only",
        3,
        4,
    )
    # Sorted by doc_id; xcal's labels are (contradiction, entailment, neutral).
    assert run.records["example_id"] == [f"xnli-dev-{i:06d}" for i in range(4)]
    logits = run.records["logits"]
    # doc 1: lm-eval (entailment, neutral, contradiction) = (-2, -2, -2.5)
    np.testing.assert_array_equal(logits[1], [-2.5, -2.0, -2.0])
    # doc 3: (-4, -2, -1.5); target 0 = entailment = xcal label 1
    np.testing.assert_array_equal(logits[3], [-1.5, -4.0, -2.0])
    # lm-eval targets 0, 1, 2, 0 (entailment, neutral, contradiction, entailment)
    assert run.records["label"].tolist() == [1, 2, 0, 1]
    assert [(s.lm_eval_task, s.reason.split(":")[0]) for s in found.skipped] == [
        (
            "arc_easy",
            "not a known multilingual task family; name its task and language with "
            "--task-map arc_easy=TASK",
        ),
        ("mgsm_direct_de", "a generation task"),
    ]


def test_task_map_imports_any_multiple_choice_task(tmp_path: Path) -> None:
    found = read_lm_eval(xnli_folder(tmp_path / "out"), task_map={"arc_easy": "arc:en"})
    arc = next(r for r in found.runs if r.lm_eval_task == "arc_easy")
    assert (arc.manifest.task, arc.manifest.language, arc.manifest.split) == (
        "arc",
        "en",
        "validation",
    )
    assert arc.manifest.record_kind == "multiple_choice"
    assert arc.records["example_id"] == ["arc-validation-000000"]


def test_import_writes_once_and_twice_is_a_no_op(tmp_path: Path) -> None:
    out = xnli_folder(tmp_path / "out")
    store = tmp_path / "store"
    first = import_lm_eval(out, store)
    assert first.status == ["written"]
    before = snapshot(store)
    again = import_lm_eval(out, store)
    assert again.status == ["already stored"] and again.run_ids == first.run_ids
    assert snapshot(store) == before
    s = open_store(store)
    arrays = s.load_classification(first.run_ids[0])
    assert arrays.labels.tolist() == [1, 2, 0, 1]
    assert s.validate() == []


def test_two_models_pair_on_doc_ids(tmp_path: Path) -> None:
    a = xnli_folder(tmp_path / "a", model="org/a")
    b = xnli_folder(tmp_path / "b", model="org/b")
    found = import_lm_eval([a, b], tmp_path / "store")
    ids = [run.records["example_id"] for run in found.runs]
    assert ids[0] == ids[1] and len(found.runs) == 2
    assert sorted(open_store(tmp_path / "store").runs()["model"]) == ["org/a", "org/b"]


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["import", "lm-eval", *args])


def assert_refused(tmp_path: Path, folders: list[Path], *expected: str) -> None:
    """Exit 2, the message names what is expected, and the store is untouched."""
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    before = snapshot(store)
    result = run_cli(*map(str, folders), "--store", str(store))
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    for text in expected:
        assert text in message, message
    assert "nothing was written" in message
    assert snapshot(store) == before


def test_mismatched_doc_ids_between_models(tmp_path: Path) -> None:
    a = xnli_folder(tmp_path / "a", model="org/a")
    b = tmp_path / "b"
    samples = [xnli_sample(i, [-1.0, -2.0, -3.0], 0) for i in range(3)]
    samples[2] = xnli_sample(2, [-1.0, -2.0, -3.0], 0, premise="Other")
    write_results(b, {"xnli_en": ("multiple_choice", samples)}, model="org/b")
    assert_refused(
        tmp_path,
        [a, b],
        f"samples_xnli_en_{DATE}.jsonl line 3: doc_id 2 is another document",
        "line 1",
        "would not pair",
    )


def test_samples_of_an_older_lm_eval(tmp_path: Path) -> None:
    old = xnli_sample(0, [-1.0, -2.0, -3.0], 0)
    old["arguments"] = [["", "a"], ["", "b"], ["", "c"]]
    write_results(tmp_path / "out", {"xnli_de": ("multiple_choice", [old])})
    assert_refused(tmp_path, [tmp_path / "out"], "line 1: 'arguments' is a list", "before 0.4.2")


def test_samples_written_as_a_json_array(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_results(out, {"xnli_de": ("multiple_choice", None)})
    sample = xnli_sample(0, [-1.0, -2.0, -3.0], 0)
    (out / f"samples_xnli_de_{DATE}.jsonl").write_text(json.dumps([sample], indent=2))
    assert_refused(tmp_path, [out], "line 1: a JSON array", "0.4.2 and later")


def test_results_of_another_major_version(tmp_path: Path) -> None:
    path = write_results(tmp_path / "out", {"xnli_de": ("multiple_choice", None)})
    data = json.loads(path.read_text())
    data["lm_eval_version"] = "0.5.0"
    path.write_text(json.dumps(data))
    assert_refused(tmp_path, [tmp_path / "out"], "written by lm-eval 0.5.0")


def test_a_task_without_choices(tmp_path: Path) -> None:
    sample = copa_sample(0, [-1.0, -2.0], 0)
    sample["arguments"] = {"gen_args_0": sample["arguments"]["gen_args_0"]}
    sample["filtered_resps"] = sample["filtered_resps"][:1]
    write_results(tmp_path / "out", {"xcopa_et": ("multiple_choice", [sample])})
    assert_refused(
        tmp_path, [tmp_path / "out"], f"samples_xcopa_et_{DATE}.jsonl line 1: 1 answer option"
    )


def test_option_count_that_changes(tmp_path: Path) -> None:
    good = copa_sample(0, [-1.0, -2.0], 0)
    bad = copa_sample(1, [-1.0, -2.0], 0)
    bad["arguments"]["gen_args_2"] = {"arg_0": "P1 because", "arg_1": " c."}
    bad["filtered_resps"].append(["-3.0", "False"])
    write_results(tmp_path / "out", {"xcopa_et": ("multiple_choice", [good, bad])})
    assert_refused(tmp_path, [tmp_path / "out"], "line 2: 3 options, but line 1 has 2")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("filtered_resps", [["nan", "False"], ["-1", "False"]], "option 0 log-likelihood 'nan'"),
        ("filtered_resps", [["-1", "False"]], "option 1 has no [log-likelihood, is_greedy]"),
        ("target", "7", "target '7' is neither an option index"),
        ("doc_id", -1, "'doc_id' must be a non-negative int"),
    ],
)
def test_malformed_samples_lines(tmp_path: Path, field: str, value: Any, expected: str) -> None:
    bad = copa_sample(1, [-1.0, -2.0], 1)
    bad[field] = value
    bad.pop("resps")
    write_results(
        tmp_path / "out", {"xcopa_et": ("multiple_choice", [copa_sample(0, [-1, -2], 0), bad])}
    )
    assert_refused(tmp_path, [tmp_path / "out"], f"line 2: {expected}")


def test_xnli_options_in_an_unexpected_order(tmp_path: Path) -> None:
    sample = xnli_sample(0, [-1.0, -2.0, -3.0], 0)
    args = sample["arguments"]
    args["gen_args_0"], args["gen_args_2"] = args["gen_args_2"], args["gen_args_0"]
    write_results(tmp_path / "out", {"xnli_en": ("multiple_choice", [sample])})
    assert_refused(tmp_path, [tmp_path / "out"], "line 1: option 0 should be the entailment option")


def test_missing_samples_file(tmp_path: Path) -> None:
    write_results(tmp_path / "out", {"xnli_de": ("multiple_choice", None)})
    assert_refused(tmp_path, [tmp_path / "out"], "has no samples file", "--log_samples")


def test_a_conflicting_stored_run_needs_overwrite(tmp_path: Path) -> None:
    out = xnli_folder(tmp_path / "out")
    import_lm_eval(out, tmp_path / "store")
    # The same model and task evaluated on other documents.
    samples = [xnli_sample(i, [-1.0, -2.0, -3.0], 0, premise="Q") for i in range(2)]
    write_results(tmp_path / "new", {"xnli_en": ("multiple_choice", samples)})
    assert_refused(tmp_path, [tmp_path / "new"], "already in the store with other inputs")
    result = run_cli(str(tmp_path / "new"), "--store", str(tmp_path / "store"), "--overwrite")
    assert result.exit_code == 0, result.output
    (run_id,) = open_store(tmp_path / "store").runs()["run_id"]
    assert len(open_store(tmp_path / "store").load_classification(run_id).labels) == 2


def test_cli_lists_runs_and_skipped_tasks(tmp_path: Path) -> None:
    result = run_cli(str(xnli_folder(tmp_path / "out")), "--store", str(tmp_path / "store"))
    assert result.exit_code == 0, result.output
    assert "skipped mgsm_direct_de (org/decoder-1b): a generation task" in result.output
    assert "1 written, 0 already stored, 2 task(s) skipped" in result.output
    bad = run_cli(str(tmp_path / "out"), "--store", str(tmp_path / "s2"), "--task-map", "x=y")
    assert bad.exit_code == 2 and "NAME=TASK:LANG" in bad.output
    assert not os.path.exists(tmp_path / "s2")


def test_python_api_raises_the_import_error(tmp_path: Path) -> None:
    with pytest.raises(LmEvalImportError, match="no such directory"):
        read_lm_eval(tmp_path / "missing")
    with pytest.raises(LmEvalImportError, match="one model, but 2 results files"):
        read_lm_eval([xnli_folder(tmp_path / "a"), xnli_folder(tmp_path / "b")], model="label")


def test_store_level_api(tmp_path: Path) -> None:
    from xcal.store import import_lm_eval as from_store

    assert from_store(xnli_folder(tmp_path / "out"), tmp_path / "store").status == ["written"]


def test_doc_ids_checked_against_runs_already_stored(tmp_path: Path) -> None:
    store = tmp_path / "store"
    import_lm_eval(xnli_folder(tmp_path / "a", model="org/a"), store)
    before = snapshot(store)
    # Another model's results on other documents behind the same doc ids.
    samples = [xnli_sample(i, [-1.0, -2.0, -3.0], target=(i + 1) % 3) for i in range(4)]
    write_results(tmp_path / "b", {"xnli_en": ("multiple_choice", samples)}, model="org/b")
    with pytest.raises(
        LmEvalImportError,
        match=r"xnli-dev-000000 has gold label 2 here but 1 in the stored run of 'org/a'",
    ):
        import_lm_eval(tmp_path / "b", store)
    assert snapshot(store) == before


def test_winograd_style_gold_from_acc(tmp_path: Path) -> None:
    """XWinograd logs the shared continuation as target; two options: gold from acc."""

    def sample(doc_id: int, scores: list[float], acc: float) -> dict:
        row = copa_sample(doc_id, scores, " went home.")
        row["arguments"] = {
            f"gen_args_{k}": {"arg_0": f"Anna told {who}", "arg_1": " went home."}
            for k, who in enumerate(("Bob", "Carl"))
        }
        row["acc"] = acc
        return row

    rows = [
        sample(0, [-1.0, -2.0], 1.0),
        sample(1, [-1.0, -2.0], 0.0),
        sample(2, [-3.0, -2.0], 1.0),
    ]
    write_results(tmp_path / "out", {"xwinograd_jp": ("multiple_choice", rows)})
    (run,) = read_lm_eval(tmp_path / "out").runs
    assert run.manifest.language == "ja"
    assert run.records["label"].tolist() == [0, 1, 1]
