"""Per-cell intervals resample a task's natural clusters (xcal.analyze.clusters, .bootstrap).

The coverage simulation draws data unlike the other generators: premises of
three hypotheses whose difficulty *for each system* is a premise-level random
effect (a model that misreads a premise gets its hypotheses wrong together),
so the accuracy difference is correlated within premises. S = 500 datasets:
the coverage's standard error is about 1 point at 95%, so 93-97% is a band of
2 standard errors either side; iid intervals, whose true coverage here is
about 82%, stay far below 90%.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from xcal.analyze import analyze_store
from xcal.analyze.bootstrap import _bootstrap
from xcal.analyze.clusters import cluster_codes, unit_of
from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store
from xcal.stats import calibration_statistic, mean_statistic, paired_bootstrap, percentile_interval


def test_cluster_codes_do_not_depend_on_the_order_of_the_ids() -> None:
    ids = [f"xnli-dev-{i:06d}" for i in (7, 0, 4, 3, 8, 1)]
    codes, n = cluster_codes("xnli", ids)
    assert n == 3 and codes.tolist() == [2, 0, 1, 1, 2, 0]  # premises 2, 0, 1, 1, 2, 0
    again, _ = cluster_codes("xnli", ids[::-1])
    assert again.tolist() == codes.tolist()[::-1]
    # other tasks: every example its own unit
    assert cluster_codes("pawsx", ["pawsx-dev-000002", "pawsx-dev-000001"])[0].tolist() == [1, 0]
    assert unit_of("xnli", "xnli-test-000005") == "xnli-test-premise-1"


def test_cluster_replicates_equal_paired_bootstrap_with_groups() -> None:
    # a linear statistic (fused into one product) and a non-linear one (equal-mass ECE)
    rng = np.random.default_rng(0)
    n, groups = 90, 30
    codes = np.repeat(np.arange(groups), 3)
    conf = rng.uniform(0.4, 1.0, size=(2, n))
    correct = rng.random((2, n)) < conf
    stats = {
        (s, m): (
            mean_statistic(correct[s].astype(float))
            if m == "accuracy"
            else calibration_statistic(conf[s], correct[s], binning="mass")
        )
        for s in (0, 1)
        for m in ("accuracy", "ece_mass")
    }
    reps = _bootstrap(stats, n, 300, 5, codes, groups)
    for m in ("accuracy", "ece_mass"):
        ref = paired_bootstrap(stats[(0, m)], stats[(1, m)], B=300, rng=5, groups=codes).iloc[0]
        low, high = percentile_interval(reps[(0, m)] - reps[(1, m)])
        assert (low, high) == pytest.approx((ref.ci_low, ref.ci_high), rel=1e-12, abs=1e-15)
    # iid: the draws of paired_bootstrap without groups
    iid = _bootstrap(stats, n, 300, 5)
    ref = paired_bootstrap(stats[(0, "accuracy")], stats[(1, "accuracy")], B=300, rng=5).iloc[0]
    d = iid[(0, "accuracy")] - iid[(1, "accuracy")]
    assert percentile_interval(d) == pytest.approx((ref.ci_low, ref.ci_high), rel=1e-12)


def _truth(spread: float) -> float:
    """Population accuracy difference: E sigmoid(1 + s u) - E sigmoid(0.3 + s u), u ~ N(0, 1)."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    return float(w @ expit(1.0 + spread * x) - w @ expit(0.3 + spread * x))


