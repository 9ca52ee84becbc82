"""LaTeX tables: escaping, number formats, markers, bold, layout, and that pdflatex compiles them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xcal.analyze.latex import (
    PREAMBLE,
    TWO_COLUMN_PAGE,
    escape_latex,
    format_number,
    significance_marker,
    table_from_frame,
    tables_from_frame,
)

# Overfull boxes up to this many pt are rounding, not a table off the page.
TOLERANCE_PT = 1.0


def compile_tables(tex_files: list[Path], workdir: Path) -> str:
    """Compile a document that \\input's every table; return the log, fail on any error."""
    if shutil.which("pdflatex") is None:
        message = (
            "pdflatex is not installed: `make setup` installs it (scripts/ensure-tex.sh), "
            "or apt-get install texlive-latex-base texlive-latex-recommended texlive-science"
        )
        # Skipping is the user's explicit choice, and never allowed in CI.
        if os.environ.get("XCAL_SKIP_TEX") == "1" and not os.environ.get("CI"):
            pytest.skip(message)
        pytest.fail(message)
    inputs = "\n".join(f"\\input{{{p.resolve()}}}\n\\clearpage" for p in tex_files)
    doc = (
        "\\documentclass[twocolumn]{article}\n"
        + PREAMBLE
        + TWO_COLUMN_PAGE.preamble()
        + "\\begin{document}\n"
        + inputs
        + "\n\\end{document}\n"
    )
    (workdir / "doc.tex").write_text(doc)
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = (
        (workdir / "doc.log").read_text(errors="replace") if (workdir / "doc.log").exists() else ""
    )
    errors = [line for line in log.splitlines() if line.startswith("!")]
    assert proc.returncode == 0 and not errors, f"pdflatex failed: {errors}\n{proc.stdout[-3000:]}"
    assert (workdir / "doc.pdf").stat().st_size > 0
    return log


def overfull_boxes(log: str) -> list[str]:
    """Boxes wider or taller than the page (beyond the tolerance), and floats too large."""
    bad = []
    for line in log.splitlines():
        box = re.match(r"Overfull \\[hv]box \((\d+(?:\.\d+)?)pt too", line)
        if box and float(box.group(1)) > TOLERANCE_PT:
            bad.append(line)
        if "Float too large for page" in line:
            bad.append(line)
    return bad


def test_escape_every_special_character():
    text = "a_b & 5% #1 $x$ {y} ~z ^w \\v <u> |t|"
    escaped = escape_latex(text)
    assert escaped == (
        "a\\_b \\& 5\\% \\#1 \\$x\\$ \\{y\\} \\textasciitilde{}z \\textasciicircum{}w "
        "\\textbackslash{}v \\textless{}u\\textgreater{} \\textbar{}t\\textbar{}"
    )


def test_significance_markers_at_their_thresholds():
    assert significance_marker(0.05) == ""  # strictly below the level
    assert significance_marker(0.0499) == "*"
    assert significance_marker(0.0099) == "**"
    assert significance_marker(0.00099) == "***"
    assert significance_marker(float("nan")) == ""


def test_format_number_has_no_negative_zero():
    assert format_number(-0.0004, 3) == "0.000"
    assert format_number(-0.0006, 3) == "-0.001"
    assert format_number(1.23456, 1) == "1.2"


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "language": ["en", "en", "de", "de"],
            "condition": ["clean", "word_shuffle 0.5", "clean", "word_shuffle 0.5"],
            "estimate": [0.010, -0.020, 0.030, -0.041],
            "ci_low": [-0.005, -0.030, 0.010, -0.061],
            "ci_high": [0.025, -0.010, 0.050, -0.021],
            "p_adjusted": [0.4, 0.004, 0.03, 0.0004],
        }
    )


def _row(table, language: str) -> list[str]:
    line = next(line for line in table.tex.splitlines() if line.startswith(f"{language} &"))
    return [cell.strip() for cell in line.rstrip(" \\").split("&")[1:]]


