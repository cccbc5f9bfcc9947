"""Shared fixtures: paths to ../shared (never copied into the project) and one Ray session per module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DYMESH_SHARED", REPO.parent / "shared")).resolve()
ASSETS = SHARED / "assets"
REFERENCE = SHARED / "reference"
BROKEN = ASSETS / "broken"

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    if not ASSETS.is_dir():
        pytest.fail(f"shared assets not found at {ASSETS}; set DYMESH_SHARED to the shared/ folder")
    return ASSETS


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray for one test module (2 CPUs, 512 MiB object store); always shut down."""
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=512 * 1024 * 1024,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
