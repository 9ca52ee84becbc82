"""What an analysis is asked to compute: its options and the constants that shape a cell.

Shared by every stage of :func:`xcal.analyze.analyze_store` (planning,
executing, aggregating); nothing here reads data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from xcal.analyze.results import METRICS

#: Bump when what the pipeline computes changes: invalidates every cache entry.
ANALYSIS_VERSION = 5  # 2: sorted-id resampling; 3: temperature fit changes; 4: clusters;
# 5: debiased ECE replicates with errors on the squared scale

#: Run fields that make a cell: runs that share them hold the same examples.
CELL_FIELDS: tuple[str, ...] = (
    "task",
    "split",
    "language",
    "perturbation",
    "severity",
    "perturbation_seed",
    "perturbation_params",
)
#: Run fields that pick the English run whose temperature a run borrows. The
#: perturbation's parameters are compared separately: they may name
#: language-specific tools (a word segmenter for Chinese, a stopword list).
FIT_FIELDS: tuple[str, ...] = (
    "model",
    "task",
    "split",
    "perturbation",
    "severity",
    "perturbation_seed",
)
# A run as a record of the store's runs table (manifest fields, run_id, path).
Run = Mapping[Any, Any]

#: Fewest fitting examples for which a temperature is fitted.
MIN_FIT_EXAMPLES = 20

RELIABILITY_COLUMNS: tuple[str, ...] = (
    "system",
    "task",
    "split",
    "language",
    "perturbation",
    "severity",
    "variant",
    "bin",
    "bin_lower",
    "bin_upper",
    "count",
    "mean_confidence",
    "accuracy",
)


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything that decides the numbers (and so the cache key)."""

    baseline: str
    metrics: tuple[str, ...] = tuple(METRICS)
    n_boot: int = 10_000
    seed: int = 0
    correction: str = "holm"
    n_bins: int = 15
    level: float = 0.95
    fit_fraction: float = 0.5
    recalibrate: bool = True
    english: tuple[str, ...] = ("en", "eng")
    retrieval_temperature: float = 1.0
    qa_criterion: str = "em"
    language_view: str = "syntax_knn"
    task_distance_measure: str = "textemb"
    shared_examples: bool = False  # compare runs holding other examples on the ids they share
    clusters: bool = True  # resample a task's natural clusters (xcal.analyze.clusters)

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
        if not isinstance(self.n_boot, int) or self.n_boot < 0:
            raise ValueError(f"Expected `n_boot` to be a non-negative int, got {self.n_boot!r}")
        if self.correction not in ("holm", "bh", "bonferroni"):
            raise ValueError(
                f"Expected `correction` in ('holm', 'bh', 'bonferroni'), got {self.correction!r}"
            )
        if not 0.0 < self.fit_fraction < 1.0:
            raise ValueError(f"Expected `fit_fraction` in (0, 1), got {self.fit_fraction!r}")
        if not isinstance(self.n_bins, int) or self.n_bins < 1:
            raise ValueError(f"Expected `n_bins` to be a positive int, got {self.n_bins!r}")
        if self.qa_criterion not in ("em", "f1"):
            raise ValueError(
                f"Expected `qa_criterion` to be 'em' or 'f1', got {self.qa_criterion!r}"
            )

    def cell_key(self) -> dict[str, Any]:
        """The options a cell's numbers depend on (correction is applied later)."""
        data = asdict(self)
        for name in ("correction", "language_view", "task_distance_measure"):
            data.pop(name)
        return data
