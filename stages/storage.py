"""The one storage layer: local paths and object-store URIs as (pyarrow filesystem, path), joins, fsync, atomic writes.

Object-store settings come from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION) plus AWS_ENDPOINT_URL(_S3) for S3-compatible stores (MinIO, Ceph, moto); a source may name its
own endpoint, region and anonymous access. Atomic writes go to a temp name beside the target (prefix TEMP_PREFIX,
so a resumed run can remove a killed run's leftovers) and are renamed over it; on an object store one PUT is atomic.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

TEMP_PREFIX = ".tmp-"


def is_remote(uri: str | Path) -> bool:
    """True for object-store URIs (s3://, gs://, ...), False for local paths and file://."""
    return "://" in str(uri) and not str(uri).startswith("file://")


def filesystem(uri: str | Path, *, endpoint: str | None = None, region: str | None = None,
               anonymous: bool = False):
    """(pyarrow.fs.FileSystem, path inside it) for a local path, file://, s3://bucket/prefix or another pyarrow URI."""
    from pyarrow import fs

    uri = str(uri)
    if uri.startswith("s3://"):
        parsed = urlparse(uri)
        region = region or os.environ.get("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
        options = {"region": region, "anonymous": anonymous}
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            options.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        return fs.S3FileSystem(**options), f"{parsed.netloc}{parsed.path}".rstrip("/")
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        filesystem_, path = fs.FileSystem.from_uri(uri)
        return filesystem_, path.rstrip("/")
    return fs.LocalFileSystem(), os.path.abspath(uri)


def join(base: str | Path, *parts: str) -> str:
    """`base/part/...` with one slash between parts (URIs and local paths alike)."""
    return "/".join([str(base).rstrip("/"), *parts])


def fsync_path(path: str | Path) -> None:
    """fsync(2) a local file or folder by path (a folder: so that renames into it survive a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path: Path) -> Path:
    """A temp name beside `path`, unique per process and thread (concurrent writers never share one)."""
    return path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}.{threading.get_ident()}")


def write_atomically(uri: str | Path, write: Callable, *, durable: bool) -> None:
    """Call `write(stream)` into a temp file beside `uri`, then rename it over `uri` (a reader never sees half a
    file); `durable` fsyncs before the rename. On an object store, `write` streams into one atomic PUT."""
    if is_remote(uri):
        fs, path = filesystem(uri)
        with fs.open_output_stream(path) as stream:
            write(stream)
        return
    path = Path(str(uri)[len("file://") :] if str(uri).startswith("file://") else uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the error to report is the one being raised
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write(2) names no file: say which one (a full disk, say)
        raise


def write_bytes_atomically(uri: str | Path, data: bytes, *, durable: bool) -> None:
    """`data` into `uri` atomically (see write_atomically)."""
    write_atomically(uri, lambda stream: stream.write(data), durable=durable)


def write_table_atomically(uri: str | Path, table, *, durable: bool) -> None:
    """A pyarrow Table as one zstd Parquet file, atomically (the same table gives the same bytes)."""
    import pyarrow.parquet as pq

    write_atomically(uri, lambda stream: pq.write_table(table, stream, compression="zstd", write_statistics=True),
                     durable=durable)
