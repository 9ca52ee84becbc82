"""Do encoder-only and decoder-only models transfer differently across languages?

The *transfer gap* of a model on a task and language is its English score
minus its score in that language (Hu et al. 2020, XTREME): how much is lost by
zero-shot transfer. :func:`transfer_gap` computes it from a results table,
:func:`gap_by_architecture` summarises it per architecture family with
bootstrap intervals, and :func:`gap_distance_interaction` fits
``gap ~ distance * C(architecture)`` by OLS (:func:`xcal.stats.fit_ols`): the
interaction term says whether the gap grows faster with language distance for
one family than for the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from xcal.transfer._frames import require_columns, with_group_keys

frame_COLUMNS: tuple[str, ...] = ("model", "architecture", "task", "language", "metric", "value")


def transfer_gap(
    results: pd.DataFrame,
    *,
    source_language: str = "en",
    group_cols: Sequence[str] = ("model", "architecture", "task", "metric"),
) -> pd.DataFrame:
    """English-minus-language gap for every non-English row.

    Parameters
    ----------
    results
        Columns ``model, architecture, task, language, metric, value`` (the
        architecture family, e.g. ``encoder-only`` / ``decoder-only``).
    source_language
        The language the models were fine-tuned in.
    group_cols
        Columns that identify one model's scores on one task in one metric.

    Returns
    -------
    pandas.DataFrame
        ``*group_cols, language, source_value, value, gap`` with
        ``gap = source_value - value`` (positive = worse than English, for a
        higher-is-better metric; for ECE or NLL a negative gap is the loss).

    Examples
    --------
    >>> r = pd.DataFrame({"model": "m", "architecture": "encoder-only", "task": "xnli",
    ...                   "language": ["en", "de", "sw"], "metric": "accuracy",
    ...                   "value": [85.0, 79.0, 66.5]})
    >>> transfer_gap(r)[["language", "gap"]].values.tolist()
    [['de', 6.0], ['sw', 18.5]]
    """
    require_columns(results, (*group_cols, "language", "value"), "results table")
    keys = list(group_cols)
    if results.duplicated([*keys, "language"]).any():
        first = results[results.duplicated([*keys, "language"])].iloc[0][[*keys, "language"]]
        raise ValueError(f"duplicate result rows, first: {first.to_dict()}")
    source = results[results["language"] == source_language]
    if source.empty:
        raise ValueError(f"no {source_language!r} rows to compute the transfer gap from")
    target = results[results["language"] != source_language]
    merged = target.merge(
        source[[*keys, "value"]].rename(columns={"value": "source_value"}), on=keys, how="left"
    )
    lacking = merged["source_value"].isna()
    if lacking.any():
        example = merged.loc[lacking, keys].iloc[0].to_dict()
        raise ValueError(
            f"{int(lacking.sum())} row(s) have no {source_language!r} score, e.g. {example}"
        )
    merged["gap"] = merged["source_value"] - merged["value"].astype(float)
    return merged[[*keys, "language", "source_value", "value", "gap"]].reset_index(drop=True)


def gap_by_architecture(
    gaps: pd.DataFrame,
    *,
    by: Sequence[str] = ("architecture", "metric"),
    B: int = 10_000,
    level: float = 0.95,
    rng: np.random.Generator | int | None = None,
    cluster: str | None = "language",
) -> pd.DataFrame:
    """Mean transfer gap per architecture family, with a bootstrap interval.

    Parameters
    ----------
    gaps
        From :func:`transfer_gap`.
    by
        Grouping columns (gaps in different metrics are never averaged together).
    cluster
        Resample whole clusters of rows (default: languages, since the models of a
        family share each language's test set); ``None`` resamples rows.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, then :func:`xcal.stats.bootstrap_ci`'s columns
        (estimate = mean gap, ci_low, ci_high, method, B, seed, n, n_groups).

    Examples
    --------
    >>> g = pd.DataFrame({"architecture": ["enc"] * 4, "metric": "accuracy",
    ...                   "language": ["de", "sw", "de", "sw"], "gap": [2.0, 10.0, 4.0, 12.0]})
    >>> float(gap_by_architecture(g, B=200, rng=0)["estimate"].iloc[0])
    7.0
    """
    from xcal.stats import bootstrap_ci, mean_statistic
    from xcal.stats.resample import as_generator

    require_columns(gaps, (*by, "gap", *([] if cluster is None else [cluster])), "gaps table")
    gen, _ = as_generator(rng)
    frames = []
    for key, group in gaps.groupby(list(by), sort=True):
        stat = mean_statistic(group["gap"].to_numpy(dtype=np.float64), name="transfer_gap")
        frame = bootstrap_ci(
            stat,
            B=B,
            level=level,
            rng=gen,
            groups=None if cluster is None else group[cluster].to_numpy(),
        )
        frames.append(with_group_keys(frame, by, key))
    return pd.concat(frames, ignore_index=True)


def gap_distance_interaction(
    gaps: pd.DataFrame,
    distances: pd.DataFrame | None = None,
    *,
    view: str = "syntax_knn",
    formula: str = "gap ~ distance * C(architecture)",
    cov_type: str = "nonrobust",
    level: float = 0.95,
) -> pd.DataFrame:
    """OLS of the gap on language distance, architecture and their interaction.

    Parameters
    ----------
    gaps
        From :func:`transfer_gap` (one metric at a time).
    distances
        ``language, distance`` (distance of each language from English). Default:
        URIEL distance in ``view`` from :func:`xcal.transfer.language.language_distances`.
    formula
        Any patsy formula over the joined columns (``gap``, ``distance``,
        ``architecture``, ``task``, ``model``...), e.g. add ``+ C(task)``.
    cov_type
        ``"HC3"`` for heteroscedasticity-robust standard errors.

    Returns
    -------
    pandas.DataFrame
        :func:`xcal.stats.fit_ols`'s table: term, estimate, std_error, statistic,
        p_value, ci_low, ci_high, n_obs, r_squared, model. The term
        ``distance:C(architecture)[T.x]`` is the difference in slope.
    """
    from xcal.stats import fit_ols

    if "metric" in gaps.columns and gaps["metric"].nunique() > 1:
        raise ValueError(
            f"the gaps mix metrics {sorted(gaps['metric'].unique())}; fit one metric at a time"
        )
    if distances is None:
        from xcal.transfer.language import language_distances

        languages = sorted(gaps["language"].unique())
        distances = language_distances(languages, views=[view])[["language", "distance"]]
    if not {"language", "distance"} <= set(distances.columns):
        raise KeyError(f"distances need columns language, distance; got {list(distances.columns)}")
    if distances["language"].duplicated().any():
        raise ValueError("distances have several rows for one language")
    data = gaps.drop(columns=[c for c in ("distance",) if c in gaps.columns]).merge(
        distances[["language", "distance"]], on="language", how="left"
    )
    lacking = sorted(data.loc[data["distance"].isna(), "language"].unique())
    if lacking:
        raise ValueError(f"no (defined) distance for language(s) {lacking}")
    return fit_ols(formula, data, level=level, cov_type=cov_type)
