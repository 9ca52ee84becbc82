"""The README's results tables come from findings.csv, row for row."""

from __future__ import annotations

import pandas as pd
import pytest

from xcal.demo.summary import correlation_table, pooled_table


def _row(**values: object) -> dict[str, object]:
    base = {
        "question": "Q0", "quantity": "pooled difference", "system": "+a", "task": "xnli",
        "perturbation": "none", "severity": 0.0, "metric": "ece", "variant": "raw",
        "pool": "non-English", "estimate": -0.0123, "ci_low": -0.03, "ci_high": 0.0051,
        "p_value": 0.2, "p_adjusted": 0.4, "n_languages": 14, "n_examples": 4298,
    }  # fmt: skip
    return {**base, **values}


def test_a_pooled_row_prints_its_estimate_and_interval_in_points() -> None:
    findings = pd.DataFrame(
        [
            _row(),
            _row(metric="accuracy", estimate=0.02, ci_low=0.001, ci_high=0.04, p_adjusted=0.03),
            _row(perturbation="word_shuffle", severity=0.5, n_examples=2086),
            _row(pool="class 3", estimate=0.5),  # another pool: not in the table
            _row(variant="ts_self", estimate=0.9),  # another variant: not in the table
        ]
    )
    table = pooled_table(findings, "xnli", ["accuracy", "ece"]).splitlines()
    assert table[0] == (
        "| system | condition | Δ Accuracy (x100) | Δ ECE (x100) | smallest p_adj "
        "| languages / examples |"
    )
    assert table[2] == "| +a | clean | +2.0 [+0.1, +4.0] | -1.2 [-3.0, +0.5] | 0.03 | 14 / 4,298 |"
    assert table[3] == "| +a | word shuffle 50% | n/a | -1.2 [-3.0, +0.5] | 0.40 | 14 / 2,086 |"
    assert len(table) == 4
    with pytest.raises(ValueError, match="no pooled raw rows for task 'xquad'"):
        pooled_table(findings, "xquad", ["ece"])


def test_question_5_prints_one_row_per_distance() -> None:
    q5 = {"question": "Q5", "metric": "ece", "p_value": 0.1, "p_adjusted": 0.8}
    findings = pd.DataFrame(
        [
            _row(
                **q5,
                quantity="spearman correlation of gain with mmd task distance",
                estimate=0.9,
                ci_low=0.05,
                ci_high=0.99,
            ),
            _row(**q5, quantity="pearson correlation of gain with mmd task distance"),
        ]
    )
    lines = correlation_table(findings, "ece").splitlines()
    assert lines[2:] == ["| mmd | +0.90 [+0.05, +0.99] | 0.10 | 0.80 |"]
