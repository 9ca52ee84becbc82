"""The typed schema of grid files and infer options: strict types, errors naming file and key.

Each case here was a silent coercion or a traceback before :mod:`xcal.settings`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from xcal.cli import app
from xcal.infer import GridError, ModelSpec, ModelSpecError, RunOptions, grid_from_dict
from xcal.infer.grid import PerturbationSpec, read_config

BASE = {"models": ["m"], "tasks": ["xnli"]}


def grid_error(data: dict, where: str = "grid.toml") -> str:
    with pytest.raises(GridError) as info:
        grid_from_dict(data, where)
    return " ".join(str(info.value).split())


@pytest.mark.parametrize("value", ["false", "no", "0", 1, 0, 1.0, [True]])
@pytest.mark.parametrize("key", ["trust_remote_code", "allow_new_head"])
def test_booleans_are_booleans(key: str, value: object) -> None:
    """A quoted "false" is truthy: it must be refused, never passed on."""
    text = grid_error({"model": [{"name": "m", key: value}], "tasks": ["xnli"]})
    assert f"grid.toml: key 'model[0].{key}': expected a boolean" in text
    if key == "allow_new_head":  # also the grid-wide default
        text = grid_error({**BASE, key: value})
        assert f"grid.toml: key '{key}': expected a boolean" in text
    with pytest.raises(ModelSpecError, match=f"key '{key}': expected a boolean"):
        ModelSpec("m", **{key: value})  # type: ignore[arg-type]


def test_intermediate_tasks_string_is_not_split_into_characters() -> None:
    text = grid_error({"model": [{"name": "m", "intermediate_tasks": "mnli"}], "tasks": ["xnli"]})
    assert "key 'model[0].intermediate_tasks': expected a list of strings (not one string)" in text
    with pytest.raises(ModelSpecError, match="intermediate_tasks"):
        ModelSpec("m", intermediate_tasks="mnli")  # type: ignore[arg-type]
    ok = grid_from_dict({"model": [{"name": "m", "intermediate_tasks": ["mnli"]}], "tasks": ["x"]})
    assert ok.grid.models[0].intermediate_tasks == ("mnli",)


@pytest.mark.parametrize(
    ("table", "key", "expected"),
    [
        ({"label": 5}, "label", "a string"),
        ({"revision": ["main"]}, "revision", "a string"),
        ({"train_seed": [1]}, "train_seed", "an integer"),
        ({"train_seed": "1"}, "train_seed", "an integer"),
        ({"max_length": "512"}, "max_length", "an integer"),
        ({"max_length": 4}, "max_length", "a value >= 8"),
        ({"scoring": "vibes"}, "scoring", "'auto', 'head' or 'lm'"),
    ],
)
def test_model_table_types(table: dict, key: str, expected: str) -> None:
    text = grid_error({"model": [{"name": "m", **table}], "tasks": ["xnli"]})
    assert f"grid.toml: key 'model[0].{key}': expected {expected}" in text


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        ({"data_dir": 5}, "data_dir", "a string"),
        ({"store": 1.5}, "store", "a string"),
        ({"batch_tokens": 0}, "batch_tokens", "an integer >= 16 or 'auto'"),
        ({"batch_tokens": "4096"}, "batch_tokens", "an integer"),
        ({"limit": True}, "limit", "an integer"),
        ({"overwrite": "false"}, "overwrite", "a boolean"),
        ({"seeds": [1, "2"]}, "seeds[1]", "an integer"),
        ({"seeds": [2**64]}, "seeds[0]", "a value <= 9223372036854775807"),
        ({"languages": 5}, "languages", "a list"),
        ({"qa": {"n_best": "5"}}, "qa.n_best", "an integer"),
        ({"tasks": [{"name": "xnli", "languages": [1]}]}, "tasks[0].languages[0]", "a string"),
        ({"perturbations": [{"name": "char_noise", "severity": "0.1"}]}, "perturbations[0].severity", "a number"),
        ({"perturbations": [{"name": "char_noise", "severity": 0.1, "seed": 10**23}]}, "perturbations[0].seed", "a value <="),
    ],
)  # fmt: skip
def test_grid_file_types(data: dict, key: str, expected: str) -> None:
    text = grid_error({**BASE, **data})
    assert f"grid.toml: key '{key}': expected {expected}" in text


def test_unknown_keys_list_the_table_s_known_keys() -> None:
    text = grid_error({**BASE, "tasks": [{"name": "xnli", "langs": ["de"]}]})
    assert "unknown key 'tasks[0].langs'; known: examples, languages, name, split" in text


def test_perturbation_seed_is_bounded() -> None:
    """seed=10**23 was accepted by infer and crashed `xcal analyze` with OverflowError."""
    text = grid_error({**BASE, "perturbations": ["char_noise:0.1:seed=99999999999999999999999"]})
    assert "perturbations[0]" in text and "key 'seed': expected a value <=" in text
    with pytest.raises(GridError, match="seed"):
        PerturbationSpec("char_noise", 0.1, 2**63)


def test_negative_zero_severity_is_zero() -> None:
    neg, pos = PerturbationSpec("char_noise", -0.0), PerturbationSpec("char_noise", 0.0)
    assert neg == pos and hash(neg) == hash(pos) and str(neg.severity) == "0.0"
    assert str(PerturbationSpec.parse("char_noise:-0.0").severity) == "0.0"
    cfg = grid_from_dict({**BASE, "perturbations": ["char_noise:-0", "char_noise:0"]})
    assert len(set(cfg.grid.perturbations)) == 1


def test_run_options_are_typed() -> None:
    for bad in ({"batch_tokens": 0}, {"limit": "5"}, {"overwrite": "no"}, {"dtype": "fp8"}):
        with pytest.raises(GridError, match=f"key '{next(iter(bad))}'"):
            RunOptions(**bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the CLI


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["infer", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a failure of the test
    return result.exit_code, " ".join((result.output + (result.stderr or "")).split())


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ("label = 5", "model[0].label", "a string"),
        ("revision = ['a', 'b']", "model[0].revision", "a string"),
        ("train_seed = [1, 2]", "model[0].train_seed", "an integer"),
        ("allow_new_head = [true]", "model[0].allow_new_head", "a boolean"),
        ("trust_remote_code = 'false'", "model[0].trust_remote_code", "a boolean"),
        ("intermediate_tasks = 'mnli'", "model[0].intermediate_tasks", "a list of strings"),
        ("train_seed = 2026-01-01", "model[0].train_seed", "an integer"),
    ],
)
def test_cli_grid_file_errors_exit_2(tmp_path: Path, line: str, key: str, expected: str) -> None:
    """Each of these was a TypeError traceback or a silent coercion."""
    cfg = tmp_path / "grid.toml"
    cfg.write_text(f'tasks = ["xnli"]\n[[model]]\nname = "m"\n{line}\n', encoding="utf-8")
    code, out = invoke("--config", str(cfg), "--store", str(tmp_path / "s"))
    assert code == 2, out
    assert f"{cfg}: key '{key}': expected {expected}" in out
    assert not (tmp_path / "s").exists()


def test_cli_top_level_date_and_number(tmp_path: Path) -> None:
    cfg = tmp_path / "grid.toml"
    cfg.write_text('models = ["m"]\ntasks = ["xnli"]\ndata_dir = 7\nstore = 2026-01-01\n')
    code, out = invoke("--config", str(cfg))
    assert code == 2, out
    assert f"{cfg}: key 'data_dir': expected a string, got 7 (int)" in out
    assert f"{cfg}: key 'store': expected a string" in out and "(date)" in out


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        (
            "--batch-tokens",
            "0",
            "option --batch-tokens: expected an integer >= 16 or 'auto', got 0",
        ),
        ("--top-k", "0", "option --top-k: expected a value >= 1, got 0"),
        ("--limit", "0", "option --limit: expected a value >= 1, got 0"),
        ("--max-length", "2", "option --max-length: expected a value >= 8, got 2"),
    ],
)
def test_cli_options_use_the_schema(tmp_path: Path, option: str, value: str, expected: str) -> None:
    """--batch-tokens 0 used to mean the default, while a config file refused 0."""
    code, out = invoke("-m", "m", "-t", "xnli", "--store", str(tmp_path / "s"), option, value)
    assert code == 2, out
    assert f"command line: {expected}" in out


def test_read_config_checks_types(tmp_path: Path) -> None:
    cfg = tmp_path / "grid.yaml"
    cfg.write_text("models: [m]\ntasks: [xnli]\noverwrite: 'yes'\n", encoding="utf-8")
    with pytest.raises(GridError, match=r"grid.yaml: key 'overwrite': expected a boolean"):
        read_config(cfg)
