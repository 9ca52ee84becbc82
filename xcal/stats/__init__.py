"""Statistics for comparing systems: bootstrap intervals, paired tests, corrections, correlations.

Every resampling method here is vectorised: resamples are drawn in bounded
chunks of ``(chunk, n)`` and a metric is evaluated for the whole chunk at once
(see :mod:`xcal.stats.statistic`). Results are tidy pandas tables with the
columns ``estimate, ci_low, ci_high, p_value, p_adjusted, method, B, seed``.

Typical use, "is the intermediate model's ECE in Swahili lower than the
baseline's?"::

    a = metric_statistic("ece", y, logits=logits_inter, example_ids=ids_inter)
    b = metric_statistic("ece", y_base, logits=logits_base, example_ids=ids_base)
    paired_bootstrap(a, b, names=("intermediate", "baseline"), rng=0)
    permutation_test(a, b, names=("intermediate", "baseline"), rng=0)
"""

from xcal.stats.bootstrap import (
    BootstrapResult,
    align_pair,
    bca_interval,
    bootstrap_ci,
    bootstrap_distribution,
    bootstrap_pvalue,
    paired_bootstrap,
    paired_bootstrap_distribution,
    percentile_interval,
)
from xcal.stats.correlation import correlation
from xcal.stats.multiple import adjust_pvalues
from xcal.stats.pooled import PooledResult, pooled_difference, pooled_differences
from xcal.stats.regression import fit_mixedlm, fit_ols
from xcal.stats.significance import permutation_pvalue, permutation_test, swap_distribution
from xcal.stats.statistic import (
    ArrayStatistic,
    LinearStatistic,
    Statistic,
    calibration_statistic,
    mean_statistic,
    metric_statistic,
)

__all__ = [
    "ArrayStatistic",
    "BootstrapResult",
    "LinearStatistic",
    "PooledResult",
    "Statistic",
    "adjust_pvalues",
    "align_pair",
    "bca_interval",
    "bootstrap_ci",
    "bootstrap_distribution",
    "bootstrap_pvalue",
    "calibration_statistic",
    "correlation",
    "fit_mixedlm",
    "fit_ols",
    "mean_statistic",
    "metric_statistic",
    "paired_bootstrap",
    "paired_bootstrap_distribution",
    "percentile_interval",
    "permutation_pvalue",
    "permutation_test",
    "pooled_difference",
    "pooled_differences",
    "swap_distribution",
]
