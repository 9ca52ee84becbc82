"""Multiple-comparison corrections equal statsmodels' (xcal.stats.multiple)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from xcal.stats import adjust_pvalues


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("holm", "holm"), ("bh", "fdr_bh"), ("bonferroni", "bonferroni"), ("by", "fdr_by")],
)
def test_equal_statsmodels(ours: str, theirs: str) -> None:
    p = np.random.default_rng(0).uniform(size=60) ** 3
    np.testing.assert_array_equal(adjust_pvalues(p, ours), multipletests(p, method=theirs)[1])


def test_bonferroni_and_holm_by_hand() -> None:
    p = [0.01, 0.02, 0.03, 0.5]
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.08, 0.12, 1.0])
    # Holm: 0.01 * 4, 0.02 * 3, 0.03 * 2, 0.5 * 1
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.04, 0.06, 0.06, 0.5])


def test_tables_by_family_and_missing_values() -> None:
    frame = pd.DataFrame(
        {
            "task": ["xnli"] * 3 + ["pawsx"] * 3,
            "language": ["de", "sw", "ur"] * 2,
            "p_value": [0.01, 0.04, np.nan, 0.02, 0.03, 0.2],
        }
    )
    out = adjust_pvalues(frame, "holm", by="task")
    assert list(out.columns[-3:]) == ["p_adjusted", "reject", "correction"]
    # xnli has two non-missing tests: 0.01 * 2, 0.04 * 1; the NaN stays NaN
    np.testing.assert_allclose(out.p_adjusted[:2], [0.02, 0.04])
    assert np.isnan(out.p_adjusted[2]) and not out.reject[2]
    np.testing.assert_allclose(
        out.p_adjusted[3:], multipletests([0.02, 0.03, 0.2], method="holm")[1]
    )
    assert frame.columns.tolist() == ["task", "language", "p_value"]  # input untouched
    whole = adjust_pvalues(frame, "bh")
    np.testing.assert_allclose(
        whole.p_adjusted.dropna(), multipletests([0.01, 0.04, 0.02, 0.03, 0.2], method="fdr_bh")[1]
    )


def test_errors() -> None:
    with pytest.raises(ValueError, match="Unknown correction 'tukey'"):
        adjust_pvalues([0.1], "tukey")
    with pytest.raises(ValueError, match=r"index 1 holds 1.5"):
        adjust_pvalues([0.1, 1.5])
    with pytest.raises(ValueError, match="no 'p' column"):
        adjust_pvalues(pd.DataFrame({"q": [0.1]}), column="p")
    with pytest.raises(ValueError, match="missing columns"):
        adjust_pvalues(pd.DataFrame({"p_value": [0.1]}), by="task")


@pytest.mark.parametrize("method", ["fdr_tsbh", "fdr_tsbky", "holm-sidak", "hommel", "sidak"])
def test_every_listed_statsmodels_method_is_accepted(method: str) -> None:
    # The docstring promises every multipletests method; the two-stage ones raised.
    p = np.random.default_rng(1).uniform(size=40) ** 3
    for alpha in (0.05, 0.1):
        np.testing.assert_array_equal(
            adjust_pvalues(p, method, alpha=alpha), multipletests(p, alpha=alpha, method=method)[1]
        )
