"""Figures whose size does not grow with the grid: sizes, shared scales, legends, pages.

The reliability bins of a paper-sized grid (41 languages x 10 systems) are
built directly, without an analysis, so these tests draw but compute little.
The report tests at the end analyse a small store once (``--n-boot 0``).
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from xcal.analyze.figures import (
    MetricHeatmapDisplay,
    MetricHeatmapGridDisplay,
    ReliabilityGridDisplay,
    ReliabilitySummaryDisplay,
    SeverityCurveDisplay,
)
from xcal.analyze.figures.heatmap import metric_matrix
from xcal.analyze.figures.reliability import PAGE_SHAPE, grid_pages
from xcal.analyze.figures.reliability_summary import (
    MAX_PANELS,
    pool_bins,
    resource_class_groups,
    smooth_reliability,
)

LANGUAGES = [f"l{i:02d}" for i in range(41)]
SYSTEMS = [f"s{i}" for i in range(10)]
#: Page of a two-column paper: the largest a figure may be (inches).
PAGE = (6.8, 9.5)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _paper_bins(n_per_run: int = 50) -> pd.DataFrame:
    """15-bin reliability tables of 41 languages x 10 systems, ``n_per_run`` examples each."""
    rng = np.random.default_rng(0)
    lower = np.linspace(0, 1, 16)[:-1]
    parts = []
    for language in LANGUAGES:
        for system in SYSTEMS:
            count = rng.multinomial(n_per_run, np.full(15, 1 / 15))
            parts.append(
                pd.DataFrame(
                    {
                        "task": "xnli",
                        "variant": "raw",
                        "perturbation": "none",
                        "severity": 0.0,
                        "language": language,
                        "system": system,
                        "bin_lower": lower,
                        "bin_upper": lower + 1 / 15,
                        "count": count,
                        "mean_confidence": lower + 1 / 30,
                        "accuracy": np.where(count > 0, lower, np.nan),
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def _fits_page(fig) -> None:
    width, height = fig.get_size_inches()
    assert width <= PAGE[0] and height <= PAGE[1], (width, height)


# ------------------------------------------------------------------ the main reliability figure


def test_reliability_summary_of_a_paper_grid_fits_a_page_with_a_legend():
    bins = _paper_bins()
    classes = {x: float(i % 6) for i, x in enumerate(LANGUAGES)}
    disp = ReliabilitySummaryDisplay.from_results(
        bins, task="xnli", groups=resource_class_groups(classes)
    )
    _fits_page(disp.figure_)
    titles = [a.get_title() for a in disp.axes_.flat if a.axison]
    assert titles == ["class 5", "class 4", "class 3", "class 2", "class 0-1"]
    assert len(titles) <= MAX_PANELS
    legend = [t.get_text() for t in disp.figure_.legends[0].get_texts()]
    assert legend == [*SYSTEMS, "perfect calibration"]
    # every system a curve in every panel, none labelled with an ECE over the data
    first = disp.axes_.flat[0]
    assert len(first.get_lines()) == 1 + len(SYSTEMS)
    assert not [t for a in disp.figure_.axes for t in a.texts if "ECE" in t.get_text()]
    # count strips: readable (their own axis, scaled to the fullest bin, labelled)
    strip = disp.strips_.flat[0]
    assert strip.get_ylabel() == "% ex."
    tallest = max(p.get_data().values.max() for p in strip.patches)
    assert tallest > 0.8 * strip.get_ylim()[1]


def test_one_chosen_language_is_a_column_wide():
    disp = ReliabilitySummaryDisplay.from_results(_paper_bins(), task="xnli", languages=["l03"])
    assert disp.figure_.get_size_inches()[0] <= 3.3
    assert [a.get_title() for a in disp.axes_.flat] == ["l03"]


def test_too_many_panels_is_an_error_naming_the_limit():
    bins = _paper_bins().assign(panel=lambda f: f["language"])
    with pytest.raises(ValueError, match=f"at most {MAX_PANELS}"):
        ReliabilitySummaryDisplay(bins)


def test_sparse_bins_are_smoothed_with_a_band_and_dense_bins_are_not():
    sparse = ReliabilitySummaryDisplay.from_results(
        _paper_bins(5), task="xnli", languages=["l00"], systems=["s0"]
    )
    assert len(sparse.axes_.flat[0].collections) == 1  # the band
    assert "95%" in sparse.figure_.legends[0].get_title().get_text()
    dense = ReliabilitySummaryDisplay.from_results(
        _paper_bins(5000), task="xnli", languages=["l00"], systems=["s0"]
    )
    assert len(dense.axes_.flat[0].collections) == 0


def test_pooled_bins_equal_the_bins_of_the_pooled_predictions():
    from xcal.metrics import reliability_table

    rng = np.random.default_rng(1)
    runs = []
    for n in (300, 120):
        logits = rng.normal(size=(n, 3)) * 2
        runs.append((rng.integers(0, 3, size=n), logits))
    tables = [reliability_table(y, logits=z, n_bins=10).to_frame().assign(g="a") for y, z in runs]
    pooled = pool_bins(pd.concat(tables), ["g"]).sort_values("bin_lower")
    y_all = np.concatenate([y for y, _ in runs])
    z_all = np.concatenate([z for _, z in runs])
    whole = reliability_table(y_all, logits=z_all, n_bins=10).to_frame()
    np.testing.assert_array_equal(pooled["count"].to_numpy(), whole["count"].to_numpy())
    occupied = whole["count"].to_numpy() > 0
    for column in ("mean_confidence", "accuracy"):
        np.testing.assert_allclose(
            pooled[column].to_numpy()[occupied], whole[column].to_numpy()[occupied], rtol=1e-9
        )


def test_smoothed_curve_by_hand_and_band_narrows_with_more_examples():
    # two bins at 0.4 and 0.8, equal counts, evaluated half way: the kernel weights
    # are equal, so the curve is the mean of the accuracies
    curve, _, _ = smooth_reliability(
        np.array([0.4, 0.8]),
        np.array([0.3, 0.9]),
        np.array([10, 10]),
        np.array([0.6]),
        bandwidth=0.2,
    )
    assert curve[0] == pytest.approx((0.3 + 0.9) / 2)
    widths = []
    for n in (20, 2000):
        _, low, high = smooth_reliability(
            np.array([0.5, 0.7]), np.array([0.5, 0.7]), np.array([n, n]), np.array([0.6])
        )
        widths.append(high[0] - low[0])
    assert widths[1] < widths[0] / 5  # 1/sqrt(n): ten times narrower for 100x the examples
    far, _, _ = smooth_reliability(
        np.array([0.1]), np.array([0.1]), np.array([50]), np.array([0.9])
    )
    assert np.isnan(far[0])


# ------------------------------------------------------------------ the paged appendix grid


def test_grid_pages_of_a_paper_grid_have_a_fixed_size():
    bins = _paper_bins()
    pages = grid_pages(LANGUAGES, SYSTEMS, PAGE_SHAPE)
    assert len(pages) == -(-41 // PAGE_SHAPE[0]) * -(-10 // PAGE_SHAPE[1])
    assert sorted(x for rows, cols in pages for x in rows for _ in cols) == sorted(
        LANGUAGES * len(SYSTEMS)
    )
    sizes = set()
    for rows, cols in (pages[0], pages[-1]):
        part = bins[bins["language"].isin(rows) & bins["system"].isin(cols)]
        disp = ReliabilityGridDisplay(
            part, row_order=rows, col_order=cols, page_shape=PAGE_SHAPE
        ).plot()
        _fits_page(disp.figure_)
        sizes.add(tuple(disp.figure_.get_size_inches()))
        assert disp.figure_.legends, "a page explains its panels"
        # a few artists per panel, whatever the bins: cheap to draw, small as vector output
        assert all(len(a.patches) <= 2 and len(a.collections) <= 1 for a in disp.axes_.flat)
    assert len(sizes) == 1


# ------------------------------------------------------------------ heatmaps and severity panels


def _values(languages, systems) -> pd.DataFrame:
    rows = []
    for k, system in enumerate(systems):
        for i, language in enumerate(languages):
            for pert, sev in (("none", 0.0), ("noise", 0.1), ("noise", 0.3)):
                rows.append(
                    {
                        "system": system,
                        "language": language,
                        "resource_class": float(i % 3 + 3),
                        "perturbation": pert,
                        "severity": sev,
                        "estimate": 0.05 * (k + 1) + sev,
                    }
                )
    return pd.DataFrame(rows)


def test_heatmap_rows_are_grouped_past_the_cap():
    matrix = metric_matrix(_values(LANGUAGES, ["a"]), scale=100.0, max_rows=12)
    assert list(matrix.index) == ["class 5 (n=13)", "class 4 (n=14)", "class 3 (n=14)"]
    assert matrix.loc["class 5 (n=13)", "clean"] == pytest.approx(5.0)
    small = metric_matrix(_values(LANGUAGES[:4], ["a"]), scale=100.0, max_rows=12)
    assert list(small.index) == LANGUAGES[:4]


def test_side_by_side_heatmaps_share_one_colour_scale_and_one_colour_bar():
    values = _values(LANGUAGES, SYSTEMS)
    matrices = {
        s: metric_matrix(values[values["system"] == s], scale=100.0, max_rows=12) for s in SYSTEMS
    }
    disp = MetricHeatmapGridDisplay(matrices, value_label="ECE (%)").plot()
    _fits_page(disp.figure_)
    assert {im.get_clim() for im in disp.images_} == {(5.0, 80.0)}
    assert len(disp.figure_.axes) == len(SYSTEMS) + 1  # one colour bar


def test_single_heatmap_honours_a_shared_scale():
    matrix = pd.DataFrame([[3.0, 5.0]], index=["en"], columns=["clean", "noise 0.1"])
    disp = MetricHeatmapDisplay(matrix, value_label="ECE (%)", vmin=0.0, vmax=40.0).plot()
    assert disp.ax_.collections[0].get_clim() == (0.0, 40.0)


def test_severity_panels_share_the_y_axis_by_default():
    rows = [
        {"perturbation": p, "severity": s, "system": "A", "accuracy": a, "confidence": a + 2}
        for p, scale in (("small", 1.0), ("large", 20.0))
        for s, a in ((0.0, 80.0), (0.5, 80.0 - scale))
    ]
    shared = SeverityCurveDisplay(pd.DataFrame(rows)).plot()
    assert shared.axes_[0, 0].get_ylim() == shared.axes_[0, 1].get_ylim()
    free = SeverityCurveDisplay(pd.DataFrame(rows), sharey=False).plot()
    assert free.axes_[0, 0].get_ylim() != free.axes_[0, 1].get_ylim()


# ------------------------------------------------------------------ --figures none|main|all


@pytest.fixture(scope="module")
def small_result(tmp_path_factory):
    from xcal.analyze import analyze_store
    from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store

    root = tmp_path_factory.mktemp("levels")
    store = make_synthetic_store(
        root / "store",
        systems=[SyntheticSystem("baseline"), SyntheticSystem("b", lambda *a: 1.5)],
        languages=["en", "de", "sw", "fr", "hi", "ar", "zh", "ta"],
        conditions=[("none", 0.0), ("word_shuffle", 0.5)],
        n_examples=120,
    )
    return root, analyze_store(
        store,
        baseline="baseline",
        n_boot=0,
        metrics=["accuracy", "ece", "confidence"],
        cache=False,
        progress=False,
    )


def _linked(index: str) -> set[str]:
    return {target for _, target in re.findall(r"\[`([^`]+)`\]\(([^)]+)\)", index)}


@pytest.mark.slow
@pytest.mark.parametrize("level", ["none", "main", "all"])
def test_figure_levels_write_what_the_index_says(small_result, level):
    root, result = small_result
    out = root / level
    index = result.write_report(out, figures=level, tables=level != "none").read_text()
    drawn = {str(p.relative_to(out)) for p in out.glob("figures/*.pdf")}
    assert drawn == {x for x in _linked(index) if x.startswith("figures/")}
    if level == "none":
        assert not drawn
        assert "`--figures none`" in index and "`--no-tables`" in index
        assert not (out / "tables").exists()
    elif level == "main":
        assert drawn == {
            "figures/reliability_xnli.pdf",
            "figures/forest_ece_xnli.pdf",
            "figures/heatmap_ece_xnli.pdf",
            "figures/severity_xnli.pdf",
        }
        # 8 languages x 2 systems: 2 grid pages; plus one heatmap per system
        assert "Skipped: 4 appendix figure(s)" in index and "`--figures all`" in index
    else:
        pages = sorted(x for x in drawn if "reliability_grid" in x)
        assert pages == [
            "figures/reliability_grid_xnli_p01.pdf",
            "figures/reliability_grid_xnli_p02.pdf",
        ]
        assert "Skipped" not in index
