"""The analysis pipeline on a store drawn from known distributions with planted differences.

The store (see :mod:`xcal.analyze.synthetic`) has four systems on three
languages; every population quantity is known:

* ``baseline`` and ``null``: calibrated everywhere (``null`` differs from the
  baseline only by sampling noise: nothing is planted);
* ``inter``: logits scaled by 2.5 in Swahili only (overconfident there, same
  accuracy), calibrated in English and German;
* ``inter_all``: logits scaled by 3.0 in every language, English included.

B = 400 bootstrap resamples: enough for the planted effects (several
interval widths away from zero) and for p-values down to 1/401, and keeps the
module fast; the bootstrap's own validity (coverage, false-positive rate) is
tested by simulation in the stats package's tests. The planted store leaves
out ``ece_mass`` (its bootstrap recomputes the bin edges of every resample and
costs more than all other metrics together); a small store checks every
metric, ``ece_mass`` included, against xcal.metrics and xcal.stats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xcal.analyze import analyze_store, fit_mask, select
from xcal.analyze.synthetic import (
    SyntheticSystem,
    add_synthetic_qa,
    add_synthetic_retrieval,
    default_separation,
    make_synthetic_store,
    population_metrics,
)

N_EXAMPLES = 3000
B = 400
LANGUAGES = ("en", "de", "sw")
PLANTED_METRICS = ["accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "aurc", "confidence"]


def _inter(language: str, perturbation: str, severity: float) -> float:
    return 2.5 if language == "sw" else 1.0


def _inter_all(language: str, perturbation: str, severity: float) -> float:
    return 3.0


SYSTEMS = (
    SyntheticSystem("baseline"),
    SyntheticSystem("null", intermediate_tasks=("xcopa",)),
    SyntheticSystem("inter", logit_scale=_inter, intermediate_tasks=("pawsx",)),
    SyntheticSystem(
        "inter_all",
        logit_scale=_inter_all,
        architecture="decoder-only",
        intermediate_tasks=("tydiqa",),
    ),
)
TASK_DISTANCES = pd.DataFrame(
    {
        "task_a": ["pawsx", "tydiqa", "xcopa"],
        "task_b": ["xnli", "xnli", "xnli"],
        "measure": ["textemb"] * 3,
        "distance": [0.2, 0.5, 0.35],
    }
)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    store = make_synthetic_store(
        root / "store", systems=SYSTEMS, languages=LANGUAGES, n_examples=N_EXAMPLES
    )
    result = analyze_store(
        store,
        baseline="baseline",
        n_boot=B,
        seed=0,
        cache_dir=root / "cache",
        task_distances=TASK_DISTANCES,
        metrics=PLANTED_METRICS,
        progress=False,
    )
    return store, result, root


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Every metric on a small store (n = 800, B = 100: exact plumbing, not power)."""
    root = tmp_path_factory.mktemp("small")
    store = make_synthetic_store(
        root / "store", systems=SYSTEMS[::2], languages=LANGUAGES, n_examples=800
    )
    result = analyze_store(
        store, baseline="baseline", n_boot=100, seed=3, cache=False, progress=False
    )
    return store, result


@pytest.fixture(scope="module")
def population():
    """Large-sample metric values for each (separation, scale) used in the store."""
    values = {}
    for language in LANGUAGES:
        s = default_separation(language, "none", 0.0)
        for scale in (1.0, 2.5, 3.0):
            values[(language, scale)] = population_metrics(s, scale, n_samples=200_000)
    return values


def _row(result, **filters) -> pd.Series:
    rows = select(result.results, **filters)
    assert len(rows) == 1, f"expected one row for {filters}, got {len(rows)}"
    return rows.iloc[0]


def _planted_difference(population, language: str, scale: float, metric: str) -> float:
    if metric == "ece":
        return _expected_plugin_ece_difference(language, scale)
    return population[(language, scale)][metric] - population[(language, 1.0)][metric]