def test_offsets_show_the_exact_asymmetric_interval_and_marker():
    frame = _frame().assign(ci_high=[0.025, -0.010, 0.060, -0.021])
    table = table_from_frame(frame, rows=["language"], columns=["condition"], digits=3)
    de = _row(table, "de")
    # estimate 0.030 in [0.010, 0.060]: +0.030 up, -0.020 down; p = 0.03 -> one star
    assert de[:2] == ["0.030", "${}^{+0.030}_{-0.020}$${}^{*}$"]
    assert de[2:] == ["-0.041", "${}^{+0.020}_{-0.020}$${}^{***}$"]
    assert "\\pm" not in table.tex.split("\\midrule")[1]
    # the header escapes the underscore of the condition name
    assert "word\\_shuffle 0.5" in table.tex
    assert "\\toprule" in table.tex and "\\midrule" in table.tex and "\\bottomrule" in table.tex
    assert "adjusted $p<0.05$" in table.tex  # markers are explained in the caption
    assert "distance from the estimate to the upper and lower bound" in table.tex


def test_pm_only_where_the_printed_interval_is_symmetric():
    # English DeltaECE 2.3 [-10.2, 10.9]: never "2.3 +- 10.6".
    frame = pd.DataFrame(
        {
            "language": ["en", "de"],
            "condition": ["clean", "clean"],
            "estimate": [0.023, 0.010],
            "ci_low": [-0.102, 0.0],
            "ci_high": [0.109, 0.020],
        }
    )
    table = table_from_frame(
        frame,
        rows=["language"],
        columns=["condition"],
        p_value=None,
        style="pm",
        scale=100,
        digits=1,
    )
    assert _row(table, "en") == ["2.3", "${}^{+8.6}_{-12.5}$"]
    assert _row(table, "de") == ["1.0", "${}\\pm 1.0$"]
    assert "10.6" not in table.tex


def test_brackets_print_exact_bounds_with_math_minus():
    for style in ("brackets", "interval"):
        table = table_from_frame(
            _frame(), rows=["language"], columns=["condition"], style=style, digits=3
        )
        de = _row(table, "de")
        assert de[3] == "[$-0.061$, $-0.021$]"
        assert "95\\% CI" in table.tex and "Brackets give" in table.tex
    with pytest.raises(ValueError, match="unknown interval style 'square'"):
        table_from_frame(_frame(), rows=["language"], columns=["condition"], style="square")  # type: ignore[arg-type]


def test_best_value_is_bold_only_where_it_is_separated_from_the_next():
    frame = _frame()
    table = table_from_frame(
        frame, rows=["language"], columns=["condition"], best="min", best_within="column"
    )
    # clean: en [-0.005, 0.025] overlaps de [0.010, 0.050] -> nothing bold;
    # shuffle: de [-0.061, -0.021] overlaps en [-0.030, -0.010] -> nothing bold
    assert "\\bfseries" not in table.tex.split("\\midrule")[1]
    assert "only where it differs significantly from the next" in table.tex
    assert "no value is bold here" in table.tex
    # separated intervals: the best is bold, the other is not
    apart = frame.assign(
        ci_low=[0.005, -0.025, 0.026, -0.061], ci_high=[0.015, -0.015, 0.050, -0.030]
    )
    table = table_from_frame(
        apart, rows=["language"], columns=["condition"], best="min", best_within="column"
    )
    assert _row(table, "en")[0] == "\\bfseries 0.010"
    assert _row(table, "de")[2] == "\\bfseries -0.041"
    assert "\\bfseries" not in _row(table, "de")[0] + _row(table, "en")[2]
    # a caller's test decides instead of the intervals, and ties are never bold
    table = table_from_frame(
        frame,
        rows=["language"],
        columns=["condition"],
        best="min",
        best_within="column",
        separated=lambda best, runner_up: best[0] == ("de",),
        separation_note="paired test",
    )
    assert _row(table, "de")[2].startswith("\\bfseries") and "paired test" in table.tex
    assert not _row(table, "en")[0].startswith("\\bfseries")
    tied = frame.assign(estimate=[0.0101, 0.0, 0.0099, 0.0], ci_low=0.0, ci_high=0.0)
    table = table_from_frame(
        tied,
        rows=["language"],
        columns=["condition"],
        best="min",
        best_within="column",
        separated=lambda best, runner_up: True,
    )
    assert table.tex.count("\\bfseries") == 0


