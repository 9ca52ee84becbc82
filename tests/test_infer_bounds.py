"""Long inputs are cut before tokenising (bounded memory), and the run's summary says how many."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from xcal.infer.grid import Cell, PerturbationSpec
from xcal.infer.modeling import ModelSpec
from xcal.infer.runner import prepare_inputs
from xcal.tasks.base import PairExample, QAAnswer, QAExample
from xcal.tasks.bounds import MAX_TEXT_CHARS, cut_long_texts, cut_text

HUGE = ("lorem ipsum dolor " * 250_000)[:4_000_000]  # one 4 MB field


def test_cut_text_keeps_both_ends_or_the_head() -> None:
    text = "a" * 10 + "b" * 10
    assert cut_text(text, 9) == "aaaa bbbb"
    assert cut_text(text, 9, keep="head") == "a" * 9
    assert len(cut_text(HUGE)) == MAX_TEXT_CHARS


def test_qa_context_keeps_its_head_and_answers() -> None:
    ex = QAExample("q", "en", "Paris. " + HUGE, "Where?", (QAAnswer("Paris", 0),))
    (cut,), n = cut_long_texts([ex])
    assert n == 1 and cut.context == ex.context[:MAX_TEXT_CHARS] and cut.answers == ex.answers
    assert cut.question == "Where?" and cut.example_id == "q"


def test_the_model_reads_the_same_tokens(tmp_path: Path) -> None:
    """Both ends survive the cut: right truncation (encoders) and left (causal LM) agree."""
    from transformers import AutoTokenizer

    from xcal.models.tiny import make_tiny_model

    tok = AutoTokenizer.from_pretrained(make_tiny_model(tmp_path / "m", "bert"))
    text = " ".join(f"w{i}" for i in range(1500))
    cut = cut_text(text, 1000)
    for side in ("right", "left"):
        tok.truncation_side = side
        full = tok(text, truncation=True, max_length=64)["input_ids"]
        assert tok(cut, truncation=True, max_length=64)["input_ids"] == full, side


def _long_xnli(monkeypatch: pytest.MonkeyPatch) -> None:
    from xcal.tasks import get_task

    task_type = type(get_task("xnli"))
    original = task_type.load

    def load(self: Any, data_dir: Any, language: str, split: Any = None) -> list[Any]:
        examples = original(self, data_dir, language, split)
        first = examples[0]
        return [PairExample(first.example_id, language, HUGE, first.hypothesis, first.label),
                *examples[1:]]  # fmt: skip

    monkeypatch.setattr(task_type, "load", load)


def test_prepare_inputs_cuts_a_4mb_line(monkeypatch: pytest.MonkeyPatch, xtreme_dir: Path) -> None:
    _long_xnli(monkeypatch)
    cell = Cell(ModelSpec("m"), "xnli", "dev", "de", PerturbationSpec("char_noise", 0.1))
    inputs = prepare_inputs(cell, xtreme_dir, limit=3)
    assert inputs.n_cut == 1
    assert max(len(ex.premise) for ex in inputs.examples) <= MAX_TEXT_CHARS + 10


def test_infer_summary_counts_cut_inputs_and_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch, xtreme_dir: Path, tmp_path: Path
) -> None:
    """One 4 MB premise: the run ends, says it cut one input, and RSS grows by far less than 1 GB."""
    from xcal.cli import app
    from xcal.models.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "m", "bert", head="classification", num_labels=3)
    _long_xnli(monkeypatch)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = CliRunner().invoke(app, ["infer", "-m", str(model), "-t", "xnli", "-l", "de",
                                      "--limit", "2", "-s", str(tmp_path / "s"),
                                      "--data-dir", str(xtreme_dir), "-q"])  # fmt: skip
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    text = " ".join(result.output.split())
    assert result.exit_code == 0, text
    assert f"1 input(s) over {MAX_TEXT_CHARS} characters cut before tokenising" in text
    assert grown_mib < 500, f"peak RSS grew by {grown_mib:.0f} MiB"
