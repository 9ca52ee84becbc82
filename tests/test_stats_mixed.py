"""The pooled mean under a random item intercept (xcal.stats.mixed).

Checked against statsmodels' MixedLM where it converges, against the REML
likelihood written out with dense matrices, against the ANOVA estimator of a
balanced design worked out by hand, and by simulated interval coverage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xcal.stats.mixed import random_intercept_mean

LANG_EFFECT = np.array([0.0, 0.1, -0.1, 0.2, 0.0])


def _design(rng, n_items, n_lang, reps, s_item, mu=0.1):
    """Rows of ``n_lang`` languages x ``reps[i]`` rows per language for every item."""
    item = np.concatenate([np.full(n_lang * r, i) for i, r in enumerate(reps)])
    lang = np.concatenate([np.repeat(np.arange(n_lang), r) for r in reps])
    d = (
        mu
        + rng.normal(0, s_item, n_items)[item]
        + LANG_EFFECT[:n_lang][lang]
        + rng.normal(0, 1, len(item))
    )
    return d, lang.astype(str), item


def _statsmodels(d, lang, item):
    import warnings

    import statsmodels.formula.api as smf

    data = pd.DataFrame({"d": d, "language": lang, "item": item})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm("d ~ C(language, Sum)", data, groups=data["item"]).fit(reml=True)


def _dense_reml(d, lang, item, theta):
    """-REML (scale profiled) and the intercept's GLS estimate and variance, densely."""
    langs = np.unique(lang)
    n = len(d)
    x = np.column_stack(
        [np.ones(n)] + [(lang == g).astype(float) - (lang == langs[-1]) for g in langs[:-1]]
    )
    z = (item[:, None] == np.unique(item)[None, :]).astype(float)
    v_inv = np.linalg.inv(np.eye(n) + theta * z @ z.T)
    a = x.T @ v_inv @ x
    beta = np.linalg.solve(a, x.T @ v_inv @ d)
    resid = d - x @ beta
    quad = resid @ v_inv @ resid
    neg = 0.5 * (
        -np.linalg.slogdet(v_inv)[1] + np.linalg.slogdet(a)[1] + (n - len(langs)) * np.log(quad)
    )
    s2 = quad / (n - len(langs))
    return neg, beta[0], s2 * np.linalg.inv(a)[0, 0]


def test_balanced_design_equals_statsmodels() -> None:
    d, lang, item = _design(np.random.default_rng(0), 300, 5, [3] * 300, s_item=0.3)
    mine = random_intercept_mean(d, lang, item)
    ref = _statsmodels(d, lang, item)
    ci = ref.conf_int().loc["Intercept"]
    assert mine.method == "reml-profile"
    assert mine.estimate == pytest.approx(ref.fe_params["Intercept"], abs=1e-12)
    assert (mine.ci_low, mine.ci_high) == pytest.approx((ci.iloc[0], ci.iloc[1]), abs=1e-5)
    assert mine.s2_item == pytest.approx(ref.cov_re.iloc[0, 0], rel=1e-3)
    assert mine.s2_resid == pytest.approx(ref.scale, rel=1e-4)


def test_balanced_design_gives_the_anova_estimator_by_hand() -> None:
    """Equal replicates: s2_resid = MS_E and s2_item = (MS_I - MS_E) / (L r)."""
    n_items, n_lang, r = 120, 4, 2
    d, lang, item = _design(np.random.default_rng(1), n_items, n_lang, [r] * n_items, 0.5)
    data = pd.DataFrame({"d": d, "lang": lang, "item": item})
    grand = d.mean()
    item_mean = data.groupby("item")["d"].transform("mean")
    lang_mean = data.groupby("lang")["d"].transform("mean")
    ss_item = n_lang * r * ((data.groupby("item")["d"].mean() - grand) ** 2).sum()
    ss_err = ((d - item_mean - lang_mean + grand) ** 2).sum()
    ms_item = ss_item / (n_items - 1)
    ms_err = ss_err / (len(d) - n_items - n_lang + 1)
    assert ms_item > ms_err
    mine = random_intercept_mean(d, lang, item)
    assert mine.estimate == pytest.approx(grand, abs=1e-12)
    assert mine.s2_resid == pytest.approx(ms_err, rel=1e-7)
    assert mine.s2_item == pytest.approx((ms_item - ms_err) / (n_lang * r), rel=1e-6)
    half = 1.959963984540054 * np.sqrt(ms_item / len(d))
    assert (mine.ci_low, mine.ci_high) == pytest.approx((grand - half, grand + half), rel=1e-6)


