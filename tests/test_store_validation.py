"""Bad runs get clear errors naming the file (or run), the field and the row.

Each defect is tested twice: refused when a caller tries to write it, and
reported (with the file path) when a file that has it is found in a store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _builders import run_manifest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcal.store import (
    ARROW_SCHEMA,
    PredictionStore,
    RunManifest,
    SchemaVersionError,
    StoreError,
    StoreValidationError,
    open_store,
)

manifest = run_manifest


def records(**changes: Any) -> dict[str, Any]:
    base = {
        "example_id": ["x0", "x1", "x2"],
        "logits": np.array([[1.0, 2.0, 3.0], [0.5, 0.25, 0.0], [-1.0, 0.0, 1.0]]),
        "label": np.array([2, 0, 1]),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def write_error(m: RunManifest, recs: dict[str, Any], **kwargs: Any) -> StoreValidationError:
    store = open_store(tempfile.mkdtemp())
    with pytest.raises(StoreValidationError) as info:
        store.write_run(m, recs, **kwargs)
    assert store.runs().empty  # nothing was written
    return info.value


def only_problem(error: StoreValidationError) -> Any:
    assert len(error.problems) == 1, error.problems
    return error.problems[0]


# --------------------------------------------------------------------------- refused on write


def test_missing_column() -> None:
    p = only_problem(write_error(manifest(), records(label=None)))
    assert p.field == "label" and "missing column" in p.message


def test_unknown_column() -> None:
    p = only_problem(write_error(manifest(), records(probs=[[1, 0, 0]] * 3)))
    assert p.field == "probs" and "unknown column" in p.message


def test_unknown_schema_version_in_manifest() -> None:
    p = only_problem(write_error(manifest(schema_version=2), records()))
    assert p.field == "schema_version" and "unknown schema version 2" in p.message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_non_finite_logits(bad: float) -> None:
    logits = records()["logits"].copy()
    logits[1, 2] = bad  # 1e39 overflows float32 to inf
    p = only_problem(write_error(manifest(), records(logits=logits)))
    assert (p.field, p.row) == ("logits", 1)
    assert "NaN or infinite" in p.message and "column 2" in p.message


def test_label_out_of_range() -> None:
    p = only_problem(write_error(manifest(), records(label=np.array([2, 3, -1]))))
    assert (p.field, p.row) == ("label", 1)
    assert "label 3 out of range" in p.message and "and 1 more row" in p.message


def test_float_labels_are_refused() -> None:
    p = only_problem(write_error(manifest(), records(label=np.array([2.0, 0.0, 1.0]))))
    assert p.field == "label" and "integer" in p.message


def test_ragged_logits() -> None:
    ragged = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0]]
    p = only_problem(write_error(manifest(), records(logits=ragged)))
    assert (p.field, p.row) == ("logits", 2)
    assert "ragged" in p.message and "2 values" in p.message


def test_logits_as_strings_are_refused() -> None:
    p = only_problem(write_error(manifest(), records(logits=[["1", "2", "3"]] * 3)))
    assert p.field == "logits" and "expected numbers" in p.message


def test_one_dimensional_logits_are_refused() -> None:
    p = only_problem(write_error(manifest(), records(logits=np.zeros(3))))
    assert p.field == "logits" and "shape" in p.message


def test_duplicate_example_id() -> None:
    p = only_problem(write_error(manifest(), records(example_id=["x0", "x1", "x0"])))
    assert (p.field, p.row) == ("example_id", 2)
    assert "duplicate example_id 'x0' (rows 0 and 2" in p.message


def test_non_string_example_id() -> None:
    p = only_problem(write_error(manifest(), records(example_id=["x0", 1, "x2"])))
    assert (p.field, p.row) == ("example_id", 1)


def test_n_classes_differs_from_manifest() -> None:
    p = only_problem(write_error(manifest(n_classes=2), records()))
    assert p.field == "logits" and "n_classes=2" in p.message


def test_n_classes_differs_from_task() -> None:
    p = only_problem(write_error(manifest(), records(), expected_n_classes=2))
    assert p.field == "logits" and "task 'xnli' has 2 classes" in p.message


def test_empty_run() -> None:
    empty = records(example_id=[], logits=np.zeros((0, 3)), label=np.zeros(0, dtype=int))
    p = only_problem(write_error(manifest(n_examples=3), empty))
    assert p.field == "example_id" and "empty run" in p.message
    error = write_error(manifest(n_examples=0), empty)
    assert any(p.field == "n_examples" and "empty run" in p.message for p in error.problems)


def test_row_count_differs_from_manifest() -> None:
    p = only_problem(write_error(manifest(n_examples=5), records()))
    assert p.field == "n_examples" and "3 rows but the manifest says 5" in p.message


def test_columns_of_different_lengths() -> None:
    p = only_problem(write_error(manifest(), records(label=np.array([0, 1]))))
    assert p.field == "label" and "2 rows but example_id has 3" in p.message


@pytest.mark.parametrize("language", ["german", "DE", "", "d", "de/../x"])
def test_bad_language_code(language: str) -> None:
    error = write_error(manifest(language=language), records())
    assert any(p.field == "language" for p in error.problems)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"record_kind": "regression"}, "record_kind"),
        ({"architecture": "rnn"}, "architecture"),
        ({"model": ""}, "model"),
        ({"model": "a\x00b"}, "model"),
        ({"severity": float("nan")}, "severity"),
        ({"n_truncated": 5}, "n_truncated"),
        ({"n_classes": 1}, "n_classes"),
        ({"perturbation_params": {"f": object()}}, "perturbation_params"),
    ],
)
def test_bad_manifest_fields(change: dict[str, Any], field: str) -> None:
    error = write_error(manifest(**change), records())
    assert any(p.field == field for p in error.problems), error.problems


def test_multiple_choice_label_out_of_range() -> None:
    m = manifest(record_kind="multiple_choice", task="xcopa", n_examples=2)
    recs = {"example_id": ["a", "b"], "scores": [[-1.0, -2.0], [-3.0, -4.0]], "label": [0, 2]}
    p = only_problem(write_error(m, recs))
    assert (p.field, p.row) == ("label", 1)


def span(score: float, start: int = 0, end: int = 3, **changes: Any) -> dict[str, Any]:
    item = {
        "text": "abc",
        "start_char": start,
        "end_char": end,
        "start_logit": 0.5,
        "end_logit": 0.25,
        "score": score,
    }
    item.update(changes)
    return item


def qa(nbest: list[Any], answers: list[Any] | None = None) -> dict[str, Any]:
    n = len(nbest)
    answers = answers if answers is not None else [[{"text": "abc", "answer_start": 0}]] * n
    return {"example_id": [f"q{i}" for i in range(n)], "nbest": nbest, "answers": answers}


@pytest.mark.parametrize(
    ("nbest", "answers", "row", "needle"),
    [
        ([[span(2.0)], [span(1.0), span(3.0)]], None, 1, "best first"),
        ([[span(2.0)], [span(1.0, start=5, end=2)]], None, 1, "character offsets"),
        ([[span(2.0)], [span(float("nan"))]], None, 1, "NaN or infinite score"),
        ([[span(2.0)], [{"text": "a", "score": 1.0}]], None, 1, "missing key(s)"),
        ([[span(2.0)], [span(1.0, extra=1)]], None, 1, "unknown key(s) ['extra']"),
        ([[span(2.0)], [span(1.0)]], [[{"text": "a", "answer_start": 0}], []], 1, "no gold"),
        ([[span(2.0)], [span(1.0)]], [[{"text": "a", "answer_start": -4}]] * 2, 0, "negative"),
    ],
)
def test_qa_problems(nbest: list[Any], answers: Any, row: int, needle: str) -> None:
    m = manifest(record_kind="qa", task="xquad", n_examples=len(nbest))
    error = write_error(m, qa(nbest, answers))
    p = only_problem(error)
    assert p.row == row and needle in p.message, p


def test_qa_units_round_trip_and_are_optional() -> None:
    store = open_store(tempfile.mkdtemp())
    nbest = [[span(2.0)], [span(1.0)], [span(3.0)]]
    with_units = manifest(record_kind="qa", task="xquad", language="de", n_examples=3)
    store.write_run(with_units, {**qa(nbest), "unit": ["q0", "q0", "q2"]})
    without = manifest(record_kind="qa", task="xquad", language="fr", n_examples=3)
    store.write_run(without, qa(nbest))
    runs = store.runs().set_index("language")
    assert store.load_records(runs.loc["de", "run_id"])["unit"] == ["q0", "q0", "q2"]
    assert "unit" not in store.load_records(runs.loc["fr", "run_id"])
    assert store.validate() == []


@pytest.mark.parametrize(
    ("units", "row"), [(["q0", "", "q2"], 1), ([None, "q0", "q2"], 0), (["q0", "q0", None], 2)]
)
def test_qa_unit_missing_for_an_example(units: list[Any], row: int) -> None:
    m = manifest(record_kind="qa", task="xquad", n_examples=3)
    error = write_error(m, {**qa([[span(2.0)], [span(1.0)], [span(3.0)]]), "unit": units})
    p = only_problem(error)
    assert (p.field, p.row) == ("unit", row) and "missing unit" in p.message, p


def test_unit_is_not_a_column_of_other_kinds() -> None:
    p = only_problem(write_error(manifest(), records(unit=["a", "a", "b"])))
    assert p.field == "unit" and "unknown column for a classification run" in p.message


def test_qa_file_written_before_units_is_read_and_one_with_a_missing_unit_is_reported() -> None:
    m = manifest(record_kind="qa", task="xquad", n_examples=2)
    columns = {**qa([[span(2.0)], [span(1.0)]])}
    store = open_store(tempfile.mkdtemp())
    path = plant(store, m, columns)  # no unit column at all, as before units existed
    assert store.validate() == []
    assert "unit" not in store.load_records(path.stem)
    store = open_store(tempfile.mkdtemp())
    path = plant(store, m, {**columns, "unit": ["q0", None]})
    problems = store.validate()
    assert [(p.where, p.field, p.row) for p in problems] == [(str(path), "unit", 1)], problems


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"scores": [[1.0, 2.0], [2.0, 1.0]]}, "scores", "best first"),
        ({"scores": [[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]]}, "scores", "3 scores per row but 2"),
        ({"gold_ids": [["a"], []]}, "gold_ids", "no gold id"),
        ({"candidate_ids": [["a", "b"], ["c"]]}, "candidate_ids", "ragged"),
    ],
)
def test_retrieval_problems(change: dict[str, Any], field: str, needle: str) -> None:
    recs = {
        "example_id": ["s0", "s1"],
        "candidate_ids": [["a", "b"], ["c", "d"]],
        "scores": np.array([[0.9, 0.1], [0.8, 0.7]]),
        "gold_ids": [["a"], ["d"]],
    }
    recs.update(change)
    m = manifest(record_kind="retrieval", task="tatoeba", n_examples=2)
    p = only_problem(write_error(m, recs))
    assert p.field == field and needle in p.message, p


def test_error_message_names_run_field_and_row() -> None:
    logits = records()["logits"].copy()
    logits[2, 0] = np.nan
    message = str(write_error(manifest(), records(logits=logits)))
    assert message.startswith("run xnli/dev model=xlm-roberta-base language=de")
    assert "field 'logits', row 2: NaN or infinite value nan in column 0" in message


def test_all_problems_are_listed() -> None:
    logits = records()["logits"].copy()
    logits[0, 0] = np.inf
    error = write_error(manifest(n_examples=4), records(example_id=["a", "a", "b"], logits=logits))
    fields = {p.field for p in error.problems}
    assert {"n_examples", "example_id", "logits"} <= fields


# --------------------------------------------------------------------------- found on read


def plant(store: PredictionStore, m: RunManifest, columns: dict[str, Any], **meta: bytes) -> Path:
    """Write a run file by hand, bypassing write_run's checks, where the store looks for it."""
    raw = json.dumps(m.to_dict(), sort_keys=True).encode()
    metadata = {
        b"xcal.schema_version": b"1",
        b"xcal.manifest": raw,
        b"xcal.manifest_sha256": hashlib.sha256(raw).hexdigest().encode(),
    }
    metadata.update({k.encode(): v for k, v in meta.items()})
    arrays, fields = [], []
    for name, value in columns.items():
        if isinstance(value, pa.Array):
            arrays.append(value)
            fields.append(pa.field(name, value.type))
        else:
            field = ARROW_SCHEMA.field(name)
            arrays.append(pa.array(value, type=field.type))
            fields.append(field)
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))
    path = store.path_for(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


GOOD = {
    "example_id": ["x0", "x1", "x2"],
    "logits": [[1.0, 2.0, 3.0], [0.5, 0.25, 0.0], [-1.0, 0.0, 1.0]],
    "label": [2, 0, 1],
}
M3 = manifest(n_classes=3, created_at="2026-01-01T00:00:00+00:00", xcal_version="0.1.0")


def read_problems(m: RunManifest, columns: dict[str, Any], **meta: bytes) -> tuple[Path, list]:
    store = open_store(tempfile.mkdtemp())
    path = plant(store, m, columns, **meta)
    problems = store.validate()
    assert problems, "validate found nothing"
    for p in problems:
        assert p.where == str(path) and p.level == "error"
    run_id = path.stem
    with pytest.raises(StoreError):
        store.load_classification(run_id)
    with pytest.raises(StoreError):
        store.load()
    return path, problems


def test_planted_good_file_is_valid() -> None:
    # The control for the tests below: plant() itself makes a valid run.
    store = open_store(tempfile.mkdtemp())
    path = plant(store, M3, GOOD)
    assert store.validate() == []
    np.testing.assert_array_equal(store.load_classification(path.stem).labels, [2, 0, 1])


@pytest.mark.parametrize(
    ("change", "field", "row", "needle"),
    [
        ({"logits": [[1.0, 2.0, 3.0], [0.5, float("nan"), 0.0], [0, 0, 1]]}, "logits", 1, "NaN"),
        ({"logits": [[1.0, 2.0, 3.0], [0.5, 0.2], [0, 0, 1]]}, "logits", 1, "ragged"),
        ({"label": [2, 0, 7]}, "label", 2, "out of range"),
        ({"label": [2, None, 1]}, "label", 1, "missing label"),
        ({"example_id": ["x0", "x0", "x2"]}, "example_id", 1, "duplicate"),
        ({"logits": pa.array(["[1, 2, 3]"] * 3)}, "logits", None, "found string"),
    ],
)
def test_bad_data_in_a_file(
    change: dict[str, Any], field: str, row: int | None, needle: str
) -> None:
    _, problems = read_problems(M3, {**GOOD, **change})
    assert any(p.field == field and p.row == row and needle in p.message for p in problems), (
        problems
    )


def test_missing_column_in_a_file() -> None:
    _, problems = read_problems(M3, {k: v for k, v in GOOD.items() if k != "label"})
    assert any(p.field == "label" and "missing column" in p.message for p in problems)


def test_n_classes_differs_from_manifest_in_a_file() -> None:
    _, problems = read_problems(dataclasses.replace(M3, n_classes=4), GOOD)
    assert any("n_classes=4" in p.message for p in problems)


def test_n_classes_differs_from_task_in_validate() -> None:
    store = open_store(tempfile.mkdtemp())
    plant(store, M3, GOOD)
    assert store.validate(expected_n_classes={"pawsx": 2}) == []
    (p,) = store.validate(expected_n_classes={"xnli": 2})
    assert "task 'xnli' has 2 classes" in p.message


def test_empty_run_in_a_file() -> None:
    empty: dict[str, list[Any]] = {"example_id": [], "logits": [], "label": []}
    _, problems = read_problems(M3, empty)
    assert any("empty run" in p.message for p in problems)


def test_unknown_schema_version_in_a_file() -> None:
    store = open_store(tempfile.mkdtemp())
    path = plant(store, M3, GOOD, **{"xcal.schema_version": b"99"})
    (p,) = store.validate()
    assert p.where == str(path) and "unknown schema version '99'" in p.message
    with pytest.raises(StoreError, match="unknown schema version"):
        store.runs()
    with pytest.raises(SchemaVersionError, match="this xcal reads 1"):
        store._read(path)


def test_not_an_xcal_file() -> None:
    store = open_store(tempfile.mkdtemp())
    path = store.path_for(M3)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"example_id": ["a"]}), path)
    (p,) = store.validate()
    assert "not an xcal run file" in p.message


