"""Figures print display names: the tables' names (a file, the API) or the defaults.

The figures of a report are captured as they are drawn (``draw_figure`` is
wrapped), so the tests read the matplotlib artists of the very Display
objects the report rendered. Rows are still picked by identifier: only the
printed text changes.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.text import Text
from typer.testing import CliRunner

from xcal.analyze import report as report_module
from xcal.analyze.display_names import DisplayNames
from xcal.analyze.figures import ForestPlotDisplay, ReliabilityGridDisplay, SeverityCurveDisplay
from xcal.cli import app

SYSTEMS = ("baseline", "+pawsx", "+xcopa", "+tydiqa")
NAMES_TOML = """
[tasks]
xnli = "XNLI (test)"
[systems]
baseline = "mBERT"
"+pawsx" = "+PAWS-X"
[perturbations]
char_noise = "typos"
[languages]
de = "German"
sw = "Swahili"
"""
#: Identifiers that must not be printed once the names above apply.
IDENTIFIERS = ("xnli", "+pawsx", "baseline", "char_noise", "de", "sw")


@pytest.fixture(autouse=True)
def _serial(monkeypatch):
    monkeypatch.setenv("XCAL_JOBS", "1")
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store

    root = tmp_path_factory.mktemp("names")
    make_synthetic_store(
        root / "store",
        systems=[
            SyntheticSystem("baseline"),
            SyntheticSystem("+pawsx", lambda *a: 1.5, intermediate_tasks=("pawsx",)),
            SyntheticSystem("+xcopa", intermediate_tasks=("xcopa",)),
            SyntheticSystem("+tydiqa", intermediate_tasks=("tydiqa",)),
        ],
        languages=["en", "de", "sw"],
        conditions=[("none", 0.0), ("char_noise", 0.05)],
        n_examples=120,
    )
    distances = root / "distances.csv"
    pd.DataFrame(
        {
            "task_a": ["pawsx", "xcopa", "tydiqa"],
            "task_b": ["xnli"] * 3,
            "measure": ["textemb"] * 3,
            "distance": [0.2, 0.4, 0.5],
        }
    ).to_csv(distances, index=False)
    names = root / "names.toml"
    names.write_text(NAMES_TOML)
    return root, distances, names


@pytest.fixture
def drawn(monkeypatch):
    """Every Display the report draws, by figure name."""
    displays: dict[str, object] = {}
    original = report_module.draw_figure

    def capture(store, options, spec):
        displays[spec.name] = spec.draw()
        return original(store, options, spec)

    monkeypatch.setattr(report_module, "draw_figure", capture)
    return displays


def _texts(display) -> list[str]:
    """Every text the figure prints: titles, legends, axis and tick labels."""
    return [t.get_text() for t in display.figure_.findobj(Text) if t.get_text()]


def _legend(display) -> list[str]:
    legends = list(display.figure_.legends) + [
        a.get_legend() for a in display.figure_.axes if a.get_legend()
    ]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def _ticks(axis, which: str = "x") -> list[str]:
    labels = axis.get_xticklabels() if which == "x" else axis.get_yticklabels()
    return [t.get_text() for t in labels]


def _analyze(store, out, distances, *extra: str):
    result = CliRunner().invoke(
        app,
        [
            "analyze",
            str(store),
            "-b",
            "baseline",
            "-o",
            str(out),
            "--n-boot",
            "50",
            "-m",
            "accuracy,ece,confidence",
            "--no-recalibrate",
            "--task-distances",
            str(distances),
            "--quiet",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_a_display_name_file_renames_every_figure_of_the_report(store, drawn):
    root, distances, names = store
    out = root / "with_file"
    _analyze(root / "store", out, distances, "--display-names", str(names), "--figures", "all")
    assert {
        "reliability_xnli",
        "forest_ece_xnli",
        "heatmap_ece_xnli",
        "severity_xnli",
        "gain_vs_distance_ece",
        "reliability_grid_xnli_p01",
        "heatmap_ece_pawsx_xnli",
    } <= set(drawn)

    summary = drawn["reliability_xnli"]
    assert [a.get_title() for a in summary.axes_.flat if a.axison] == ["en", "German", "Swahili"]
    assert {"mBERT", "+PAWS-X", "+xcopa"} <= set(_legend(summary))
    assert summary.figure_.get_suptitle().startswith("XNLI (test), clean, raw")

    forest = drawn["forest_ece_xnli"]
    assert _ticks(forest.ax_, "y") == ["en", "German", "Swahili"]
    assert forest.ax_.get_xlabel() == "ΔECE vs mBERT (points)"
    assert forest.ax_.get_title() == "XNLI (test), clean, raw"
    assert "+PAWS-X" in _legend(forest)

    side = drawn["heatmap_ece_xnli"]
    panels = [a for a in side.axes_.flat if a.axison]
    assert [a.get_title() for a in panels] == ["+PAWS-X", "+tydiqa", "+xcopa", "mBERT"]
    assert _ticks(panels[0]) == ["clean", "typos 5%"]
    assert _ticks(panels[0], "y") == ["en", "German", "Swahili"]
    assert side.figure_.get_suptitle() == "XNLI (test), raw"

    severity = drawn["severity_xnli"]
    assert severity.ax_.get_title() == "typos"
    assert {"+PAWS-X accuracy", "mBERT confidence"} <= set(_legend(severity))

    assert "+PAWS-X" in _legend(drawn["gain_vs_distance_ece"])

    page = drawn["reliability_grid_xnli_p01"]
    assert [a.get_title() for a in page.axes_[0]] == ["+PAWS-X", "+tydiqa", "+xcopa", "mBERT"]
    assert [a.get_ylabel().split("\n")[0] for a in page.axes_[:, 0]] == ["en", "German", "Swahili"]

    single = drawn["heatmap_ece_pawsx_xnli"]
    assert single.ax_.get_title() == "+PAWS-X: XNLI (test), raw"
    assert _ticks(single.ax_) == ["clean", "typos 5%"]

    # No identifier the file renames is printed anywhere, in any figure.
    for name, display in drawn.items():
        printed = _texts(display)
        assert not set(IDENTIFIERS) & set(printed), name
        assert not [t for t in printed if "xnli" in t or "char_noise" in t or "+pawsx" in t], name
    index = (out / "index.md").read_text()
    assert "Reliability on XNLI (test)" in index and "ECE of +PAWS-X on XNLI (test)" in index


@pytest.mark.slow
def test_without_a_file_the_figures_print_the_default_names(store, drawn):
    root, distances, _ = store
    _analyze(root / "store", root / "defaults", distances)
    assert drawn["forest_ece_xnli"].ax_.get_title() == "XNLI, clean, raw"
    panels = [a for a in drawn["heatmap_ece_xnli"].axes_.flat if a.axison]
    assert _ticks(panels[0]) == ["clean", "char. noise 5%"]
    assert [a.get_title() for a in panels] == ["+pawsx", "+tydiqa", "+xcopa", "baseline"]
    assert drawn["severity_xnli"].ax_.get_title() == "char. noise"
    assert drawn["severity_xnli"].figure_.get_suptitle().startswith("XNLI, raw")


@pytest.mark.slow
def test_new_names_redraw_the_figures_of_an_unchanged_analysis(store, drawn):
    root, distances, names = store
    out = root / "redraw"
    _analyze(root / "store", out, distances)
    assert drawn["forest_ece_xnli"].ax_.get_xlabel() == "ΔECE vs baseline (points)"
    drawn.clear()
    _analyze(root / "store", out, distances)
    assert not drawn  # nothing changed: nothing redrawn
    _analyze(root / "store", out, distances, "--display-names", str(names))
    assert drawn["forest_ece_xnli"].ax_.get_xlabel() == "ΔECE vs mBERT (points)"


# ------------------------------------------------------------------ the Display API


@pytest.fixture(scope="module")
def results(store):
    from xcal.analyze import read_results

    root, distances, _ = store
    out = root / "api"
    _analyze(root / "store", out, distances, "--figures", "none", "--no-tables")
    return read_results(out), pd.read_parquet(out / "reliability.parquet")


NAMES = DisplayNames.from_mapping(
    {
        "tasks": {"xnli": "XNLI (test)"},
        "systems": {"+pawsx": "+PAWS-X", "baseline": "mBERT"},
        "perturbations": {"char_noise": "typos"},
        "languages": {"de": "German"},
    }
)


def test_displays_pick_rows_by_identifier_and_print_names(results):
    frame, reliability = results
    forest = ForestPlotDisplay.from_results(frame, task="xnli", systems=["+pawsx"], names=NAMES)
    assert _legend(forest) == ["+PAWS-X"]
    assert _ticks(forest.ax_, "y") == ["en", "German", "sw"]
    grid = ReliabilityGridDisplay.from_results(
        reliability, task="xnli", languages=["de"], systems=["+pawsx", "baseline"], names=NAMES
    )
    assert [a.get_title() for a in grid.axes_[0]] == ["+PAWS-X", "mBERT"]
    assert grid.axes_[0, 0].get_ylabel().startswith("German")
    assert grid.figure_.get_suptitle() == "XNLI (test), clean, raw"
    severity = SeverityCurveDisplay.from_results(
        frame, task="xnli", language="de", systems=["+pawsx"], names=NAMES
    )
    assert severity.ax_.get_title() == "typos"
    assert severity.figure_.get_suptitle() == "XNLI (test), raw, German"
    assert _legend(severity) == ["+PAWS-X accuracy", "+PAWS-X confidence"]


def test_displays_without_names_print_the_defaults(results):
    frame, _ = results
    forest = ForestPlotDisplay.from_results(frame, task="xnli", perturbation="char_noise")
    assert forest.ax_.get_title() == "XNLI, char. noise 5%, raw"
    assert _ticks(forest.ax_, "y") == ["en", "de", "sw"]
