"""``hf:PATH`` task data: Hugging Face data sets built here from the shared XTREME files.

Every data set must give exactly the examples the XTREME file reader gives
for the same rows, and bad rows the reader's message with the row named.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

datasets = pytest.importorskip("datasets")

from xcal.tasks import MissingDataError, TaskDataError, get_task  # noqa: E402

N = 25
XNLI_HUB_ORDER = ["entailment", "neutral", "contradiction"]  # the hub's ClassLabel order


def tsv_rows(path: Path, n: int = N) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").split("\n")[:n]
    return [line.split("\t") for line in lines]


def xnli_dataset(xtreme: Path, languages: tuple[str, ...], *, with_language: bool = True) -> Any:
    features = {
        "premise": datasets.Value("string"),
        "hypothesis": datasets.Value("string"),
        "label": datasets.ClassLabel(names=XNLI_HUB_ORDER),
    }
    rows = []
    for lang in languages:
        for premise, hypothesis, label in tsv_rows(xtreme / "xnli" / f"dev-{lang}.tsv"):
            row = {"premise": premise, "hypothesis": hypothesis}
            row["label"] = XNLI_HUB_ORDER.index(label)
            if with_language:
                row["language"] = lang
            rows.append(row)
    if with_language:
        features["language"] = datasets.Value("string")
    return datasets.Dataset.from_list(rows, features=datasets.Features(features))


def test_saved_dataset_dict_gives_the_file_readers_examples(
    tmp_path: Path, xtreme_dir: Path
) -> None:
    path = tmp_path / "xnli"
    datasets.DatasetDict({"validation": xnli_dataset(xtreme_dir, ("en", "de", "sw"))}).save_to_disk(
        str(path)
    )
    task = get_task("xnli")
    source = f"hf:{path}"
    assert task.languages(source) == ["de", "en", "sw"]
    for lang in ("de", "sw"):
        # The hub's label order (entailment first) is read by name into xcal's.
        assert task.load(source, lang) == task.load(xtreme_dir, lang)[:N]
    with pytest.raises(
        MissingDataError,
        match=r"has no rows for language\(s\) fr; its 'language' column has de, en, sw",
    ):
        task.load(source, "fr")
    with pytest.raises(MissingDataError, match=r"no split 'test'; it has validation"):
        task.load(source, "de", "test")


def test_pawsx_from_a_dataset_without_a_language_column(tmp_path: Path, xtreme_dir: Path) -> None:
    rows = [
        {"sentence1": a, "sentence2": b, "label": int(c)}
        for a, b, c in tsv_rows(xtreme_dir / "pawsx" / "dev-de.tsv")
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "pawsx-de"))
    task = get_task("pawsx")
    source = f"hf:{tmp_path / 'pawsx-de'}"
    assert task.load(source, "de") == task.load(xtreme_dir, "de")[:N]
    with pytest.raises(MissingDataError, match="no 'language' column, so it holds one language"):
        task.check_languages(source, ["de", "fr"])


def test_xcopa_jsonl_read_by_the_json_builder(xtreme_dir: Path) -> None:
    task = get_task("xcopa")
    source = f"hf:{xtreme_dir / 'xcopa' / 'val-et.jsonl'}"
    assert task.load(source, "et", "val") == task.load(xtreme_dir, "et", "val")


def test_squad_format_qa(tmp_path: Path, xtreme_dir: Path) -> None:
    data = json.loads((xtreme_dir / "xquad" / "xquad.de.json").read_text(encoding="utf-8"))
    rows = []
    for article in data["data"][:2]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows.append(
                    {
                        "id": qa["id"],
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": {
                            "text": [a["text"] for a in qa["answers"]],
                            "answer_start": [a["answer_start"] for a in qa["answers"]],
                        },
                    }
                )
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(
        str(tmp_path / "xquad")
    )
    task = get_task("xquad")
    ours = task.load(f"hf:{tmp_path / 'xquad'}", "de")
    assert ours == task.load(xtreme_dir, "de")[: len(rows)]
    # A gold answer that is not at its offset: the reader's message, with the row.
    rows[3]["answers"]["answer_start"] = [a + 1 for a in rows[3]["answers"]["answer_start"]]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(
        str(tmp_path / "bad")
    )
    with pytest.raises(
        TaskDataError,
        match=r"\[test\]: question '.*' \(row 3\): answers\[0\] text .* does not match the context",
    ):
        task.load(f"hf:{tmp_path / 'bad'}", "de")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"label": "maybe"},
            r"row 7: unknown label 'maybe'; expected one of contradiction, entailment, neutral",
        ),
        ({"premise": " "}, r"row 7: empty sentence"),
        ({"premise": None}, r"row 7: 'premise' is NoneType, not text"),
    ],
)
def test_bad_rows_get_the_readers_messages(
    tmp_path: Path, xtreme_dir: Path, change: dict[str, Any], expected: str
) -> None:
    rows = [
        {"premise": p, "hypothesis": h, "label": lab}
        for p, h, lab in tsv_rows(xtreme_dir / "xnli" / "dev-de.tsv")
    ]
    rows[7].update(change)
    path = tmp_path / "xnli.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(TaskDataError, match=expected):
        get_task("xnli").load(f"hf:{path}", "de")


def test_integer_labels_without_names_are_refused(tmp_path: Path, xtreme_dir: Path) -> None:
    rows = [
        {"premise": p, "hypothesis": h, "label": XNLI_HUB_ORDER.index(lab)}
        for p, h, lab in tsv_rows(xtreme_dir / "xnli" / "dev-de.tsv")
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ints"))
    with pytest.raises(TaskDataError, match=r"row 0: label 1 has no class name"):
        get_task("xnli").load(f"hf:{tmp_path / 'ints'}", "de")


def test_missing_columns_paths_and_tasks(tmp_path: Path) -> None:
    datasets.Dataset.from_list([{"text": "a", "label": 0}]).save_to_disk(str(tmp_path / "x"))
    with pytest.raises(
        TaskDataError,
        match="expected columns premise, hypothesis, label or sentence1, sentence2, label; it has text, label",
    ):
        get_task("xnli").load(f"hf:{tmp_path / 'x'}", "en")
    with pytest.raises(MissingDataError, match="no such file or directory"):
        get_task("xnli").load(f"hf:{tmp_path / 'missing'}", "en")
    with pytest.raises(TaskDataError, match="retrieval tasks read the XTREME files only"):
        get_task("tatoeba").candidates(f"hf:{tmp_path / 'x'}", "deu")


@pytest.mark.slow
def test_infer_reads_hf_data_to_the_same_fingerprint(tmp_path: Path, xtreme_dir: Path) -> None:
    """The same examples from a data set are the same stored cell: the second run is skipped."""
    from typer.testing import CliRunner

    from xcal.cli import app
    from xcal.models.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "tiny", "bert", head="classification")
    datasets.DatasetDict(
        {"validation": xnli_dataset(xtreme_dir, ("de",), with_language=False)}
    ).save_to_disk(str(tmp_path / "xnli-de"))
    common = ["infer", "--model", str(model), "--task", "xnli", "--languages", "de"]
    common += ["--store", str(tmp_path / "store"), "--limit", str(N), "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = CliRunner().invoke(app, [*common, "--data-dir", str(xtreme_dir)])
        assert first.exit_code == 0, first.output
        second = CliRunner().invoke(app, [*common, "--data", f"hf:{tmp_path / 'xnli-de'}"])
    assert second.exit_code == 0, second.output
    assert "0 written, 1 already stored" in second.output
    bad = CliRunner().invoke(app, [*common, "--data", f"hf:{tmp_path / 'nope'}"])
    assert bad.exit_code == 2 and "no such file or directory" in bad.output
