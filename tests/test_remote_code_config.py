"""Remote code never runs unless the user asks with a real boolean (grid files, CLI, API).

A grid file value of ``"false"`` (a string) is truthy in Python; before the
typed schema it turned ``trust_remote_code`` on. These tests run ``xcal
infer`` end to end, in a subprocess with its own transformers module cache,
on a checkpoint whose ``config.json`` has an ``auto_map`` to a module that
writes a marker file when imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_MARKER_MODULE = """
from pathlib import Path
Path({marker!r}).write_text("remote code ran")
from transformers import BertConfig, BertForSequenceClassification
class MarkerConfig(BertConfig):
    model_type = "bert"
class MarkerModel(BertForSequenceClassification):
    config_class = MarkerConfig
"""


@pytest.fixture(scope="module")
def remote_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from xcal.models.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("remote")
    ckpt = make_tiny_model(root / "ckpt", "bert", head="classification", num_labels=3)
    (ckpt / "marker_mod.py").write_text(
        _MARKER_MODULE.format(marker=str(root / "marker")), encoding="utf-8"
    )
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["auto_map"] = {
        "AutoConfig": "marker_mod.MarkerConfig",
        "AutoModelForSequenceClassification": "marker_mod.MarkerModel",
    }
    (ckpt / "config.json").write_text(json.dumps(cfg))
    return ckpt


def _infer(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONWARNINGS": "ignore",
    }
    code = "from xcal.cli import app; app()"
    return subprocess.run(
        [sys.executable, "-c", code, "infer", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.parametrize("value", ['"false"', '"no"', "1", '"0"', "0.0"])
def test_grid_file_trust_remote_code_must_be_a_boolean(
    remote_ckpt: Path, xtreme_dir: Path, tmp_path: Path, value: str
) -> None:
    """A string or number for trust_remote_code is refused (exit 2) and no code runs."""
    marker = remote_ckpt.parent / "marker"
    cfg = tmp_path / "grid.toml"
    cfg.write_text(
        f'store = "{tmp_path / "store"}"\n'
        f'data_dir = "{xtreme_dir}"\n'
        "limit = 2\n"
        'tasks = ["xnli"]\n'
        'languages = ["de"]\n'
        "[[model]]\n"
        f'name = "{remote_ckpt}"\n'
        f"trust_remote_code = {value}\n",
        encoding="utf-8",
    )
    proc = _infer(["--config", str(cfg), "-q"], tmp_path)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert str(cfg) in out and "trust_remote_code" in out and "boolean" in out
    assert not marker.exists(), "the checkpoint's own code ran"
    assert not (tmp_path / "store").exists()


def test_grid_file_trust_remote_code_false_refuses_auto_map(
    remote_ckpt: Path, xtreme_dir: Path, tmp_path: Path
) -> None:
    """A real ``false`` reaches the loader, which refuses the auto_map checkpoint: no code runs."""
    marker = remote_ckpt.parent / "marker"
    cfg = tmp_path / "grid.yaml"
    cfg.write_text(
        f"store: {tmp_path / 'store'}\ndata_dir: {xtreme_dir}\nlimit: 2\ntasks: [xnli]\n"
        f"languages: [de]\nmodel:\n  - name: {remote_ckpt}\n    trust_remote_code: false\n",
        encoding="utf-8",
    )
    proc = _infer(["--config", str(cfg), "-q"], tmp_path)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2, out
    assert "asks to run its own Python code" in out
    assert not marker.exists(), "the checkpoint's own code ran"


def test_loader_refuses_a_truthy_non_boolean(remote_ckpt: Path) -> None:
    """Defence in depth: the loaders treat only ``True`` as consent."""
    from xcal.infer.modeling import ModelSpec, ModelSpecError, inspect_model
    from xcal.models import RemoteCodeError, load_model_and_tokenizer

    marker = remote_ckpt.parent / "marker"
    with pytest.raises(RemoteCodeError):
        load_model_and_tokenizer(
            remote_ckpt,
            task_kind="classification",
            num_labels=3,
            trust_remote_code="false",  # type: ignore[arg-type]
        )
    with pytest.raises((ModelSpecError, TypeError)):
        inspect_model(ModelSpec(str(remote_ckpt), trust_remote_code="false"))  # type: ignore[arg-type]
    assert not marker.exists()
