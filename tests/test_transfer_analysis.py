"""Gain-distance correlations and mixed model (against scipy and statsmodels), and the
architecture comparison: transfer gap, its bootstrap summary, OLS with interaction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import statsmodels.formula.api as smf

from xcal.transfer.architecture import gap_by_architecture, gap_distance_interaction, transfer_gap
from xcal.transfer.correlate import (
    gain_distance_correlation,
    gain_distance_mixedlm,
    gain_distance_table,
)
from xcal.transfer.language import language_distances

TARGETS = ["xnli", "pawsx", "xquad", "mlqa", "tydiqa", "xcopa"]
INTERMEDIATE = ["mnli", "squad", "hellaswag", "cosmosqa", "qqp", "sst2", "ccg"]


def _planted(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gains that fall with distance (slope -5) around a per-target level."""
    rng = np.random.default_rng(seed)
    distances = pd.DataFrame(
        [
            {"task_a": i, "task_b": t, "measure": m, "distance": rng.random()}
            for i in INTERMEDIATE
            for t in TARGETS
            for m in ("textemb", "mmd")
        ]
    )
    level = dict(zip(TARGETS, rng.normal(0, 2, len(TARGETS)), strict=True))
    textemb = distances[distances["measure"] == "textemb"].set_index(["task_a", "task_b"])[
        "distance"
    ]
    rows = []
    for i in INTERMEDIATE:
        for t in TARGETS:
            for language in ("de", "sw"):
                gain = 3.0 - 5.0 * textemb[i, t] + level[t] + rng.normal(0, 0.5)
                rows.append(
                    {"system": f"xlmr+{i}", "task": t, "language": language, "improvement": gain}
                )
    return pd.DataFrame(rows), distances


def test_gain_distance_table_joins_and_checks() -> None:
    gains, distances = _planted()
    mapping = {f"xlmr+{i}": i for i in INTERMEDIATE}
    table = gain_distance_table(gains, distances, intermediate_of=mapping)
    assert len(table) == 2 * len(gains)
    row = table[
        (table["system"] == "xlmr+qqp") & (table["task"] == "mlqa") & (table["measure"] == "mmd")
    ]
    expected = distances.query("task_a == 'qqp' and task_b == 'mlqa' and measure == 'mmd'")[
        "distance"
    ]
    assert (row["distance"] == float(expected.iloc[0])).all()
    with pytest.raises(KeyError, match="intermediate_task"):
        gain_distance_table(gains, distances)
    with pytest.raises(KeyError, match="lacks system"):
        gain_distance_table(gains, distances, intermediate_of={"xlmr+mnli": "mnli"})
    with pytest.raises(ValueError, match="no distance"):
        gain_distance_table(gains, distances[distances["task_a"] != "ccg"], intermediate_of=mapping)


