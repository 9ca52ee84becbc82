"""The resampling unit of each example: a task's natural cluster, or the example itself.

Examples that share a context are not independent: XNLI lists the three
hypotheses of one premise on consecutive lines, and a model that misreads the
premise tends to get all three wrong. A bootstrap that resamples them one by
one makes intervals too narrow (an independent check measured 85-87% coverage
of iid intervals on clustered data, 94.5-95% with clusters). Both the per-cell
intervals (:mod:`xcal.analyze.cell`) and the pooled findings
(:mod:`xcal.analyze.findings`) resample the units defined here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def unit_of(task: str, example_id: str) -> str:
    """The resampling unit of an example: its XNLI premise group, else the example itself.

    XNLI's dev and test files list the three hypotheses of a premise on
    consecutive lines, so ``xnli-dev-000123`` belongs to premise ``123 // 3``.
    The same example id in several languages is the same source item, so the
    unit is shared across languages either way. Question answering records
    its paragraphs in the store instead (``unit`` column, see
    :func:`cluster_codes`); a QA run written before they were recorded
    resamples its questions one by one.

    Examples
    --------
    >>> unit_of("xnli", "xnli-dev-000124"), unit_of("pawsx", "pawsx-dev-000124")
    ('xnli-dev-premise-41', 'pawsx-dev-000124')
    """
    if task == "xnli":
        head, _, index = example_id.rpartition("-")
        if index.isdigit():
            return f"{head}-premise-{int(index) // 3}"
    return example_id


def unit_labels(
    task: str, example_ids: Sequence[str] | np.ndarray, recorded: np.ndarray | None = None
) -> np.ndarray:
    """Each example's unit label: the ``recorded`` units (QA paragraphs) if any, else :func:`unit_of`.

    Examples
    --------
    >>> unit_labels("xquad", ["q2", "q1"], np.array(["q1", "q1"], dtype=object)).tolist()
    ['q1', 'q1']
    >>> unit_labels("xquad", ["q2", "q1"]).tolist()
    ['q2', 'q1']
    """
    if recorded is not None:
        return np.asarray(recorded, dtype=object)
    return np.array([unit_of(task, str(i)) for i in example_ids], dtype=object)


def cluster_codes(
    task: str, example_ids: Sequence[str] | np.ndarray, recorded: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Integer unit code of each example (units numbered in sorted order of their labels).

    The codes depend only on the set of ids, not on their order or on where
    they are computed, so a cell's resamples are the same in this process and
    in a Dask worker.

    Examples
    --------
    >>> codes, n = cluster_codes("xnli", ["xnli-dev-000004", "xnli-dev-000000", "xnli-dev-000002"])
    >>> codes.tolist(), n
    ([1, 0, 0], 2)
    """
    from xcal.stats.resample import group_codes

    labels = unit_labels(task, example_ids, recorded)
    return group_codes(labels, len(labels), name="units")