def _expected_plugin_ece_difference(language: str, scale: float, reps: int = 300) -> float:
    """Mean of the plug-in ΔECE over replicate stores of the evaluation size.

    The binned ECE is biased upward by about sqrt(n_bins / n) (a calibrated
    model's estimate is not 0), and that bias does not shrink relative to the
    interval's width as n grows, so its interval is for the plug-in estimand at
    the run's size: at n = 1500 English, scale 2, that is 0.052 where the
    population difference is 0.069. Means (NLL, Brier, confidence) are unbiased
    and are checked against the population values.
    """
    from xcal.metrics import expected_calibration_error

    rng = np.random.default_rng(1)
    s = default_separation(language, "none", 0.0)
    n = N_EXAMPLES // 2
    diffs = []
    for _ in range(reps):
        y = rng.integers(0, 3, n)
        shared = rng.standard_normal((n, 3))
        values = []
        for t in (1.0, scale):
            x = (
                s * np.eye(3)[y]
                + np.sqrt(0.5) * shared
                + np.sqrt(0.5) * rng.standard_normal((n, 3))
            )
            values.append(expected_calibration_error(y, logits=t * s * x))
        diffs.append(values[1] - values[0])
    return float(np.mean(diffs))


# ------------------------------------------------------------------ what was planted is found


def _planted_intervals(result, population) -> list[tuple[str, float, float, float]]:
    """(what, truth, ci_low, ci_high) for every planted difference and population value."""
    out = []
    for metric in ("ece", "nll", "brier", "confidence"):
        cases = [("inter", "sw", 2.5)] + [("inter_all", lang, 3.0) for lang in LANGUAGES]
        for system, language, scale in cases:
            row = _row(
                result,
                system=system,
                comparison="difference",
                language=language,
                metric=metric,
                variant="raw",
            )
            truth = _planted_difference(population, language, scale, metric)
            out.append((f"Δ{metric} {system} {language}", truth, row.ci_low, row.ci_high))
    for language in LANGUAGES:
        for metric in ("accuracy", "nll", "brier", "confidence"):
            row = _row(
                result,
                system="baseline",
                comparison="value",
                language=language,
                metric=metric,
                variant="raw",
            )
            truth = population[(language, 1.0)][metric]
            out.append((f"{metric} baseline {language}", truth, row.ci_low, row.ci_high))
    return out


def test_planted_differences_are_significant(planted):
    _, result, _ = planted
    # Brier is left out: its planted differences (0.02-0.05) are one to three
    # standard errors of a paired Brier difference at n = 1500 (covered, see
    # below, but not always detected).
    for metric in ("ece", "nll", "confidence"):
        cases = [("inter", "sw")] + [("inter_all", lang) for lang in LANGUAGES]
        for system, language in cases:
            row = _row(
                result,
                system=system,
                comparison="difference",
                language=language,
                metric=metric,
                variant="raw",
            )
            assert row.p_adjusted < 0.05 and row.estimate > 0, (metric, system, language)


def test_intervals_contain_the_planted_values(planted, population):
    # 28 nominal 95% intervals (16 planted differences, 12 population values).
    # Each misses its target 5% of the time by design, so the test asks what
    # 95% coverage implies rather than 28 hits: at most 4 misses (more has
    # probability 0.015 for independent intervals), each a near miss (within
    # one half-width of the interval).
    _, result, _ = planted
    intervals = _planted_intervals(result, population)
    assert len(intervals) == 28
    misses = [(w, t, lo, hi) for w, t, lo, hi in intervals if not lo <= t <= hi]
    assert len(misses) <= 4, misses
    for what, truth, low, high in misses:
        half = (high - low) / 2
        assert low - half <= truth <= high + half, (what, truth, low, high)


# ------------------------------------------------------------------ and nothing else


def test_no_significant_difference_where_none_was_planted(planted):
    _, result, _ = planted
    diffs = select(result.results, comparison="difference")
    # Scaling logits never changes the predicted class: accuracy and AURC
    # (a ranking metric) differ only by sampling noise for every system.
    null_rows = [
        diffs[diffs["metric"].isin(["accuracy", "aurc"])],
        diffs[diffs["system"] == "null"],  # identical distribution to the baseline
        diffs[
            (diffs["system"] == "inter") & diffs["language"].isin(["en", "de"])
        ],  # calibrated there
    ]
    null = pd.concat(null_rows).drop_duplicates(subset=["system", "language", "metric", "variant"])
    # After temperature scaling each system carries its own fitted temperature,
    # and the intervals are conditional on it (the fit's noise is not
    # resampled): two recalibrated null systems are different models, and their
    # mean confidence, which moves one to one with T, does differ. Calibration
    # errors after scaling are still compared.
    null = null[(null["variant"] == "raw") | (null["metric"] != "confidence")]
    assert len(null) > 60
    significant = null[null["p_adjusted"] < 0.05]
    assert significant.empty, significant[
        ["system", "language", "metric", "variant", "estimate", "p_adjusted"]
    ]


