"""``xcal analyze`` on one process, on ``--jobs 2`` and on a 2-worker Dask cluster.

The store is one XNLI study of the paper's grid, synthetic
(:func:`xcal.analyze.synthetic.make_synthetic_store`): 10 systems x 15
languages x 5 conditions x 5,010 examples = 750 runs in 75 cells, analysed at
``n_boot=1000`` with every metric and no cache. Baseline: the serial run
(``jobs=1``). Subjects, in the same process and on the same store: ``jobs=2``
(which starts its own ``LocalCluster``, so its start-up is timed) and an
already running 2-worker ``LocalCluster`` passed as ``scheduler=``. Every run
must give the same results bit for bit (checked). Targets (issue 16): >= 1.8x
the serial speed with 2 workers, <= 600 MB peak RSS per worker process.

Also printed: the serial run's CPU time per run (which the machine's load
does not inflate, unlike its wall time) and what it projects for a grid of
20,000 runs on 64 cores, at perfect scaling and at the parallel efficiency
measured here.

Run: ``python -m benchmarks analyze``. On a machine that others are using
the speed-up is depressed; the numbers in docs/analyze.md say when they were
measured and how loaded the machine was.
"""

from __future__ import annotations

import os
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks._common import Result
from xcal.analyze import analyze_store
from xcal.analyze.execute import local_cluster
from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store

N_SYSTEMS = 10
LANGUAGES = (
    "en",
    "de",
    "fr",
    "es",
    "ru",
    "zh",
    "ar",
    "hi",
    "sw",
    "ur",
    "th",
    "tr",
    "vi",
    "el",
    "bg",
)
CONDITIONS = (("none", 0.0), ("typos", 0.1), ("typos", 0.3), ("shuffle", 0.1), ("shuffle", 0.3))
N_EXAMPLES = 5010
N_BOOT = 1000
WORKERS = 2
TARGET_SPEEDUP = 1.8
TARGET_RSS_MB = 600.0
GRID_RUNS, GRID_CORES = 20_000, 64


def build_store(
    root: Path, n_examples: int = N_EXAMPLES, conditions: tuple[Any, ...] = CONDITIONS
) -> Any:
    systems = [SyntheticSystem("baseline")] + [
        SyntheticSystem(f"system{i:02d}", intermediate_tasks=(f"task{i:02d}",))
        for i in range(1, N_SYSTEMS)
    ]
    return make_synthetic_store(
        root, systems=systems, languages=LANGUAGES, conditions=conditions, n_examples=n_examples
    )


@contextmanager
def child_rss_peak() -> Iterator[dict[int, float]]:
    """Peak RSS (MB) of every child process (workers, nannies), sampled every 0.2 s."""
    import psutil

    peaks: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        me = psutil.Process()
        while not done.is_set():
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                peaks[child.pid] = max(peaks.get(child.pid, 0.0), rss)
            done.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        done.set()
        thread.join()