def test_no_interval_is_marked_and_explained():
    frame = _frame().assign(
        ci_low=[-0.005, -0.030, 0.030, np.nan], ci_high=[0.025, -0.010, 0.030, np.nan]
    )
    table = table_from_frame(frame, rows=["language"], columns=["condition"], digits=3)
    de = _row(table, "de")
    assert de[1].endswith("\\textsuperscript{\\dag}") and de[3].endswith("\\textsuperscript{\\dag}")
    assert "\\dag" not in "".join(_row(table, "en"))
    assert "\\dag: no interval: every bootstrap resample gives the same value" in table.tex


def test_siunitx_column_format_matches_the_numbers():
    table = table_from_frame(
        _frame(), rows=["language"], columns=["condition"], scale=100, digits=1, style="brackets"
    )
    spec = re.search(r"\\begin\{tabular\}\{(.*)\}\n", table.tex)
    assert spec is not None
    # signed, one integer digit, one decimal; the markers' space after the number
    assert "S[table-format=-1.1, table-space-text-post={$^{***}$}] c" in spec.group(1)
    offsets = table_from_frame(
        _frame(), rows=["language"], columns=["condition"], scale=100, digits=1
    )
    assert "S[table-format=-1.1] @{}l" in offsets.tex


def test_missing_cell_prints_a_dash_and_duplicates_are_refused():
    frame = _frame().iloc[:3]
    table = table_from_frame(frame, rows=["language"], columns=["condition"])
    assert _row(table, "de")[2] == "{--}"
    with pytest.raises(ValueError, match="more than one row for cell"):
        table_from_frame(pd.concat([frame, frame]), rows=["language"], columns=["condition"])
    with pytest.raises(ValueError, match="missing column"):
        table_from_frame(frame.drop(columns="ci_low"), rows=["language"], columns=["condition"])


def test_two_level_header_has_spans_and_cmidrules():
    frame = pd.DataFrame(
        {
            "language": ["en"] * 4,
            "system": ["a_b", "a_b", "c", "c"],
            "variant": ["raw", "TS", "raw", "TS"],
            "estimate": [0.1, 0.2, 0.3, 0.4],
            "ci_low": [0.0] * 4,
            "ci_high": [0.5] * 4,
        }
    )
    table = table_from_frame(frame, rows=["language"], columns=["system", "variant"], p_value=None)
    # every cell is two columns (number, interval): a system spans four
    assert "\\multicolumn{4}{c}{a\\_b}" in table.tex
    assert "\\cmidrule(lr){2-5} \\cmidrule(lr){6-9}" in table.tex
    assert "\\multicolumn{2}{c}{raw}" in table.tex


def _wide_frame(n_languages: int, n_conditions: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n_languages):
        for j in range(n_conditions):
            e = rng.normal(0, 0.05)
            rows.append(
                {
                    "language": f"lang{i:02d}",
                    "condition": f"char. noise {j}%",
                    "estimate": e,
                    "ci_low": e - rng.uniform(0.01, 0.2),
                    "ci_high": e + rng.uniform(0.01, 0.2),
                    "p_adjusted": rng.uniform(0, 0.1),
                }
            )
    return pd.DataFrame(rows)