def test_recalibration_repairs_exactly_what_it_can(planted):
    _, result, _ = planted
    # inter is calibrated in English, so the English temperature is ~1 and
    # cannot repair Swahili; Swahili's own temperature can.
    ts_en = _row(
        result,
        system="inter",
        comparison="difference",
        language="sw",
        metric="ece",
        variant="ts_en",
    )
    ts_self = _row(
        result,
        system="inter",
        comparison="difference",
        language="sw",
        metric="ece",
        variant="ts_self",
    )
    assert ts_en.p_adjusted < 0.05
    assert ts_self.p_adjusted >= 0.05 and abs(ts_self.estimate) < 0.03
    self_t = _row(
        result, system="inter", comparison="value", language="sw", metric="ece", variant="ts_self"
    ).temperature
    assert self_t == pytest.approx(2.5, rel=0.1)
    # inter_all is overconfident by the same factor everywhere: zero-shot
    # recalibration from English repairs every language.
    for language in LANGUAGES:
        row = _row(
            result,
            system="inter_all",
            comparison="difference",
            language=language,
            metric="ece",
            variant="ts_en",
        )
        assert row.p_adjusted >= 0.05 and abs(row.estimate) < 0.03
        t_en = _row(
            result,
            system="inter_all",
            comparison="value",
            language=language,
            metric="nll",
            variant="ts_en",
        )
        assert t_en.temperature == pytest.approx(3.0, rel=0.1)


# ------------------------------------------------------------------ exact plumbing


def _eval_arrays(store, model: str, language: str):
    run_id = store.runs(model=model, language=language)["run_id"].iloc[0]
    arrays = store.load_classification(run_id)
    keep = ~fit_mask(arrays.example_ids, 0.5)
    return arrays, keep


def test_values_equal_xcal_metrics_on_the_evaluation_examples(small):
    from xcal.calibrate import get_calibrator
    from xcal.metrics import (
        accuracy_score,
        aurc_loss,
        brier_score_loss,
        classwise_calibration_error,
        expected_calibration_error,
        max_calibration_error,
        nll_loss,
        softmax,
    )

    store, result = small
    arrays, keep = _eval_arrays(store, "inter", "de")
    logits, y = arrays.logits[keep].astype(np.float64), arrays.labels[keep]
    english, en_keep = _eval_arrays(store, "inter", "en")
    fit = ~en_keep
    t_en = (
        get_calibrator("temperature")
        .fit(english.logits[fit].astype(np.float64), english.labels[fit])
        .temperature_
    )
    for variant, z in (("raw", logits), ("ts_en", logits / t_en)):
        expected = {
            "accuracy": accuracy_score(y, logits=z),
            "ece": expected_calibration_error(y, logits=z),
            "ece_mass": expected_calibration_error(y, logits=z, binning="mass"),
            "mce": max_calibration_error(y, logits=z),
            "classwise_ece": classwise_calibration_error(y, logits=z),
            "brier": brier_score_loss(y, logits=z),
            "nll": nll_loss(y, logits=z),
            "aurc": aurc_loss(y, logits=z),
            "confidence": float(softmax(z).max(axis=1).mean()),
        }
        for metric, value in expected.items():
            if variant != "raw" and metric in ("accuracy", "aurc"):
                continue  # not calibration metrics: raw only
            row = _row(
                result,
                system="inter",
                comparison="value",
                language="de",
                metric=metric,
                variant=variant,
            )
            assert row.estimate == pytest.approx(value, rel=1e-9, abs=1e-12), (variant, metric)
            assert row.n_examples == int(keep.sum())
        assert _row(
            result, system="inter", comparison="value", language="de", metric="ece", variant=variant
        ).temperature == pytest.approx(1.0 if variant == "raw" else t_en, rel=1e-12)