def test_tampered_manifest_is_detected() -> None:
    store = open_store(tempfile.mkdtemp())
    raw = json.dumps({**M3.to_dict(), "input_fingerprint": "other"}, sort_keys=True).encode()
    plant(store, M3, GOOD, **{"xcal.manifest": raw})
    (p,) = store.validate()
    assert "checksum mismatch" in p.message


def test_moved_file_is_detected() -> None:
    store = open_store(tempfile.mkdtemp())
    path = plant(store, M3, GOOD)
    other = store.path_for(dataclasses.replace(M3, language="fr"))
    other.parent.mkdir(parents=True)
    shutil.copy(path, other)
    problems = store.validate()
    assert [p.where for p in problems] == [str(other)]
    assert "not where its manifest's key puts it" in problems[0].message


def test_stray_file_is_reported() -> None:
    store = open_store(tempfile.mkdtemp())
    plant(store, M3, GOOD)
    (store.root / "notes.txt").write_text("hello")
    (p,) = store.validate()
    assert p.where.endswith("notes.txt") and "not a run file" in p.message


def test_validate_lists_every_bad_file() -> None:
    store = open_store(tempfile.mkdtemp())
    plant(store, M3, GOOD)
    plant(store, dataclasses.replace(M3, language="fr"), {**GOOD, "label": [0, 0, 9]})
    plant(store, dataclasses.replace(M3, language="sw"), {**GOOD, "example_id": ["a", "a", "b"]})
    broken = store.path_for(dataclasses.replace(M3, language="ar"))
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PAR1 not really parquet")
    problems = store.validate()
    bad_files = {part for p in problems for part in Path(p.where).parts if "language=" in part}
    assert bad_files == {"language=fr", "language=sw", "language=ar"}
    assert any("unreadable Parquet file" in p.message for p in problems)


