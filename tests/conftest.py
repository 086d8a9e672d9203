"""Shared fixtures: where the real datasets are, and a seeded random generator."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
pytest_plugins = ["tests.server.postgres"]  # the db_url fixtures: SQLite and PostgreSQL

# Tests assert no timings (benchmarks do): a loaded, shared machine once took over
# Hypothesis's 200 ms deadline for one example of a pure array round trip.
settings.register_profile("fewclick", deadline=None)
settings.load_profile("fewclick")


def shared_data_root() -> Path:
    """``$FEWCLICK_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("FEWCLICK_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"real datasets not found at {root} (set FEWCLICK_SHARED_DATA to run these tests)")
    return root


def shared_dataset(name: str) -> Path:
    """Path of one shared dataset, or skip the calling test saying which is missing."""
    path = shared_data_root() / name
    if not path.is_dir():
        pytest.skip(f"shared dataset {name!r} not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _fewclick_logger_restored():
    """The ``fewclick`` logger as it was, after every test: a command run in process
    (``cli.main``) adds a stderr handler once per process, and one added under a test's
    captured stderr would write to that closed capture in the tests after it."""
    logger = logging.getLogger("fewclick")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:], logger.level = handlers, level


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def sam_files() -> tuple[Path, Path]:
    """The checked pretrained SAM pair, or skip saying how to fetch it (`make test` does)."""
    from fewclick.predict.pretrained import PretrainedModelError, default_model_files

    try:
        return default_model_files()
    except PretrainedModelError as exc:
        pytest.skip(f"pretrained SAM files not set up ({exc})")
