"""Task distance, language distance and transfer gains.

Research questions this package serves: does the semantic distance between an
English intermediate task and a target task predict the transfer gain, and do
model families (encoder-only, decoder-only) transfer differently across
languages. Submodules:

* :mod:`xcal.transfer.task_distance`: TextEmb, Fréchet, MMD and vocabulary distances;
* :mod:`xcal.transfer.language`: URIEL typological distances, script, family, resource class;
* :mod:`xcal.transfer.gains`: gains over a baseline (tables, or predictions with bootstrap CIs);
* :mod:`xcal.transfer.correlate`: gain vs task distance (correlations, mixed model);
* :mod:`xcal.transfer.selection`: NDCG@k and Regret@k of intermediate-task rankings;
* :mod:`xcal.transfer.architecture`: the transfer gap by architecture family.

The single-pair function ``task_distance`` stays in its module
(``xcal.transfer.task_distance.task_distance``) so that the package attribute
``task_distance`` is the module, not a function of the same name.
"""

from xcal.transfer.architecture import (
    gap_by_architecture,
    gap_distance_interaction,
    transfer_gap,
)
from xcal.transfer.correlate import (
    gain_distance_correlation,
    gain_distance_mixedlm,
    gain_distance_table,
)
from xcal.transfer.gains import (
    gains_from_table,
    paired_gains,
    read_results_table,
    statistics_from_store,
)
from xcal.transfer.language import (
    dominant_script,
    family,
    language_distance,
    language_distances,
    language_metadata,
    resource_class,
    resource_classes,
    script,
    to_iso639_3,
    uriel_features,
)
from xcal.transfer.selection import ndcg_at_k_score, regret_at_k_loss, selection_quality
from xcal.transfer.task_distance import (
    embed_task_texts,
    frechet_distance,
    mmd_squared,
    task_distances,
    textemb_distance,
    vocabulary_distance,
    weighted_jaccard_similarity,
)

__all__ = [
    "dominant_script",
    "embed_task_texts",
    "family",
    "frechet_distance",
    "gain_distance_correlation",
    "gain_distance_mixedlm",
    "gain_distance_table",
    "gains_from_table",
    "gap_by_architecture",
    "gap_distance_interaction",
    "language_distance",
    "language_distances",
    "language_metadata",
    "mmd_squared",
    "ndcg_at_k_score",
    "paired_gains",
    "read_results_table",
    "regret_at_k_loss",
    "resource_class",
    "resource_classes",
    "script",
    "selection_quality",
    "statistics_from_store",
    "task_distances",
    "textemb_distance",
    "to_iso639_3",
    "transfer_gap",
    "uriel_features",
    "vocabulary_distance",
    "weighted_jaccard_similarity",
]
