"""URL list files: one http(s)://, s3:// or gs:// URL per line. HTTP through urllib with timeouts, retries, caps.

Only the listed URLs are fetched: URIs inside an asset (.gltf buffers) are never followed, so a .gltf from a URL
is stored as it is and must be self-contained.
"""

from __future__ import annotations

import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import PurePosixPath
from urllib.parse import urlparse

from stages.harvest.item import FetchError, Item, TransientError, format_of, read_capped, with_retries

USER_AGENT = "dymesh-harvest/0.1"


def fetch_http(url: str, cap: int, timeout_s: float) -> bytes:
    """One GET; TransientError for timeouts, resets and HTTP 429/5xx, FetchError for the rest."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > cap:
                raise FetchError("limit", f"{url}: Content-Length {length} over the {cap} byte cap "
                                          "(harvest.max_asset_bytes)")
            return read_capped(response, cap, url)
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise TransientError("http", f"{url}: HTTP {exc.code} {exc.reason}") from None
        raise FetchError("http", f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError, ConnectionError, OSError)):
            raise TransientError("network", f"{url}: {reason}") from None
        raise FetchError("network", f"{url}: {reason}") from None
    except (socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise TransientError("network", f"{url}: {type(exc).__name__}: {exc}") from None


def fetch_objectstore(url: str, cap: int) -> bytes:
    """One object from s3:// or gs:// (credentials and endpoint from the environment, see stages.storage)."""
    from stages.harvest.objectstore import read_object
    from stages.storage import filesystem as storage_filesystem

    try:
        filesystem, path = storage_filesystem(url)
    except (OSError, ValueError) as exc:
        raise TransientError("objectstore", f"{url}: {' '.join(str(exc).split())}") from None
    return read_object(filesystem, path, cap, url)


def read_urls(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        lines = [line.split("#", 1)[0].strip() for line in handle]
    return [line for line in lines if line]


def fetch_url(url: str, config) -> tuple[bytes, str]:
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        data = with_retries(lambda: fetch_http(url, config.max_asset_bytes, config.timeout_s),
                            config.retries, config.backoff_s)
    elif scheme in ("s3", "gs", "gcs"):
        data = with_retries(lambda: fetch_objectstore(url, config.max_asset_bytes), config.retries,
                            config.backoff_s)
    else:
        raise FetchError("unsupported", f"{url}: unsupported URL scheme {scheme!r} (use http, https, s3 or gs)")
    return data, format_of(urlparse(url).path)


def list_items(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    from stages.harvest.local import resolve

    path, _ = resolve(source.path, base_dir)
    if not os.path.isfile(path):
        return [], [(source.path, "not-found", f"{source.path}: URL list file not found (resolved to {path})")]
    urls = sorted(set(read_urls(path)))
    items = [Item(kind="url", uri=url, name=PurePosixPath(urlparse(url).path).stem,
                  fetch=lambda url=url: fetch_url(url, config)) for url in urls]
    return items, []
