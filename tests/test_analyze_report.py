"""The report folder: every number, table and figure written, listed, compilable, and showing what was planted.

The store has three systems on three languages, clean and under a
perturbation at two severities, plus a retrieval task over languages of
several resource classes. ``inter`` is overconfident in Swahili only (logits
x3). B = 300 resamples: after Holm over 9 tests the smallest adjusted p-value
is 9/301, so a planted effect can reach significance; n = 800 (400 evaluated)
gives the planted effect about five standard errors. ``ece_mass`` is left out
(the slowest metric to bootstrap; tested in test_analyze.py) to keep this fast.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from test_latex import compile_tables, overfull_boxes

from xcal.analyze import analyze_store, read_results
from xcal.analyze.synthetic import SyntheticSystem, add_synthetic_retrieval, make_synthetic_store

# Writes a dozen PDF and PNG figures: about a minute on a busy 2-core machine.
pytestmark = pytest.mark.slow

LANGUAGES = ("en", "de", "sw")
CONDITIONS = (("none", 0.0), ("word_shuffle", 0.3), ("word_shuffle", 0.6))


def _inter(language: str, perturbation: str, severity: float) -> float:
    return 3.0 if language == "sw" else 1.0


SYSTEMS = (
    SyntheticSystem("baseline"),
    SyntheticSystem("inter", logit_scale=_inter, intermediate_tasks=("pawsx",)),
    SyntheticSystem("inter_qa", intermediate_tasks=("tydiqa",)),
    SyntheticSystem("inter_copa", intermediate_tasks=("xcopa",)),
)
DISTANCES = pd.DataFrame(
    {
        "task_a": ["pawsx", "tydiqa", "xcopa"],
        "task_b": ["xnli"] * 3,
        "measure": ["textemb"] * 3,
        "distance": [0.2, 0.5, 0.4],
    }
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    store = make_synthetic_store(
        root / "store", systems=SYSTEMS, languages=LANGUAGES, conditions=CONDITIONS, n_examples=800
    )
    add_synthetic_retrieval(
        store,
        systems=SYSTEMS[:2],
        languages=["en", "de", "sw", "yo", "ta"],
        n_examples=200,
        temperature=0.05,
    )
    out = root / "out"
    result = analyze_store(
        store,
        baseline="baseline",
        out=out,
        n_boot=300,
        seed=0,
        task_distances=DISTANCES,
        retrieval_temperature=0.05,
        metrics=["accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "aurc", "confidence"],
        progress=False,
    )
    plt.close("all")
    return store, result, out


def test_index_lists_every_file_with_a_caption(report):
    _, _, out = report
    index = (out / "index.md").read_text()
    listed = re.findall(r"\[`([^`]+)`\]\(([^)]+)\)", index)
    assert all(label == target for label, target in listed)
    listed_files = {target for _, target in listed}
    on_disk = {
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.is_file() and ".cache" not in p.parts and p.suffix != ".png" and p.name != "index.md"
    }
    assert on_disk == listed_files
    for target in listed_files:
        line = next(line for line in index.splitlines() if f"]({target})" in line)
        assert len(line.split(":", 1)[1].strip()) > 20, line  # a caption, not just a link
    # every pdf figure has its png
    for pdf in (out / "figures").glob("*.pdf"):
        assert pdf.read_bytes().startswith(b"%PDF")
        assert pdf.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert len(list((out / "figures").glob("*.pdf"))) >= 7
    assert (out / ".cache" / "cells").is_dir()


def test_results_files_round_trip(report):
    _, result, out = report
    for path in (out, out / "results.csv"):
        frame = read_results(path)
        assert len(frame) == len(result.results)
        pd.testing.assert_frame_equal(
            frame[["system", "language", "metric", "variant", "estimate"]],
            result.results[["system", "language", "metric", "variant", "estimate"]],
            check_exact=False,
            rtol=1e-9,
        )
    reliability = pd.read_parquet(out / "reliability.parquet")
    assert set(reliability["variant"]) == {"raw", "ts_en", "ts_self"}
    assert (
        reliability.groupby(
            ["system", "task", "language", "perturbation", "severity", "variant"]
        ).size()
        == 15
    ).all()


def test_every_table_compiles_with_pdflatex_and_fits_the_page(report, tmp_path):
    _, _, out = report
    tables = sorted(p for p in (out / "tables").glob("*.tex") if p.name != "preview.tex")
    names = {p.stem for p in tables}
    assert {
        "delta_ece_raw_inter_xnli",
        "ece_raw_xnli_clean",
        "recalibration_ece_xnli",
        "resource_ece_raw_tatoeba",
        "gain_vs_task_distance",
    } <= names
    # one recalibration table with every system, the baseline first, not split in parts
    assert not any("part" in name for name in names)
    # (4 systems x 3 variants do not fit across the page: transposed, systems as rows)
    recalibration = (out / "tables" / "recalibration_ece_xnli.tex").read_text()
    body = recalibration.split("\\midrule")[1]
    assert body.index("baseline & raw") < body.index("inter & raw")
    assert "TS (en)" in body and "fitted on English" in recalibration
    log = compile_tables(tables, tmp_path)
    assert overfull_boxes(log) == []


def test_report_tables_in_brackets_style_fit_the_page_too(report, tmp_path):
    from xcal.analyze.report import build_tables
    from xcal.analyze.tables import TableOptions

    _, result, _ = report
    tables = build_tables(result, TableOptions(interval_style="brackets"))
    assert all("\\pm" not in t.tex.split("\\midrule")[1] for t in tables)
    paths = [t.save(tmp_path / f"{t.name}.tex") for t in tables]
    log = compile_tables(paths, tmp_path)
    assert overfull_boxes(log) == []


def _cells(tex: str, language: str) -> list[str]:
    line = next(line for line in tex.splitlines() if line.startswith(f"{language} &"))
    return [cell.strip() for cell in line.rstrip("\\ ").split("&")[1:]]


def test_delta_table_shows_the_planted_difference_and_nothing_else(report):
    _, result, out = report
    tex = (out / "tables" / "delta_ece_raw_inter_xnli.tex").read_text()
    # columns: clean, word shuffle 30%, word shuffle 60% (display names), two per condition
    assert (
        "{Language} & \\multicolumn{2}{c}{clean} & \\multicolumn{2}{c}{word shuffle 30\\%} & "
        "\\multicolumn{2}{c}{word shuffle 60\\%}" in tex
    )
    sw = _cells(tex, "sw")
    for number, interval in zip(sw[::2], sw[1::2], strict=True):
        assert "{}^{*" in interval, interval  # significant in every condition
        assert float(number) > 5  # points of ECE
    for language in ("en", "de"):
        assert all("^{*" not in cell for cell in _cells(tex, language)), language
    # and the numbers are the results' (x100, one decimal), the interval as offsets
    row = result.select(
        task="xnli",
        system="inter",
        comparison="difference",
        metric="ece",
        variant="raw",
        language="sw",
        perturbation="none",
    ).iloc[0]
    up = (row.ci_high - row.estimate) * 100
    down = (row.estimate - row.ci_low) * 100
    assert sw[0] == f"{row.estimate * 100:.1f}"
    assert sw[1].startswith(f"${{}}^{{+{up:.1f}}}_{{-{down:.1f}}}$")
    # the systems without a planted effect have no significant cell at all
    for system in ("inter_qa", "inter_copa"):
        other = (out / "tables" / f"delta_ece_raw_{system}_xnli.tex").read_text()
        assert "^{*" not in other.split("\\midrule")[1]


def test_resource_class_table_groups_languages(report):
    _, _, out = report
    tex = (out / "tables" / "resource_ece_raw_tatoeba.tex").read_text()
    # en, de: class 5; ta: 3; sw, yo: 2 (Joshi et al. 2020)
    rows = [
        line.split("&")[0].strip() for line in tex.split("\\midrule")[1].splitlines() if "&" in line
    ]
    assert rows == ["5 (2 lang.)", "3 (1 lang.)", "2 (2 lang.)"]


def test_report_is_not_redrawn_when_nothing_changed(report):
    _, result, out = report
    stamp = {p: p.stat().st_mtime_ns for p in (out / "figures").glob("*.pdf")}
    result.write_report(out)
    assert {p: p.stat().st_mtime_ns for p in (out / "figures").glob("*.pdf")} == stamp


# ------------------------------------------------------------------ figures: content, not existence


@pytest.fixture(scope="module")
def figures(report):
    _, result, _ = report
    drawn = result.figures()
    yield drawn
    plt.close("all")


def test_reliability_figure_overlays_systems_per_language(figures):
    disp = figures["reliability_xnli"]
    # three languages: one panel each, every system a line, a legend naming them
    assert [a.get_title() for a in disp.axes_.flat] == ["en", "de", "sw"]
    legend = [t.get_text() for t in disp.figure_.legends[0].get_texts()]
    assert legend[:4] == ["baseline", "inter", "inter_copa", "inter_qa"]
    assert disp.figure_.get_size_inches()[0] <= 6.8


@pytest.fixture(scope="module")
def appendix(report):
    _, result, _ = report
    drawn = result.figures("all")
    yield drawn
    plt.close("all")


def test_reliability_grid_is_languages_by_systems(appendix):
    disp = appendix["reliability_grid_xnli_p01"]
    assert disp.axes_.shape == (3, 4)
    assert [disp.axes_[0, j].get_title() for j in range(4)] == [
        "baseline",
        "inter",
        "inter_copa",
        "inter_qa",
    ]
    assert [disp.axes_[i, 0].get_ylabel().split("\n")[0] for i in range(3)] == ["en", "de", "sw"]
    assert all(disp.axes_[2, j].get_xlabel() == "Confidence (%)" for j in range(4))
    assert "reliability_tatoeba" in appendix


def test_forest_plot_has_a_row_per_language_and_the_planted_effect_away_from_zero(figures):
    disp = figures["forest_ece_xnli"]
    assert [t.get_text() for t in disp.ax_.get_yticklabels()] == ["en", "de", "sw"]
    assert disp.ax_.get_xlabel() == "ΔECE vs baseline (points)"
    sw = disp.frame[(disp.frame["label"] == "sw") & (disp.frame["group"] == "inter")].iloc[0]
    assert sw.ci_low > 0 and sw.p_adjusted < 0.05


def test_heatmaps_and_severity_curves(figures, appendix):
    heat = appendix["heatmap_ece_inter_xnli"]
    assert heat.matrix.shape == (3, 3)
    # the default display names: a paper prints "word shuffle 30%", not the identifier
    assert list(heat.matrix.columns) == ["clean", "word shuffle 30%", "word shuffle 60%"]
    assert heat.matrix.loc["sw", "clean"] > heat.matrix.loc["en", "clean"] + 5  # planted, in points
    severity = figures["severity_xnli"]
    assert severity.axes_.shape == (1, 1)
    side = figures["heatmap_ece_xnli"]
    assert len({im.get_clim() for im in side.images_}) == 1  # one colour scale
    assert len(severity.ax_.get_lines()) == 4 * 2  # four systems x (accuracy, confidence)
    # accuracy falls as severity grows (the separation shrinks with severity)
    acc = (
        severity.frame[severity.frame["system"] == "baseline"]
        .sort_values("severity")["accuracy"]
        .to_numpy()
    )
    assert acc[0] > acc[-1]


def test_gain_vs_distance_has_one_point_per_system(figures):
    disp = figures["gain_vs_distance_ece"]
    assert len(disp.frame) == 3
    assert sorted(disp.frame["distance"]) == pytest.approx([0.2, 0.4, 0.5])
    assert disp.ax_.get_xlabel() == "Task distance (intermediate to target)"
    assert disp.ax_.get_ylabel() == "ECE reduction vs baseline (points)"


def _architecture_results(architectures: dict[str, str]) -> pd.DataFrame:
    from xcal.analyze.results import RESULT_COLUMNS, conform

    values = {  # system -> metric -> language -> value (proportions)
        "enc": {
            "accuracy": {"en": 0.80, "de": 0.75, "sw": 0.65},
            "ece": {"en": 0.05, "de": 0.07, "sw": 0.12},
        },
        "dec": {
            "accuracy": {"en": 0.70, "de": 0.68, "sw": 0.60},
            "ece": {"en": 0.10, "de": 0.11, "sw": 0.15},
        },
    }
    records = []
    for system, by_metric in values.items():
        for metric, by_language in by_metric.items():
            for language, value in by_language.items():
                for perturbation, shift in (("none", 0.0), ("word_shuffle", 0.3)):
                    record = dict.fromkeys(RESULT_COLUMNS)
                    record.update(
                        system=system, baseline="", comparison="value", task="xnli",
                        split="test", language=language, perturbation=perturbation,
                        severity=0.5 if shift else 0.0, perturbation_seed=0,
                        perturbation_params="", metric=metric, variant="raw",
                        estimate=value - shift, ci_low=value - shift - 0.01,
                        ci_high=value - shift + 0.01, n_examples=100, n_boot=100, seed=0,
                        higher_is_better=metric == "accuracy", record_kind="classification",
                        architecture=architectures[system],
                    )  # fmt: skip
                    records.append(record)
    return conform(pd.DataFrame(records))


def test_architecture_gap_table_matches_a_hand_computation():
    from xcal.analyze.tables import architecture_gap_table

    results = _architecture_results({"enc": "encoder-only", "dec": "decoder-only"})
    tables = architecture_gap_table(results, n_boot=200)
    assert len(tables) == 1
    tex = tables[0].tex
    # Gap = en minus language, mean over de and sw, in percentage points; the
    # perturbed rows (0.3 lower everywhere) must not enter.
    enc = (((80 - 75) + (80 - 65)) / 2, ((5 - 7) + (5 - 12)) / 2)  # 10.0, -4.5
    dec = (((70 - 68) + (70 - 60)) / 2, ((10 - 11) + (10 - 15)) / 2)  # 6.0, -3.0
    rows = {line.split("&")[1].strip(): line for line in tex.splitlines() if line.count("&") == 5}
    assert rows["enc"].startswith("encoder-only") and rows["dec"].startswith("decoder-only")
    for system, (accuracy, ece) in (("enc", enc), ("dec", dec)):
        cells = [c.strip() for c in rows[system].split("&")[2::2]]
        assert cells == [f"{accuracy:.1f}", f"{ece:.1f}"]
    assert "Transfer gap on XNLI" in tables[0].caption


def test_architecture_gap_table_needs_two_families():
    from xcal.analyze.tables import architecture_gap_table

    results = _architecture_results({"enc": "encoder-only", "dec": "encoder-only"})
    assert architecture_gap_table(results) == []


@pytest.mark.parametrize("two_families", [True, False])
def test_build_tables_includes_the_architecture_gap_only_with_two_families(two_families):
    from types import SimpleNamespace

    from xcal.analyze.report import build_tables

    families = {"enc": "encoder-only", "dec": "decoder-only" if two_families else "encoder-only"}
    result = SimpleNamespace(
        results=_architecture_results(families), correlations=pd.DataFrame(), notes=[]
    )
    names = [table.name for table in build_tables(result)]  # type: ignore[arg-type]
    assert ("architecture_gap_raw_xnli" in names) is two_families
    assert result.notes == []