def test_differences_equal_stats_paired_bootstrap_with_the_reported_seed(small):
    # XNLI: the three hypotheses of a premise are resampled together by default
    from xcal.analyze.clusters import unit_of
    from xcal.stats import metric_statistic, paired_bootstrap

    store, result = small
    a, keep = _eval_arrays(store, "inter", "sw")
    b, _ = _eval_arrays(store, "baseline", "sw")
    assert (a.example_ids == b.example_ids).all()
    premises = [unit_of("xnli", str(i)) for i in a.example_ids[keep]]
    for metric, name, binning in (
        ("ece", "ece", "width"),
        ("ece_mass", "ece", "mass"),
        ("nll", "nll", "width"),
    ):
        row = _row(
            result,
            system="inter",
            comparison="difference",
            language="sw",
            metric=metric,
            variant="raw",
        )
        sa = metric_statistic(
            name, a.labels[keep], logits=a.logits[keep].astype(np.float64), binning=binning
        )
        sb = metric_statistic(
            name, b.labels[keep], logits=b.logits[keep].astype(np.float64), binning=binning
        )
        ref = paired_bootstrap(sa, sb, B=100, rng=int(row.seed), groups=premises).iloc[0]
        assert f"{int(ref.n_groups)} clusters" in row.method
        assert row.estimate == pytest.approx(ref.estimate, rel=1e-12)
        assert row.ci_low == pytest.approx(ref.ci_low, rel=1e-9)
        assert row.ci_high == pytest.approx(ref.ci_high, rel=1e-9)
        assert row.p_value == pytest.approx(ref.p_value, rel=1e-12)


def test_fit_and_evaluation_examples_are_disjoint_and_parallel():
    ids = np.array([f"xnli-dev-{i:06d}" for i in range(5000)], dtype=object)
    mask = fit_mask(ids, 0.5)
    # the same id is on the same side in every language and in any order
    assert (fit_mask(ids[::-1], 0.5) == mask[::-1]).all()
    assert 0.47 < mask.mean() < 0.53
    assert (fit_mask(ids, 0.2) <= mask).all()  # nested: a smaller fit part is a subset


def _holm(p: np.ndarray) -> np.ndarray:
    # Holm (1979): the k-th smallest of m p-values times (m - k + 1), made monotone, capped at 1.
    order = np.argsort(p)
    m = len(p)
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def test_p_values_adjusted_per_system_metric_variant(planted):
    _, result, _ = planted
    diffs = select(result.results, comparison="difference")
    # raw: 8 metrics; each temperature variant: the 6 of them that recalibration changes
    assert diffs.groupby(["system", "metric", "variant"]).ngroups == 3 * (8 + 2 * 6)
    for (_, _, _), family in diffs.groupby(["system", "metric", "variant"]):
        assert len(family) == len(LANGUAGES)  # one family: every language of the system
        np.testing.assert_allclose(
            family["p_adjusted"].to_numpy(), _holm(family["p_value"].to_numpy()), rtol=1e-12
        )
        assert set(family["correction"]) == {"holm"}
    assert select(result.results, comparison="value")["p_value"].isna().all()


def test_bh_correction_reuses_the_cache(planted):
    from statsmodels.stats.multitest import multipletests

    store, first, root = planted
    result = analyze_store(
        store,
        baseline="baseline",
        n_boot=B,
        seed=0,
        cache_dir=root / "cache",
        task_distances=TASK_DISTANCES,
        metrics=PLANTED_METRICS,
        correction="bh",
        progress=False,
    )
    assert result.cells_computed == 0 and result.cells_cached == len(LANGUAGES)
    family = select(
        result.results, comparison="difference", system="inter", metric="ece", variant="raw"
    )
    np.testing.assert_allclose(
        family["p_adjusted"],
        multipletests(family["p_value"].to_numpy(), method="fdr_bh")[1],
        rtol=1e-12,
    )
    np.testing.assert_array_equal(
        family["p_value"],
        select(first.results, comparison="difference", system="inter", metric="ece", variant="raw")[
            "p_value"
        ],
    )


