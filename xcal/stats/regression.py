"""Regression tables for "does X predict the gain": OLS and linear mixed-effects models.

Both fit through the statsmodels formula API and return a tidy table (one row
per term) instead of a results object. Mixed models accept lme4's notation for
one grouping factor, ``gain ~ task_distance + (1 | target_task)`` (random
intercept) or ``(1 + x | g)`` (random intercept and slope), translated to
``statsmodels.formula.api.mixedlm(..., groups=g, re_formula="~1 + x")``.

References
----------
D. Bates, M. Maechler, B. Bolker, S. Walker. Fitting linear mixed-effects
models using lme4. Journal of Statistical Software 67(1), 2015.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["fit_mixedlm", "fit_ols", "parse_mixed_formula"]

_RANDOM_TERM = re.compile(r"\(\s*([^()|]+?)\s*\|\s*([^()|]+?)\s*\)")


def parse_mixed_formula(formula: str) -> tuple[str, str, str]:
    """Split an lme4-style formula into (fixed formula, re_formula, group column).

    Examples
    --------
    >>> parse_mixed_formula("gain ~ task_distance + (1 | target_task)")
    ('gain ~ task_distance', '~1', 'target_task')
    >>> parse_mixed_formula("y ~ (1 + x | g) + x")
    ('y ~ x', '~1 + x', 'g')
    """
    found = _RANDOM_TERM.findall(formula)
    if len(found) != 1:
        raise ValueError(
            f"Expected exactly one random-effects term like '(1 | group)' in {formula!r}, "
            f"found {len(found)} (statsmodels' MixedLM fits one grouping factor)"
        )
    re_lhs, group = found[0]
    if "~" not in formula:
        raise ValueError(f"Expected a formula 'response ~ terms', got {formula!r}")
    lhs, rhs = formula.split("~", 1)
    # Drop the random term with the "+" that joins it to the rest; every other
    # term keeps its own sign, so "x + (1 | g) - 1" stays "x - 1" (no intercept).
    rhs = _RANDOM_TERM.sub("@random@", rhs)
    rhs = re.sub(r"\+\s*@random@|@random@\s*\+?", "", rhs)
    rhs = re.sub(r"\s+", " ", rhs).strip()
    if rhs.startswith("+"):
        rhs = rhs[1:].strip()
    if rhs.startswith("- "):
        rhs = "-" + rhs[2:]
    fixed = f"{lhs.strip()} ~ {rhs or '1'}"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", group):
        raise ValueError(f"Expected a column name as the grouping factor, got {group!r}")
    return fixed, f"~{re_lhs.strip()}", group


def _check_columns(data: Any, names: list[str], formula: str) -> None:
    missing = [c for c in names if c not in data.columns]
    if missing:
        raise ValueError(
            f"Formula {formula!r} uses column(s) {missing} that the data does not have; "
            f"columns: {list(data.columns)}"
        )


def _table(
    names: list[str], est: Any, se: Any, stat: Any, p: Any, ci: Any, effect: str
) -> list[dict[str, Any]]:
    return [
        {
            "effect": effect,
            "term": t,
            "estimate": float(est[t]),
            "std_error": float(se[t]),
            "statistic": float(stat[t]),
            "p_value": float(p[t]),
            "ci_low": float(ci.loc[t].iloc[0]),
            "ci_high": float(ci.loc[t].iloc[1]),
        }
        for t in names
    ]


def fit_ols(formula: str, data: Any, *, level: float = 0.95, cov_type: str = "nonrobust") -> Any:
    """Ordinary least squares through ``statsmodels.formula.api.ols``, as a tidy table.

    Parameters
    ----------
    formula : str
        A patsy formula, e.g. ``"gain ~ task_distance + C(language_family)"``.
    data : pandas.DataFrame
    level : float, default=0.95
        Coverage of the ``ci_low``/``ci_high`` columns.
    cov_type : str, default="nonrobust"
        Passed to ``fit`` (e.g. ``"HC3"`` for heteroscedasticity-robust errors).

    Returns
    -------
    pandas.DataFrame
        One row per coefficient: effect ("fixed"), term, estimate, std_error,
        statistic (t), p_value, ci_low, ci_high, plus ``n_obs``, ``r_squared`` and
        ``model``; ``frame.attrs`` holds n_obs, r_squared, adj_r_squared, aic.

    Examples
    --------
    Points on y = 1 + 2 x exactly:

    >>> import pandas as pd
    >>> t = fit_ols("y ~ x", pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 3.0, 5.0, 7.0]}))
    >>> [round(v, 10) for v in t.estimate]
    [1.0, 2.0]
    """
    import pandas as pd
    import statsmodels.formula.api as smf

    if not (0 < level < 1):
        raise ValueError(f"Expected `level` in (0, 1), got {level!r}")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"Expected `data` to be a pandas DataFrame, got {type(data).__name__}")
    res = smf.ols(formula, data).fit(cov_type=cov_type)
    ci = res.conf_int(alpha=1 - level)
    rows = _table(
        list(res.params.index), res.params, res.bse, res.tvalues, res.pvalues, ci, "fixed"
    )
    frame = pd.DataFrame(rows)
    frame["n_obs"] = int(res.nobs)
    frame["r_squared"] = float(res.rsquared)
    frame["model"] = f"OLS: {formula}"
    frame.attrs.update(
        n_obs=int(res.nobs),
        r_squared=float(res.rsquared),
        adj_r_squared=float(res.rsquared_adj),
        aic=float(res.aic),
    )
    return frame


def fit_mixedlm(
    formula: str,
    data: Any,
    *,
    groups: str | None = None,
    re_formula: str | None = None,
    level: float = 0.95,
    reml: bool = True,
    method: str | list[str] | None = None,
) -> Any:
    """Linear mixed-effects model through ``statsmodels.formula.api.mixedlm``, as a tidy table.

    Parameters
    ----------
    formula : str
        lme4 style with one random term, ``"gain ~ task_distance + (1 | target_task)"``,
        or a plain fixed-effects formula together with ``groups``.
    data : pandas.DataFrame
    groups : str, optional
        Grouping column, when ``formula`` has no ``( | )`` term.
    re_formula : str, optional
        Random-effects formula, when ``formula`` has no ``( | )`` term
        (default: random intercept).
    level : float, default=0.95
    reml : bool, default=True
    method : str or list of str, optional
        Optimiser(s), passed to ``MixedLM.fit``.

    Returns
    -------
    pandas.DataFrame
        Fixed-effect rows (estimate, std_error, statistic (z), p_value, ci_low,
        ci_high) then random-effect variance rows (effect "random", term such as
        ``"Var(1 | target_task)"``, and ``"Residual"``; std_error etc. NaN),
        plus ``n_obs``, ``n_groups``, ``converged`` and ``model`` columns.

    Examples
    --------
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(8), 10); x = rng.normal(size=80)
    >>> y = 2.0 * x + rng.normal(size=8)[g] + 0.1 * rng.normal(size=80)
    >>> t = fit_mixedlm("y ~ x + (1 | g)", pd.DataFrame({"x": x, "y": y, "g": g}))
    >>> round(float(t.set_index("term").loc["x", "estimate"]), 1)
    2.0
    """
    import pandas as pd
    import statsmodels.formula.api as smf

    if not (0 < level < 1):
        raise ValueError(f"Expected `level` in (0, 1), got {level!r}")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"Expected `data` to be a pandas DataFrame, got {type(data).__name__}")
    if "|" in formula:
        if groups is not None or re_formula is not None:
            raise ValueError(
                "Give the random effects either in the formula '( | g)' or as "
                "`groups=`/`re_formula=`, not both"
            )
        fixed, re_form, group = parse_mixed_formula(formula)
    else:
        if groups is None:
            raise ValueError(f"Formula {formula!r} has no '(1 | group)' term: pass `groups=`")
        fixed, re_form, group = formula, re_formula or "~1", groups
    _check_columns(data, [group], formula)
    model = smf.mixedlm(fixed, data, groups=data[group], re_formula=re_form)
    res = model.fit(reml=reml, method=method) if method is not None else model.fit(reml=reml)
    ci = res.conf_int(alpha=1 - level)
    fe = list(res.fe_params.index)
    rows = _table(fe, res.fe_params, res.bse_fe, res.tvalues, res.pvalues, ci, "fixed")
    cov = res.cov_re
    re_names = list(cov.index)
    # statsmodels calls the random intercept "Group" (or "Intercept"); lme4 writes 1
    label_of = {a: "1" if a in ("Group", "Intercept") else a for a in re_names}
    for i, a in enumerate(re_names):
        for b in re_names[: i + 1]:
            la, lb = label_of[a], label_of[b]
            label = f"Var({la} | {group})" if a == b else f"Cov({lb}, {la} | {group})"
            rows.append(
                {
                    "effect": "random",
                    "term": label,
                    "estimate": float(cov.loc[a, b]),
                    "std_error": np.nan,
                    "statistic": np.nan,
                    "p_value": np.nan,
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                }
            )
    rows.append(
        {
            "effect": "random",
            "term": "Residual",
            "estimate": float(res.scale),
            "std_error": np.nan,
            "statistic": np.nan,
            "p_value": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
        }
    )
    frame = pd.DataFrame(rows)
    frame["n_obs"] = int(res.nobs)
    frame["n_groups"] = len(model.group_labels)
    frame["converged"] = bool(res.converged)
    frame["model"] = f"MixedLM: {fixed}, groups={group}, re_formula={re_form}"
    frame.attrs.update(
        n_obs=int(res.nobs),
        n_groups=len(model.group_labels),
        converged=bool(res.converged),
        llf=float(res.llf),
    )
    return frame
