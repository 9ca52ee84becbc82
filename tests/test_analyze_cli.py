"""``xcal analyze``: run as a user would, check exit codes, output and files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
from typer.testing import CliRunner

from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store
from xcal.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _serial(monkeypatch):
    """These stores have a few cells: starting worker processes would cost more than it saves."""
    monkeypatch.setenv("XCAL_JOBS", "1")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "store"
    make_synthetic_store(
        path,
        systems=(SyntheticSystem("base"), SyntheticSystem("stilts", intermediate_tasks=("pawsx",))),
        languages=("en", "de"),
        n_examples=300,
    )
    return path


def test_help_gets_a_newcomer_to_a_report():
    result = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    text = result.output
    for needle in (
        "--baseline",
        "--out",
        "--n-boot",
        "--correction",
        "--metrics",
        "Examples",
        "xcal store ls",
    ):
        assert needle in text, needle


def test_analyze_writes_a_report_and_reuses_it(store, tmp_path):
    out = tmp_path / "report"
    args = [
        "analyze",
        str(store),
        "--baseline",
        "base",
        "--out",
        str(out),
        "--n-boot",
        "50",
        "-m",
        "accuracy,ece",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "analysed 4 runs in 2 cells (0 from the cache)" in result.output
    assert f"report: {out / 'index.md'}" in result.output
    assert (out / "results.csv").exists() and (out / "results.parquet").exists()
    assert (out / "tables" / "delta_ece_raw_stilts_xnli.tex").exists()
    assert (out / "figures" / "reliability_xnli.pdf").exists()
    import pandas as pd

    results = pd.read_csv(out / "results.csv")
    assert set(results["metric"]) == {"accuracy", "ece"}
    assert set(results["n_boot"]) == {50}
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert "(2 from the cache)" in again.output


def test_filters_and_options_reach_the_analysis(store, tmp_path):
    out = tmp_path / "r"
    result = runner.invoke(
        app,
        [
            "analyze",
            str(store),
            "-b",
            "base",
            "-o",
            str(out),
            "--n-boot",
            "0",
            "--language",
            "de",
            "--no-recalibrate",
            "-m",
            "ece",
            "-m",
            "nll",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output == ""
    import pandas as pd

    results = pd.read_csv(out / "results.csv")
    assert set(results["language"]) == {"de"}
    assert set(results["variant"]) == {"raw"}
    assert set(results["metric"]) == {"ece", "nll"}
    assert results["ci_low"].isna().all()  # --n-boot 0: point estimates only
    assert set(results["n_examples"]) == {300}  # no fitting split without recalibration


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--baseline", "nope"],
            "baseline 'nope' is not a model in the store; models: base, stilts",
        ),
        (["--baseline", "base", "--correction", "fdr"], "--correction must be holm or bh"),
        (["--baseline", "base", "-m", "ece,acc"], "unknown metric(s) ['acc']"),
    ],
)
def test_bad_input_is_a_clear_error(store, tmp_path, args, message):
    result = runner.invoke(app, ["analyze", str(store), "--out", str(tmp_path / "x"), *args])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())


def test_missing_store(tmp_path):
    result = runner.invoke(app, ["analyze", str(tmp_path / "none"), "--baseline", "b"])
    assert result.exit_code == 1
    assert "no prediction store at" in result.output


def test_a_damaged_run_is_reported_not_a_traceback(tmp_path):
    path = tmp_path / "store"
    make_synthetic_store(path, systems=(SyntheticSystem("base"),), languages=("en",), n_examples=50)
    run_file = next(path.rglob("*.parquet"))
    run_file.write_bytes(run_file.read_bytes()[:100])  # truncated
    result = runner.invoke(app, ["analyze", str(path), "-b", "base", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "error:" in result.output and run_file.name in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_figures_none_and_no_tables_write_neither_and_say_so(store, tmp_path):
    out = tmp_path / "bare"
    args = ["analyze", str(store), "-b", "base", "-o", str(out), "--n-boot", "0", "-m", "ece"]
    result = runner.invoke(app, [*args, "--figures", "none", "--no-tables"])
    assert result.exit_code == 0, result.output
    assert not (out / "figures").exists() and not (out / "tables").exists()
    index = (out / "index.md").read_text()
    assert "`--figures none`" in index and "`--no-tables`" in index
    # the same folder with the default: the main figures and the tables appear
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "figures" / "reliability_xnli.pdf").exists()
    assert list((out / "tables").glob("*.tex"))
    bad = runner.invoke(app, [*args, "--figures", "some"])
    assert bad.exit_code == 2 and "--figures must be none, main or all" in bad.output