def test_grouping_columns(planted):
    _, result, _ = planted
    r = result.results
    sw = r[r["language"] == "sw"]
    assert set(sw["resource_class"]) == {2.0}  # Joshi et al. (2020): Swahili is class 2
    assert set(r.loc[r["language"] == "de", "resource_class"]) == {5.0}
    assert set(r.loc[r["language"] == "en", "language_distance"]) == {0.0}
    assert (r.loc[r["language"] == "sw", "language_distance"] > 0).all()
    assert set(r.loc[r["system"] == "inter_all", "architecture"]) == {"decoder-only"}
    assert set(r.loc[r["system"] == "inter", "intermediate_tasks"]) == {"pawsx"}
    assert set(r.loc[r["system"] == "inter", "task_distance"]) == {0.2}
    assert r.loc[r["system"] == "baseline", "task_distance"].isna().all()
    # three systems x one target task: the correlation table has every method per metric
    corr = result.correlations
    assert set(corr["method"]) == {"pearson", "spearman", "kendall"}
    assert (corr["n"] == 3).all()


# ------------------------------------------------------------------ cache


def test_cache_reused_and_invalidated_by_fingerprint(tmp_path):
    from xcal.store import RunManifest

    systems = (SyntheticSystem("baseline"), SyntheticSystem("inter", logit_scale=_inter))
    store = make_synthetic_store(
        tmp_path / "store", systems=systems, languages=LANGUAGES, n_examples=200
    )
    kwargs = dict(
        baseline="baseline",
        n_boot=50,
        cache_dir=tmp_path / "cache",
        progress=False,
        metrics=["ece", "nll"],
    )
    first = analyze_store(store, **kwargs)
    assert (first.cells_computed, first.cells_cached) == (3, 0)
    again = analyze_store(store, **kwargs)
    assert (again.cells_computed, again.cells_cached) == (0, 3)
    pd.testing.assert_frame_equal(first.results, again.results)

    def rewrite(language: str, seed: int) -> None:
        run = store.runs(model="inter", language=language).iloc[0]
        arrays = store.load_classification(run["run_id"])
        manifest = RunManifest.from_dict(
            {
                **arrays.manifest.to_dict(),
                "input_fingerprint": f"changed-{seed}",
                "created_at": "",
                "xcal_version": "",
            }
        )
        logits = np.random.default_rng(seed).normal(size=arrays.logits.shape)
        store.write_run(
            manifest,
            {"example_id": arrays.example_ids, "logits": logits, "label": arrays.labels},
            overwrite=True,
        )

    rewrite("de", 1)  # only the German cell changes
    third = analyze_store(store, **kwargs)
    assert (third.cells_computed, third.cells_cached) == (1, 2)
    rewrite("en", 2)  # English: every cell borrows its temperature
    fourth = analyze_store(store, **kwargs)
    assert (fourth.cells_computed, fourth.cells_cached) == (3, 0)
    # a different option is a different analysis
    fifth = analyze_store(store, **{**kwargs, "n_bins": 10})
    assert fifth.cells_computed == 3


# ------------------------------------------------------------------ QA and retrieval


