"""Which examples several runs are compared on, in which order.

Paired statistics compare systems example by example, so the runs of a cell
must hold the same examples. :func:`align_examples` decides:

- runs with the same example ids are compared on all of them;
- runs with different ids (a truncated run, renamed ids) are refused, unless
  the caller asks to compare on the ids they share (and says so to the user:
  the other systems' numbers then change too);
- the order is canonical, the sorted ids, so that a bootstrap resample (which
  draws positions) picks the same examples whatever order a run was stored in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


class ExampleMismatchError(ValueError):
    """Runs compared example by example do not hold the same examples."""


@dataclass(frozen=True)
class Alignment:
    """The example ids runs are compared on, sorted, and what each run lost."""

    ids: np.ndarray
    extra: dict[str, int] = field(default_factory=dict)  # run -> its ids left out

    @property
    def complete(self) -> bool:
        """True when every run holds exactly the compared ids."""
        return not any(self.extra.values())


def _preview(values: np.ndarray | list[str], k: int = 3) -> str:
    shown = ", ".join(repr(str(v)) for v in list(values)[:k])
    return shown + (", ..." if len(values) > k else "")


def align_examples(
    example_ids: Mapping[str, np.ndarray],
    *,
    shared: bool = False,
    where: str = "",
) -> Alignment:
    """The example ids to compare runs on, in sorted order.

    Parameters
    ----------
    example_ids : mapping of run name to array of ids
        Each run's example ids (unique within a run).
    shared : bool, default False
        Compare on the ids every run holds when the runs differ; otherwise
        runs that differ are an error.
    where : str
        Names the comparison in messages (e.g. ``xnli/dev/de``).

    Returns
    -------
    Alignment
        ``ids``: the compared ids, sorted (a canonical order, independent of
        the order rows were stored in); ``extra[name]``: how many of the run's
        ids were left out.

    Raises
    ------
    ExampleMismatchError
        Runs hold different ids and ``shared`` is False (the message says which
        run lacks how many, with examples), or they share none at all.

    Examples
    --------
    >>> a = np.array(["x2", "x1", "x3"])
    >>> align_examples({"base": a, "sys": a[::-1]}).ids.tolist()
    ['x1', 'x2', 'x3']
    >>> al = align_examples({"base": a[:2], "sys": a}, shared=True)
    >>> al.ids.tolist(), al.extra
    (['x1', 'x2'], {'base': 0, 'sys': 1})
    """
    prefix = f"{where}: " if where else ""
    if not example_ids:
        raise ExampleMismatchError(f"{prefix}no runs to compare")
    arrays = {name: np.asarray(ids, dtype=object) for name, ids in example_ids.items()}
    sets = {name: set(ids.tolist()) for name, ids in arrays.items()}
    common = set.intersection(*sets.values())
    extra = {name: len(s) - len(common) for name, s in sets.items()}
    if any(extra.values()) and (not shared or not common):
        union = set.union(*sets.values())
        parts = []
        for name, s in sets.items():
            lacking = sorted(union - s)
            if lacking:
                parts.append(
                    f"{name!r} holds {len(s)} of the {len(union)} ids (lacks {len(lacking)}, "
                    f"e.g. {_preview(lacking)})"
                )
        advice = (
            "they share no example id: check that they ran on the same data"
            if not common
            else f"pass --on-shared-examples (shared_examples=True) to compare on the "
            f"{len(common)} ids they share, which changes every system's numbers in this cell"
        )
        raise ExampleMismatchError(
            f"{prefix}the runs hold different examples: {'; '.join(parts)}; {advice}"
        )
    ids = np.array(sorted(common), dtype=object)
    return Alignment(ids=ids, extra=extra)
