"""Multiple-comparison corrections over a grid of tests (languages x tasks x perturbations).

A thin, checked wrapper of ``statsmodels.stats.multitest.multipletests`` that
fills the ``p_adjusted`` column of the tidy result tables, optionally within
families (``by=``), and leaves missing p-values missing instead of failing.

References
----------
S. Holm. A simple sequentially rejective multiple test procedure.
Scandinavian Journal of Statistics 6(2), 1979.
Y. Benjamini, Y. Hochberg. Controlling the false discovery rate. JRSS B 57(1), 1995.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["METHOD_ALIASES", "adjust_pvalues"]

METHOD_ALIASES = {
    "holm": "holm",
    "bonferroni": "bonferroni",
    "bh": "fdr_bh",
    "fdr_bh": "fdr_bh",
    "benjamini-hochberg": "fdr_bh",
    "by": "fdr_by",
    "fdr_by": "fdr_by",
    "benjamini-yekutieli": "fdr_by",
    "hochberg": "simes-hochberg",
    "simes-hochberg": "simes-hochberg",
    "sidak": "sidak",
    "holm-sidak": "holm-sidak",
    "hommel": "hommel",
    "fdr_tsbh": "fdr_tsbh",
    "fdr_tsbky": "fdr_tsbky",
}


def _method(method: str) -> str:
    try:
        return METHOD_ALIASES[method.lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"Unknown correction {method!r}; known: {', '.join(sorted(METHOD_ALIASES))}"
        ) from None


def _adjust(p: np.ndarray, method: str, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    from statsmodels.stats.multitest import multipletests

    adjusted = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    ok = ~np.isnan(p)
    if ok.any():
        rej, padj, _, _ = multipletests(p[ok], alpha=alpha, method=method)
        adjusted[ok] = padj
        reject[ok] = rej
    return adjusted, reject


def _check_p(p: np.ndarray, where: str) -> None:
    bad = ~np.isnan(p) & ((p < 0) | (p > 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"p-values must lie in [0, 1]; {where} {i} holds {p[i].item()!r}")


def adjust_pvalues(
    pvalues: Any,
    method: str = "holm",
    *,
    alpha: float = 0.05,
    by: str | Sequence[str] | None = None,
    column: str = "p_value",
) -> Any:
    """Adjust p-values for multiple comparisons (Holm, Benjamini-Hochberg, Bonferroni...).

    Parameters
    ----------
    pvalues : array-like of float or pandas.DataFrame
        The p-values, or a result table with a ``column`` of them. NaN p-values
        stay NaN and do not count toward the number of tests.
    method : str, default="holm"
        One of the ``multipletests`` methods ``"bonferroni"``, ``"sidak"``,
        ``"holm-sidak"``, ``"holm"``, ``"simes-hochberg"`` (alias ``"hochberg"``),
        ``"hommel"``, ``"fdr_bh"`` (aliases ``"bh"``, ``"benjamini-hochberg"``),
        ``"fdr_by"`` (``"by"``, ``"benjamini-yekutieli"``), ``"fdr_tsbh"`` or
        ``"fdr_tsbky"``; any other name is an error that lists these. The
        two-stage methods (``fdr_ts*``) estimate the number of true nulls at
        ``alpha``, so their adjusted p-values depend on ``alpha``.
    alpha : float, default=0.05
        Family-wise error rate or false discovery rate for the ``reject`` column.
    by : str or list of str, optional
        Table columns defining families corrected separately (e.g. ``"task"``).
    column : str, default="p_value"

    Returns
    -------
    numpy.ndarray or pandas.DataFrame
        For an array, the adjusted p-values (equal to
        ``multipletests(p, method=...)[1]``). For a table, a copy with
        ``p_adjusted``, ``reject`` and ``correction`` columns.

    Examples
    --------
    Holm multiplies the k-th smallest of m p-values by m - k + 1 and keeps the
    sequence monotone: 0.01 * 3, 0.02 * 2, max(0.04 * 1, 0.04):

    >>> adjust_pvalues([0.01, 0.04, 0.02], "holm")
    array([0.03, 0.04, 0.04])
    >>> adjust_pvalues([0.01, 0.04, 0.02], "bh")  # 0.01 * 3/1, 0.04 * 3/3, 0.02 * 3/2
    array([0.03, 0.04, 0.03])
    """
    name = _method(method)
    if not (0 < alpha < 1):
        raise ValueError(f"Expected `alpha` in (0, 1), got {alpha!r}")
    import pandas as pd

    if isinstance(pvalues, pd.DataFrame):
        if column not in pvalues.columns:
            raise ValueError(
                f"The table has no {column!r} column; columns: {list(pvalues.columns)}"
            )
        frame = pvalues.copy()
        p = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        _check_p(p, "row")
        adjusted = np.full(p.shape, np.nan)
        reject = np.zeros(p.shape, dtype=bool)
        if by is None:
            adjusted, reject = _adjust(p, name, alpha)
        else:
            keys = [by] if isinstance(by, str) else list(by)
            missing = [k for k in keys if k not in frame.columns]
            if missing:
                raise ValueError(
                    f"`by` names missing columns {missing}; columns: {list(frame.columns)}"
                )
            positions = np.arange(len(frame))
            for _, idx in frame.groupby(keys, sort=False, dropna=False).indices.items():
                rows = positions[idx]
                adjusted[rows], reject[rows] = _adjust(p[rows], name, alpha)
        frame["p_adjusted"] = adjusted
        frame["reject"] = reject
        frame["correction"] = name
        return frame
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"Expected a 1-d array of p-values, got shape {p.shape}")
    _check_p(p, "index")
    return _adjust(p, name, alpha)[0]


def _reject(pvalues: npt.ArrayLike, method: str, alpha: float) -> np.ndarray:
    """Which hypotheses are rejected at ``alpha`` (used by the tests)."""
    return _adjust(np.asarray(pvalues, dtype=np.float64), _method(method), alpha)[1]