def test_qa_and_retrieval_runs(tmp_path):
    from xcal.metrics import top_label_calibration_error
    from xcal.metrics.qa import qa_confidence_correctness, qa_exact_match_f1
    from xcal.metrics.retrieval import retrieval_confidence_correctness
    from xcal.store import open_store

    store = open_store(tmp_path / "store")
    systems = (SyntheticSystem("baseline"), SyntheticSystem("inter", logit_scale=_inter))
    add_synthetic_qa(store, systems=systems, languages=["en", "sw"], n_examples=300)
    add_synthetic_retrieval(
        store, systems=systems, languages=["en", "sw"], n_examples=300, temperature=0.05
    )
    result = analyze_store(
        store,
        baseline="baseline",
        n_boot=100,
        progress=False,
        cache=False,
        retrieval_temperature=0.05,
    )
    r = result.results
    assert set(r.loc[r["task"] == "xquad", "metric"]) >= {"exact_match", "f1", "ece", "nll", "aurc"}
    assert "classwise_ece" not in set(r["metric"])  # no classes in QA or retrieval
    assert set(r.loc[r["task"] == "tatoeba", "record_kind"]) == {"retrieval"}

    qa_run = store.runs(task="xquad", model="inter", language="sw").iloc[0]
    rec = store.load_records(qa_run["run_id"])
    keep = ~fit_mask(np.asarray(rec["example_id"], dtype=object), 0.5)
    nbest = [n for n, k in zip(rec["nbest"], keep, strict=True) if k]
    answers = [a for a, k in zip(rec["answers"], keep, strict=True) if k]
    em, f1 = qa_exact_match_f1(nbest, answers)
    conf, correct = qa_confidence_correctness(nbest, answers)
    value = lambda metric, variant="raw": _row(  # noqa: E731
        result,
        task="xquad",
        system="inter",
        language="sw",
        comparison="value",
        metric=metric,
        variant=variant,
    )
    assert value("exact_match").estimate == pytest.approx(em.mean(), rel=1e-12)
    assert value("f1").estimate == pytest.approx(f1.mean(), rel=1e-12)
    assert value("ece").estimate == pytest.approx(
        top_label_calibration_error(conf, correct), rel=1e-9
    )
    t = value("ece", "ts_self").temperature
    conf_t, _ = qa_confidence_correctness(nbest, answers, temperature=t)
    assert value("ece", "ts_self").estimate == pytest.approx(
        top_label_calibration_error(conf_t, correct), rel=1e-9
    )
    # the temperature is the one that minimises the NLL of "the top answer is right"
    # on Swahili's fit half, refitted here from the public QA confidence
    from scipy.optimize import minimize_scalar

    fit_nbest = [n for n, k in zip(rec["nbest"], keep, strict=True) if not k]
    fit_answers = [a for a, k in zip(rec["answers"], keep, strict=True) if not k]

    def correctness_nll(log_t: float) -> float:
        c, ok = qa_confidence_correctness(fit_nbest, fit_answers, temperature=np.exp(log_t))
        c = np.clip(c, 1e-12, 1 - 1e-12)
        return float(-np.mean(np.where(ok, np.log(c), np.log1p(-c))))

    ref = minimize_scalar(
        correctness_nll, bounds=(-7, 7), method="bounded", options={"xatol": 1e-10}
    )
    assert t == pytest.approx(np.exp(ref.x), rel=1e-6)
    assert t == pytest.approx(2.5, rel=0.25)  # near the planted scale, fitted on 150 examples

    ret_run = store.runs(task="tatoeba", model="baseline", language="en").iloc[0]
    rec = store.load_records(ret_run["run_id"])
    keep = ~fit_mask(np.asarray(rec["example_id"], dtype=object), 0.5)
    scores = np.asarray(rec["scores"])[keep]
    cands = [c for c, k in zip(rec["candidate_ids"], keep, strict=True) if k]
    golds = [g for g, k in zip(rec["gold_ids"], keep, strict=True) if k]
    conf, correct = retrieval_confidence_correctness(scores, cands, golds, temperature=0.05)
    row = _row(
        result,
        task="tatoeba",
        system="baseline",
        language="en",
        comparison="value",
        metric="ece",
        variant="raw",
    )
    assert row.estimate == pytest.approx(top_label_calibration_error(conf, correct), rel=1e-9)
    assert _row(
        result,
        task="tatoeba",
        system="baseline",
        language="en",
        comparison="value",
        metric="accuracy",
        variant="raw",
    ).estimate == pytest.approx(correct.mean())


# ------------------------------------------------------------------ errors


def test_clear_errors(tmp_path, planted):
    store, _, _ = planted
    with pytest.raises(
        ValueError, match=r"baseline 'nope' is not a model in the store; models: baseline, inter"
    ):
        analyze_store(store, baseline="nope", progress=False, cache=False)
    with pytest.raises(FileNotFoundError, match="no prediction store at"):
        analyze_store(tmp_path / "missing", baseline="x")
    with pytest.raises(ValueError, match="unknown metric"):
        analyze_store(store, baseline="baseline", metrics=["ece", "acc"], cache=False)
    with pytest.raises(ValueError, match="has no runs matching"):
        analyze_store(store, baseline="baseline", filters={"task": "pawsx"}, cache=False)
    with pytest.raises(ValueError, match="task distances: missing column"):
        analyze_store(
            store, baseline="baseline", task_distances=pd.DataFrame({"a": [1]}), cache=False
        )


