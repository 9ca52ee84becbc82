"""One tokenizer object per set of tokenizer files: shared when equal, fresh when not."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xcal.infer.modeling import ModelSpec, inspect_model
from xcal.models import shared_tokenizer as memo
from xcal.models.tiny import make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "bert", "bert", head="classification")


@pytest.fixture(autouse=True)
def empty_memo() -> Iterator[None]:
    memo.clear_shared_tokenizers()
    yield
    memo.clear_shared_tokenizers()


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every real tokenizer read, by source."""
    from transformers import AutoTokenizer

    seen: list[str] = []
    original = AutoTokenizer.from_pretrained

    def counting(source: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(source))
        return original(source, *args, **kwargs)

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", counting)
    return seen


def _copy(tiny: Path, dest: Path, **config_changes: Any) -> Path:
    shutil.copytree(tiny, dest)
    if config_changes:
        config = json.loads((dest / "config.json").read_text())
        config.update(config_changes)
        (dest / "config.json").write_text(json.dumps(config))
    return dest


def test_equal_tokenizer_files_give_one_object_read_once(
    tiny: Path, tmp_path: Path, loads: list[str]
) -> None:
    # another checkpoint of the same encoder: other labels, other weights, same tokenizer
    other = _copy(tiny, tmp_path / "other", id2label={"0": "x", "1": "y", "2": "z"})
    (other / "model.safetensors").write_bytes(b"not the same weights")
    (other / "xcal_recipe.txt").write_text("another recipe\n")
    first = memo.shared_tokenizer(tiny)
    assert memo.shared_tokenizer(other) is first
    assert memo.shared_tokenizer(tiny) is first
    assert loads == [str(tiny)]
    assert first("a b")["input_ids"]  # a working tokenizer


@pytest.mark.parametrize("change", ["tokenizer_config", "extra_file"])
def test_any_difference_in_tokenizer_files_gives_a_fresh_load(
    tiny: Path, tmp_path: Path, loads: list[str], change: str
) -> None:
    other = _copy(tiny, tmp_path / "other")
    if change == "tokenizer_config":
        path = other / "tokenizer_config.json"
        config = json.loads(path.read_text())
        config["model_max_length"] = 7
        path.write_text(json.dumps(config))
    else:
        (other / "special_tokens_map.json").write_text("{}")
    first, second = memo.shared_tokenizer(tiny), memo.shared_tokenizer(other)
    assert second is not first
    assert len(loads) == 2
    if change == "tokenizer_config":
        assert second.model_max_length == 7 and first.model_max_length != 7


def test_of_the_model_config_only_what_chooses_the_tokenizer_counts(
    tiny: Path, tmp_path: Path
) -> None:
    relabelled = _copy(tiny, tmp_path / "relabelled", id2label={"0": "x", "1": "y", "2": "z"})
    retyped = _copy(tiny, tmp_path / "retyped", model_type="roberta")
    assert memo.tokenizer_digest(relabelled) == memo.tokenizer_digest(tiny)
    assert memo.tokenizer_digest(retyped) != memo.tokenizer_digest(tiny)


def test_prepare_runs_once_and_is_part_of_the_key(tiny: Path, loads: list[str]) -> None:
    calls: list[int] = []

    def left(tokenizer: Any) -> None:
        calls.append(1)
        tokenizer.padding_side = "left"

    plain = memo.shared_tokenizer(tiny)
    prepared = memo.shared_tokenizer(tiny, prepare=left)
    assert memo.shared_tokenizer(tiny, prepare=left) is prepared
    assert prepared is not plain and calls == [1]
    assert prepared.padding_side == "left" and plain.padding_side == "right"


def test_hub_names_are_not_memoised(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer

    made: list[object] = []

    def fake(source: Any, *args: Any, **kwargs: Any) -> object:
        made.append(object())
        return made[-1]

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", fake)
    assert memo.tokenizer_digest("org/some-model") is None
    assert memo.shared_tokenizer("org/some-model") is not memo.shared_tokenizer("org/some-model")
    assert len(made) == 2


def test_the_oldest_tokenizer_is_dropped_beyond_capacity(
    tiny: Path, tmp_path: Path, loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memo, "_CAPACITY", 2)
    dirs = []
    for i in range(3):
        d = _copy(tiny, tmp_path / f"m{i}")
        (d / "added_tokens.json").write_text(json.dumps({}) + " " * i)  # three distinct sets
        dirs.append(d)
    for d in dirs:
        memo.shared_tokenizer(d)
    memo.shared_tokenizer(dirs[2])
    memo.shared_tokenizer(dirs[0])  # dropped: read again
    assert loads == [str(d) for d in dirs] + [str(dirs[0])]


def test_the_runner_s_models_share_one_tokenizer(
    tiny: Path, tmp_path: Path, loads: list[str]
) -> None:
    other = _copy(tiny, tmp_path / "other", id2label={"0": "x", "1": "y", "2": "z"})
    one = inspect_model(ModelSpec(str(tiny)))
    two = inspect_model(ModelSpec(str(other)))
    assert one.tokenizer is two.tokenizer
    assert one.tokenizer.padding_side == "right" and one.tokenizer.pad_token_id is not None
    assert len(loads) == 1
