"""The README's results tables, regenerated from a study's ``findings.csv``.

``python -m xcal.demo.summary reports/demo/findings.csv`` prints them as
Markdown: the pooled difference of every intermediate system to the baseline
over the non-English languages, per task and condition, x100 (points) with
its 95% interval, and the task-distance correlations of question 5. Nothing
in them is typed by hand.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

POOLED = "pooled difference"


def _interval(row: pd.Series) -> str:
    est, low, high = (100 * row[k] for k in ("estimate", "ci_low", "ci_high"))
    return f"{est:+.1f} [{low:+.1f}, {high:+.1f}]"


def _condition(row: pd.Series) -> str:
    from xcal.analyze.display_names import DisplayNames

    return DisplayNames().condition(row["perturbation"], float(row["severity"]))


def pooled_table(
    findings: pd.DataFrame,
    task: str,
    metrics: Sequence[str],
    *,
    variant: str = "raw",
    pool: str = "non-English",
) -> str:
    """One row per system and condition: each metric's pooled difference [95% interval].

    The last columns are the smallest Holm-adjusted p-value of the row and the
    languages and evaluated examples per system it pools.
    """
    rows = findings[
        (findings["quantity"] == POOLED)
        & (findings["task"] == task)
        & (findings["pool"] == pool)
        & (findings["variant"] == variant)
        & findings["metric"].isin(metrics)
    ]
    if rows.empty:
        raise ValueError(f"no pooled {variant} rows for task {task!r} over {pool!r}")
    from xcal.analyze.results import metric_info

    header = ["system", "condition", *(f"Δ {metric_info(m).label} (x100)" for m in metrics)]
    header += ["smallest p_adj", "languages / examples"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    order = rows.assign(_clean=rows["perturbation"] != "none").sort_values(
        ["_clean", "perturbation", "severity", "system"]
    )
    for (system, _, _), group in order.groupby(["system", "perturbation", "severity"], sort=False):
        by_metric = {r["metric"]: r for _, r in group.iterrows()}
        first = group.iloc[0]
        cells = [_interval(by_metric[m]) if m in by_metric else "n/a" for m in metrics]
        counts = f"{int(first['n_languages'])} / {int(first['n_examples']):,}"
        lines.append(
            "| "
            + " | ".join(
                [str(system), _condition(first), *cells, f"{group['p_adjusted'].min():.2f}", counts]
            )
            + " |"
        )
    return "\n".join(lines)


def correlation_table(findings: pd.DataFrame, metric: str, kind: str = "spearman") -> str:
    """Question 5: the correlation of the pooled gain with each task distance, with its interval."""
    q5 = findings[(findings["question"] == "Q5") & (findings["metric"] == metric)]
    rows = q5[q5["quantity"].str.startswith(f"{kind} correlation of gain with ")]
    if rows.empty:
        raise ValueError(f"no {kind} rows for {metric!r} in question 5")
    lines = [
        f"| task distance | {kind} r [95% interval] | p | p_adj |",
        "| --- | --- | --- | --- |",
    ]
    for _, r in rows.sort_values("quantity").iterrows():
        measure = r["quantity"].removeprefix(f"{kind} correlation of gain with ")
        measure = measure.removesuffix(" task distance")
        lines.append(
            f"| {measure} | {r['estimate']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}] "
            f"| {r['p_value']:.2f} | {r['p_adjusted']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0] if args else "reports/demo/findings.csv")
    findings = pd.read_csv(path)
    calibration = ["ece", "debiased_ece", "smooth_ece", "brier"]
    sections = [
        ("XNLI, raw probabilities", pooled_table(findings, "xnli", ["accuracy", *calibration])),
        (
            "XNLI, each run at its own fitted temperature (ts_self)",
            pooled_table(findings, "xnli", calibration, variant="ts_self"),
        ),
        (
            "XQuAD, raw span confidence",
            pooled_table(findings, "xquad", ["exact_match", "f1", *calibration]),
        ),
    ]
    if (findings["task"] == "mlqa").any():  # a profile may leave MLQA out
        sections.append(
            (
                "MLQA, raw span confidence",
                pooled_table(findings, "mlqa", ["exact_match", "f1", *calibration]),
            )
        )
    sections += [
        (
            "Tatoeba, raw (softmax at T = 0.05)",
            pooled_table(findings, "tatoeba", ["accuracy", *calibration]),
        ),
        (
            "Tatoeba, ts_self",
            pooled_table(findings, "tatoeba", calibration, variant="ts_self"),
        ),
    ]
    for metric in ("accuracy", "ece"):
        sections.append((f"Question 5, XNLI gain in {metric}", correlation_table(findings, metric)))
    for title, table in sections:
        print(f"#### {title}\n\n{table}\n")


if __name__ == "__main__":
    main()