def test_cluster_intervals_cover_and_iid_intervals_do_not_on_clustered_data() -> None:
    spread, groups, size, reps = 2.5, 100, 3, 500
    truth = _truth(spread)
    codes = np.repeat(np.arange(groups), size)
    rng = np.random.default_rng(1)
    covered = {"clusters": 0, "examples": 0}
    for r in range(reps):
        # each system's own premise effect: the difference is clustered
        a = rng.random(groups * size) < expit(1.0 + spread * rng.normal(size=groups))[codes]
        b = rng.random(groups * size) < expit(0.3 + spread * rng.normal(size=groups))[codes]
        stats = {"a": mean_statistic(a.astype(float)), "b": mean_statistic(b.astype(float))}
        for how, args in (("clusters", (codes, groups)), ("examples", (None, None))):
            out = _bootstrap(stats, groups * size, 400, r, *args)
            low, high = percentile_interval(out["a"] - out["b"])
            covered[how] += low <= truth <= high
    coverage = {k: v / reps for k, v in covered.items()}
    print(f"coverage of the accuracy difference {truth:.4f}: {coverage}")
    assert 0.93 <= coverage["clusters"] <= 0.97
    assert coverage["examples"] <= 0.90


def test_analyze_resamples_premises_by_default_and_examples_on_request(tmp_path) -> None:
    store = make_synthetic_store(
        tmp_path / "store",
        systems=(SyntheticSystem("baseline"), SyntheticSystem("inter")),
        languages=("en", "de"),
        n_examples=240,
    )
    kwargs = dict(baseline="baseline", n_boot=300, metrics=["accuracy"], cache=False, pooled=False)
    clustered = analyze_store(store, **kwargs).results
    iid = analyze_store(store, clusters=False, **kwargs).results
    diff = (clustered["comparison"] == "difference") & (clustered["language"] == "de")
    row, flat = clustered[diff].iloc[0], iid[diff].iloc[0]
    assert "clusters" in row.method and "examples" in flat.method
    assert row.estimate == flat.estimate and row.seed == flat.seed
    arrays = store.load_classification(store.runs(model="inter", language="de")["run_id"].iloc[0])
    base = store.load_classification(store.runs(model="baseline", language="de")["run_id"].iloc[0])
    from xcal.analyze.predictions import fit_mask

    keep = ~fit_mask(arrays.example_ids, 0.5)
    sa = mean_statistic((arrays.logits[keep].argmax(1) == arrays.labels[keep]).astype(float))
    sb = mean_statistic((base.logits[keep].argmax(1) == base.labels[keep]).astype(float))
    ref = paired_bootstrap(sa, sb, B=300, rng=int(flat.seed)).iloc[0]
    assert (flat.ci_low, flat.ci_high) == pytest.approx((ref.ci_low, ref.ci_high), rel=1e-12)
    assert (row.ci_low, row.ci_high) != pytest.approx((ref.ci_low, ref.ci_high), rel=1e-12)


@pytest.mark.slow  # writes two whole reports (tables, figures): about 20 s
def test_the_command_line_turns_clusters_off(tmp_path) -> None:
    import pandas as pd
    from typer.testing import CliRunner

    from xcal.cli import app

    store = make_synthetic_store(
        tmp_path / "store",
        systems=(SyntheticSystem("baseline"), SyntheticSystem("inter")),
        languages=("en", "de"),
        n_examples=120,
    )
    for flag, word in (("--clusters", "clusters"), ("--no-clusters", "examples")):
        out = tmp_path / flag.strip("-")
        args = ["analyze", str(store.root), "-b", "baseline", "-o", str(out), "-m", "accuracy"]
        result = CliRunner().invoke(app, [*args, "--n-boot", "50", flag])
        assert result.exit_code == 0, result.output
        methods = pd.read_csv(out / "results.csv")["method"].dropna()
        assert methods.str.contains(f"bootstrap of .*{word}").all()


