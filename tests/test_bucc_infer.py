"""BUCC bitext mining through ``xcal infer``: realistic files, fail-fast checks, stored runs.

The files have the real zh-en dev set's gold density (about 3% of source
sentences with a partner, more English than source sentences); the end-to-end
run uses a tiny model on a file of a tenth of the real size so it stays fast,
the reader and the checks before model work use the full size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _bucc import DEV_ENGLISH, DEV_GOLD, DEV_SOURCE, write_bucc

from xcal.infer import Grid, InferInputError, ModelSpec, RunOptions, TaskSpec, run_grid
from xcal.store import open_store

pytestmark = pytest.mark.filterwarnings("ignore:.*placeholders:UserWarning")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    from xcal.models.tiny import make_tiny_model

    return str(make_tiny_model(tmp_path_factory.mktemp("tiny-bucc") / "bert", "bert"))


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("weights were loaded before the input was validated")

    monkeypatch.setattr("xcal.infer.runner.load_for", refuse)


def _grid(model: str, language: str = "zh") -> Grid:
    return Grid((ModelSpec(model, label="tiny"),), (TaskSpec("bucc2018", (language,)),))


def test_realistic_file_reads_with_most_queries_unpaired(tmp_path: Path) -> None:
    from xcal.tasks import get_task

    files = write_bucc(tmp_path)
    task = get_task("bucc2018")
    examples = task.load(tmp_path, "zh", "dev")
    candidates = task.candidates(tmp_path, "zh", "dev")
    assert len(examples) == DEV_SOURCE and len(candidates) == DEV_ENGLISH
    paired = [e for e in examples if e.gold_ids]
    assert len(paired) == DEV_GOLD
    assert 0.02 < len(paired) / len(examples) < 0.04
    gold = dict(files.gold)
    assert all(e.gold_ids == (gold[e.example_id],) for e in paired)
    assert task.record_kind == "mining"


@pytest.mark.slow
def test_mining_run_is_stored_with_unpaired_queries(tiny_bert: str, tmp_path: Path) -> None:
    # A tenth of the real dev set, same density: 862 source, 1,359 English, 26 gold pairs.
    files = write_bucc(tmp_path / "data", n_source=862, n_english=1359, n_gold=26)
    opts = RunOptions(batch_tokens=4096, top_k=5)
    (result,) = run_grid(
        _grid(tiny_bert), tmp_path / "store", data_dir=tmp_path / "data", options=opts
    )
    assert result.status == "written", result.error
    store = open_store(tmp_path / "store")
    assert store.validate() == []
    (run,) = store.runs().to_dict("records")
    assert run["record_kind"] == "mining" and run["n_examples"] == 862
    records = store.load_records(run["run_id"])
    gold = dict(files.gold)
    assert sum(bool(g) for g in records["gold_ids"]) == 26
    for qid, golds in zip(records["example_id"], records["gold_ids"], strict=True):
        assert list(golds) == ([gold[qid]] if qid in gold else [])
    scores = np.asarray(records["scores"])
    assert scores.shape == (862, 5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    english = set(files.english_ids)
    assert all(c in english for row in records["candidate_ids"] for c in row)
    # The margin's neighbourhood means: forward from the query's own scores (k = 4 of
    # the 5 stored), backward for each candidate (its 4 nearest source sentences).
    np.testing.assert_allclose(records["query_knn_mean"], scores[:, :4].mean(axis=1), rtol=1e-5)
    knn = np.asarray(records["candidate_knn_mean"])
    assert knn.shape == (862, 5) and np.all(np.abs(knn) <= 1.0 + 1e-6)
    # One value per English sentence, whichever query lists it.
    by_candidate: dict[str, set[float]] = {}
    for row_ids, row_knn in zip(records["candidate_ids"], knn, strict=True):
        for cid, value in zip(row_ids, row_knn, strict=True):
            by_candidate.setdefault(cid, set()).add(float(value))
    assert all(len(v) == 1 for v in by_candidate.values())


def test_store_refusal_is_found_before_any_model_work(
    tiny_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_loading: None
) -> None:
    """A retrieval task whose queries lack gold ids is refused before weights load."""
    from xcal.tasks import get_task

    write_bucc(tmp_path / "data")
    # Treat BUCC as plain retrieval (every query must have a gold id): what the
    # store refuses must be found while the grid is checked, in seconds.
    monkeypatch.setattr(type(get_task("bucc2018")), "record_kind", "retrieval")
    start = time.perf_counter()
    with pytest.raises(InferInputError, match=r"checked before running the model.*gold_ids"):
        run_grid(_grid(tiny_bert), tmp_path / "store", data_dir=tmp_path / "data")
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "store").exists() or open_store(tmp_path / "store").runs().empty


def test_unstorable_qa_gold_is_refused_before_model_work(
    tiny_bert: str, xtreme_dir: Path, tmp_path: Path, no_loading: None
) -> None:
    """The shared TyDiQA-GoldP dev sample has no gold answers: no run of it could be stored."""
    grid = Grid((ModelSpec(tiny_bert, label="tiny"),), (TaskSpec("tydiqa", ("en",)),))
    with pytest.warns(UserWarning, match="empty answers|no gold answer"):
        with pytest.raises(InferInputError, match=r"checked before running the model.*'answers'"):
            run_grid(grid, tmp_path / "store", data_dir=xtreme_dir, options=RunOptions(limit=5))
