"""Every notebook in notebooks/ runs top to bottom, so the examples never rot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The store `make demo PROFILE=ci` writes (.ci/run makes it before the tests);
# XCAL_TEST_DEMO_STORE points at another copy.
DEMO_STORE = Path(os.environ.get("XCAL_TEST_DEMO_STORE", ROOT / "reports" / "demo-work" / "store"))


def _store_for(source: str) -> str | None:
    if source == "synthetic":
        return None
    if not DEMO_STORE.is_dir() or not any(DEMO_STORE.glob("task=*")):
        message = f"no demo store at {DEMO_STORE}: run `make demo PROFILE=ci` first"
        if os.environ.get("CI"):
            pytest.fail(message)  # .ci/run makes it: its absence is a bug there
        pytest.skip(message)
    return str(DEMO_STORE)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["synthetic", "demo"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, source, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    # Few resamples: the point is that every cell runs, not the precision of the numbers.
    monkeypatch.setenv("XCAL_NOTEBOOK_NBOOT", "200")
    store = _store_for(source)
    if store is None:
        monkeypatch.delenv("XCAL_NOTEBOOK_STORE", raising=False)
    else:
        # The demo's store: several tasks, one of them (Tatoeba) with a single system.
        monkeypatch.setenv("XCAL_NOTEBOOK_STORE", store)
    monkeypatch.delenv("XCAL_NOTEBOOK_BASELINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []
    # the notebook did compute and show something: the last cell prints the report index
    last = nb.cells[-1]
    text = "".join(o.get("text", "") for o in last.outputs if o.get("output_type") == "stream")
    assert "# Analysis report" in text
    # and drew figures (display_data with a PNG)
    pngs = [
        o
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(pngs) >= 3
    assert os.environ["XCAL_NOTEBOOK_NBOOT"] == "200"


def test_there_is_a_notebook():
    assert [p.name for p in NOTEBOOKS] == ["explore_store.ipynb"]
