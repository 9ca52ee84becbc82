"""The prediction store: round trips, the manifest, resumption, filters, external readers."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from _builders import classification_records, run_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xcal
from xcal.store import (
    KEY_FIELDS,
    SCHEMA_VERSION,
    RunNotFoundError,
    StoreConflictError,
    StoreError,
    fingerprint,
    open_store,
)

PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


manifest = partial(run_manifest, input_fingerprint="fp-1", n_examples=4)
classification = classification_records


def assert_records_equal(kind: str, got: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(got) == set(want)
    assert list(got["example_id"]) == list(want["example_id"])
    for name, value in want.items():
        if name in ("logits", "scores"):
            dtype = np.float32 if name == "logits" else np.float64
            expected = np.asarray(value, dtype=dtype)
            assert got[name].dtype == dtype
            np.testing.assert_array_equal(got[name], expected)
        elif name == "label":
            assert got[name].dtype == np.int64
            np.testing.assert_array_equal(got[name], np.asarray(value))
        elif name != "example_id":
            assert got[name] == [list(row) for row in value]


# --------------------------------------------------------------------------- round trips

ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=12, unique=True)
f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
f64 = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def classification_runs(draw: st.DrawFn) -> dict[str, Any]:
    example_ids = draw(ids)
    n, c = len(example_ids), draw(st.integers(2, 6))
    logits = draw(st.lists(st.lists(f32, min_size=c, max_size=c), min_size=n, max_size=n))
    labels = draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n))
    return {"example_id": example_ids, "logits": np.array(logits), "label": np.array(labels)}


@st.composite
def multiple_choice_runs(draw: st.DrawFn) -> dict[str, Any]:
    example_ids = draw(ids)
    n, k = len(example_ids), draw(st.integers(2, 5))
    scores = draw(st.lists(st.lists(f64, min_size=k, max_size=k), min_size=n, max_size=n))
    labels = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    return {"example_id": example_ids, "scores": scores, "label": labels}


@st.composite
def qa_runs(draw: st.DrawFn) -> dict[str, Any]:
    example_ids = draw(ids)
    nbest, answers = [], []
    for _ in example_ids:
        spans = []
        for score in sorted(draw(st.lists(f64, max_size=4)), reverse=True):
            start = draw(st.integers(0, 10_000))
            spans.append(
                {
                    "text": draw(st.text(max_size=10)),
                    "start_char": start,
                    "end_char": start + draw(st.integers(0, 50)),
                    "start_logit": draw(f64),
                    "end_logit": draw(f64),
                    "score": score,
                }
            )
        nbest.append(spans)
        golds = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"text": st.text(max_size=10), "answer_start": st.integers(0, 10_000)}
                ),
                min_size=1,
                max_size=3,
            )
        )
        answers.append(golds)
    return {"example_id": example_ids, "nbest": nbest, "answers": answers}


@st.composite
def retrieval_runs(draw: st.DrawFn) -> dict[str, Any]:
    example_ids = draw(ids)
    n, k = len(example_ids), draw(st.integers(1, 5))
    candidate_ids = [draw(st.lists(st.text(max_size=6), min_size=k, max_size=k)) for _ in range(n)]
    scores = [sorted(draw(st.lists(f64, min_size=k, max_size=k)), reverse=True) for _ in range(n)]
    gold_ids = [draw(st.lists(st.text(max_size=6), min_size=1, max_size=2)) for _ in range(n)]
    return {
        "example_id": example_ids,
        "candidate_ids": candidate_ids,
        "scores": np.array(scores),
        "gold_ids": gold_ids,
    }


STRATEGIES = {
    "classification": classification_runs(),
    "multiple_choice": multiple_choice_runs(),
    "qa": qa_runs(),
    "retrieval": retrieval_runs(),
}


@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_round_trip_every_record_kind(kind: str) -> None:
    @PROPERTY
    @given(records=STRATEGIES[kind])
    def check(records: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as root:
            store = open_store(root)
            m = manifest(record_kind=kind, n_examples=len(records["example_id"]))
            run_id = store.write_run(m, records)
            assert_records_equal(kind, store.load_records(run_id), records)
            tidy = store.load()
            assert len(tidy) == len(records["example_id"])
            assert (tidy["record_kind"] == kind).all()
            assert list(tidy["example_id"]) == list(records["example_id"])

    check()


def test_load_classification_arrays() -> None:
    store = open_store(tempfile.mkdtemp())
    records = classification(n=5, c=3)
    run_id = store.write_run(manifest(n_examples=5), records)
    arrays = store.load_classification(run_id)
    assert arrays.logits.shape == (5, 3) and arrays.logits.dtype == np.float32
    assert arrays.labels.dtype == np.int64
    np.testing.assert_array_equal(arrays.logits, records["logits"])
    np.testing.assert_array_equal(arrays.labels, records["label"])
    assert list(arrays.example_ids) == records["example_id"]
    assert arrays.run_id == run_id and arrays.manifest.n_classes == 3


def test_load_multiple_choice_and_kind_mismatch() -> None:
    store = open_store(tempfile.mkdtemp())
    mc = manifest(record_kind="multiple_choice", task="xcopa", n_examples=2)
    scores = np.array([[-3.25, -1.5], [-0.125, -7.0]])
    run_id = store.write_run(mc, {"example_id": ["a", "b"], "scores": scores, "label": [1, 0]})
    arrays = store.load_multiple_choice(run_id)
    np.testing.assert_array_equal(arrays.logits, scores)
    with pytest.raises(StoreError, match="multiple_choice run, not classification"):
        store.load_classification(run_id)


def test_float64_logits_are_stored_as_float32() -> None:
    store = open_store(tempfile.mkdtemp())
    logits = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float64)
    run_id = store.write_run(
        manifest(n_examples=2), {"example_id": ["a", "b"], "logits": logits, "label": [0, 1]}
    )
    stored = store.load_classification(run_id).logits
    np.testing.assert_array_equal(stored, logits.astype(np.float32))
    file = pq.read_table(store.runs()["path"][0])
    assert str(file.schema.field("logits").type) == "list<element: float>"


# --------------------------------------------------------------------------- manifest


def test_manifest_round_trip_and_store_filled_fields() -> None:
    store = open_store(tempfile.mkdtemp())
    m = manifest(
        model="/home/me/ckpt/xlmr-mnli",
        model_revision="sha256:abc",
        architecture="encoder-only",
        intermediate_tasks=("mnli", "squad"),
        train_seed=3,
        perturbation="typos",
        perturbation_params={"rate": 0.1, "chars": ["a", "b"]},
        severity=0.5,
        perturbation_seed=7,
        n_truncated=1,
        device="cpu",
        dtype="float32",
        wall_time_s=12.5,
    )
    run_id = store.write_run(m, classification())
    stored = store.manifest(run_id)
    assert stored.xcal_version == xcal.__version__
    assert stored.created_at.endswith("+00:00")
    assert stored.n_classes == 3  # filled from the logits' width
    assert stored.schema_version == SCHEMA_VERSION
    expected = dataclasses.replace(
        m, xcal_version=stored.xcal_version, created_at=stored.created_at, n_classes=3
    )
    assert stored == expected
    row = store.runs().iloc[0]
    assert row["intermediate_tasks"] == ("mnli", "squad")
    assert json.loads(row["perturbation_params"]) == {"chars": ["a", "b"], "rate": 0.1}
    assert row["path"].endswith(f"{run_id}.parquet")


def test_manifest_is_in_the_parquet_metadata() -> None:
    store = open_store(tempfile.mkdtemp())
    store.write_run(manifest(), classification())
    meta = pq.read_metadata(store.runs()["path"][0]).metadata
    assert meta[b"xcal.schema_version"] == str(SCHEMA_VERSION).encode()
    data = json.loads(meta[b"xcal.manifest"])
    assert data["input_fingerprint"] == "fp-1" and data["task"] == "xnli"


def test_numpy_scalars_in_the_manifest_are_accepted() -> None:
    store = open_store(tempfile.mkdtemp())
    m = manifest(n_examples=np.int64(4), severity=np.float32(0.5), perturbation_seed=np.int32(2))
    run_id = store.write_run(m, classification())
    stored = store.manifest(run_id)
    assert stored.n_examples == 4 and type(stored.n_examples) is int
    assert store.has_run(m)


def test_severity_int_and_float_are_one_key() -> None:
    store = open_store(tempfile.mkdtemp())
    a = store.write_run(manifest(severity=1), classification())
    assert store.write_run(manifest(severity=1.0), classification()) == a
    assert len(store.runs()) == 1


# --------------------------------------------------------------------------- resumption


def test_same_key_same_fingerprint_is_a_no_op() -> None:
    store = open_store(tempfile.mkdtemp())
    m = manifest()
    assert not store.has_run(m)
    run_id = store.write_run(m, classification(seed=0))
    path = Path(store.runs()["path"][0])
    before = (path.stat().st_mtime_ns, path.read_bytes())
    assert store.has_run(m)
    # Different numbers, same inputs: still a no-op (resuming never rewrites a run).
    assert store.write_run(m, classification(seed=1)) == run_id
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_same_key_other_fingerprint_conflicts_unless_overwrite() -> None:
    store = open_store(tempfile.mkdtemp())
    run_id = store.write_run(manifest(), classification(seed=0))
    other = manifest(input_fingerprint="fp-2")
    assert not store.has_run(other)
    with pytest.raises(StoreConflictError, match="overwrite=True") as info:
        store.write_run(other, classification(seed=1))
    assert "fp-1" in str(info.value) and "fp-2" in str(info.value)
    np.testing.assert_array_equal(
        store.load_classification(run_id).logits, classification(seed=0)["logits"]
    )
    assert store.write_run(other, classification(seed=1), overwrite=True) == run_id
    assert store.has_run(other) and not store.has_run(manifest())
    np.testing.assert_array_equal(
        store.load_classification(run_id).logits, classification(seed=1)["logits"]
    )
    assert len(store.runs()) == 1


@pytest.mark.parametrize("field", KEY_FIELDS)
def test_every_key_field_makes_a_distinct_run(field: str) -> None:
    store = open_store(tempfile.mkdtemp())
    other_value = {
        "severity": 0.5,
        "perturbation_seed": 1,
        "perturbation_params": {"p": 1},
        "language": "fr",
    }.get(field, "other")
    store.write_run(manifest(), classification())
    store.write_run(manifest(**{field: other_value}), classification())
    assert len(store.runs()) == 2


def test_fields_outside_the_key_do_not_make_a_new_run() -> None:
    store = open_store(tempfile.mkdtemp())
    run_id = store.write_run(manifest(device="cuda:0"), classification())
    assert store.write_run(manifest(device="cpu", wall_time_s=3.0), classification()) == run_id
    assert len(store.runs()) == 1


# --------------------------------------------------------------------------- listing, filters


@pytest.fixture
def grid_store(tmp_path: Path):
    store = open_store(tmp_path / "store")
    for lang in ("en", "de", "fr"):
        for severity in (0.0, 0.5):
            m = manifest(
                language=lang,
                severity=severity,
                perturbation="none" if severity == 0 else "typos",
                input_fingerprint=fingerprint(lang, severity),
            )
            store.write_run(m, classification(seed=len(lang)))
    store.write_run(
        manifest(task="pawsx", n_examples=3, language="de"), classification(n=3, c=2, seed=9)
    )
    return store


def test_runs_filters(grid_store) -> None:
    runs = grid_store.runs()
    assert len(runs) == 7
    assert set(runs.columns) >= {"run_id", "path", *KEY_FIELDS, "n_examples", "created_at"}
    assert len(grid_store.runs(task="xnli")) == 6
    assert set(grid_store.runs(task="xnli", language=["de", "fr"])["language"]) == {"de", "fr"}
    assert len(grid_store.runs(task="xnli", language=["de", "fr"])) == 4
    assert len(grid_store.runs(severity=0.5)) == 3
    assert len(grid_store.runs(n_classes=2)) == 1
    assert len(grid_store.runs(perturbation_params={})) == 7
    assert len(grid_store.runs(intermediate_tasks=())) == 7
    assert len(grid_store.runs(language="sw")) == 0
    one = runs["run_id"][0]
    assert list(grid_store.runs(run_id=one)["run_id"]) == [one]
    with pytest.raises(ValueError, match="unknown filter"):
        grid_store.runs(lang="de")


def test_load_is_tidy(grid_store) -> None:
    tidy = grid_store.load(task="xnli", language="de")
    assert len(tidy) == 2 * 4
    assert {"run_id", "task", "model", "language", "severity", "example_id", "logits"} <= set(
        tidy.columns
    )
    assert tidy.groupby("run_id").size().tolist() == [4, 4]
    row = tidy.iloc[0]
    assert row["logits"].dtype == np.float32 and row["logits"].shape == (3,)
    both = grid_store.load(language="de")
    assert set(both["task"]) == {"xnli", "pawsx"}
    assert grid_store.load(language="sw").empty


def test_unknown_run_id() -> None:
    store = open_store(tempfile.mkdtemp())
    with pytest.raises(RunNotFoundError, match="no run"):
        store.load_classification("0123456789abcdef")
    with pytest.raises(RunNotFoundError):
        store.manifest("../../etc")


def test_reading_a_missing_store_finds_nothing_and_creates_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "absent")
    assert store.runs().empty and store.load().empty
    assert not store.has_run(manifest())
    assert not (tmp_path / "absent").exists()


def test_reading_never_modifies_the_store(grid_store) -> None:
    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in grid_store.root.rglob("*")
        }

    before = snapshot()
    grid_store.runs()
    grid_store.load()
    for run_id in grid_store.runs()["run_id"]:
        grid_store.load_classification(run_id)
        grid_store.load_records(run_id)
        grid_store.has_run(grid_store.manifest(run_id))
    assert grid_store.validate() == []
    assert snapshot() == before


# --------------------------------------------------------------------------- external readers


def test_whole_store_reads_with_pyarrow_and_pandas_without_xcal(grid_store) -> None:
    qa = manifest(record_kind="qa", task="xquad", model="org/qa-model", n_examples=1)
    grid_store.write_run(
        qa,
        {
            "example_id": ["q1"],
            "nbest": [
                [
                    {
                        "text": "Paris",
                        "start_char": 3,
                        "end_char": 8,
                        "start_logit": 1.5,
                        "end_logit": 2.0,
                        "score": 3.5,
                    }
                ]
            ],
            "answers": [[{"text": "Paris", "answer_start": 3}]],
        },
    )
    table = ds.dataset(grid_store.root, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 6 * 4 + 3 + 1
    for name in ("task", "split", "model", "language", "perturbation", "severity"):
        assert name in table.column_names
    assert str(table.schema.field("logits").type) == "list<element: float>"
    frame = pd.read_parquet(grid_store.root)
    assert len(frame) == table.num_rows
    # Partition values are percent-decoded by the reader: the model name comes back whole.
    assert set(frame["model"].astype(str)) == {"xlm-roberta-base", "org/qa-model"}
    de = frame[(frame["task"] == "xnli") & (frame["language"] == "de")]
    assert len(de) == 8
    assert np.asarray(de["logits"].iloc[0]).dtype == np.float32


def test_whole_store_reads_with_duckdb(grid_store) -> None:
    duckdb = pytest.importorskip("duckdb")
    pattern = str(grid_store.root / "**" / "*.parquet")
    rows = duckdb.sql(
        f"SELECT task, language, count(*) AS n FROM read_parquet('{pattern}', "
        "hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert ("xnli", "de", 8) in rows
