"""Run the resampling loops with a single BLAS thread.

Each chunk's matrix product is small next to drawing the chunk (and the whole
loop is memory-bound), so BLAS threads only add synchronisation: on a shared
two-core machine a (500, 300) @ (300, 30) product took 14 ms with OpenBLAS's
threads against 0.3 ms on one. The limit applies only inside the loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread for the duration of the block."""
    controller = _controller()
    if controller is None:  # pragma: no cover
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
