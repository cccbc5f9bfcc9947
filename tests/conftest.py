"""Shared fixtures: paths to ../shared (never copied into the project) and one Ray session per module."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def local_s3(*buckets: str, **extra_env: str):
    """A moto S3 server on 127.0.0.1 (a free port) with dummy credentials in the environment and `buckets`
    created; yields its endpoint URL and stops the server afterwards."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    patch = pytest.MonkeyPatch()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", **extra_env}
    for name, value in env.items():
        patch.setenv(name, value.format(endpoint=endpoint))
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        patch.undo()
        server.stop()


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> str:
    """Folder of the tiny random test VLM (stages.caption.tiny_vlm), built once per test session."""
    from stages.caption.tiny_vlm import save_tiny_vlm

    return save_tiny_vlm(tmp_path_factory.mktemp("tiny-random-llava"))


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
