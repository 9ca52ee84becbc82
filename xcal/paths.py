"""Where xcal finds data and keeps its caches.

The XTREME data directory comes from, in order: an explicit argument (the
``--data-dir`` option), the ``XCAL_DATA_DIR`` environment variable, then
``../shared/data/xtreme`` relative to the working directory. The cache (the
materialised bundled model, task-distance embeddings) lives in
``XCAL_CACHE_DIR`` or ``~/.cache/xcal``.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATA_DIR = Path("..") / "shared" / "data" / "xtreme"

XTREME_LAYOUT_HELP = """\
Expected the XTREME download layout, for example:
  xnli/dev-{lang}.tsv
  pawsx/dev-{lang}.tsv
  xquad/xquad.{lang}.json
  mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json
  tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json
  xcopa/test-{lang}.jsonl
  tatoeba/v1/tatoeba.{xxx}-eng.{xxx,eng}
Download it with the XTREME benchmark's scripts/download_data.sh
(https://github.com/google-research/xtreme) and pass its download/ folder with
--data-dir or the XCAL_DATA_DIR environment variable."""


class DataDirError(FileNotFoundError):
    """The XTREME data directory (or a file in it) is missing."""


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the XTREME data directory and check that it exists."""
    if explicit is not None:
        path, source = Path(explicit), "--data-dir"
    elif os.environ.get("XCAL_DATA_DIR"):
        path, source = Path(os.environ["XCAL_DATA_DIR"]), "XCAL_DATA_DIR"
    else:
        path, source = DEFAULT_DATA_DIR, "the default"
    if str(path).startswith("hf:"):
        return path  # a Hugging Face data set (xcal.tasks.hf_datasets), checked when read
    if not path.is_dir():
        raise DataDirError(
            f"XTREME data directory {str(path)!r} (from {source}) does not exist.\n"
            + XTREME_LAYOUT_HELP
        )
    return path


def cache_dir() -> Path:
    """The user cache directory for xcal (created on demand)."""
    root = os.environ.get("XCAL_CACHE_DIR")
    path = Path(root) if root else Path.home() / ".cache" / "xcal"
    path.mkdir(parents=True, exist_ok=True)
    return path
