"""Local paths and s3:// URIs as one (pyarrow filesystem, path) pair."""

from __future__ import annotations

import os
from urllib.parse import urlparse


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def filesystem(uri: str):
    """(pyarrow.fs.FileSystem, path) for a local path, file:// or s3://bucket/prefix.

    S3 settings come from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION) plus AWS_ENDPOINT_URL for S3-compatible stores (MinIO, Ceph, moto).
    """
    from pyarrow import fs

    uri = str(uri)
    if uri.startswith("s3://"):
        parsed = urlparse(uri)
        options = {"region": os.environ.get("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            options.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        return fs.S3FileSystem(**options), f"{parsed.netloc}{parsed.path}".rstrip("/")
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        return fs.FileSystem.from_uri(uri)
    return fs.LocalFileSystem(), os.path.abspath(uri)


def join(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *parts])


def fsync_path(path: str) -> None:
    """fsync(2) a local file or folder by path (a folder: so that renames into it survive a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
