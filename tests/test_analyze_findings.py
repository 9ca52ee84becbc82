"""Findings per research question from xcal analyze (xcal.analyze.findings)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xcal.analyze import analyze_store
from xcal.analyze.clusters import unit_of
from xcal.analyze.findings import FINDING_COLUMNS, shift_kind
from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store
from xcal.transfer.language import family as lang_family

LANGUAGES = ("en", "de", "sw", "ur", "hi", "fr")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("findings")
    store = make_synthetic_store(
        root / "store",
        systems=(
            # the baseline is overconfident everywhere, the system calibrated
            SyntheticSystem("baseline", logit_scale=lambda lang, p, s: 2.5),
            SyntheticSystem("intermediate", intermediate_tasks=("pawsx",)),
        ),
        languages=LANGUAGES,
        conditions=(
            ("none", 0.0),
            ("word_shuffle", 0.5),
            ("word_shuffle", 1.0),
            ("char_noise", 0.5),
        ),
        n_examples=300,
    )
    res = analyze_store(
        store,
        baseline="baseline",
        n_boot=400,
        metrics=["accuracy", "ece", "debiased_ece", "smooth_ece", "brier"],
        out=root / "out",
    )
    return res, root / "out"


@pytest.mark.slow
def test_files_and_index_section(analysed) -> None:
    res, out = analysed
    table = pd.read_csv(out / "findings.csv")
    assert list(table.columns) == list(FINDING_COLUMNS)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "findings.parquet"), res.findings.table, check_dtype=False
    )
    tex = (out / "findings.tex").read_text()
    assert "\\begin{tabular}" in tex and "Q2" in tex and "word\\_shuffle" in tex
    index = (out / "index.md").read_text()
    assert "## Findings" in index
    for heading in ("### Q0", "### Q1", "### Q2", "### Q4"):
        assert heading in index
    # what the store cannot answer, and why
    assert "Q3 (architecture gap)" in index and "decoder-only" in index
    assert "Q5" in index and "--task-distances" in index


@pytest.mark.slow
def test_pooled_row_is_the_mean_of_the_cells_and_finds_the_planted_effect(analysed) -> None:
    res, _ = analysed
    f = res.findings.table
    row = f[(f["question"] == "Q0") & (f["metric"] == "ece") & (f["pool"] == "non-English")].iloc[0]
    cells = res.select(comparison="difference", metric="ece", variant="raw", perturbation="none")
    cells = cells[cells["language"] != "en"]
    assert row.estimate == pytest.approx(cells["estimate"].mean(), rel=1e-9)
    assert row.n_languages == 5 and row.n_examples == cells["n_examples"].sum()
    assert row.ci_high < 0 and row.p_adjusted < 0.05
    assert "lowers ECE by" in row.direction and "over 5 non-English" in row.direction
    # the pooled interval is narrower than any one language's
    assert row.ci_high - row.ci_low < (cells["ci_high"] - cells["ci_low"]).min()


@pytest.mark.slow
def test_recalibrated_rows_pool_the_cells_at_their_fitted_temperatures(analysed) -> None:
    # The baseline's miscalibration is a temperature (logits x 2.5): scaled per
    # language, both systems are calibrated, and the planted raw effect is gone.
    res, _ = analysed
    f = res.findings.table
    pooled = f[(f["question"] == "Q0") & (f["pool"] == "non-English") & (f["metric"] == "ece")]
    raw = pooled[pooled["variant"] == "raw"].iloc[0]
    scaled = pooled[pooled["variant"] == "ts_self"].iloc[0]
    cells = res.select(
        comparison="difference", metric="ece", variant="ts_self", perturbation="none"
    )
    cells = cells[cells["language"] != "en"]
    assert scaled.estimate == pytest.approx(cells["estimate"].mean(), rel=1e-9)
    assert scaled.n_languages == 5 and scaled.n_examples == raw.n_examples
    assert raw.ci_high < 0 and scaled.ci_low <= 0 <= scaled.ci_high
    assert "temperature-scaled" in scaled.direction
    # a temperature changes no accuracy: no recalibrated accuracy rows
    assert set(f.loc[f["variant"] == "ts_self", "metric"]) == {
        "ece",
        "debiased_ece",
        "smooth_ece",
        "brier",
    }
    # Holm families are question x metric x variant: the raw rows are adjusted
    # among themselves, as before recalibrated rows existed
    from statsmodels.stats.multitest import multipletests

    assert set(f["variant"]) == {"raw", "ts_self"}
    tested = f[f["p_value"].notna()]
    for _, family in tested.groupby(["question", "metric", "variant"]):
        expected = multipletests(family["p_value"], method="holm")[1]
        np.testing.assert_allclose(family["p_adjusted"], expected, rtol=1e-12)


@pytest.mark.slow
def test_questions_slopes_and_adjustment(analysed) -> None:
    res, _ = analysed
    f = res.findings.table
    assert set(f["question"]) >= {"Q0", "Q1", "Q2", "Q4"}
    assert set(f.loc[f["question"] == "Q1", "perturbation"]) == {"char_noise"}
    slopes = f[(f["quantity"] == "slope against severity")]
    assert set(slopes["perturbation"]) == {"word_shuffle", "char_noise"}
    assert slopes[["ci_low", "ci_high"]].notna().all().all()
    # Holm within question x metric: never below the raw p-value
    assert (f["p_adjusted"].dropna() >= f.loc[f["p_adjusted"].notna(), "p_value"] - 1e-12).all()
    # pools: every Joshi class and script with at least two languages
    assert any(p.startswith("class ") for p in f["pool"]) and "script Latn" in set(f["pool"])
    # and every Glottolog family with two: its row is the mean of its languages' cells
    family = f[(f["pool"] == "family Indo-European") & (f["metric"] == "brier")]
    row = family[(family["perturbation"] == "none") & (family["question"] == "Q0")].iloc[0]
    members = [lang for lang in LANGUAGES if lang != "en" and lang_family(lang) == "Indo-European"]
    cells = res.select(comparison="difference", metric="brier", variant="raw", perturbation="none")
    cells = cells[cells["language"].isin(members)]
    assert row.n_languages == len(members) == len(cells) >= 2
    assert row.estimate == pytest.approx(cells["estimate"].mean(), rel=1e-9)
    wide = f[~f["conclusive"].astype(bool) & (f["quantity"] == "pooled difference")]
    assert wide["direction"].str.contains("inconclusive at this sample size").all()
    assert (wide["n_needed_per_language"] > wide["n_examples"] / wide["n_languages"]).all()


@pytest.mark.slow
def test_mixed_model_cross_check_agrees(analysed) -> None:
    res, _ = analysed
    f = res.findings.table
    rows = f[
        (f["pool"] == "non-English")
        & (f["quantity"] == "pooled difference")
        & f["metric"].isin(["accuracy", "brier"])
    ]
    assert rows["mixedlm_estimate"].notna().all()
    width = rows["ci_high"] - rows["ci_low"]
    assert (np.abs(rows["mixedlm_estimate"] - rows["estimate"]) < 0.25 * width).all()


def test_units_and_shift_kinds() -> None:
    assert unit_of("xnli", "xnli-dev-000005") == unit_of("xnli", "xnli-dev-000003")
    assert unit_of("xnli", "xnli-dev-000006") != unit_of("xnli", "xnli-dev-000005")
    assert unit_of("xquad", "56be4db0acb8001400a502ec") == "56be4db0acb8001400a502ec"
    assert shift_kind("word_shuffle") == "syntactic"
    assert shift_kind("char_noise") == "distributional"
    assert shift_kind("none") is None


def test_pooled_qa_rows_resample_recorded_paragraphs_across_languages(tmp_path) -> None:
    from _builders import qa_stores_with_and_without_paragraphs

    from xcal.analyze.predictions import fit_mask

    units = {}
    for name, store in qa_stores_with_and_without_paragraphs(tmp_path, ["en", "de", "sw"]).items():
        result = analyze_store(
            store, baseline="baseline", n_boot=100, metrics=["ece"], cache=False, progress=False
        )
        f = result.findings.table
        row = f[(f["pool"] == "non-English") & (f["task"] == "xquad")].iloc[0]
        assert row["n_languages"] == 2
        units[name] = int(row["n_units"])
    ids = np.array([f"xquad-{i:05d}" for i in range(200)], dtype=object)
    evaluated = ids[~fit_mask(ids, 0.5)]
    # the same question in de and sw is one unit; with paragraphs, four questions are one
    assert units["questions"] == len(evaluated)
    assert units["paragraphs"] == len({int(i[-5:]) // 4 for i in evaluated})


@pytest.mark.slow
def test_task_distance_question(tmp_path) -> None:
    tasks = ("pawsx", "udpos", "squad", "panx", "mnli")
    store = make_synthetic_store(
        tmp_path / "store",
        systems=(
            SyntheticSystem("baseline"),
            *(SyntheticSystem(f"+{t}", intermediate_tasks=(t,)) for t in tasks),
        ),
        languages=("en", "de", "sw"),
        n_examples=200,
    )
    text, task = [0.1, 0.5, 0.3, 0.9, 0.2], [0.4, 0.1, 0.8, 0.3, 0.6]
    distances = pd.DataFrame(
        {
            "task_a": tasks * 2,
            "task_b": "xnli",
            "measure": ["textemb"] * 5 + ["taskemb"] * 5,
            "distance": text + task,
        }
    )
    res = analyze_store(
        store,
        baseline="baseline",
        n_boot=200,
        metrics=["accuracy", "ece"],
        task_distances=distances,
        cache=False,
    )
    f = res.findings.table
    q5 = f[f["question"] == "Q5"]
    assert "Q5" not in res.findings.missing
    from xcal.stats.correlation import fisher_z_interval
    from xcal.transfer import ndcg_at_k_score, regret_at_k_loss

    for measure, dist in (("textemb", distances.iloc[:5]), ("taskemb", distances.iloc[5:])):
        rows = q5[q5["quantity"].str.contains(f"with {measure} task distance")]
        assert len(rows) == 6  # 3 correlations x 2 metrics
        for method in ("pearson", "spearman", "kendall"):
            row = rows[rows["quantity"].str.startswith(method) & (rows["metric"] == "ece")].iloc[0]
            assert row.n_units == 5
            assert (row.ci_low, row.ci_high) == pytest.approx(
                fisher_z_interval(row.estimate, 5, method=method)
            )
            assert 0 < row.p_value <= 1
        # choosing the intermediate task by distance: NDCG and Regret@1 of xcal.transfer
        values = res.select(comparison="value", metric="accuracy", variant="raw")
        values = values[values["language"] != "en"].groupby("system")["estimate"].mean()
        perf = np.array([values[f"+{t}"] for t in dist["task_a"]])
        scores = -dist["distance"].to_numpy()
        for quantity, expected in (
            ("NDCG", ndcg_at_k_score(perf, scores)),
            ("Regret@1", regret_at_k_loss(perf, scores, 1)),
        ):
            row = q5[
                (
                    q5["quantity"]
                    == f"{quantity} of choosing the intermediate task by {measure} distance"
                )
                & (q5["metric"] == "accuracy")
            ].iloc[0]
            assert row.estimate == pytest.approx(expected, rel=1e-9)
            assert row.task == "xnli" and row.n_units == 5
            # share of the 120 orderings of 5 candidates doing at least as well
            assert 1 / 120 <= row.p_value <= 1 and (row.p_value * 120) == pytest.approx(
                round(row.p_value * 120)
            )
    # calibration: performance is 1 - ECE
    ece_ndcg = q5[q5["quantity"].str.startswith("NDCG") & (q5["metric"] == "ece")]
    assert len(ece_ndcg) == 2


@pytest.mark.slow
def test_architecture_gap_and_its_interaction_with_distance(tmp_path) -> None:
    # A decoder-only model overconfident everywhere, more so in the languages far
    # from English (URIEL distance of hi, ur, sw well above de, fr); an
    # encoder-only baseline.
    far = {"hi": 4.0, "ur": 4.0, "sw": 4.0}  # near: 1.5
    store = make_synthetic_store(
        tmp_path / "store",
        systems=(
            SyntheticSystem("encoder"),
            SyntheticSystem(
                "decoder",
                architecture="decoder-only",
                logit_scale=lambda lang, p, s: far.get(lang, 1.5),
            ),
        ),
        languages=LANGUAGES,
        n_examples=300,
    )
    res = analyze_store(
        store, baseline="encoder", n_boot=400, metrics=["accuracy", "ece"], cache=False
    )
    f = res.findings.table
    q3 = f[(f["question"] == "Q3") & (f["metric"] == "ece")]
    gap = q3[q3["quantity"] == "decoder-only minus encoder-only (pooled difference)"].iloc[0]
    slope = q3[q3["quantity"].str.startswith("decoder-only minus encoder-only gap: slope")].iloc[0]
    assert (gap.system, gap.baseline, gap.n_languages) == ("decoder", "encoder", 5)
    # the gap is the mean of the per-language differences, decoder minus encoder
    cells = res.select(comparison="difference", metric="ece", variant="raw", perturbation="none")
    cells = cells[cells["language"] != "en"].sort_values("language")
    assert gap.estimate == pytest.approx(cells["estimate"].mean(), rel=1e-9)
    assert gap.ci_low > 0 and gap.direction.startswith("decoder-only decoder (vs encoder-only")
    # the interaction: OLS slope of the per-language gap on URIEL distance, found
    x = cells["language_distance"].to_numpy(float)
    y = cells["estimate"].to_numpy(float)
    xc = x - x.mean()
    assert slope.estimate == pytest.approx(float(xc @ (y - y.mean()) / (xc @ xc)), rel=1e-9)
    assert slope.ci_low > 0 and slope.p_value < 0.05
    assert "Q3 (architecture gap)" not in res.findings.missing
    # reported once: not again as the system's generic slope against distance
    assert not (q3["quantity"] == "slope against URIEL distance from English").any()


@pytest.mark.slow
def test_findings_come_from_the_cache_and_equal_a_fresh_pooling(analysed, monkeypatch) -> None:
    import xcal.analyze.findings as findings_module

    res, out = analysed
    store = out.parent / "store"
    kwargs = dict(
        baseline="baseline",
        n_boot=400,
        metrics=["accuracy", "ece", "debiased_ece", "smooth_ece", "brier"],
        out=out,
        figures="none",
        tables=False,
    )
    real = findings_module.condition_findings
    pooled: list[str] = []

    def counted(store_, options, unit):
        pooled.append(
            f"{unit.system} {unit.condition['perturbation']} {unit.condition['severity']}"
        )
        return real(store_, options, unit)

    monkeypatch.setattr(findings_module, "condition_findings", counted)
    again = analyze_store(store, **kwargs)
    assert pooled == []  # every unit from the cache
    pd.testing.assert_frame_equal(again.findings.table, res.findings.table, check_exact=True)

    # a damaged entry is recomputed, to the same rows
    entries = sorted((out / ".cache" / "findings").rglob("*.json"))
    assert len(entries) == 4  # one system x four conditions
    entries[0].write_text("{not json")
    repaired = analyze_store(store, **kwargs)
    assert len(pooled) == 1
    pd.testing.assert_frame_equal(repaired.findings.table, res.findings.table, check_exact=True)

    # another seed is another key: everything pooled again
    pooled.clear()
    analyze_store(store, **{**kwargs, "seed": 1})
    assert len(pooled) == 4


def test_qa_findings_pool_exact_match_and_f1_as_the_cells_mean(tmp_path) -> None:
    from _builders import qa_stores_with_and_without_paragraphs

    store = qa_stores_with_and_without_paragraphs(tmp_path, ["en", "de", "sw"])["paragraphs"]
    result = analyze_store(
        store,
        baseline="baseline",
        n_boot=100,
        metrics=["exact_match", "f1", "ece"],
        cache=False,
        progress=False,
    )
    f = result.findings.table
    cells = result.results
    for metric in ("exact_match", "f1"):
        rows = f[(f["pool"] == "non-English") & (f["metric"] == metric)]
        assert list(rows["variant"]) == ["raw"]  # a temperature changes no answer
        per_language = cells[
            (cells["metric"] == metric)
            & (cells["comparison"] == "difference")
            & (cells["variant"] == "raw")
            & (cells["language"].isin(["de", "sw"]))
        ]
        assert len(per_language) == 2
        np.testing.assert_allclose(rows["estimate"].iloc[0], per_language["estimate"].mean())
