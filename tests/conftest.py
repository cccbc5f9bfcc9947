"""Shared fixtures: one Ray session and the tiny VLM per test session (helpers live in helper modules: paths, glb,
s3_server, train_runs, ...)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paths import ASSETS

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    if not ASSETS.is_dir():
        pytest.fail(f"shared assets not found at {ASSETS}; set DYMESH_SHARED to the shared/ folder")
    return ASSETS


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> str:
    """Folder of the tiny random test VLM (stages.caption.tiny_vlm), built once per test session."""
    from stages.caption.tiny_vlm import save_tiny_vlm

    return save_tiny_vlm(tmp_path_factory.mktemp("tiny-random-llava"))


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray shared by every test that asks for it (2 CPUs, 512 MiB object store); shut down at the end."""
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
