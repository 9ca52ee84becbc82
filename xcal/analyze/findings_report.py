"""Rendering of the findings: findings.csv / .parquet, findings.tex and the index.md section."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from xcal.analyze.findings import QUESTIONS, WIDTH_THRESHOLD
from xcal.analyze.report import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from xcal.analyze.findings import Findings


def _tex(text: object) -> str:
    from xcal.analyze.latex import escape_latex

    return escape_latex(text)


def _number(value: float, percent: bool) -> str:
    if not isinstance(value, float) or math.isnan(value):
        return "--"
    return f"{100 * value:+.2f}" if percent else f"{value:+.4f}"


class _Row:
    """A findings row with attribute access (typed loosely, as a record)."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.__dict__.update(record)

    def __getattr__(self, name: str) -> Any:  # for mypy: every column is Any
        raise AttributeError(name)


def _records(frame: pd.DataFrame) -> list[Any]:
    return [_Row({str(k): v for k, v in r.items()}) for r in frame.to_dict("records")]


def findings_tex(table: pd.DataFrame) -> str:
    """One booktabs table per question: pool, metric, estimate [interval], adjusted p."""
    from xcal.analyze.results import metric_info

    parts = [
        "% Findings per research question, written by xcal analyze.",
        "% Needs \\usepackage{booktabs}. Values of percent metrics in points.",
    ]
    for question, rows in table.groupby("question", sort=True):
        parts += [
            "\\begin{table}[t]",
            "\\centering\\small",
            f"\\caption{{{_tex(question)}: {_tex(QUESTIONS.get(str(question), ''))}. "
            "Pooled over languages with a cluster bootstrap of source items (95\\% intervals; "
            "p-values Holm-adjusted within the question, metric and variant).}",
            "\\begin{tabular}{lllllrll}",
            "\\toprule",
            "System & Task & Condition & Pool & Metric & Estimate & 95\\% CI & $p_{adj}$ \\\\",
            "\\midrule",
        ]
        for r in _records(rows):
            percent = bool(metric_info(str(r.metric)).percent and r.quantity == "pooled difference")
            condition = (
                "clean"
                if r.perturbation == "none"
                else f"{r.perturbation}"
                + ("" if math.isnan(float(r.severity)) else f" {float(r.severity):g}")
            )
            if r.quantity != "pooled difference":
                condition += f" ({r.quantity})"
            ci = f"[{_number(float(r.ci_low), percent)}, {_number(float(r.ci_high), percent)}]"
            p = "--" if math.isnan(float(r.p_adjusted)) else f"{float(r.p_adjusted):.3g}"
            parts.append(
                " & ".join(
                    [
                        _tex(r.system),
                        _tex(r.task),
                        _tex(condition),
                        _tex(r.pool),
                        _tex(r.metric if r.variant == "raw" else f"{r.metric} ({r.variant})"),
                        _number(float(r.estimate), percent),
                        ci,
                        p,
                    ]
                )
                + " \\\\"
            )
        parts += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(parts) + "\n"


def write_findings(findings: Findings, out: Path) -> list[str]:
    """Write the findings files into ``out``; return the index.md section's lines."""
    table = findings.table
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    atomic_write_bytes(out / "findings.parquet", buffer.getvalue())
    atomic_write_bytes(out / "findings.csv", table.to_csv(index=False).encode())
    atomic_write_text(out / "findings.tex", findings_tex(table))
    lines = [
        "## Findings",
        "",
        "- [`findings.csv`](findings.csv) / [`findings.parquet`](findings.parquet): one row per "
        "question x system x task x condition x metric x variant x pool (all non-English "
        "languages, each resource class, each script), with the pooled difference to the "
        "baseline, its 95% interval (cluster bootstrap of source items; XNLI premise groups, QA "
        "paragraphs), the p-value adjusted within the question, metric and variant (Holm), "
        "languages, examples and the direction in words; variant `raw` scores the probabilities "
        "as the models gave them, `ts_self` both systems after temperature scaling fitted per "
        "language on the held-out fitting ids (calibration metrics only); "
        "`mixedlm_*`: a mixed-effects cross-check for accuracy and Brier (languages as fixed "
        "effects, a random intercept per source item).",
        "- [`findings.tex`](findings.tex): the same, one table per question.",
        "",
        f"Rows whose interval is wider than {WIDTH_THRESHOLD:g} (metric units; 2 points for "
        'accuracy and ECE) say "inconclusive at this sample size" with the examples per '
        "language that would be needed.",
        "",
    ]
    if not table.empty:
        main = table[(table["pool"] == "non-English")]
        for question, rows in main.groupby("question", sort=True):
            lines += [f"### {question}: {QUESTIONS.get(str(question), '')}", ""]
            for r in _records(rows):
                condition = "clean" if r.perturbation == "none" else f"{r.perturbation}"
                if r.quantity == "pooled difference" and r.perturbation != "none":
                    condition += f" {float(r.severity):g}"
                p = (
                    ""
                    if math.isnan(float(r.p_adjusted))
                    else f" (p_adj = {float(r.p_adjusted):.3g})"
                )
                lines.append(f"- {r.task}, {condition}: {r.direction}{p}")
            lines.append("")
    if findings.missing:
        lines += ["### Questions this store cannot answer", ""]
        lines += [f"- {q}: {why}" for q, why in findings.missing.items()]
        lines.append("")
    return lines


def findings_digest_bytes(findings: Findings | None) -> bytes:
    """What of the findings decides whether the report must be rewritten."""
    if findings is None:
        return b""
    return (
        findings.table.to_csv(index=False).encode()
        + repr(sorted(findings.missing.items())).encode()
    )


__all__ = ["findings_digest_bytes", "findings_tex", "write_findings"]
