"""Does task distance predict the transfer gain? Correlations and a mixed-effects model.

The gains come from :mod:`xcal.transfer.gains` (one row per system x target task x
language), the distances from :mod:`xcal.transfer.task_distance` (one row per
intermediate task x target task x measure). :func:`gain_distance_table` joins
them; :func:`gain_distance_correlation` gives Pearson, Spearman and Kendall
coefficients with bootstrap intervals and permutation p-values
(:func:`xcal.stats.correlation`); :func:`gain_distance_mixedlm` fits
``gain ~ distance + (1 | target task)`` (:func:`xcal.stats.fit_mixedlm`), which
lets each target task have its own baseline level of gain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xcal.transfer._frames import require_columns, with_group_keys


def gain_distance_table(
    gains: pd.DataFrame,
    distances: pd.DataFrame,
    *,
    intermediate_of: Mapping[str, str] | None = None,
    measures: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Join gains with the distance between their intermediate and target tasks.

    Parameters
    ----------
    gains
        From :func:`~xcal.transfer.gains.gains_from_table` or
        :func:`~xcal.transfer.gains.paired_gains`: ``system, task, language,
        gain, improvement``..., plus an ``intermediate_task`` column unless
        ``intermediate_of`` is given.
    distances
        From :func:`~xcal.transfer.task_distance.task_distances` with the
        intermediate tasks as ``task_a`` and the target tasks as ``task_b``.
    intermediate_of
        ``system -> intermediate task`` (e.g. ``{"xlmr+mnli": "mnli"}``).
    measures
        Keep only these distance measures.

    Returns
    -------
    pandas.DataFrame
        The gains rows, repeated per measure, with ``intermediate_task``,
        ``measure`` and ``distance``.

    Examples
    --------
    >>> g = pd.DataFrame({"system": ["s"], "task": ["xnli"], "language": ["de"],
    ...                   "improvement": [1.0]})
    >>> d = pd.DataFrame({"task_a": ["mnli"], "task_b": ["xnli"], "measure": ["textemb"],
    ...                   "distance": [0.2]})
    >>> gain_distance_table(g, d, intermediate_of={"s": "mnli"})[["intermediate_task", "distance"]].values.tolist()
    [['mnli', 0.2]]
    """
    gains = gains.copy()
    if intermediate_of is not None:
        missing = sorted(set(gains["system"]) - set(intermediate_of))
        if missing:
            raise KeyError(f"`intermediate_of` lacks system(s) {missing}")
        gains["intermediate_task"] = gains["system"].map(dict(intermediate_of))
    elif "intermediate_task" not in gains.columns:
        raise KeyError("gains need an `intermediate_task` column, or pass `intermediate_of`")
    need = {"task_a", "task_b", "measure", "distance"}
    if not need <= set(distances.columns):
        raise KeyError(f"distances need columns {sorted(need)}, got {list(distances.columns)}")
    dist = distances.rename(columns={"task_a": "intermediate_task", "task_b": "task"})
    if measures is not None:
        dist = dist[dist["measure"].isin(list(measures))]
    dist = dist[["intermediate_task", "task", "measure", "distance"]]
    if dist.duplicated(["intermediate_task", "task", "measure"]).any():
        raise ValueError("distances have duplicate (task_a, task_b, measure) rows")
    joined = gains.merge(dist, on=["intermediate_task", "task"], how="left")
    unmatched = joined["distance"].isna()
    if unmatched.any():
        pairs = sorted(
            set(map(tuple, joined.loc[unmatched, ["intermediate_task", "task"]].values.tolist()))
        )
        raise ValueError(f"no distance for (intermediate task, target task) pair(s) {pairs[:5]}")
    return joined.reset_index(drop=True)


def gain_distance_correlation(
    table: pd.DataFrame,
    *,
    x: str = "distance",
    y: str = "improvement",
    methods: Sequence[str] = ("pearson", "spearman", "kendall"),
    by: Sequence[str] = ("measure",),
    B: int = 10_000,
    n_permutations: int = 10_000,
    level: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> pd.DataFrame:
    """Correlation of ``y`` (the gain) with ``x`` (the distance), per group.

    A useful distance predicts *larger* gains for *closer* tasks: expect a
    negative coefficient of improvement on distance.

    Returns
    -------
    pandas.DataFrame
        One row per group and method: the ``by`` columns, then the columns of
        :func:`xcal.stats.correlation` (estimate = scipy's coefficient, bootstrap
        ci_low / ci_high, permutation p_value, p_value_asymptotic, n...).

    Examples
    --------
    >>> t = pd.DataFrame({"measure": "textemb", "distance": np.arange(10.0),
    ...                   "improvement": -np.arange(10.0) ** 2})
    >>> r = gain_distance_correlation(t, methods=["spearman"], B=200, n_permutations=200, rng=0)
    >>> round(float(r["estimate"].iloc[0]), 12)
    -1.0
    """
    from xcal.stats import correlation
    from xcal.stats.resample import as_generator

    require_columns(table, (x, y, *by))
    gen, _ = as_generator(rng)
    frames = []
    groups = table.groupby(list(by), sort=True) if by else [((), table)]
    for key, group in groups:
        result = correlation(
            group[x].to_numpy(dtype=np.float64),
            group[y].to_numpy(dtype=np.float64),
            list(methods),
            B=B,
            n_permutations=n_permutations,
            level=level,
            rng=gen,
            x_name=x,
            y_name=y,
        )
        frames.append(with_group_keys(result, by, key))
    return pd.concat(frames, ignore_index=True)


def gain_distance_mixedlm(
    table: pd.DataFrame,
    *,
    y: str = "improvement",
    x: str = "distance",
    group: str = "task",
    level: float = 0.95,
) -> pd.DataFrame:
    """Mixed-effects model ``y ~ x + (1 | group)``: a random intercept per target task.

    Fitted by :func:`xcal.stats.fit_mixedlm` (statsmodels ``MixedLM``, REML).
    Fit one distance measure at a time (filter the table first).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat(["xnli", "pawsx", "xquad", "mlqa", "tydiqa", "xcopa"], 12)
    >>> d = rng.random(task.size)
    >>> level = {"xnli": 1.0, "pawsx": 2.0, "xquad": 0.0, "mlqa": 0.5, "tydiqa": 3.0, "xcopa": 1.5}
    >>> gain = 4.0 - 6.0 * d + np.vectorize(level.get)(task) + 0.1 * rng.normal(size=d.size)
    >>> t = pd.DataFrame({"task": task, "distance": d, "improvement": gain})
    >>> fit = gain_distance_mixedlm(t).set_index("term")
    >>> round(float(fit.loc["distance", "estimate"]))
    -6
    """
    from xcal.stats import fit_mixedlm

    require_columns(table, (x, y, group))
    if "measure" in table.columns and table["measure"].nunique() > 1:
        raise ValueError(
            f"the table mixes distance measures {sorted(table['measure'].unique())}; "
            "fit one measure at a time"
        )
    data = table[[y, x, group]].rename(columns={y: "y", x: "x", group: "g"})
    fit = fit_mixedlm("y ~ x + (1 | g)", data, level=level)
    fit["term"] = fit["term"].replace({"x": x, "Var(1 | g)": f"Var(1 | {group})"})
    fit["model"] = f"MixedLM: {y} ~ {x} + (1 | {group})"
    return fit