def test_layout_splits_wide_and_tall_tables_and_transposes_when_that_fits():
    wide = tables_from_frame(
        _wide_frame(15, 12),
        rows=["language"],
        columns=["condition"],
        scale=100,
        digits=1,
        style="brackets",
        transpose=False,
        name="wide",
    )
    assert len(wide) >= 2 and all("\\begin{table*}" in t.tex for t in wide)
    assert [t.name for t in wide][:2] == ["wide_part1", "wide_part2"]
    assert f"(part 1 of {len(wide)})" in wide[0].tex
    # every row is in every column part
    assert all(t.tex.count("lang14 &") == 1 for t in wide)
    tall = tables_from_frame(
        _wide_frame(120, 1),
        rows=["language"],
        columns=["condition"],
        scale=100,
        digits=1,
        name="tall",
    )
    assert (
        len(tall) >= 2
        and sum(t.tex.count("\\\\\nlang") + t.tex.count("\nlang") for t in tall) >= 120
    )
    assert all("\\begin{table}" in t.tex for t in tall)  # narrow: one column each
    # 3 languages x 14 conditions: too wide, but fits once transposed
    flipped = tables_from_frame(
        _wide_frame(3, 14),
        rows=["language"],
        columns=["condition"],
        row_names=["Language"],
        column_names=["Condition"],
        scale=100,
        digits=1,
    )
    assert len(flipped) == 1 and "{Condition} &" in flipped[0].tex


def test_generated_tables_compile_with_pdflatex(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for system in ["stilts_pawsx", "R&D #2"]:
        for language in ["en", "de", "sw", "zh"]:
            for condition in ["clean", "word_shuffle 0.2", "char_noise 50%"]:
                e = rng.normal(0, 0.05)
                rows.append(
                    {
                        "system": system,
                        "language": language,
                        "condition": condition,
                        "estimate": e,
                        "ci_low": e - 0.02,
                        "ci_high": e + 0.03,
                        "p_adjusted": rng.uniform(0, 0.1),
                    }
                )
    frame = pd.DataFrame(rows)
    tables = [
        table_from_frame(
            frame,
            rows=["system", "language"],
            columns=["condition"],
            best="min",
            scale=100,
            digits=1,
            caption="ΔECE with 50% _under_ & #hash",
            label="tab:one",
        ),
        table_from_frame(
            frame[frame["system"] == "R&D #2"],
            rows=["language"],
            columns=["condition"],
            style="interval",
            best="abs_min",
            digits=3,
            caption="Intervals",
        ),
        table_from_frame(
            frame.assign(estimate=np.nan), rows=["system", "language"], columns=["condition"]
        ),
    ]
    paths = []
    for i, table in enumerate(tables):
        paths.append(table.save(tmp_path / f"t{i}.tex"))
    log = compile_tables(paths, tmp_path)
    assert overfull_boxes(log) == []


@pytest.mark.parametrize("style", ["offsets", "brackets"])
def test_split_and_transposed_parts_fit_the_two_column_page(style, tmp_path):
    shapes = [(15, 12, False), (120, 1, "auto"), (3, 14, "auto"), (43, 3, "auto"), (15, 5, "auto")]
    paths = []
    for k, (n_languages, n_conditions, transpose) in enumerate(shapes):
        for table in tables_from_frame(
            _wide_frame(n_languages, n_conditions),
            rows=["language"],
            columns=["condition"],
            scale=100,
            digits=1,
            style=style,
            transpose=transpose,
            best="min",
            caption="ΔECE of +pawsx minus baseline on XNLI, per language and perturbation.",
            name=f"shape{k}",
        ):
            paths.append(table.save(tmp_path / f"{table.name}.tex"))
    log = compile_tables(paths, tmp_path)
    assert overfull_boxes(log) == []


def test_the_page_check_catches_a_table_that_does_not_fit(tmp_path):
    # The same check on a forced layout: too wide for one column, too tall for the page.
    wide = table_from_frame(
        _wide_frame(3, 6), rows=["language"], columns=["condition"], environment="table"
    )
    tall = table_from_frame(_wide_frame(90, 1), rows=["language"], columns=["condition"])
    log = compile_tables([wide.save(tmp_path / "w.tex"), tall.save(tmp_path / "t.tex")], tmp_path)
    problems = overfull_boxes(log)
    assert any(p.startswith("Overfull \\hbox") for p in problems)
    assert any("Float too large" in p for p in problems)