def test_qa_resamples_the_paragraphs_its_runs_record(tmp_path) -> None:
    from _builders import qa_stores_with_and_without_paragraphs

    from xcal.analyze.predictions import fit_mask
    from xcal.metrics.qa import qa_exact_match_f1

    kwargs = dict(baseline="baseline", n_boot=300, metrics=["exact_match"], cache=False)
    rows = {}
    stores = qa_stores_with_and_without_paragraphs(tmp_path, ["en", "de"])
    for name, store in stores.items():
        r = analyze_store(store, pooled=False, **kwargs).results
        rows[name] = r[(r["comparison"] == "difference") & (r["language"] == "de")].iloc[0]
    clustered, flat = rows["paragraphs"], rows["questions"]
    store = stores["paragraphs"]
    records = {
        m: store.load_records(store.runs(model=m, language="de")["run_id"].iloc[0])
        for m in ("inter", "baseline")
    }
    ids = np.array(records["inter"]["example_id"], dtype=object)
    order = np.argsort(ids)
    keep = order[~fit_mask(ids[order], 0.5)]
    em = {m: qa_exact_match_f1(rec["nbest"], rec["answers"])[0] for m, rec in records.items()}
    # the paragraph labels the synthetic runs record: the first question id of each four
    paragraph = np.array([ids[i - i % 4] for i in range(len(ids))], dtype=object)
    assert paragraph.tolist() == records["inter"]["unit"] == records["baseline"]["unit"]
    n_paragraphs = len(set(paragraph[keep]))
    assert f"{n_paragraphs} clusters" in clustered.method and "examples" in flat.method
    sa = mean_statistic(np.asarray(em["inter"], dtype=float)[keep])
    sb = mean_statistic(np.asarray(em["baseline"], dtype=float)[keep])
    for row, groups in ((clustered, paragraph[keep]), (flat, None)):
        ref = paired_bootstrap(sa, sb, B=300, rng=int(row.seed), groups=groups).iloc[0]
        assert row.estimate == pytest.approx(ref.estimate, abs=1e-15)
        assert (row.ci_low, row.ci_high) == pytest.approx((ref.ci_low, ref.ci_high), rel=1e-12)


def test_debiased_ece_rows_equal_the_library_bootstraps_with_premise_groups(tmp_path) -> None:
    from xcal.analyze.predictions import fit_mask
    from xcal.metrics import softmax
    from xcal.stats import bootstrap_ci

    store = make_synthetic_store(
        tmp_path / "store",
        systems=(SyntheticSystem("baseline"), SyntheticSystem("inter", logit_scale=lambda *a: 1.6)),
        languages=("en", "de"),
        n_examples=300,
    )
    r = analyze_store(
        store, baseline="baseline", n_boot=400, metrics=["debiased_ece"], cache=False, pooled=False
    ).results
    r = r[(r["language"] == "de") & (r["variant"] == "raw")]
    stats = {}
    for model in ("inter", "baseline"):
        arrays = store.load_classification(store.runs(model=model, language="de")["run_id"].iloc[0])
        keep = ~fit_mask(arrays.example_ids, 0.5)
        probs = softmax(np.asarray(arrays.logits, dtype=np.float64)[keep])
        conf, correct = probs.max(axis=1), probs.argmax(axis=1) == arrays.labels[keep]
        ids = np.asarray(arrays.example_ids)[keep]
        stats[model] = calibration_statistic(conf, correct, norm="l2", debias=True, example_ids=ids)
    premises = [unit_of("xnli", i) for i in stats["inter"].example_ids]
    diff = r[r["comparison"] == "difference"].iloc[0]
    value = r[(r["comparison"] == "value") & (r["system"] == "inter")].iloc[0]
    assert "errors on the squared scale" in diff.method and "clusters" in diff.method
    ref = paired_bootstrap(
        stats["inter"], stats["baseline"], B=400, rng=int(diff.seed), groups=premises
    )
    assert diff.estimate == pytest.approx(ref.iloc[0].estimate, abs=1e-15)
    assert (diff.ci_low, diff.ci_high) == pytest.approx(
        (ref.iloc[0].ci_low, ref.iloc[0].ci_high), rel=1e-10
    )
    one = bootstrap_ci(stats["inter"], B=400, rng=int(value.seed), groups=premises).iloc[0]
    assert (value.ci_low, value.ci_high) == pytest.approx((one.ci_low, one.ci_high), rel=1e-10)
