"""A local S3 server (moto) on 127.0.0.1 for the object-store tests."""

from __future__ import annotations

import contextlib
import urllib.request

import pytest


@contextlib.contextmanager
def local_s3(*buckets: str, **extra_env: str):
    """A moto S3 server on 127.0.0.1 (a free port), empty, with dummy credentials in the environment and `buckets`
    created; yields its endpoint URL and stops the server afterwards."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its buckets in process-wide state that outlives a stopped server: start from an empty store, or a
    # test sees what an earlier one wrote (test_report's s3://dymesh/job/job.json made test_shard_s3 read 6 of 12)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
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
