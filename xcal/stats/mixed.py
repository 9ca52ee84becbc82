"""The pooled mean of a per-example difference under a random item intercept.

The model behind the findings' mixed-effects cross-check::

    d[k] = mu + alpha[language(k)] + u[item(k)] + e[k],
    u ~ N(0, s2_item),  e ~ N(0, s2_resid),  sum(alpha) = 0,

fitted by REML: ``mu`` is the mean of the language means over these (fixed)
languages, and the item intercept carries the correlation of one source
item's differences across languages (and across the hypotheses of one
premise). ``statsmodels``' ``MixedLM`` fits it, but by a general optimiser
over dense per-item solves: about 6 s per fit at 14 languages x 5,000 items,
and near the boundary (``s2_item`` close to 0) it was seen to stop short of
the REML optimum.

On parallel data every item usually has the same number of rows in every
language (``n[i, j] = r[i]``). Then the sum-coded language effects are
orthogonal to every item's intercept, so the language effects are the OLS
ones and the REML likelihood depends on one parameter, the variance ratio
``theta = s2_item / s2_resid``, through per-item sums only. It is maximised
by a bounded scalar search; with ``r[i]`` constant it reproduces the ANOVA
estimator. Designs without that structure fall back to statsmodels.

References
----------
D. A. Harville. Maximum likelihood approaches to variance component
estimation and to related problems. JASA 72(358), 1977.
S. R. Searle, G. Casella, C. E. McCulloch. Variance Components, ch. 6. 1992.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = ["MixedMean", "random_intercept_mean"]

# Bounds of the search over log(theta); theta below e^-30 is taken as 0.
_LOG_THETA = (-30.0, 30.0)


class MixedMean(NamedTuple):
    """REML estimate of the pooled mean with its normal-theory interval."""

    estimate: float
    ci_low: float
    ci_high: float
    s2_item: float
    s2_resid: float
    method: str  # "reml-profile" (the scalar fit here) or "statsmodels"


_NAN = MixedMean(math.nan, math.nan, math.nan, math.nan, math.nan, "none")


def random_intercept_mean(
    values: Any, language: Any, item: Any, *, level: float = 0.95
) -> MixedMean:
    """Fit ``d ~ C(language, Sum) + (1 | item)`` by REML; return the intercept.

    Parameters
    ----------
    values : array-like of float
        One difference per row (for example a system's minus the baseline's
        per-example Brier score).
    language, item : array-like
        Each row's language (fixed effect, sum-to-zero coded) and source item
        (random intercept).
    level : float
        Confidence level of the Wald interval (normal quantiles, as statsmodels).

    Returns
    -------
    MixedMean
        NaNs (method ``"none"``) with fewer than two languages or no variation.
    """
    data = pd.DataFrame({"d": np.asarray(values, dtype=float), "language": language, "item": item})
    if data["language"].nunique() < 2 or not data["d"].var() > 0:
        return _NAN
    counts = pd.crosstab(data["item"], data["language"]).to_numpy()
    if (counts.min(axis=1) == counts.max(axis=1)).all() and counts.min() > 0:
        return _profile_reml(data, level)
    return _statsmodels(data, level)


def _profile_reml(data: pd.DataFrame, level: float) -> MixedMean:
    n_total = len(data)
    n_fixed = data["language"].nunique()
    # The OLS language effects (each language's mean around the mean of
    # language means) are the GLS ones here; only the intercept depends on theta.
    lang_mean = data.groupby("language")["d"].transform("mean")
    mu_ols = float(data.groupby("language")["d"].mean().mean())
    z = data["d"].to_numpy() - lang_mean.to_numpy() + mu_ols
    codes, _ = pd.factorize(data["item"])
    n = np.bincount(codes).astype(float)
    z_bar = np.bincount(codes, weights=z) / n
    z_sq = float(z @ z)

    def parts(theta: float) -> tuple[float, float, float]:
        w = n / (1.0 + n * theta)  # X'V^-1 X of the intercept, per item
        s = float(w.sum())
        mu = float(w @ z_bar) / s
        # r'V^-1 r, r = z - mu: sum of squares less each item's shrunk total.
        resid = z_sq - 2 * mu * float(n @ z_bar) + n_total * mu**2
        quad = resid - float((theta * n**2 / (1.0 + n * theta)) @ (z_bar - mu) ** 2)
        return s, mu, quad

    def neg_reml(theta: float) -> float:
        s, _, quad = parts(theta)
        log_det_v = float(np.log1p(n * theta).sum())
        return 0.5 * (log_det_v + math.log(s) + (n_total - n_fixed) * math.log(quad))

    found = optimize.minimize_scalar(
        lambda t: neg_reml(math.exp(t)),
        bounds=_LOG_THETA,
        method="bounded",
        options={"xatol": 1e-10},
    )
    theta = math.exp(found.x)
    if neg_reml(0.0) <= neg_reml(theta):
        theta = 0.0
    s, mu, quad = parts(theta)
    s2_resid = quad / (n_total - n_fixed)
    se = math.sqrt(s2_resid / s)
    z_crit = float(stats.norm.ppf(0.5 + level / 2))
    return MixedMean(
        mu, mu - z_crit * se, mu + z_crit * se, theta * s2_resid, s2_resid, "reml-profile"
    )


def _statsmodels(data: pd.DataFrame, level: float) -> MixedMean:
    import statsmodels.formula.api as smf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = smf.mixedlm("d ~ C(language, Sum)", data, groups=data["item"]).fit(reml=True)
        ci = res.conf_int(alpha=1 - level).loc["Intercept"]
        return MixedMean(
            float(res.fe_params["Intercept"]),
            float(ci.iloc[0]),
            float(ci.iloc[1]),
            float(res.cov_re.iloc[0, 0]),
            float(res.scale),
            "statsmodels",
        )
    except Exception:  # singular or degenerate design: no cross-check for this row
        return _NAN
