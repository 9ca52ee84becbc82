"""The report's tables: display names, significance-gated bold, recalibration captions."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from xcal.analyze.display_names import DisplayNames
from xcal.analyze.results import RESULT_COLUMNS, conform
from xcal.analyze.tables import (
    TableOptions,
    difference_tables,
    metric_table,
    recalibration_table,
)


def _record(**fields: object) -> dict[str, object]:
    record: dict[str, object] = dict.fromkeys(RESULT_COLUMNS)
    record.update(
        baseline=None,
        comparison="value",
        task="xnli",
        split="test",
        perturbation="none",
        severity=0.0,
        perturbation_seed=0,
        perturbation_params="",
        variant="raw",
        p_value=math.nan,
        p_adjusted=math.nan,
        correction="",
        method="",
        n_examples=100,
        n_boot=1000,
        seed=0,
        higher_is_better=False,
        temperature=math.nan,
        run_id="r",
        baseline_run_id=None,
        record_kind="classification",
    )
    record.update(fields)
    return record


def _ece_results(p_inter: float, p_other: float) -> pd.DataFrame:
    """ECE of three systems in de: inter lowest, other next, baseline last; overlapping intervals."""
    values = {"baseline": 0.20, "inter": 0.10, "other": 0.12}
    records = [
        _record(
            system=s, language="de", metric="ece", estimate=v, ci_low=v - 0.05, ci_high=v + 0.05
        )
        for s, v in values.items()
    ]
    for system, p in (("inter", p_inter), ("other", p_other)):
        d = values[system] - values["baseline"]
        records.append(
            _record(
                system=system,
                baseline="baseline",
                comparison="difference",
                language="de",
                metric="ece",
                estimate=d,
                ci_low=d - 0.03,
                ci_high=d + 0.03,
                p_adjusted=p,
                correction="holm",
            )
        )
    return conform(pd.DataFrame(records))


def _row(tex: str, language: str) -> list[str]:
    line = next(line for line in tex.splitlines() if line.startswith(f"{language} &"))
    return [cell.strip() for cell in line.rstrip(" \\").split("&")[1:]]


def test_metric_table_bolds_the_best_only_when_it_beats_the_runner_up_significantly():
    # inter (10.0) vs other (12.0): neither is the baseline and the intervals
    # overlap, so nothing is bold, however significant both are against the baseline.
    (table,) = metric_table(_ece_results(0.001, 0.001))
    assert "\\bfseries" not in table.tex.split("\\midrule")[1]
    assert "no value is bold here" in table.tex
    # baseline first, then the others
    assert table.tex.index("{baseline}") < table.tex.index("{inter}") < table.tex.index("{other}")
    # only inter and the baseline: the paired test against the baseline decides
    two = _ece_results(0.001, 0.001)
    two = two[two["system"] != "other"]
    (table,) = metric_table(two)
    assert _row(table.tex, "de")[2] == "\\bfseries 10.0"
    assert "paired bootstrap against the baseline" in table.tex
    (table,) = metric_table(_ece_results(0.2, 0.2).query("system != 'other'"))
    assert "\\bfseries" not in table.tex.split("\\midrule")[1]


def test_display_names_reach_captions_headers_and_rows(tmp_path):
    results = _ece_results(0.001, 0.2)
    results = pd.concat(
        [results, conform(results.assign(perturbation="char_noise", severity=0.05))]
    )
    (table,) = [t for t in difference_tables(results) if "inter" in t.name]
    assert "on XNLI" in table.tex and "{char. noise 5\\%}" in table.tex and "{clean}" in table.tex
    path = tmp_path / "names.json"
    path.write_text(
        json.dumps(
            {
                "systems": {"inter": "+PAWS-X"},
                "languages": {"de": "German"},
                "tasks": {"xnli": "XNLI (test)"},
            }
        )
    )
    options = TableOptions(names=DisplayNames.from_file(path))
    (table,) = [t for t in difference_tables(results, options=options) if "inter" in t.name]
    assert "+PAWS-X minus baseline on XNLI (test)" in table.tex
    assert "German &" in table.tex and table.name == "delta_ece_raw_inter_xnli"


def test_display_name_files_in_every_format_and_their_errors(tmp_path):
    toml = tmp_path / "n.toml"
    toml.write_text('[systems]\n"+pawsx" = "+PAWS-X"\n[perturbations]\nchar_noise = "typos"\n')
    yaml = tmp_path / "n.yaml"
    yaml.write_text("systems:\n  +pawsx: +PAWS-X\nperturbations:\n  char_noise: typos\n")
    for path in (toml, yaml):
        names = DisplayNames.from_file(path)
        assert names.system("+pawsx") == "+PAWS-X"
        assert names.condition("char_noise", 0.15) == "typos 15%"
        assert names.task("pawsx") == "PAWS-X"  # defaults stay
    bad = tmp_path / "bad.toml"
    bad.write_text("[models]\na = 'b'\n")
    with pytest.raises(ValueError, match=r"bad.toml: unknown section\(s\) \['models'\]"):
        DisplayNames.from_file(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DisplayNames.from_file(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="unknown interval style 'pm'"):
        TableOptions(interval_style="pm")


def _retrieval_results() -> pd.DataFrame:
    records = []
    for language, raw, fitted in (
        ("amh", 0.56, (0.13, 0.05, 0.24)),
        ("nld", 0.50, (0.0, 0.0, 0.0)),
    ):
        records.append(
            _record(
                system="e5",
                task="tatoeba",
                language=language,
                metric="ece",
                estimate=raw,
                ci_low=raw - 0.1,
                ci_high=raw + 0.05,
                record_kind="retrieval",
            )
        )
        records.append(
            _record(
                system="e5",
                task="tatoeba",
                language=language,
                metric="ece",
                variant="ts_self",
                estimate=fitted[0],
                ci_low=fitted[1],
                ci_high=fitted[2],
                temperature=0.01,
                record_kind="retrieval",
            )
        )
    return conform(pd.DataFrame(records))


def test_recalibration_caption_names_only_the_columns_it_has_and_explains_a_zero():
    (table,) = recalibration_table(_retrieval_results())
    assert "TS (self)" in table.tex and "{TS (en)}" not in table.tex
    assert "fitted on English" not in table.tex
    assert "No TS (en) column: the results hold no English run" in table.tex
    nld = _row(table.tex, "nld")
    assert nld[2].endswith(" 0.0") and nld[3].endswith("\\textsuperscript{\\dag}")
    assert "every fitting example is correct" in table.tex
    assert "\\dag" not in "".join(_row(table.tex, "amh"))
