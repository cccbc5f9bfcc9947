"""Objaverse-1.0 through the `objaverse` package: filter its annotations, fetch GLBs with its loader.

The package has no timeouts, retries or failure records; this module adds them: a socket timeout around its
downloads, retries of whole download batches for transient errors, then uid by uid to isolate a bad one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import urllib.error
import warnings

from stages.harvest.item import FetchError, Item, TransientError, with_retries
from stages.untrusted_files import UntrustedFileError, read_regular

SKETCHFAB_LICENSES = {
    "by": "CC-BY-4.0",
    "by-sa": "CC-BY-SA-4.0",
    "by-nd": "CC-BY-ND-4.0",
    "by-nc": "CC-BY-NC-4.0",
    "by-nc-sa": "CC-BY-NC-SA-4.0",
    "by-nc-nd": "CC-BY-NC-ND-4.0",
    "cc0": "CC0-1.0",
}


@contextlib.contextmanager
def package_cache(cache_dir: str | None, timeout_s: float | None = None):
    """Point the `objaverse` package at `cache_dir` (BASE_PATH and _VERSIONED_PATH) for the duration."""
    import objaverse

    saved = (objaverse.BASE_PATH, objaverse._VERSIONED_PATH, socket.getdefaulttimeout())
    if cache_dir:
        base = os.path.abspath(os.path.expanduser(cache_dir))
        objaverse.BASE_PATH = base
        objaverse._VERSIONED_PATH = os.path.join(base, "hf-objaverse-v1")
    if timeout_s:
        socket.setdefaulttimeout(timeout_s)
    try:
        yield objaverse
    finally:
        objaverse.BASE_PATH, objaverse._VERSIONED_PATH = saved[0], saved[1]
        socket.setdefaulttimeout(saved[2])


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def describe(uid: str, annotation: dict) -> dict:
    """Name, SPDX licence, attribution and tags from a Sketchfab annotation record (fields may be missing)."""
    user = annotation.get("user") if isinstance(annotation.get("user"), dict) else {}
    author = _text(user.get("displayName")) or _text(user.get("username"))
    name = _text(annotation.get("name"))
    url = _text(annotation.get("viewerUrl")) or f"https://sketchfab.com/3d-models/{uid}"
    licence = _text(annotation.get("license"))
    tags = annotation.get("tags") if isinstance(annotation.get("tags"), list) else []
    return {
        "name": name,
        "license": SKETCHFAB_LICENSES.get(licence, licence),
        "attribution": f'"{name}" by {author or "unknown author"} ({url})',
        "tags": tuple(t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str)),
    }


def animation_count(annotation: dict) -> int:
    value = annotation.get("animationCount")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def select(source, annotations: dict) -> list[str]:
    """Sorted uids passing the animation and licence filters, cut to `limit`."""
    allowed = set(source.licenses) if source.licenses is not None else None
    uids = sorted(
        uid for uid, a in annotations.items()
        if isinstance(a, dict) and animation_count(a) >= source.min_animations
        and (allowed is None or a.get("license") in allowed)
    )
    return uids[: source.limit] if source.limit is not None else uids


class BatchDownloader:
    """Downloads uids through `objaverse.load_objects` a batch at a time, on first request."""

    def __init__(self, source, config, uids: list[str]):
        self.source, self.config = source, config
        self.batches = [uids[i : i + source.batch] for i in range(0, len(uids), source.batch)]
        self.batch_of = {uid: b for b, batch in enumerate(self.batches) for uid in batch}
        self.paths: dict[str, str] = {}
        self.failures: dict[str, FetchError] = {}
        self.done: set[int] = set()
        self.lock = threading.Lock()

    def _load(self, uids: list[str]) -> dict[str, str]:
        with package_cache(self.source.cache_dir, self.config.timeout_s) as objaverse:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return objaverse.load_objects(uids, download_processes=self.source.download_processes)
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
                raise TransientError("network", f"objaverse download: {exc}") from None
            except OSError as exc:
                raise FetchError("io", f"objaverse download: {exc}") from None

    def path(self, uid: str) -> str:
        with self.lock:
            batch = self.batch_of[uid]
            if batch not in self.done:
                self.done.add(batch)
                uids = self.batches[batch]
                retry = lambda us: with_retries(lambda: self._load(us), self.config.retries, self.config.backoff_s)
                try:
                    self.paths.update(retry(uids))
                except FetchError:
                    for one in uids:  # isolate the failing uid(s)
                        try:
                            self.paths.update(retry([one]))
                        except FetchError as exc:
                            self.failures[one] = exc
            if uid in self.failures:
                raise self.failures[uid]
            if uid not in self.paths:
                raise FetchError("not-found", f"objaverse:{uid}: not returned by objaverse.load_objects")
            return self.paths[uid]

    def fetch(self, uid: str) -> tuple[bytes, str]:
        path = self.path(uid)
        try:  # a regular file only, at most the cap whatever stat says
            return read_regular(path, self.config.max_asset_bytes, follow_links=True, timeout_s=self.config.timeout_s,
                                what=f"objaverse:{uid}"), "glb"
        except UntrustedFileError as exc:
            hint = " (harvest.max_asset_bytes)" if exc.kind == "limit" else ""
            raise FetchError(exc.kind, f"{exc}{hint}") from None


def list_items(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    problems = []
    try:
        with package_cache(source.cache_dir, config.timeout_s) as objaverse:
            known = set(objaverse.load_uids())
            uids = None
            if source.uids is not None:
                unknown = sorted(set(source.uids) - known)
                problems = [(f"objaverse:{u}", "unknown-uid", f"objaverse:{u}: not in object-paths.json.gz")
                            for u in unknown]
                uids = sorted(set(source.uids) & known)
            annotations = objaverse.load_annotations(uids) if uids != [] else {}
    except (OSError, ValueError, EOFError) as exc:
        return [], [("objaverse", "objaverse-metadata",
                     f"cannot read Objaverse metadata ({exc}); a truncated .json.gz in the cache must be deleted")]
    selected = select(source, annotations)
    downloader = BatchDownloader(source, config, selected)
    items = [Item(kind="objaverse", uri=f"objaverse:{uid}", fetch=lambda uid=uid: downloader.fetch(uid),
                  **describe(uid, annotations[uid])) for uid in selected]
    return items, problems
