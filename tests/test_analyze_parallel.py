"""The analysis on several processes and on a Dask cluster gives the serial result, bit for bit.

Cells are independent units of work with their own seeds; whatever runs them
(this process, ``jobs=N`` local workers, a cluster's workers, a worker that
dies and a cell that is retried), the results, the cache and the notes are
those of the serial run.
"""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from xcal.analyze import analyze_store
from xcal.analyze.execute import (
    AnalysisError,
    Executor,
    default_jobs,
    open_executor,
    run_unit,
)
from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store
from xcal.cli import app

KWARGS = dict(baseline="baseline", n_boot=200, metrics=["accuracy", "ece", "nll"], progress=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """3 systems x 3 languages x 2 conditions: 6 cells of 3 runs, 300 examples each."""
    return make_synthetic_store(
        tmp_path_factory.mktemp("parallel") / "store",
        systems=(
            SyntheticSystem("baseline"),
            SyntheticSystem("inter", intermediate_tasks=("pawsx",)),
            SyntheticSystem("third"),
        ),
        languages=["en", "de", "sw"],
        conditions=(("none", 0.0), ("typos", 0.3)),
        n_examples=300,
    )


@pytest.fixture(scope="module")
def serial(store):
    result = analyze_store(store, cache=False, **KWARGS)
    table = result.findings.table
    # pooled rows with a mixed-model cross-check fitted, for the comparisons to bite
    assert len(table) > 0 and table["mixedlm_estimate"].notna().any()
    return result


def assert_same(a, b):
    """Results, reliability bins, correlations, findings and notes identical, not just close."""
    pd.testing.assert_frame_equal(a.results, b.results, check_exact=True)
    pd.testing.assert_frame_equal(a.reliability, b.reliability, check_exact=True)
    pd.testing.assert_frame_equal(a.correlations, b.correlations, check_exact=True)
    # the findings' units (system x condition, with their mixed-model fits) ran
    # wherever the cells did
    pd.testing.assert_frame_equal(a.findings.table, b.findings.table, check_exact=True)
    assert a.findings.missing == b.findings.missing
    assert a.notes == b.notes


def test_blas_is_capped_inside_a_unit():
    from threadpoolctl import threadpool_info

    def blas_threads(store, options, unit):
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    threads = run_unit(blas_threads, None, None, None)  # type: ignore[arg-type]
    assert threads and set(threads) == {1}


def test_a_cell_that_raises_is_named_and_the_others_finish(tmp_path):
    from xcal.store import RunManifest, open_store

    store = open_store(tmp_path / "store")
    ids = [f"xnli-test-{i:06d}" for i in range(60)]
    labels = np.arange(60) % 3
    for language in ("de", "fr", "sw"):
        for model in ("baseline", "inter"):
            # The German runs disagree on the gold labels: that cell is refused.
            y = np.roll(labels, 1) if (language, model) == ("de", "inter") else labels
            manifest = RunManifest(
                model=model,
                task="xnli",
                split="test",
                language=language,
                record_kind="classification",
                input_fingerprint=f"inputs-{language}",
                n_examples=60,
            )
            logits = np.random.default_rng(0).normal(size=(60, 3))
            store.write_run(manifest, {"example_id": ids, "logits": logits, "label": y})
    cache = tmp_path / "cache"
    with pytest.raises(
        AnalysisError, match=r"^1 unit\(s\) of the analysis failed.*: xnli/test/de: ValueError: "
    ) as caught:
        analyze_store(store, cache_dir=cache, **{**KWARGS, "n_boot": 0})
    assert [f.name for f in caught.value.failures] == ["xnli/test/de"]
    assert "different gold labels" in str(caught.value)
    # The two other cells finished and were cached: a rerun computes only the broken one.
    assert len(list((cache / "cells").rglob("*.notes.json"))) == 2


def test_the_executor_maps_in_process_without_dask(store):
    with open_executor(store, jobs=4, units=1) as executor:
        assert isinstance(executor, Executor) and executor.client is None

        def square(store, options, unit):
            if unit == 3:
                raise RuntimeError("three")
            return unit * unit

        out = dict(executor.map(square, None, [1, 2, 3, 4], ["a", "b", "c", "d"]))  # type: ignore[arg-type]
    assert out == {0: 1, 1: 4, 3: 16}
    assert [(f.name, f.index, str(f.error)) for f in executor.failures] == [("c", 2, "three")]


# ------------------------------------------------------------------ real Dask clusters

try:
    import distributed
except ImportError:  # pragma: no cover - CI installs xcal[dask]
    distributed = None
needs_dask = pytest.mark.skipif(distributed is None, reason="needs xcal[dask]")


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes (what `--jobs 2` starts)."""
    from xcal.analyze.execute import local_cluster

    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        yield client


@needs_dask
def test_local_workers_keep_glibc_malloc_tuning_and_skip_the_profiler(monkeypatch) -> None:
    """Dask's default worker environment made the analysis 1.46x slower (see WORKER_CONFIG)."""
    import dask

    from xcal.analyze.execute import local_cluster

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with local_cluster(1) as cluster, distributed.Client(cluster) as client:
        seen = client.run(
            lambda: (
                os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                dask.config.get("distributed.worker.profile.enabled"),
            )
        )
    assert list(seen.values()) == [(None, False)]
    # the settings were only for that cluster
    assert dask.config.get("distributed.worker.profile.enabled") is True


@needs_dask
@pytest.mark.slow
def test_a_local_cluster_gives_the_serial_result(store, serial, cluster, tmp_path, monkeypatch):
    from contextlib import contextmanager

    from xcal.analyze import pipeline

    progress: list[object] = []

    @contextmanager
    def bar(total, enabled):
        progress.append(total)

        class Bar:
            def advance(self, n, description=None):
                progress.append((n, description))

        yield Bar()

    monkeypatch.setattr(pipeline, "progress_bar", bar)
    cache = tmp_path / "cache"
    result = analyze_store(store, scheduler=cluster, cache_dir=cache, **KWARGS)
    assert_same(result, serial)
    assert result.cells_computed == 6
    # Progress counts cells done across the workers, each once.
    assert progress[0] == 6 and len(progress) == 7
    assert len({d for _, d in progress[1:]}) == 6  # type: ignore[misc]
    # The cache works the same: the serial rerun takes every cell from it.
    again = analyze_store(store, cache_dir=cache, **KWARGS)
    assert again.cells_cached == 6 and again.cells_computed == 0
    assert_same(again, serial)


_PluginBase = distributed.WorkerPlugin if distributed is not None else object


class _KillOnce(_PluginBase):  # type: ignore[misc,valid-type]
    """SIGKILLs the worker process while it computes its first cell (once per marker file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and "analyse_cell" in str(key):
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(key).encode())
            os.close(fd)
            # Kill from another thread while the cell runs in this one.
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()


@needs_dask
@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_only_its_cell(store, serial, cluster, tmp_path):
    marker = tmp_path / "killed"
    before = set(cluster.run(os.getpid).values())
    cluster.register_plugin(_KillOnce(str(marker)), name="kill-once")
    try:
        result = analyze_store(store, scheduler=cluster, cache=False, **KWARGS)
    finally:
        cluster.unregister_worker_plugin("kill-once")
    assert marker.exists(), "no worker was killed"
    assert_same(result, serial)
    cluster.wait_for_workers(2, timeout=60)
    after = set(cluster.run(os.getpid).values())
    assert before - after, "the killed worker process is still there"


@needs_dask
@pytest.mark.slow
def test_jobs_2_equals_jobs_1(store, serial):
    result = analyze_store(store, cache=False, jobs=2, **KWARGS)
    assert_same(result, serial)
    assert result.cells_computed == 6
    # the XNLI premise clusters are resampled in the workers as in this process
    assert serial.results["method"].str.contains(r"paired bootstrap of \d+ clusters").any()


def test_the_command_line_passes_jobs_and_scheduler_on(store, tmp_path, monkeypatch):
    import xcal.analyze

    seen = []

    def fake(store, **kwargs):
        seen.append((kwargs["jobs"], kwargs["scheduler"]))
        raise ValueError("stop here")

    monkeypatch.setattr(xcal.analyze, "analyze_store", fake)
    base = ["analyze", str(store.root), "-b", "baseline", "-o", str(tmp_path / "out"), "-q"]
    for extra in (["--jobs", "3"], ["-j", "1", "--scheduler", "tcp://head:8786"]):
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 1 and "stop here" in result.output
    assert seen == [(3, None), (1, "tcp://head:8786")]
    result = CliRunner().invoke(app, [*base, "--jobs", "0"])
    assert result.exit_code == 2
    # Default: $XCAL_JOBS, else every core this process may use.
    monkeypatch.setenv("XCAL_JOBS", "5")
    CliRunner().invoke(app, base)
    monkeypatch.delenv("XCAL_JOBS")
    CliRunner().invoke(app, base)
    assert seen[-2:] == [(5, None), (default_jobs(), None)]


@needs_dask
@pytest.mark.slow
def test_figures_drawn_on_the_workers_equal_those_drawn_here(store, serial, cluster, tmp_path):
    from xcal.analyze.report import draw_figure

    here = serial.write_report(tmp_path / "here", figures="all", tables=False)
    with open_executor(store, scheduler=cluster) as executor:
        seen: list[str] = []
        original = executor.map

        def spy(fn, options, units, names):
            seen.append(fn.__name__)
            return original(fn, options, units, names)

        executor.map = spy  # type: ignore[method-assign]
        there = serial.write_report(
            tmp_path / "there", figures="all", tables=False, executor=executor
        )
        assert not executor.failures
    assert seen == [draw_figure.__name__]  # the figures went through the executor
    assert here.read_text() == there.read_text()
    mine = sorted(p.relative_to(tmp_path / "here") for p in (tmp_path / "here").rglob("*.pdf"))
    theirs = sorted(p.relative_to(tmp_path / "there") for p in (tmp_path / "there").rglob("*.pdf"))
    assert mine == theirs and len(mine) > 5
    for path in mine:
        # same drawing, byte for byte (no dates in the metadata)
        assert (tmp_path / "here" / path).read_bytes() == (tmp_path / "there" / path).read_bytes()
