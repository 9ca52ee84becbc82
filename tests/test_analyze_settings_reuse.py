"""Settings that change numbers are recorded in the report and reused by a re-analysis.

The demo analyses its store at a retrieval temperature of 0.05 through the
Python API; ``xcal analyze`` on the same store and report folder with no
options must give the demo's numbers, not those at the default temperature.
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
from typer.testing import CliRunner

from xcal.analyze import analyze_store
from xcal.analyze.recorded import read_settings, resolve_settings
from xcal.analyze.synthetic import SyntheticSystem, add_synthetic_retrieval, make_synthetic_store
from xcal.cli import app

runner = CliRunner()
KEY = ["system", "task", "language", "metric", "variant", "comparison"]


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    """A baseline and a variant on XNLI, and a retriever on Tatoeba (as in the demo)."""
    root = tmp_path_factory.mktemp("demo-like")
    systems = (SyntheticSystem("baseline"), SyntheticSystem("stilts", intermediate_tasks=("mnli",)))
    store = make_synthetic_store(
        root / "store", systems=systems, languages=("en", "de"), n_examples=200
    )
    add_synthetic_retrieval(
        store,
        systems=(SyntheticSystem("e5"),),
        languages=("deu", "fra"),
        n_examples=150,
        temperature=0.05,
    )
    out = root / "report"
    # The demo's own call (xcal/demo/experiment.py): non-default settings through the API.
    analyze_store(
        root / "store", baseline="baseline", out=out, n_boot=200, seed=3, retrieval_temperature=0.05
    )
    return root / "store", out


def _numbers(out):
    frame = pd.read_csv(out / "results.csv")
    return frame.set_index(KEY).sort_index()[["estimate", "ci_low", "ci_high"]]


def test_the_report_records_what_changes_the_numbers(demo_like):
    _, out = demo_like
    recorded = json.loads((out / "settings.json").read_text())
    assert recorded == {
        "retrieval_temperature": 0.05,
        "n_bins": 15,
        "fit_fraction": 0.5,
        "source_language": "en",
        "n_boot": 200,
        "seed": 3,
    }
    assert not list(out.glob("settings.json.*"))  # written atomically, no temp file left


def test_reanalysis_with_defaults_reproduces_the_demo_numbers(demo_like, tmp_path):
    store, out = demo_like
    before = _numbers(out)
    tatoeba_raw_ece = before.loc[("e5", "tatoeba", "deu", "ece", "raw", "value"), "estimate"]
    result = runner.invoke(app, ["analyze", str(store), "-b", "baseline", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "--retrieval-temperature 0.05 reused from the earlier report (default 1.0)" in text
    pd.testing.assert_frame_equal(_numbers(out), before)

    # Without the record (a fresh folder), the defaults give other retrieval numbers:
    # the reuse above is what kept them.
    fresh = tmp_path / "fresh"
    assert (
        runner.invoke(
            app,
            [
                "analyze",
                str(store),
                "-b",
                "baseline",
                "-o",
                str(fresh),
                "--n-boot",
                "200",
                "--seed",
                "3",
            ],
        ).exit_code
        == 0
    )
    other = _numbers(fresh).loc[("e5", "tatoeba", "deu", "ece", "raw", "value"), "estimate"]
    assert other != pytest.approx(tatoeba_raw_ece, abs=1e-3)


def test_an_explicit_option_wins_with_a_note(demo_like, tmp_path):
    store, out = demo_like
    copy = tmp_path / "report"
    copy.mkdir()
    (copy / "settings.json").write_text((out / "settings.json").read_text())
    result = runner.invoke(
        app,
        [
            "analyze",
            str(store),
            "-b",
            "baseline",
            "-o",
            str(copy),
            "--n-bins",
            "10",
            "--metric",
            "ece",
        ],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "--n-bins 10 differs from the earlier report's 15" in text
    assert read_settings(copy)["n_bins"] == 10
    assert read_settings(copy)["retrieval_temperature"] == 0.05


def test_resolution_order_and_bad_records(demo_like, tmp_path):
    settings, notes = resolve_settings({"seed": 1}, {"seed": 2, "n_boot": 500})
    assert (settings["seed"], settings["n_boot"], settings["n_bins"]) == (1, 500, 15)
    assert notes == [
        "--n-boot 500 reused from the earlier report (default 10000)",
        "--seed 1 differs from the earlier report's 2",
    ]
    assert read_settings(tmp_path) == {}
    (tmp_path / "settings.json").write_text('{"n_bins": "15"}')
    with pytest.raises(ValueError, match=r"settings\.json: n_bins must be of type int, got '15'"):
        read_settings(tmp_path)
    (tmp_path / "settings.json").write_text("[1]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        read_settings(tmp_path)
    bad = runner.invoke(app, ["analyze", str(demo_like[0]), "-b", "baseline", "-o", str(tmp_path)])
    assert bad.exit_code == 1
    assert "settings.json: expected a JSON object, got list" in " ".join(bad.output.split())