def test_analysis_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, xcal.analyze, xcal.analyze.pipeline; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_english_temperature_is_found_across_language_specific_perturbation_parameters(tmp_path):
    # Real perturbations record language-specific tools (ICU segmentation for
    # Chinese, whitespace elsewhere): the Chinese run still borrows English's T.
    def params(language, perturbation, severity):
        if perturbation == "none":
            return {}
        return {"window": 3, "segmenter": "icu-77.1" if language == "zh" else "whitespace"}

    systems = (SyntheticSystem("baseline"), SyntheticSystem("inter", logit_scale=_inter_all))
    store = make_synthetic_store(
        tmp_path / "store",
        systems=systems,
        languages=["en", "zh"],
        conditions=[("none", 0.0), ("word_shuffle", 0.5)],
        n_examples=400,
        perturbation_params=params,
    )
    result = analyze_store(
        store, baseline="baseline", n_boot=0, metrics=["ece"], cache=False, progress=False
    )
    assert result.notes == []
    rows = select(
        result.results,
        system="inter",
        comparison="value",
        perturbation="word_shuffle",
        variant="ts_en",
    )
    assert set(rows["language"]) == {"en", "zh"}
    assert rows["temperature"].nunique() == 1  # both use the English fit
    assert rows["temperature"].iloc[0] == pytest.approx(3.0, rel=0.15)


def test_multiple_choice_runs(tmp_path):
    from xcal.metrics import expected_calibration_error, nll_loss

    store = make_synthetic_store(
        tmp_path / "store",
        systems=(SyntheticSystem("baseline"), SyntheticSystem("inter", logit_scale=_inter)),
        languages=["en", "sw"],
        task="xcopa",
        n_classes=2,
        n_examples=400,
        record_kind="multiple_choice",
    )
    result = analyze_store(store, baseline="baseline", n_boot=50, cache=False, progress=False)
    assert set(result.results["record_kind"]) == {"multiple_choice"}
    run_id = store.runs(model="inter", language="sw")["run_id"].iloc[0]
    arrays = store.load_multiple_choice(run_id)
    keep = ~fit_mask(arrays.example_ids, 0.5)
    z, y = arrays.logits[keep], arrays.labels[keep]
    for metric, value in (
        ("ece", expected_calibration_error(y, logits=z)),
        ("nll", nll_loss(y, logits=z)),
    ):
        row = _row(
            result, system="inter", language="sw", comparison="value", metric=metric, variant="raw"
        )
        assert row.estimate == pytest.approx(value, rel=1e-9)


def test_notes_say_what_is_missing_and_survive_the_cache(tmp_path):
    systems = (SyntheticSystem("baseline"), SyntheticSystem("inter"))
    store = make_synthetic_store(
        tmp_path / "store", systems=systems, languages=["de", "sw"], n_examples=200
    )
    kwargs = dict(
        baseline="baseline", n_boot=0, metrics=["ece"], cache_dir=tmp_path / "cache", progress=False
    )
    first = analyze_store(store, **kwargs)
    assert first.notes == [
        "baseline on xnli/test/*: no English run to fit a temperature on, so no ts_en for 2 language(s) (de, sw)",
        "inter on xnli/test/*: no English run to fit a temperature on, so no ts_en for 2 language(s) (de, sw)",
    ]
    assert set(first.results["variant"]) == {"raw", "ts_self"}
    again = analyze_store(store, **kwargs)
    assert again.cells_cached == 2 and again.notes == first.notes


