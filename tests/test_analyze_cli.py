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
        "--metric",
        "--source-language",
        "bonferroni",
        "settings.json",
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
            ["--baseline", "bas"],
            "unknown baseline model 'bas' (did you mean 'base'?); known: base, stilts",
        ),
        (
            ["--baseline", "base", "--correction", "fdr"],
            "--correction must be one of holm, bonferroni, bh",
        ),
        (
            ["--baseline", "base", "--metric", "ece,accurcy"],
            "unknown metric 'accurcy' (did you mean 'accuracy' or 'aurc'?); known: accuracy,",
        ),
        (["-b", "base", "--task", "xnl"], "unknown task 'xnl' (did you mean 'xnli'?); known: xnli"),
        (["-b", "base", "--lang", "de,fr"], "unknown language 'fr'; known: de, en"),
    ],
)
def test_bad_input_is_a_clear_error(store, tmp_path, args, message):
    result = runner.invoke(app, ["analyze", str(store), "--out", str(tmp_path / "x"), *args])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())


def test_comma_lists_iso_codes_and_the_old_spellings(store, tmp_path):
    out = tmp_path / "r"
    args = ["analyze", str(store), "-b", "base", "-o", str(out), "--n-boot", "0", "-q"]
    result = runner.invoke(app, [*args, "--lang", "deu,eng", "-t", "xnli", "--metric", "ece"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    assert set(pd.read_csv(out / "results.csv")["language"]) == {"de", "en"}
    old = runner.invoke(app, [*args, "--language", "de", "-m", "ece,nll", "--no-recalibrate"])
    assert old.exit_code == 0, old.output
    frame = pd.read_csv(out / "results.csv")
    assert set(frame["language"]) == {"de"} and set(frame["metric"]) == {"ece", "nll"}


def test_source_language_picks_the_runs_temperatures_are_fitted_on(store, tmp_path):
    import pandas as pd

    common = ["-b", "base", "--n-boot", "0", "--metric", "ece", "-q"]
    for source, out in (("en", tmp_path / "en"), ("deu", tmp_path / "de")):
        result = runner.invoke(
            app, ["analyze", str(store), *common, "-o", str(out), "--source-language", source]
        )
        assert result.exit_code == 0, result.output
    en, de = (pd.read_csv(tmp_path / name / "results.csv") for name in ("en", "de"))
    pick = ["system", "language", "metric", "variant", "comparison"]
    merged = en.merge(de, on=pick, suffixes=("_en", "_de"))
    ts = merged[merged["variant"] == "ts_en"]
    raw = merged[merged["variant"] == "raw"]
    assert len(ts) and (raw["estimate_en"] == raw["estimate_de"]).all()
    assert (ts["estimate_en"] != ts["estimate_de"]).any()  # other fitting data
    import json

    assert json.loads((tmp_path / "de" / "settings.json").read_text())["source_language"] == "de"


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


@pytest.mark.parametrize("style", ["brackets", "offsets"])
def test_interval_style_and_display_names_reach_the_tables(store, tmp_path, style):
    names = tmp_path / "names.toml"
    names.write_text('[systems]\nstilts = "STILTs"\n[languages]\nde = "German"\n')
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
            "200",
            "-m",
            "ece",
            "--interval-style",
            style,
            "--display-names",
            str(names),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    tex = (out / "tables" / "delta_ece_raw_stilts_xnli.tex").read_text()
    assert "STILTs minus base on XNLI" in tex and "German &" in tex
    body = tex.split("\\midrule")[1]
    assert ("[$" in body) is (style == "brackets")
    assert ("}^{+" in body) is (style == "offsets")
    assert "\\pm" not in body


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--interval-style", "pm"],
            "unknown interval style 'pm'; expected one of offsets, brackets",
        ),
        (["--display-names", "nowhere.toml"], "display-name file nowhere.toml does not exist"),
    ],
)
def test_bad_table_options_are_a_clear_error(store, tmp_path, args, message):
    result = runner.invoke(
        app, ["analyze", str(store), "-b", "base", "-o", str(tmp_path / "x"), *args]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_full_disk_is_a_one_line_error(store, tmp_path, monkeypatch):
    """Writing the report on a full disk: ``error: ...`` and exit 1, not a traceback."""
    import errno
    import os

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("xcal.atomic.os.fsync", no_space)
    out = tmp_path / "report"
    result = runner.invoke(app, ["analyze", str(store), "-b", "base", "-o", str(out), "-q",
                                 "--n-boot", "20", "-m", "accuracy", "--no-cache"])  # fmt: skip
    text = " ".join(result.output.split())
    assert result.exit_code == 1, text
    assert not isinstance(result.exception, OSError), "the OSError escaped as a traceback"
    assert "error:" in text and "No space left on device" in text and str(out) in text


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
