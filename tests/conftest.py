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