def test_correlations_agree_with_scipy() -> None:
    gains, distances = _planted(1)
    mapping = {f"xlmr+{i}": i for i in INTERMEDIATE}
    table = gain_distance_table(gains, distances, intermediate_of=mapping, measures=["textemb"])
    out = gain_distance_correlation(table, B=500, n_permutations=500, rng=0).set_index("metric")
    x, y = table["distance"].to_numpy(), table["improvement"].to_numpy()
    references = {
        "pearson": scipy.stats.pearsonr(x, y),
        "spearman": scipy.stats.spearmanr(x, y),
        "kendall": scipy.stats.kendalltau(x, y),
    }
    for method, ref in references.items():
        assert out.loc[method, "estimate"] == pytest.approx(ref.statistic, abs=1e-12)
        assert out.loc[method, "p_value_asymptotic"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert (
            out.loc[method, "ci_low"] <= out.loc[method, "estimate"] <= out.loc[method, "ci_high"]
        )
        assert out.loc[method, "estimate"] < 0  # planted: closer tasks gain more
        assert out.loc[method, "measure"] == "textemb"


def test_mixedlm_agrees_with_statsmodels() -> None:
    gains, distances = _planted(2)
    mapping = {f"xlmr+{i}": i for i in INTERMEDIATE}
    table = gain_distance_table(gains, distances, intermediate_of=mapping, measures=["textemb"])
    ours = gain_distance_mixedlm(table).set_index("term")
    reference = smf.mixedlm("improvement ~ distance", table, groups=table["task"]).fit(reml=True)
    for term in ("Intercept", "distance"):
        assert ours.loc[term, "estimate"] == pytest.approx(reference.fe_params[term], rel=1e-6)
        assert ours.loc[term, "std_error"] == pytest.approx(reference.bse_fe[term], rel=1e-5)
    assert ours.loc["Var(1 | task)", "estimate"] == pytest.approx(
        float(reference.cov_re.iloc[0, 0]), rel=1e-5
    )
    assert ours.loc["Residual", "estimate"] == pytest.approx(reference.scale, rel=1e-6)
    assert ours.loc["distance", "ci_low"] < -5.0 < ours.loc["distance", "ci_high"]
    with pytest.raises(ValueError, match="one measure at a time"):
        gain_distance_mixedlm(gain_distance_table(gains, distances, intermediate_of=mapping))


# ------------------------------------------------------------------ architecture
def _results() -> pd.DataFrame:
    rows = []
    for model, arch, english in (("xlmr", "encoder-only", 80.0), ("mbert", "encoder-only", 78.0),
                                 ("bloom", "decoder-only", 70.0), ("llama", "decoder-only", 72.0)):  # fmt: skip
        for language, drop in (("en", 0.0), ("de", 3.0), ("ru", 5.0), ("ja", 9.0), ("sw", 12.0)):
            factor = 1.0 if arch == "encoder-only" else 1.5
            rows.append(
                {
                    "model": model,
                    "architecture": arch,
                    "task": "xnli",
                    "language": language,
                    "metric": "accuracy",
                    "value": english - factor * drop,
                }
            )
    return pd.DataFrame(rows)


def test_transfer_gap_hand_worked() -> None:
    gaps = transfer_gap(_results()).set_index(["model", "language"])
    assert gaps.loc[("xlmr", "sw"), "gap"] == pytest.approx(80.0 - (80.0 - 12.0))  # 12
    assert gaps.loc[("bloom", "ja"), "gap"] == pytest.approx(70.0 - (70.0 - 1.5 * 9.0))  # 13.5
    assert len(gaps) == 4 * 4  # English rows are the reference, not gaps
    with pytest.raises(ValueError, match="no 'en' score"):
        transfer_gap(_results().query("not (model == 'xlmr' and language == 'en')"))
    with pytest.raises(ValueError, match="duplicate"):
        transfer_gap(pd.concat([_results(), _results().iloc[:1]]))


def test_gap_by_architecture_means_and_clusters() -> None:
    gaps = transfer_gap(_results())
    out = gap_by_architecture(gaps, B=1000, rng=0).set_index("architecture")
    drops = np.array([3.0, 5.0, 9.0, 12.0])
    assert out.loc["encoder-only", "estimate"] == pytest.approx(drops.mean())  # 7.25
    assert out.loc["decoder-only", "estimate"] == pytest.approx(1.5 * drops.mean())
    assert (out["n_groups"] == 4).all()  # four languages resampled as clusters
    for arch in out.index:
        assert out.loc[arch, "ci_low"] <= out.loc[arch, "estimate"] <= out.loc[arch, "ci_high"]


def test_gap_distance_interaction_recovers_planted_slopes_and_matches_statsmodels() -> None:
    rng = np.random.default_rng(5)
    languages = ["de", "ru", "ja", "sw", "hi", "fi", "ar", "tr"]
    distance = dict(zip(languages, rng.random(len(languages)), strict=True))
    rows = []
    for model, arch in (("a", "encoder-only"), ("b", "encoder-only"), ("c", "decoder-only"), ("d", "decoder-only")):  # fmt: skip
        for language in languages:
            slope, intercept = (10.0, 2.0) if arch == "encoder-only" else (20.0, 5.0)
            rows.append({"model": model, "architecture": arch, "language": language,
                         "gap": intercept + slope * distance[language]})  # fmt: skip
    gaps = pd.DataFrame(rows)
    distances = pd.DataFrame({"language": languages, "distance": [distance[x] for x in languages]})
    fit = gap_distance_interaction(gaps, distances).set_index("term")
    # Reference level is decoder-only (alphabetical): intercept 5, slope 20;
    # encoder-only shifts them by 2 - 5 = -3 and 10 - 20 = -10. Noise-free, so exact.
    assert fit.loc["Intercept", "estimate"] == pytest.approx(5.0, abs=1e-9)
    assert fit.loc["distance", "estimate"] == pytest.approx(20.0, abs=1e-9)
    assert fit.loc["C(architecture)[T.encoder-only]", "estimate"] == pytest.approx(-3.0, abs=1e-9)
    assert fit.loc["distance:C(architecture)[T.encoder-only]", "estimate"] == pytest.approx(
        -10.0, abs=1e-9
    )
    # With noise, the table is statsmodels' OLS.
    noisy = gaps.assign(gap=gaps["gap"] + rng.normal(0, 1, len(gaps)))
    ours = gap_distance_interaction(noisy, distances, cov_type="HC3").set_index("term")
    data = noisy.merge(distances, on="language")
    reference = smf.ols("gap ~ distance * C(architecture)", data).fit(cov_type="HC3")
    for term in reference.params.index:
        assert ours.loc[term, "estimate"] == pytest.approx(reference.params[term], rel=1e-10)
        assert ours.loc[term, "std_error"] == pytest.approx(reference.bse[term], rel=1e-10)
        assert ours.loc[term, "p_value"] == pytest.approx(reference.pvalues[term], rel=1e-8)


def test_gap_distance_interaction_defaults_to_uriel() -> None:
    gaps = transfer_gap(_results())
    default = gap_distance_interaction(gaps, view="geo")
    explicit = gap_distance_interaction(
        gaps, language_distances(["de", "ja", "ru", "sw"], views=["geo"])[["language", "distance"]]
    )
    pd.testing.assert_frame_equal(default, explicit)
    with pytest.raises(ValueError, match="one metric at a time"):
        gap_distance_interaction(pd.concat([gaps, gaps.assign(metric="ece")]))