@pytest.mark.parametrize("s_item", [0.5, 0.0])
def test_items_with_different_replicates_match_the_dense_reml(s_item) -> None:
    rng = np.random.default_rng(5)
    reps = rng.integers(1, 4, 80)
    d, lang, item = _design(rng, 80, 4, reps, s_item)
    mine = random_intercept_mean(d, lang, item)
    assert mine.method == "reml-profile"
    theta = mine.s2_item / mine.s2_resid
    neg, mu, var = _dense_reml(d, lang, item, theta)
    assert mine.estimate == pytest.approx(mu, abs=1e-12)
    assert mine.ci_high - mine.estimate == pytest.approx(1.959963984540054 * var**0.5, rel=1e-9)
    # theta is the REML optimum: no better point around it or at the boundary.
    for other in (0.0, theta * 0.9, theta * 1.1 + 1e-3, 0.5, 2.0):
        assert neg <= _dense_reml(d, lang, item, other)[0] + 1e-9


def test_no_item_variance_sits_on_the_boundary() -> None:
    """MS_I < MS_E: REML puts s2_item at 0 and pools the item variation into the residual."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        d, lang, item = _design(rng, 60, 3, [2] * 60, s_item=0.0)
        data = pd.DataFrame({"d": d, "lang": lang, "item": item})
        grand = d.mean()
        ss_item = 6 * ((data.groupby("item")["d"].mean() - grand) ** 2).sum()
        ss_lang = 120 * ((data.groupby("lang")["d"].mean() - grand) ** 2).sum()
        ss_err = ((d - grand) ** 2).sum() - ss_item - ss_lang
        if ss_item / 59 < ss_err / (len(d) - 60 - 3 + 1):
            break
    else:  # pragma: no cover - the seed gives such a sample
        pytest.fail("no boundary sample drawn")
    mine = random_intercept_mean(d, lang, item)
    assert mine.s2_item == 0.0
    assert mine.s2_resid == pytest.approx((ss_item + ss_err) / (len(d) - 3), rel=1e-12)


def test_never_a_worse_reml_point_than_statsmodels() -> None:
    """On these seeds MixedLM stops 2 log-likelihood units short twice (once saying converged)."""
    rng = np.random.default_rng(3)
    for _ in range(3):
        reps = rng.integers(1, 4, 150)
        d, lang, item = _design(rng, 150, 3, reps, 0.3)
        mine = random_intercept_mean(d, lang, item)
        ref = _statsmodels(d, lang, item)
        ours = _dense_reml(d, lang, item, mine.s2_item / mine.s2_resid)[0]
        theirs = _dense_reml(d, lang, item, ref.cov_re.iloc[0, 0] / ref.scale)[0]
        assert ours <= theirs + 1e-9


def test_other_designs_fall_back_to_statsmodels() -> None:
    d, lang, item = _design(np.random.default_rng(2), 100, 3, [2] * 100, 0.4)
    keep = np.ones(len(d), bool)
    keep[:2] = False  # item 0 loses its first language: no longer item-balanced
    mine = random_intercept_mean(d[keep], lang[keep], item[keep])
    ref = _statsmodels(d[keep], lang[keep], item[keep])
    assert mine.method == "statsmodels"
    assert mine.estimate == ref.fe_params["Intercept"]


def test_degenerate_inputs_give_nan() -> None:
    assert np.isnan(random_intercept_mean([1.0, 2.0], ["en", "en"], [0, 1]).estimate)
    assert np.isnan(random_intercept_mean([1.0, 1.0], ["de", "fr"], [0, 0]).estimate)


def test_interval_coverage_by_simulation() -> None:
    rng = np.random.default_rng(2026)
    mu, hits, n_sim = 0.2, 0, 400
    for _ in range(n_sim):
        reps = rng.integers(1, 4, 40)
        d, lang, item = _design(rng, 40, 3, reps, s_item=0.6, mu=mu)
        # LANG_EFFECT's first three sum to 0, so mu is the mean of language means.
        fit = random_intercept_mean(d, lang, item)
        hits += fit.ci_low <= mu <= fit.ci_high
    assert 0.915 <= hits / n_sim <= 0.98
