"""URL list files: one http(s)://, s3:// or gs:// URL per line. HTTP through http_get: checked addresses,
bounded redirects, timeouts, retries, caps; URLs are shown redacted (no user:password@, no secret query values).

Only the listed URLs are fetched: URIs inside an asset (.gltf buffers) are never followed, so a .gltf from a URL
is stored as it is and must be self-contained.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlsplit

from stages.harvest import http_get
from stages.harvest.item import FetchError, Item, TransientError, format_of, with_retries
from stages.harvest.netguard import redact
from stages.untrusted_files import UntrustedFileError, read_regular

MAX_LIST_BYTES = 256 * 1024 * 1024


def fetch_objectstore(url: str, config) -> bytes:
    """One object from s3:// or gs:// (credentials and endpoint from the environment, see stages.storage)."""
    from stages.harvest.objectstore import read_object
    from stages.storage import filesystem as storage_filesystem

    shown = redact(url)
    if _split(url).query:  # pyarrow reads endpoint_override/scheme from it: a list line could aim anywhere
        raise FetchError("bad-url", f"{shown}: object-store URLs in a URL list may not carry a query (options such "
                                    "as endpoint_override come from the environment, or use an objectstore source)")
    try:
        filesystem, path = storage_filesystem(url)
    except (OSError, ValueError) as exc:
        raise TransientError("objectstore", f"{shown}: {type(exc).__name__}") from None
    return read_object(filesystem, path, config.max_asset_bytes, shown, config.transfer_timeout_s)


def read_urls(path: str, max_urls: int) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The URLs of a list file (sorted, unique), and problems: undecodable lines, too many lines."""
    text = read_regular(path, MAX_LIST_BYTES, follow_links=True)
    urls, problems = set(), []
    for number, raw in enumerate(text.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").split("#", 1)[0].strip()
        except UnicodeDecodeError:
            problems.append((f"{path}:{number}", "bad-url", f"{path}: line {number} is not UTF-8 text"))
            continue
        if line:
            urls.add(line)
        if len(urls) > max_urls:
            problems.append((path, "limit", f"{path}: more than {max_urls} URLs (harvest.max_listed_entries); "
                                            "the rest is not fetched"))
            urls.discard(line)
            break
    return sorted(urls), problems


def _split(url: str):
    try:
        return urlsplit(url)
    except ValueError:
        raise FetchError("bad-url", f"{redact(url)}: not a valid URL") from None


def fetch_url(url: str, config, allow_private: bool = False, network=None) -> tuple[bytes, str]:
    scheme = _split(url).scheme
    if scheme in ("http", "https"):
        data = with_retries(lambda: http_get.http_get(
            url, cap=config.max_asset_bytes, timeout_s=config.timeout_s, transfer_timeout_s=config.transfer_timeout_s,
            max_redirects=config.max_redirects, allow_private=allow_private, network=network),
            config.retries, config.backoff_s)
    elif scheme in ("s3", "gs", "gcs"):
        data = with_retries(lambda: fetch_objectstore(url, config), config.retries, config.backoff_s)
    else:
        raise FetchError("unsupported", f"{redact(url)}: unsupported URL scheme {scheme!r} (use http, https, s3 "
                                        "or gs)")
    return data, format_of(_split(url).path)


def shown_uris(urls: list[str]) -> list[str]:
    """Redacted URLs, made unique (#2, #3, ...) where two differ only in their secrets."""
    seen: dict[str, int] = {}
    shown = []
    for url in urls:
        text = redact(url)
        seen[text] = seen.get(text, 0) + 1
        shown.append(text if seen[text] == 1 else f"{text}#{seen[text]}")
    return shown


def list_items(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    from stages.harvest.local import resolve

    path, _ = resolve(source.path, base_dir)
    try:
        urls, problems = read_urls(path, config.max_listed_entries)
    except UntrustedFileError as exc:
        kind = "not-found" if exc.kind == "not-found" else exc.kind
        return [], [(source.path, kind, f"{source.path}: URL list file not readable ({exc.detail}); resolved to "
                                        f"{exc.what}")]
    allow_private = getattr(source, "allow_private_networks", False)
    items = [Item(kind="url", uri=shown, name=PurePosixPath(shown.split("?")[0].split("#")[0]).stem,
                  fetch=lambda url=url: fetch_url(url, config, allow_private))
             for url, shown in zip(urls, shown_uris(urls))]
    return items, problems
