"""The inference runner: models x tasks x languages x perturbations into a prediction store.

Everything ``xcal infer`` does is callable from Python::

    from xcal.infer import Grid, ModelSpec, TaskSpec, PerturbationSpec, RunOptions, run_grid
    grid = Grid(
        models=(ModelSpec("bundled:multilingual-e5-small"),),
        tasks=(TaskSpec("tatoeba", languages=("deu", "fra")),),
        perturbations=(PerturbationSpec(), PerturbationSpec("word_shuffle", 0.25)),
    )
    results = run_grid(grid, "preds", options=RunOptions(limit=300))

torch and transformers are imported only when a model runs.
"""

from __future__ import annotations

from xcal.infer.batching import pad_sequences, token_budget_batches
from xcal.infer.grid import (
    Cell,
    Grid,
    GridConfig,
    GridError,
    PerturbationSpec,
    TaskSpec,
    grid_from_dict,
    parse_shard,
    read_config,
    resolve_shard,
    shard_cells,
)
from xcal.infer.modeling import LM_SCORING_SUFFIX, ModelSpec, ModelSpecError
from xcal.infer.qa import QASettings
from xcal.infer.runner import (
    CellResult,
    InferInputError,
    NullReporter,
    Reporter,
    RunOptions,
    run_grid,
    summarize,
)

__all__ = [
    "LM_SCORING_SUFFIX",
    "Cell",
    "CellResult",
    "Grid",
    "GridConfig",
    "GridError",
    "InferInputError",
    "ModelSpec",
    "ModelSpecError",
    "NullReporter",
    "PerturbationSpec",
    "QASettings",
    "Reporter",
    "RunOptions",
    "TaskSpec",
    "grid_from_dict",
    "pad_sequences",
    "parse_shard",
    "read_config",
    "resolve_shard",
    "run_grid",
    "shard_cells",
    "summarize",
    "token_budget_batches",
]
