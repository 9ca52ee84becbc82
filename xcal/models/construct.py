"""One model construction at a time per process.

transformers' ``from_pretrained`` (5.x) swaps ``PreTrainedModel.tie_weights``
for a no-op on the class while it loads, and puts back whatever it found.
Two threads loading at once can each find the other's no-op, and the last
one to finish then leaves weight tying disabled for the rest of the process:
every later decoder with tied embeddings keeps an untied random (or, when
loaded, empty ``meta``) output layer. Threads that run grids side by side
(sharded runs, notebooks) are legitimate, so xcal builds every model under
one process-wide lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()


@contextmanager
def one_at_a_time() -> Iterator[None]:
    """Hold the process-wide lock around building a transformers model."""
    with _LOCK:
        yield