def _log(what: str, out: dict[str, Any]) -> None:
    # Each stage as it ends, with the load: a run cut short still says something.
    print(f"  [{time.strftime('%H:%M:%S')}] {what} (load {os.getloadavg()[0]:.1f})", flush=True)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure(
    n_examples: int = N_EXAMPLES, n_boot: int = N_BOOT, conditions: tuple[Any, ...] = CONDITIONS
) -> dict[str, Any]:
    from distributed import Client

    out: dict[str, Any] = {"load_1min": os.getloadavg()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "store", n_examples, conditions)
        n_runs = len(store.runs())
        kwargs: dict[str, Any] = dict(baseline="baseline", n_boot=n_boot, cache=False)
        kwargs["progress"] = False
        out["runs"] = n_runs
        _log(f"store of {n_runs} runs built", out)

        cpu = time.process_time()
        out["serial_s"], serial = _timed(lambda: analyze_store(store, jobs=1, **kwargs))
        # CPU time does not grow with the machine's load: the projection uses it.
        out["serial_cpu_s"] = time.process_time() - cpu
        out["serial_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["cells"] = serial.cells_computed
        _log(f"serial {out['serial_s']:.1f} s", out)

        with child_rss_peak() as peaks:
            out["jobs_s"], by_jobs = _timed(lambda: analyze_store(store, jobs=WORKERS, **kwargs))
        out["jobs_rss_mb"] = sorted(peaks.values(), reverse=True)[:WORKERS]
        _log(f"--jobs {WORKERS} {out['jobs_s']:.1f} s", out)

        # The cluster a user would start from Python, with xcal's worker settings.
        # Its workers' peak RSS is sampled like --jobs': their own ru_maxrss
        # includes this process's size when it forked them (Linux keeps the
        # high-water mark across fork and exec; both read 1,124 MB, this
        # process's peak after the serial run).
        with (
            child_rss_peak() as peaks,
            local_cluster(WORKERS) as cluster,
            Client(cluster) as client,
        ):
            out["cluster_s"], by_cluster = _timed(
                lambda: analyze_store(store, scheduler=client, **kwargs)
            )
        out["cluster_rss_mb"] = sorted(peaks.values(), reverse=True)[:WORKERS]
        _log(f"LocalCluster {out['cluster_s']:.1f} s", out)

        for other in (by_jobs, by_cluster):
            pd.testing.assert_frame_equal(serial.results, other.results, check_exact=True)
            pd.testing.assert_frame_equal(serial.reliability, other.reliability, check_exact=True)
            pd.testing.assert_frame_equal(
                serial.findings.table, other.findings.table, check_exact=True
            )
        out["identical"] = True
    out["load_1min_after"] = os.getloadavg()[0]
    return out


def run(conditions: tuple[Any, ...] = CONDITIONS) -> list[Result]:
    m = measure(conditions=conditions)
    per_run = m["serial_cpu_s"] / m["runs"]
    best = max(m["serial_s"] / m["jobs_s"], m["serial_s"] / m["cluster_s"])
    efficiency = best / WORKERS
    ideal_h = GRID_RUNS * per_run / GRID_CORES / 3600
    print(
        f"  {m['runs']} runs in {m['cells']} cells, n_boot={N_BOOT}; {m['cpus']} CPUs, load "
        f"average {m['load_1min']:.1f} before and {m['load_1min_after']:.1f} after"
    )
    print(
        f"  serial {m['serial_s']:.1f} s ({m['serial_cpu_s']:.1f} CPU s, peak RSS "
        f"{m['serial_rss_mb']:.0f} MB), "
        f"--jobs {WORKERS} {m['jobs_s']:.1f} s (worker peak RSS "
        f"{', '.join(f'{r:.0f}' for r in m['jobs_rss_mb'])} MB), "
        f"LocalCluster {m['cluster_s']:.1f} s (worker peak RSS "
        f"{', '.join(f'{r:.0f}' for r in m['cluster_rss_mb'])} MB); results identical"
    )
    print(
        f"  {per_run:.3f} CPU s per run (one cell of {N_SYSTEMS} systems: "
        f"{per_run * N_SYSTEMS:.2f} s); {GRID_RUNS:,} runs on {GRID_CORES} cores: "
        f"{ideal_h * 60:.0f} min at perfect scaling, {ideal_h * 60 / efficiency:.0f} min at the "
        f"{efficiency:.0%} efficiency measured here"
    )
    worst_rss = max([*m["jobs_rss_mb"], *m["cluster_rss_mb"]])
    name = f"analyze: {m['runs']} runs x {N_EXAMPLES} examples, n_boot {N_BOOT}"
    target = f">= {TARGET_SPEEDUP}x, <= {TARGET_RSS_MB:.0f} MB per worker"
    return [
        Result(
            benchmark=name,
            subject=f"analyze_store(jobs={WORKERS}) (cluster start-up included)",
            subject_s=m["jobs_s"],
            baseline="analyze_store(jobs=1)",
            baseline_s=m["serial_s"],
            target=target,
            passed=m["serial_s"] / m["jobs_s"] >= TARGET_SPEEDUP and worst_rss <= TARGET_RSS_MB,
        ),
        Result(
            benchmark=name,
            subject=f"analyze_store(scheduler=<{WORKERS}-worker LocalCluster>)",
            subject_s=m["cluster_s"],
            baseline="analyze_store(jobs=1)",
            baseline_s=m["serial_s"],
            target=target,
            passed=m["serial_s"] / m["cluster_s"] >= TARGET_SPEEDUP and worst_rss <= TARGET_RSS_MB,
        ),
    ]


if __name__ == "__main__":
    # A quicker look than the store: `--conditions 1` keeps the clean
    # condition only (150 runs), a fifth of the work.
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conditions", type=int, default=len(CONDITIONS))
    args = parser.parse_args()
    for result in run(CONDITIONS[: args.conditions]):
        print(
            f"{result.benchmark}: {result.subject} {result.subject_s:.1f}s vs "
            f"{result.baseline} {result.baseline_s:.1f}s -> {result.speedup:.2f}x "
            f"(target {result.target}: {'met' if result.passed else 'NOT met'})"
        )
