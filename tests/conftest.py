"""Shared fixtures: the real XTREME sample beside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from xcal.paths import data_dir

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def xtreme_dir() -> Path:
    """The real XTREME data (``../shared/data/xtreme`` or ``XCAL_DATA_DIR``).

    Missing data is an error, not a skip: CI always has it beside the clone.
    """
    import os

    if os.environ.get("XCAL_DATA_DIR"):
        return data_dir()
    return data_dir(PROJECT_ROOT.parent / "shared" / "data" / "xtreme")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` where CUDA is not available (torch is imported only then)."""
    gpu = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in gpu:
        item.add_marker(skip)
