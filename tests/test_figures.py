"""Display objects: what they draw (axes, labels, panels, data), not only that they draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from xcal.analyze.figures import (
    OKABE_ITO,
    ForestPlotDisplay,
    GainDistanceDisplay,
    MetricHeatmapDisplay,
    ReliabilityDiagramDisplay,
    ReliabilityGridDisplay,
    SeverityCurveDisplay,
    paper_style,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _bins(acc_shift: float = 0.0) -> pd.DataFrame:
    lower = np.linspace(0, 1, 6)[:-1]
    conf = lower + 0.1
    return pd.DataFrame(
        {
            "bin_lower": lower,
            "bin_upper": lower + 0.2,
            "count": [0, 10, 20, 30, 40],
            "mean_confidence": conf,
            "accuracy": np.clip(conf + acc_shift, 0, 1),
        }
    )


def test_reliability_diagram_from_predictions_matches_metrics():
    from xcal.metrics import expected_calibration_error

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 3)) * 2
    y = rng.integers(0, 3, size=500)
    disp = ReliabilityDiagramDisplay.from_predictions(y, logits=logits, n_bins=10, name="de")
    assert disp.ece == pytest.approx(
        expected_calibration_error(y, logits=logits, n_bins=10), abs=1e-12
    )
    ax = disp.ax_
    assert ax.get_xlabel() == "Confidence (%)" and ax.get_ylabel() == "Accuracy (%)"
    assert ax.get_title() == "de"
    assert ax.get_xlim() == (0.0, 100.0)
    # the ECE computed is printed in the legend's title, not over the bars
    assert ax.get_legend().get_title().get_text() == f"ECE {disp.ece * 100:.1f}%"
    assert not [t for t in ax.texts if "ECE" in t.get_text()]


def test_reliability_grid_has_one_panel_per_language_and_system():
    rows = []
    for lang in ["en", "de", "sw"]:
        for system, shift in [("base", 0.0), ("inter", -0.1)]:
            rows.append(_bins(shift).assign(language=lang, system=system))
    bins = pd.concat(rows)
    disp = ReliabilityGridDisplay(bins, rows="language", cols="system").plot()
    assert disp.axes_.shape == (3, 2)
    assert len(disp.figure_.axes) == 6
    assert [disp.axes_[0, j].get_title() for j in range(2)] == ["base", "inter"]
    assert disp.axes_[2, 0].get_ylabel() == "sw\nAccuracy (%)"
    assert disp.axes_[2, 1].get_xlabel() == "Confidence (%)"
    # a handful of artists per panel, not a patch per bin: accuracy and share as step
    # outlines, the gap one filled polygon (the empty first bin a hole in the outline)
    panel = disp.axes_[1, 1]
    assert len(panel.patches) == 2 and len(panel.collections) == 1
    accuracy = panel.patches[0]
    assert np.isnan(accuracy.get_data().values[0])
    np.testing.assert_allclose(accuracy.get_data().values[1:], [20, 40, 60, 80])  # conf - 10
    # the legend explains the panels once, for the figure
    assert [t.get_text() for t in disp.figure_.legends[0].get_texts()] == [
        "Accuracy",
        "Gap",
        "Examples (share)",
        "Perfect",
    ]


def test_reliability_grid_marks_a_missing_run_and_checks_axes_shape():
    bins = _bins().assign(language="en", system="a")
    other = _bins().assign(language="de", system="b")
    disp = ReliabilityGridDisplay(pd.concat([bins, other])).plot()
    assert not disp.axes_[0, 1].axison  # en x b has no run
    _, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="2 x 2 axes"):
        ReliabilityGridDisplay(pd.concat([bins, other])).plot(ax=axes)


def test_heatmap_values_labels_and_colourbar():
    matrix = pd.DataFrame(
        [[3.0, 5.5], [4.0, 9.25]], index=["en", "de"], columns=["clean", "shuffle 0.5"]
    )
    disp = MetricHeatmapDisplay(matrix, value_label="ECE (%)").plot()
    ax = disp.ax_
    assert ax.get_xlabel() == "Perturbation and severity" and ax.get_ylabel() == "Language"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["en", "de"]
    assert sorted(t.get_text() for t in ax.texts) == ["3.0", "4.0", "5.5", "9.2"]
    colorbar_axes = [a for a in disp.figure_.axes if a is not ax]
    assert len(colorbar_axes) == 1 and colorbar_axes[0].get_ylabel() == "ECE (%)"


def test_forest_plot_intervals_and_significance_fill():
    frame = pd.DataFrame(
        {
            "label": ["en", "de", "en", "de"],
            "group": ["A", "A", "B", "B"],
            "estimate": [1.0, -2.0, 0.5, 3.0],
            "ci_low": [-1.0, -3.0, -0.5, 2.0],
            "ci_high": [3.0, -1.0, 1.5, 4.0],
            "p_adjusted": [0.5, 0.01, 0.6, 0.001],
        }
    )
    disp = ForestPlotDisplay(frame, value_label="ΔECE (points)").plot()
    ax = disp.ax_
    assert ax.get_xlabel() == "ΔECE (points)" and ax.get_ylabel() == "Language"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["en", "de"]
    # one errorbar container per group, with one segment per interval
    segments = [c.lines[2][0].get_segments() for c in ax.containers]
    assert [len(s) for s in segments] == [2, 2]
    xs = sorted((seg[0][0], seg[1][0]) for s in segments for seg in s)
    assert xs == sorted([(-1.0, 3.0), (-3.0, -1.0), (-0.5, 1.5), (2.0, 4.0)])
    # zero line drawn
    assert any(np.allclose(line.get_xdata(), [0, 0]) for line in ax.get_lines())


def test_gain_distance_fit_equals_numpy_and_band_contains_line():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 30)
    y = 2.0 - 3.0 * x + rng.normal(0, 0.3, 30)
    frame = pd.DataFrame({"distance": x, "gain": y, "group": ["a", "b", "c"] * 10})
    disp = GainDistanceDisplay(frame, x_label="Task distance", y_label="Gain (points)")
    slope, intercept = np.polyfit(x, y, 1)
    assert disp.slope == pytest.approx(slope, rel=1e-10)
    assert disp.intercept == pytest.approx(intercept, rel=1e-10)
    assert np.all(disp.band[:, 1] <= disp.line[:, 1]) and np.all(disp.line[:, 1] <= disp.band[:, 2])
    disp.plot()
    ax = disp.ax_
    assert ax.get_xlabel() == "Task distance" and ax.get_ylabel() == "Gain (points)"
    assert len(ax.collections) == 1 + 3  # the band and one scatter per group
    with pytest.raises(ValueError, match="at least 3 points"):
        GainDistanceDisplay(frame.iloc[:2], x_label="x", y_label="y")


def test_severity_curves_one_panel_per_perturbation():
    rows = []
    for pert in ["shuffle", "typo"]:
        for sev, acc in [(0.0, 80.0), (0.3, 70.0), (0.6, 55.0)]:
            for system in ["A", "B"]:
                rows.append(
                    {
                        "perturbation": pert,
                        "severity": sev,
                        "system": system,
                        "accuracy": acc,
                        "confidence": acc + 8,
                    }
                )
    disp = SeverityCurveDisplay(pd.DataFrame(rows)).plot()
    assert disp.axes_.shape == (1, 2)
    assert [a.get_title() for a in disp.axes_[0]] == ["shuffle", "typo"]
    assert disp.axes_[0, 0].get_ylabel() == "Accuracy / mean confidence (%)"
    # per panel: two systems x (accuracy, confidence)
    assert len(disp.axes_[0, 1].get_lines()) == 4
    styles = {line.get_linestyle() for line in disp.axes_[0, 0].get_lines()}
    assert styles == {"-", "--"}


def test_plotting_leaves_global_rcparams_untouched(tmp_path):
    before = dict(mpl.rcParams)
    with paper_style():
        assert mpl.rcParams["font.size"] == 8
        disp = ReliabilityDiagramDisplay(_bins(), name="x").plot()
        disp.save(tmp_path / "fig")
    MetricHeatmapDisplay(
        pd.DataFrame([[1.0]], index=["en"], columns=["clean"]), value_label="ECE (%)"
    ).plot()
    after = dict(mpl.rcParams)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == set()


def test_save_writes_pdf_and_png_atomically(tmp_path):
    disp = ReliabilityDiagramDisplay(_bins(), name="x")
    paths = disp.save(tmp_path / "sub" / "reliability", close=True)
    assert [p.name for p in paths] == ["reliability.pdf", "reliability.png"]
    assert paths[0].read_bytes().startswith(b"%PDF")
    assert paths[1].read_bytes().startswith(b"\x89PNG")
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name.startswith(".")]


def test_palette_is_okabe_ito():
    assert OKABE_ITO[:3] == ("#0072B2", "#E69F00", "#009E73")


def test_importing_the_analysis_loads_no_plotting_library():
    import subprocess
    import sys

    code = (
        "import sys, xcal.analyze, xcal.analyze.figures; "
        "print(sorted(m for m in ('matplotlib', 'seaborn', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
