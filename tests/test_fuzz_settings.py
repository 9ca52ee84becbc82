"""Hypothesis fuzz of typed grid-file and manifest values: a clean error or the exact value.

Every value a TOML or YAML file can hold (strings, integers of any size,
floats with nan/inf/-0.0, booleans, dates, lists, tables, null) is put under
each key. ``grid_from_dict`` must either raise :class:`GridError` (a message
naming the key) or build a grid whose setting is the value given, unchanged
in type: no traceback, no string read as a boolean or a list of characters.
The same for run manifests read back from JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xcal.infer import GridError, grid_from_dict
from xcal.store.manifest import ManifestError, RunManifest

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 0.0, 0.5, 1.0, 1]),
    st.text(max_size=12),
    st.sampled_from(["false", "true", "no", "0", "1", "mnli", "all", "de", "auto", "lm"]),
    st.dates(),
    st.datetimes(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

MODEL_KEYS = ["name", "revision", "label", "scoring", "pooling", "prefix", "max_length",
              "allow_new_head", "trust_remote_code", "intermediate_tasks", "train_seed", "bogus"]  # fmt: skip
GRID_KEYS = ["store", "data_dir", "batch_tokens", "dtype", "device", "limit", "top_k",
             "overwrite", "allow_new_head", "max_length", "qa", "threads", "seeds",
             "languages", "split", "perturbations", "tasks"]  # fmt: skip
PERT_KEYS = ["name", "severity", "seed", "params", "fields"]

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(given_value: Any, got: Any) -> bool:
    """``got`` is ``given_value`` unchanged: same type (lists may become tuples), same value."""
    if isinstance(given_value, list):
        return (
            isinstance(got, list | tuple)
            and len(got) == len(given_value)
            and all(_same(a, b) for a, b in zip(given_value, got, strict=True))
        )
    if isinstance(given_value, float) and math.isnan(given_value):
        return False  # never accepted
    if type(given_value) is not type(got):
        # The only widening allowed: an integer severity is that float.
        return (
            isinstance(given_value, int)
            and not isinstance(given_value, bool)
            and got == given_value
        )
    return bool(given_value == got)


@FUZZ
@given(key=st.sampled_from(MODEL_KEYS), value=VALUES)
def test_model_table_values(key: str, value: Any) -> None:
    table = {"name": "m", key: value}
    try:
        cfg = grid_from_dict({"model": [table], "tasks": ["xnli"]}, "grid.toml")
    except GridError as exc:
        assert "grid.toml" in str(exc) and (key in str(exc) or "model" in str(exc))
        return
    assert key != "bogus"
    spec = cfg.grid.models[0]
    assert _same(value, getattr(spec, key)), (key, value, getattr(spec, key))
    assert isinstance(spec.trust_remote_code, bool) and isinstance(spec.allow_new_head, bool)


@FUZZ
@given(key=st.sampled_from(GRID_KEYS), value=VALUES)
def test_grid_file_values(key: str, value: Any) -> None:
    data: dict[str, Any] = {"models": ["m"], "tasks": ["xnli"], key: value}
    try:
        cfg = grid_from_dict(data, "grid.toml")
    except GridError as exc:
        assert str(exc).startswith("grid.toml"), str(exc)
        return
    if key in cfg.settings:
        assert cfg.settings[key] is value  # passed on untouched, and already checked
    if key in ("store", "data_dir", "device", "split") and value is not None:
        assert isinstance(value, str) and value
    if key in ("batch_tokens", "limit", "top_k", "threads") and value is not None:
        assert type(value) is int and value >= 1
    if key == "overwrite" and value is not None:
        assert isinstance(value, bool)
    if key == "languages" and isinstance(value, str):
        langs = cfg.grid.tasks[0].languages
        assert langs is None if value == "all" else langs == (value,)  # never split into chars
    if key == "seeds" and value is not None:
        assert all(type(s) is int and -(2**63) <= s < 2**63 for s in value)


@FUZZ
@given(key=st.sampled_from(PERT_KEYS), value=VALUES)
def test_perturbation_table_values(key: str, value: Any) -> None:
    table = {"name": "char_noise", "severity": 0.1, key: value}
    try:
        cfg = grid_from_dict({**{"models": ["m"], "tasks": ["xnli"]}, "perturbations": [table]})
    except GridError as exc:
        assert "perturbations[0]" in str(exc) or "perturbation" in str(exc)
        return
    spec = cfg.grid.perturbations[0]
    got = {"name": spec.name, "severity": spec.severity, "seed": spec.seed,
           "params": spec.params, "fields": spec.fields}[key]  # fmt: skip
    if key == "severity":
        assert type(got) is float and 0.0 <= got <= 1.0 and math.copysign(1, got) == 1
        assert got == value
    elif key == "seed":
        assert type(got) is int and got == value and -(2**63) <= got < 2**63
    elif key == "fields":
        assert got is None if value is None else _same(value, got)
    elif key == "params":
        assert got == value
    else:
        assert got == value and isinstance(got, str)


BASE_MANIFEST = RunManifest(
    model="m", task="xnli", split="dev", language="de", record_kind="classification",
    input_fingerprint="f", n_examples=3, n_classes=3,
)  # fmt: skip
MANIFEST_FIELDS = [f.name for f in dataclasses.fields(RunManifest)] + ["bogus"]
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.sampled_from(["mnli", "false", "3", "classification"]),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=2)
    ),
    max_leaves=5,
)


@FUZZ
@given(key=st.sampled_from(MANIFEST_FIELDS), value=JSON_VALUES)
def test_manifest_values(key: str, value: Any) -> None:
    data = {**BASE_MANIFEST.to_dict(), key: value}
    raw = json.dumps(data)
    try:
        manifest = RunManifest.from_json(raw, "manifest")
    except ManifestError as exc:
        assert "manifest" in str(exc) and key in str(exc), str(exc)
        return
    assert key != "bogus"
    got = getattr(manifest, key)
    if key == "intermediate_tasks":
        assert isinstance(got, tuple) and list(got) == value
    else:
        assert _same(value, got) or (isinstance(value, dict) and got == value), (key, value, got)


def test_dates_are_refused_with_their_type() -> None:
    try:
        grid_from_dict({"models": ["m"], "tasks": ["xnli"], "store": dt.date(2026, 1, 1)}, "g.toml")
    except GridError as exc:
        assert "g.toml: key 'store': expected a string" in str(exc) and "(date)" in str(exc)
    else:
        raise AssertionError("a date was accepted as a store path")