def test_fused_bootstrap_equals_one_statistic_at_a_time(monkeypatch):
    # Every statistic of a cell is evaluated on the same resamples; fused into
    # groups of matrix columns or not, each equals xcal.stats' own bootstrap of
    # it with the same seed.
    from xcal.analyze import bootstrap
    from xcal.analyze._adapters import AurcStatistic, classwise_statistic
    from xcal.metrics import softmax
    from xcal.stats import bootstrap_distribution, metric_statistic

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 3)) * 2
    y = rng.integers(0, 3, 300)
    probs = softmax(logits)
    stats = {
        "ece": metric_statistic("ece", y, logits=logits),
        "mce": metric_statistic("mce", y, logits=logits),
        "nll": metric_statistic("nll", y, logits=logits),
        "ece_mass": metric_statistic("ece", y, logits=logits, binning="mass"),
        "classwise": classwise_statistic(probs, y),
        "aurc": AurcStatistic(probs.max(axis=1), probs.argmax(axis=1) == y),
    }
    fused = bootstrap._bootstrap(stats, 300, 250, seed=11)
    monkeypatch.setattr(bootstrap, "_FUSED_COLUMNS", 20)  # one statistic per group
    monkeypatch.setattr(bootstrap, "_PRODUCT_BYTES", 8 * 45 * 7)  # 7 resamples per chunk
    split = bootstrap._bootstrap(stats, 300, 250, seed=11)
    for name, stat in stats.items():
        reference = bootstrap_distribution(stat, B=250, rng=11)
        np.testing.assert_allclose(fused[name], reference, rtol=1e-12, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(split[name], reference, rtol=1e-12, atol=1e-15, err_msg=name)


def test_cell_bootstrap_reads_each_statistic_once_and_keeps_none_of_its_rows(monkeypatch):
    # analyse_cell streams every (system, variant, metric) statistic through
    # bootstrap_statistics; a smooth ECE's rows are n x ~500, so holding the
    # thirty of a ten-system cell was most of a worker's memory.
    import gc
    import weakref

    from xcal.analyze import bootstrap
    from xcal.stats import metric_statistic
    from xcal.stats.statistic import smooth_calibration_statistic

    rng = np.random.default_rng(1)
    n = 240
    logits = rng.normal(size=(4, n, 3)) * 2
    y = rng.integers(0, 3, n)
    codes = np.arange(n) // 3

    def build(i, metric):
        if metric == "smooth":
            conf = np.exp(logits[i]).max(axis=1) / np.exp(logits[i]).sum(axis=1)
            return smooth_calibration_statistic(conf, logits[i].argmax(axis=1) == y)
        return metric_statistic(metric, y, logits=logits[i])

    keys = [(i, m) for i in range(4) for m in ("smooth", "ece", "nll")]
    reference = bootstrap._bootstrap({k: build(*k) for k in keys}, n, 200, 3, codes, n // 3)
    read: list[weakref.ref] = []
    alive_before: list[int] = []

    def stream():
        for key in keys:
            gc.collect()
            alive_before.append(sum(r() is not None for r in read))
            stat = build(*key)
            read.append(weakref.ref(stat))
            yield key, stat
            del stat

    estimates, replicates = bootstrap.bootstrap_statistics(stream(), n, 200, 3, codes, n // 3)
    assert alive_before == [0] * len(keys)
    assert list(replicates) == keys
    for key in keys:
        assert estimates[key] == build(*key).estimate()
        np.testing.assert_array_equal(replicates[key], reference[key], err_msg=str(key))
    only_estimates = bootstrap.bootstrap_statistics(stream(), n, 0, 3, codes, n // 3)
    assert only_estimates == (estimates, {})
    # Past _PASS_BYTES of matrices the statistics read so far are bootstrapped
    # first; every pass draws the same resamples, so nothing changes.
    monkeypatch.setattr(bootstrap, "_FUSED_COLUMNS", 220)  # a group per system
    for groups, total in ((codes, n // 3), (None, None)):
        one_pass = bootstrap._bootstrap({k: build(*k) for k in keys}, n, 200, 3, groups, total)
        monkeypatch.setattr(bootstrap, "_PASS_BYTES", 1)  # and a pass per group
        passes = bootstrap.bootstrap_statistics(stream(), n, 200, 3, groups, total)[1]
        monkeypatch.setattr(bootstrap, "_PASS_BYTES", 64 * 2**20)
        assert list(passes) == keys
        for key in keys:
            np.testing.assert_array_equal(passes[key], one_pass[key], err_msg=str(key))


def test_runs_that_label_the_same_examples_differently_are_refused(tmp_path):
    from xcal.store import RunManifest, open_store

    store = open_store(tmp_path / "store")
    ids = [f"xnli-test-{i:06d}" for i in range(60)]
    labels = np.arange(60) % 3
    for model, y in (("baseline", labels), ("inter", np.roll(labels, 1))):
        manifest = RunManifest(
            model=model,
            task="xnli",
            split="test",
            language="de",
            record_kind="classification",
            input_fingerprint="same-inputs",
            n_examples=60,
        )
        logits = np.random.default_rng(0).normal(size=(60, 3))
        store.write_run(manifest, {"example_id": ids, "logits": logits, "label": y})
    with pytest.raises(ValueError, match=r"different gold labels to 60 of the 60 examples"):
        analyze_store(store, baseline="baseline", n_boot=0, cache=False, progress=False)