@settings(max_examples=60, deadline=None)
@given(
    example_ids=st.lists(st.text(alphabet="ab", min_size=1, max_size=3), min_size=1, max_size=8),
    presort=st.booleans(),
)
def test_duplicates_are_found_in_any_order(example_ids: list[str], presort: bool) -> None:
    # Sorted ids take a fast path (strictly increasing means unique); both paths must agree.
    if presort:
        example_ids = sorted(example_ids)
    n = len(example_ids)
    recs = {"example_id": example_ids, "logits": np.zeros((n, 2)), "label": np.zeros(n, int)}
    store = open_store(tempfile.mkdtemp())
    if len(set(example_ids)) == n:
        store.write_run(manifest(n_examples=n), recs)
    else:
        with pytest.raises(StoreValidationError, match="duplicate example_id"):
            store.write_run(manifest(n_examples=n), recs)


# --------------------------------------------------------------------------- typed manifests


def test_extra_parquet_column_is_reported() -> None:
    """docs/store.md: unknown columns are checked, by validate and by every read."""
    _, problems = read_problems(M3, {**GOOD, "secret": pa.array(["a", "b", "c"])})
    assert any(p.field == "secret" and "unknown column" in p.message for p in problems), problems


def _plant_raw_manifest(store: PredictionStore, data: dict[str, Any]) -> Path:
    """A run file whose footer holds ``data`` as its manifest (checksum valid)."""
    path = plant(store, M3, GOOD)
    raw = json.dumps(data, sort_keys=True).encode()
    table = pq.read_table(path)
    metadata = {
        b"xcal.schema_version": b"1",
        b"xcal.manifest": raw,
        b"xcal.manifest_sha256": hashlib.sha256(raw).hexdigest().encode(),
    }
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"intermediate_tasks": "mnli"}, "intermediate_tasks", "expected a list"),
        ({"severity": "0.5"}, "severity", "expected a number"),
        ({"n_examples": "3"}, "n_examples", "expected an integer"),
        ({"train_seed": True}, "train_seed", "expected an integer"),
        ({"extra_field": 1}, "extra_field", "unknown field"),
    ],
)
def test_manifest_types_are_strict_in_a_file(
    change: dict[str, Any], field: str, expected: str
) -> None:
    """A manifest read from a file is typed strictly: no string becomes a list or a number."""
    store = open_store(tempfile.mkdtemp())
    path = _plant_raw_manifest(store, {**M3.to_dict(), **change})
    problems = store.validate()
    text = " ".join(p.message for p in problems)
    assert any(p.where == str(path) for p in problems)
    assert f"field '{field}'" in text and expected in text, text
    with pytest.raises(StoreValidationError):
        store.load()


