"""The prediction store: where ``xcal infer`` writes model outputs and ``xcal analyze`` reads them.

A directory of Parquet files, one per run, under Hive-style partition
directories (``task=xnli/split=dev/model=.../language=de/...``), readable by
pandas, pyarrow, DuckDB or Spark without xcal. See the README section
"The prediction store" for the layout, the schema and the guarantees.

Examples
--------
>>> import tempfile, numpy as np
>>> from xcal.store import RunManifest, open_store
>>> store = open_store(tempfile.mkdtemp())
>>> m = RunManifest(model="xlm-roberta-base", task="xnli", split="dev", language="de",
...                 record_kind="classification", input_fingerprint="abc", n_examples=1)
>>> run_id = store.write_run(m, {"example_id": ["xnli-dev-000000"],
...                              "logits": np.array([[2.0, 0.5, -1.0]]), "label": [0]})
>>> store.load_classification(run_id).labels
array([0])
"""

from xcal.store.errors import (
    Problem,
    RunNotFoundError,
    SchemaVersionError,
    StoreConflictError,
    StoreError,
    StoreValidationError,
)
from xcal.store.manifest import (
    KEY_FIELDS,
    RECORD_KINDS,
    SCHEMA_VERSION,
    RunManifest,
    fingerprint,
)
from xcal.store.schema import ARROW_SCHEMA, KIND_COLUMNS
from xcal.store.store import (
    ClassificationArrays,
    PredictionStore,
    RunInfo,
    StoreScan,
    open_store,
)

__all__ = [
    "ARROW_SCHEMA",
    "KEY_FIELDS",
    "KIND_COLUMNS",
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "ClassificationArrays",
    "PredictionStore",
    "Problem",
    "RunInfo",
    "RunManifest",
    "RunNotFoundError",
    "SchemaVersionError",
    "StoreConflictError",
    "StoreError",
    "StoreScan",
    "StoreValidationError",
    "fingerprint",
    "import_lm_eval",
    "open_store",
]


def __getattr__(name: str) -> object:
    # Importers write into the store and import it, so they are loaded on first use.
    if name == "import_lm_eval":
        from xcal.interop.lm_eval import import_lm_eval

        return import_lm_eval
    raise AttributeError(f"module 'xcal.store' has no attribute {name!r}")
