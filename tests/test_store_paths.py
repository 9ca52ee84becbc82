"""No key value can make the store write outside its root, and names survive readers."""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest
from _builders import run_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xcal.store import StoreValidationError, open_store
from xcal.store.layout import MAX_SEGMENT_VALUE, encode_value, relative_run_path

HOSTILE = [
    "../../etc/passwd",
    "..",
    ".",
    "/abs/path/model",
    "a/../../b",
    "..\\..\\windows",
    "%2e%2e%2f%2e%2e",
    "model=evil/task=x",
    "C:\\models\\x",
    "~/ckpt",
    "name with spaces and ünïcödé 模型",
    "_hidden",
    ".dotted",
    "x" * 1000,
    "é" * 300,
    "line\nbreak\ttab",
    "%",
    "a%2Fb",
]


manifest = partial(run_manifest, model="m", n_examples=2)


RECORDS = {"example_id": ["a", "b"], "logits": np.eye(2, 3), "label": [0, 1]}


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


def assert_inside(root: Path, path: Path) -> None:
    real_root = os.path.realpath(root)
    assert os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["model", "task", "split", "perturbation"])
def test_hostile_key_values_stay_inside_the_root(tmp_path: Path, field: str, value: str) -> None:
    root = tmp_path / "store"
    store = open_store(root)
    m = manifest(**{field: value})
    run_id = store.write_run(m, RECORDS)
    # Nothing at all was created outside the root (the sibling check catches "..").
    assert files_under(tmp_path) == files_under(root)
    path = store.path_for(m)
    assert path.is_file()
    assert_inside(root, path)
    rel = path.relative_to(root)
    assert len(rel.parts) == 8
    for part in rel.parts:
        assert part not in (".", "..") and not part.startswith((".", "_"))
        assert len(part.encode()) < 255
    assert getattr(store.manifest(run_id), field) == value
    assert store.has_run(m)
    assert store.validate() == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.text(min_size=1, max_size=300),
    params=st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=3),
)
def test_any_model_name_stays_inside_the_root(model: str, params: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as outer:
        root = Path(outer) / "store"
        store = open_store(root)
        m = manifest(model=model, perturbation_params=params)
        try:
            run_id = store.write_run(m, RECORDS)
        except StoreValidationError as exc:
            # The only refusal for a non-empty name: a NUL character.
            assert "\x00" in model, exc
            assert not Path(outer, "store").exists() or not files_under(Path(outer))
            return
        assert files_under(Path(outer)) == files_under(root)
        assert_inside(root, store.path_for(m))
        stored = store.manifest(run_id)
        assert stored.model == model and stored.perturbation_params == params


@given(value=st.text(max_size=400))
def test_encoded_segment_is_one_safe_path_component(value: str) -> None:
    encoded = encode_value(value)
    assert "/" not in encoded and "\x00" not in encoded and "\\" not in encoded
    assert len(encoded) <= MAX_SEGMENT_VALUE
    assert set(encoded) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%"
    )


@given(a=st.text(max_size=50), b=st.text(max_size=50))
def test_distinct_values_get_distinct_segments(a: str, b: str) -> None:
    if a != b:
        assert encode_value(a) != encode_value(b)


def test_long_values_are_cut_with_a_hash() -> None:
    a, b = "x" * 1000 + "a", "x" * 1000 + "b"
    assert encode_value(a) != encode_value(b)
    assert "~" in encode_value(a)
    # A long run of multi-byte characters is never cut inside a %XX escape.
    encoded = encode_value("é" * 300)
    head = encoded.split("~")[0]
    assert all(len(chunk) == 2 for chunk in head.split("%")[1:])


def test_model_names_come_back_from_dataset_readers(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    names = ["facebook/xlm-roberta-base", "/home/me/ckpt", "name with spaces", "a%2Fb", "ü/模型"]
    for name in names:
        store.write_run(manifest(model=name), RECORDS)
    table = ds.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    assert set(table.column("model").to_pylist()) == set(names)


def test_relative_path_is_the_documented_layout() -> None:
    m = manifest(model="org/model", perturbation="typos", severity=0.25, perturbation_seed=3)
    key = {name: getattr(m, name) for name in ("task", "split", "model", "language")}
    key.update(perturbation="typos", severity=0.25, perturbation_seed=3, perturbation_params={})
    rel = relative_run_path(key)
    assert rel.parts[:-1] == (
        "task=xnli",
        "split=dev",
        "model=org%2Fmodel",
        "language=de",
        "perturbation=typos",
        "severity=0.25",
        "perturbation_seed=3",
    )
    assert rel.suffix == ".parquet" and len(rel.stem) == 16


def test_symlinked_partition_out_of_the_root_is_refused(tmp_path: Path) -> None:
    # A partition directory that is a symlink to elsewhere must not be written through.
    root, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    os.symlink(outside, root / "task=xnli")
    with pytest.raises(Exception, match="outside the store root"):
        open_store(root).write_run(manifest(), RECORDS)
    assert not any(outside.iterdir())
