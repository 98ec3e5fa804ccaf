"""Fixtures shared by the data tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real corpora: $PIPELINE_DATA_DIR, else <repo>/../shared/data.

    Fails (never skips) when absent: a silently skipped data suite would hide
    a broken setup.
    """
    env = os.environ.get("PIPELINE_DATA_DIR")
    path = Path(env) if env else Path(__file__).parents[3] / ".." / "shared" / "data"
    path = path.resolve()
    if not path.is_dir():
        pytest.fail(
            f"data folder {path} not found: set PIPELINE_DATA_DIR to the folder "
            "holding tatoeba/, multi30k/ and tinyshakespeare/"
        )
    return path
