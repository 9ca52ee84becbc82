"""Runs of a cell that hold different examples, or the same examples in another order.

A baseline run cut to 40 of 75 rows, or with renamed ids, is refused unless
the user asks to compare on the shared ids (announced in the summary); a run
stored with its rows reversed gives the same numbers as the original.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from xcal.analyze import AnalysisError, analyze_store
from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store
from xcal.cli import app
from xcal.stats.pairing import ExampleMismatchError, align_examples
from xcal.store import open_store

SYSTEMS = (
    SyntheticSystem("base"),
    SyntheticSystem("stilts", intermediate_tasks=("pawsx",)),
    SyntheticSystem("other", intermediate_tasks=("mnli",)),
)
KW: dict[str, Any] = {"baseline": "base", "n_boot": 200, "metrics": ["accuracy", "ece"],
                      "cache": False, "recalibrate": False}  # fmt: skip


def make_store(path: Path) -> Path:
    make_synthetic_store(path, systems=SYSTEMS, languages=("en", "de"), n_examples=75)
    return path


def rewrite(path: Path, model: str, language: str, pick: Any, rename: bool = False) -> None:
    """Replace a run by the rows ``pick`` selects (ids renamed if asked)."""
    store = open_store(path)
    run_id = store.runs(model=model, language=language).iloc[0]["run_id"]
    arrays = store.load_classification(run_id)
    ids = arrays.example_ids[pick].astype(str)
    if rename:
        ids = np.array([f"{i}-renamed" for i in ids])
    manifest = dataclasses.replace(
        arrays.manifest,
        n_examples=len(ids),
        input_fingerprint=f"rewritten-{len(ids)}-{rename}",
        created_at="",
        xcal_version="",
    )
    store.write_run(
        manifest,
        {"example_id": ids.tolist(), "logits": arrays.logits[pick], "label": arrays.labels[pick]},
        overwrite=True,
    )


@pytest.mark.parametrize("rename", [False, True])
def test_a_truncated_or_renamed_baseline_is_refused(tmp_path: Path, rename: bool) -> None:
    path = make_store(tmp_path / "store")
    rewrite(path, "base", "de", slice(0, 40) if not rename else slice(None), rename=rename)
    # The other cells finish; the refused one is reported by name with its reason.
    with pytest.raises(
        AnalysisError, match=r"xnli/test/de: the runs hold different examples: 'base' holds"
    ) as info:
        analyze_store(path, **KW)
    assert [type(f.error) for f in info.value.failures] == [ExampleMismatchError]


def test_compare_on_shared_examples_when_asked(tmp_path: Path) -> None:
    path = make_store(tmp_path / "store")
    full = analyze_store(path, **KW).results
    rewrite(path, "base", "de", slice(0, 40))
    res = analyze_store(path, **KW, shared_examples=True)
    assert any("compared on the 40 examples" in n for n in res.notes), res.notes
    de = res.results[(res.results.language == "de") & (res.results.comparison == "value")]
    assert set(de["n_examples"]) == {40}
    # English is untouched (p_adjusted moves: the correction's family spans languages).
    cols = ["system", "metric", "comparison", "estimate", "ci_low", "ci_high", "p_value"]
    en = res.results[res.results.language == "en"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(en, full[full.language == "en"][cols].reset_index(drop=True))


def test_cli_refuses_by_default_and_announces_the_option(tmp_path: Path) -> None:
    path = make_store(tmp_path / "store")
    rewrite(path, "base", "de", slice(0, 40))
    args = ["analyze", str(path), "-b", "base", "-o", str(tmp_path / "out"), "--n-boot", "50",
            "-m", "accuracy", "--no-cache"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "holds 40 of the 75 ids" in text, text
    assert "--on-shared-examples" in text
    result = CliRunner().invoke(app, [*args, "--on-shared-examples"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, text
    assert "compared on shared examples: xnli/test/de: compared on the 40 examples" in text


def test_storage_order_does_not_change_the_numbers(tmp_path: Path) -> None:
    """The baseline's rows reversed: every system's intervals and p-values stay the same."""
    path = make_store(tmp_path / "store")
    before = analyze_store(path, **KW).results
    rewrite(path, "base", "de", slice(None, None, -1))
    after = analyze_store(path, **KW).results
    numbers = ["estimate", "ci_low", "ci_high", "p_value", "p_adjusted"]
    key = ["system", "language", "metric", "variant", "comparison"]
    b = before.sort_values(key).reset_index(drop=True)
    a = after.sort_values(key).reset_index(drop=True)
    assert len(a[a.language == "de"]) > 0
    pd.testing.assert_frame_equal(a[key + numbers], b[key + numbers])


def test_align_examples_sorted_and_refusing() -> None:
    ids = np.array(["b", "c", "a"])
    assert align_examples({"x": ids, "y": ids[::-1]}).ids.tolist() == ["a", "b", "c"]
    with pytest.raises(ExampleMismatchError, match="'x' holds 2 of the 3 ids"):
        align_examples({"x": ids[:2], "y": ids})
    with pytest.raises(ExampleMismatchError, match="share no example id"):
        align_examples({"x": ids, "y": np.array(["d"])}, shared=True)
    al = align_examples({"x": ids[:2], "y": ids}, shared=True)
    assert al.ids.tolist() == ["b", "c"] and al.extra == {"x": 0, "y": 1} and not al.complete
