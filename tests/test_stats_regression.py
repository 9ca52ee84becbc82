"""OLS and mixed-effects tables equal direct statsmodels fits (xcal.stats.regression)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from xcal.stats import fit_mixedlm, fit_ols
from xcal.stats.regression import parse_mixed_formula


def _gains(seed: int = 0) -> pd.DataFrame:
    """Transfer gains of 6 intermediate tasks on 9 target tasks, with a target-task effect."""
    rng = np.random.default_rng(seed)
    rows = []
    target_effect = rng.normal(scale=1.0, size=9)
    slope_effect = rng.normal(scale=0.3, size=9)
    for t in range(9):
        for i in range(6):
            dist = rng.uniform(0, 1)
            gain = 1.5 - (2.0 + slope_effect[t]) * dist + target_effect[t] + 0.3 * rng.normal()
            rows.append(
                {
                    "target_task": f"task{t}",
                    "intermediate": f"int{i}",
                    "task_distance": dist,
                    "gain": gain,
                }
            )
    return pd.DataFrame(rows)


def test_ols_equals_statsmodels() -> None:
    data = _gains()
    table = fit_ols("gain ~ task_distance + C(intermediate)", data)
    res = smf.ols("gain ~ task_distance + C(intermediate)", data).fit()
    assert list(table.term) == list(res.params.index)
    np.testing.assert_array_equal(table.estimate, res.params.to_numpy())
    np.testing.assert_array_equal(table.std_error, res.bse.to_numpy())
    np.testing.assert_array_equal(table.p_value, res.pvalues.to_numpy())
    np.testing.assert_array_equal(table.ci_low, res.conf_int()[0].to_numpy())
    assert table.attrs["r_squared"] == res.rsquared and (table.n_obs == 54).all()


def test_ols_by_hand() -> None:
    # y = 1 + 2x + e with e = (+1, -1, -1, +1) orthogonal to (1, x): the fit recovers 1 and 2
    data = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [2.0, 2.0, 4.0, 8.0]})
    table = fit_ols("y ~ x", data)
    np.testing.assert_allclose(table.estimate, [1.0, 2.0])


@pytest.mark.parametrize("re_term", ["1", "1 + task_distance"])
def test_mixedlm_equals_statsmodels(re_term: str) -> None:
    data = _gains(1)
    table = fit_mixedlm(f"gain ~ task_distance + ({re_term} | target_task)", data)
    res = smf.mixedlm(
        "gain ~ task_distance", data, groups=data["target_task"], re_formula=f"~{re_term}"
    ).fit()
    fixed = table[table.effect == "fixed"]
    assert list(fixed.term) == ["Intercept", "task_distance"]
    np.testing.assert_array_equal(fixed.estimate, res.fe_params.to_numpy())
    np.testing.assert_array_equal(fixed.std_error, res.bse_fe.to_numpy())
    random = table[table.effect == "random"].set_index("term")
    assert random.loc["Var(1 | target_task)", "estimate"] == res.cov_re.iloc[0, 0]
    assert random.loc["Residual", "estimate"] == res.scale
    if re_term != "1":
        assert random.loc["Var(task_distance | target_task)", "estimate"] == res.cov_re.iloc[1, 1]
        assert (
            random.loc["Cov(1, task_distance | target_task)", "estimate"] == res.cov_re.iloc[1, 0]
        )
    assert (table.n_groups == 9).all()
    # the same model through groups= gives the same table
    again = fit_mixedlm(
        "gain ~ task_distance", data, groups="target_task", re_formula=f"~{re_term}"
    )
    np.testing.assert_array_equal(again.estimate, table.estimate)


def test_formula_parsing_and_errors() -> None:
    assert parse_mixed_formula("gain ~ (1|target_task)") == ("gain ~ 1", "~1", "target_task")
    with pytest.raises(ValueError, match="exactly one random-effects term"):
        parse_mixed_formula("y ~ x + (1 | a) + (1 | b)")
    with pytest.raises(ValueError, match="pass `groups=`"):
        fit_mixedlm("gain ~ task_distance", _gains())
    with pytest.raises(ValueError, match=r"column\(s\) \['lang'\]"):
        fit_mixedlm("gain ~ task_distance + (1 | lang)", _gains())
    with pytest.raises(TypeError, match="DataFrame"):
        fit_ols("y ~ x", {"x": [1.0], "y": [2.0]})


@pytest.mark.parametrize(
    "formula",
    ["y ~ x + (1 | g) - 1", "y ~ x - 1 + (1 | g)", "y ~ (1 | g) + x - 1", "y ~ 0 + x + (1 | g)"],
)
def test_removing_the_intercept_survives_the_random_term(formula: str) -> None:
    # "- 1" after the random term used to become "x + - 1", which patsy reads as
    # keeping the intercept: the fit silently had one.
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(8), 10)
    x = rng.normal(size=80)
    y = 2.0 * x + rng.normal(size=8)[g] + 0.1 * rng.normal(size=80) + 3.0
    table = fit_mixedlm(formula, pd.DataFrame({"x": x, "y": y, "g": g}))
    fixed = table[table["effect"] == "fixed"]
    assert list(fixed["term"]) == ["x"]


def test_formula_terms_keep_their_signs() -> None:
    assert parse_mixed_formula("y ~ x + (1 | g) - 1") == ("y ~ x - 1", "~1", "g")
    assert parse_mixed_formula("y ~ (1 + x | g) + x") == ("y ~ x", "~1 + x", "g")
    assert parse_mixed_formula("y ~ (1 | g) - 1") == ("y ~ -1", "~1", "g")
