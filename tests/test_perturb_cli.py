"""``xcal perturb``: run the command and check what it prints and how it fails."""

from __future__ import annotations

from pathlib import Path

from _perturb_samples import xnli_rows
from typer.testing import CliRunner

from xcal.cli import app

runner = CliRunner()


def test_perturb_prints_original_and_perturbed(xtreme_dir: Path) -> None:
    result = runner.invoke(
        app,
        ["perturb", "--task", "xnli", "--lang", "de", "-p", "word_shuffle",
         "--severity", "1", "--n", "2", "--seed", "3", "--data-dir", str(xtreme_dir)],
        env={"COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    premise = xnli_rows("de")[0][0]
    assert premise in result.output
    assert "xnli-dev-000000" in result.output and "xnli-dev-000001" in result.output
    assert "word_shuffle" in result.output and '"segmenter": "whitespace"' in result.output


def test_perturb_qa_context_and_params(xtreme_dir: Path) -> None:
    result = runner.invoke(
        app,
        ["perturb", "--task", "xquad", "--lang", "th", "--name", "ngram_shuffle", "--param", "n=3",
         "--field", "context", "--n", "1", "--data-dir", str(xtreme_dir)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"n": 3' in result.output and "icu-" in result.output
    assert "dropped" not in result.output


def test_perturb_list() -> None:
    result = runner.invoke(app, ["perturb", "--list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "clause_swap" in result.output and "transliterate" in result.output


def test_perturb_errors_are_clear(xtreme_dir: Path) -> None:
    base = ["perturb", "--task", "xnli", "--lang", "de", "--data-dir", str(xtreme_dir)]
    result = runner.invoke(app, [*base, "--name", "nope"])
    assert result.exit_code == 1 and "unknown perturbation 'nope'" in result.output
    result = runner.invoke(app, ["perturb", "--task", "xnli", "--lang", "xx", "--name",
                                 "word_shuffle", "--data-dir", str(xtreme_dir)])  # fmt: skip
    assert result.exit_code == 1 and "no data for language" in result.output
    result = runner.invoke(app, [*base, "--name", "word_shuffle", "--param", "windowless"])
    assert result.exit_code != 0 and "key=value" in result.output
    result = runner.invoke(app, ["perturb", "--task", "xnli"])
    assert result.exit_code == 2 and "--lang" in result.output
