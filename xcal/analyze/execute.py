"""Executing units of work: in this process, in local worker processes, or on a Dask cluster.

One code path for all three: :func:`open_executor` gives an :class:`Executor`
whose :meth:`~Executor.map` runs a unit function (from
:mod:`xcal.analyze.cell`) over units and yields each result as it completes.
``jobs=1`` runs them here, one after another; ``jobs=N`` starts a
:class:`dask.distributed.LocalCluster` of N single-threaded worker processes;
a scheduler address or a :class:`dask.distributed.Client` runs them on that
cluster, whose workers open the store at the same path (a shared filesystem).

Scheduling, retries and worker deaths are Dask's: a worker that dies takes
only the units it was running, which the scheduler gives to another worker
(up to ``distributed.scheduler.allowed-failures`` times). A unit that raises is
recorded as a :class:`Failure` with its name while the others go on, and
:class:`AnalysisError` reports them all at the end.

Every unit runs with BLAS limited to one thread, in workers and here: N
workers then use N cores, not N x cores, and a cell's numbers do not depend on
how many threads a matrix product was split over.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from xcal.analyze.options import AnalysisOptions

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

    from xcal.store import PredictionStore

U = TypeVar("U")
R = TypeVar("R")
UnitFunction = Callable[["PredictionStore", AnalysisOptions, U], R]

#: BLAS threads of a unit of work.
BLAS_THREADS = 1


@dataclass
class Failure:
    """A unit that raised: its name, its index in the units mapped, and the exception."""

    name: str
    index: int
    error: BaseException


class AnalysisError(ValueError):
    """Some units raised; the others finished (and were cached).

    Attributes
    ----------
    failures : list of Failure
    """

    def __init__(self, failures: Sequence[Failure]) -> None:
        self.failures = list(failures)
        listed = "; ".join(
            f"{f.name}: {type(f.error).__name__}: {f.error}" for f in self.failures[:10]
        )
        more = f"; and {len(self.failures) - 10} more" if len(self.failures) > 10 else ""
        super().__init__(
            f"{len(self.failures)} unit(s) of the analysis failed (the others finished "
            f"and were cached): {listed}{more}"
        )


def default_jobs() -> int:
    """The cores this process may use (the default of ``xcal analyze --jobs``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_unit(
    fn: UnitFunction[U, R], store: PredictionStore, options: AnalysisOptions, unit: U
) -> R:
    """Run one unit with BLAS capped at :data:`BLAS_THREADS` threads."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        return fn(store, options, unit)


@functools.lru_cache(maxsize=8)
def _worker_store(root: str) -> PredictionStore:
    from xcal.store import open_store

    return open_store(root)


def _run_on_worker(fn: UnitFunction[U, R], root: str, options: AnalysisOptions, unit: U) -> R:
    # Runs in a Dask worker: one store object per worker process and root.
    return run_unit(fn, _worker_store(root), options, unit)


class Executor:
    """Runs unit functions over units; results in completion order.

    Failures of :meth:`map` are appended to :attr:`failures`.
    """

    def __init__(self, store: PredictionStore, client: Client | None = None) -> None:
        self.store = store
        self.client = client
        self.failures: list[Failure] = []

    def map(
        self,
        fn: UnitFunction[U, R],
        options: AnalysisOptions,
        units: Sequence[U],
        names: Sequence[str],
    ) -> Iterator[tuple[int, R]]:
        """Yield ``(index, fn(store, options, units[index]))`` as each unit completes."""
        if self.client is None:
            for i, unit in enumerate(units):
                try:
                    result = run_unit(fn, self.store, options, unit)
                except Exception as error:
                    self.failures.append(Failure(names[i], i, error))
                    continue
                yield i, result
            return
        from distributed import as_completed

        root = str(Path(self.store.root).resolve())
        token = uuid.uuid4().hex[:12]
        futures = [
            self.client.submit(
                _run_on_worker, fn, root, options, unit, key=f"xcal-{fn.__name__}-{token}-{i}"
            )
            for i, unit in enumerate(units)
        ]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                i = index[future.key]
                if future.status == "error":
                    raised = future.exception()
                    assert raised is not None
                    self.failures.append(Failure(names[i], i, raised))
                else:
                    result = future.result()
                    future.release()
                    yield i, result
        finally:
            for future in futures:
                future.release()


@contextlib.contextmanager
def open_executor(
    store: PredictionStore,
    *,
    jobs: int = 1,
    scheduler: str | Client | None = None,
    units: int | None = None,
) -> Iterator[Executor]:
    """The executor for ``jobs`` local processes or a Dask ``scheduler``.

    Parameters
    ----------
    store : PredictionStore
    jobs : int, default=1
        Local worker processes (1: run here, no Dask needed). Ignored with a scheduler.
    scheduler : str or dask.distributed.Client, optional
        A scheduler address (``tcp://host:8786``) or a connected client; its
        workers must see the store at the same path.
    units : int, optional
        How many units there are to run: no more local workers than that are
        started, and none for fewer than two.

    Examples
    --------
    >>> import tempfile
    >>> from xcal.store import open_store
    >>> with open_executor(open_store(tempfile.mkdtemp()), jobs=1) as executor:
    ...     executor.client is None
    True
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"Expected `jobs` to be a positive int, got {jobs!r}")
    if scheduler is None and units is not None:
        jobs = min(jobs, max(units, 1))
    if units == 0 or (scheduler is None and jobs == 1):
        yield Executor(store)
        return
    try:
        from distributed import Client
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "running the analysis on several processes or a cluster needs Dask: "
            "pip install 'xcal[dask]'"
        ) from error
    if isinstance(scheduler, Client):
        yield Executor(store, scheduler)
        return
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            client = stack.enter_context(Client(scheduler))
        else:
            client = stack.enter_context(Client(stack.enter_context(local_cluster(jobs))))
        yield Executor(store, client)


#: Dask settings for analysis workers (see :func:`local_cluster`; docs/analyze.md
#: gives them for workers started by hand). Dask's default environment for
#: worker processes sets ``MALLOC_TRIM_THRESHOLD_``, which also fixes glibc's
#: mmap threshold: every large NumPy temporary is then mapped and unmapped
#: afresh, and an analysis ran 1.46x slower (122.4 s against 83.8 s for the same
#: serial run with and without the variable). The per-worker sampling profiler
#: (every 10 ms) cost another 7%.
WORKER_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}


@contextlib.contextmanager
def local_cluster(n_workers: int) -> Iterator[LocalCluster]:
    """A ``LocalCluster`` of single-threaded worker processes set up for the analysis."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set(WORKER_CONFIG),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: none is not an option
            silence_logs=logging.ERROR,
        ) as cluster,
    ):
        yield cluster


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool | None) -> Iterator[Any]:
    """A rich progress bar over cells (on stderr; off when not a terminal unless asked)."""
    import sys

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:

        class _Null:
            def advance(self, n: int, description: str | None = None) -> None:
                pass

        yield _Null()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]analysing cells[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("", total=total)

        class _Bar:
            def advance(self, n: int, description: str | None = None) -> None:
                bar.update(task, advance=n, description=description or "")

        yield _Bar()