def test_manifest_from_dict_refuses_a_string_for_a_list() -> None:
    from xcal.store.manifest import ManifestError

    with pytest.raises(ManifestError, match="field 'intermediate_tasks': expected a list"):
        RunManifest.from_dict({**M3.to_dict(), "intermediate_tasks": "mnli"})
    assert RunManifest.from_dict(M3.to_dict()) == M3


@pytest.mark.parametrize("field", ["perturbation_seed", "train_seed", "n_examples"])
def test_integers_beyond_int64_are_refused(field: str) -> None:
    """A seed of 10**23 used to pass validate and crash `xcal analyze` (OverflowError)."""
    big = 99999999999999999999999
    with pytest.raises(StoreValidationError, match="fits in 64 bits"):
        open_store(tempfile.mkdtemp()).write_run(manifest(**{field: big}), records())
    store = open_store(tempfile.mkdtemp())
    path = _plant_raw_manifest(store, {**M3.to_dict(), field: big})
    problems = store.validate()
    assert any(p.where == str(path) and "fits in 64 bits" in p.message for p in problems)


def test_negative_zero_severity_is_the_same_cell() -> None:
    store = open_store(tempfile.mkdtemp())
    m = manifest(perturbation="word_shuffle", severity=0.0)
    neg = manifest(perturbation="word_shuffle", severity=-0.0)
    assert store.run_id(m) == store.run_id(dataclasses.replace(neg, severity=0.0))
    first = store.write_run(m, records())
    second = store.write_run(neg, records())
    assert first == second and len(store.runs()) == 1
    assert str(store.runs().severity.iloc[0]) == "0.0"
