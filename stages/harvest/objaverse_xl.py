"""Objaverse-XL through the `objaverse` package's XL API: per-source annotations (a pandas frame: fileIdentifier,
source, license, fileType, sha256, metadata) filtered by source, file type and licence; files downloaded a batch at
a time with `objaverse.xl.download_objects`; then each file is checked against its recorded sha256 and filtered by
its animation count. Every file keeps its own licence.

Animation count after download: exact for glTF/GLB (the JSON's `animations`); for Blender formats a byte scan for
the format's animation records (FBX AnimationCurve, COLLADA <animation>), with .blend/.abc/.usd* kept as "maybe"
(their exact count is only known after conversion, where a file without animations becomes a `no-animation` row).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import urllib.error
from pathlib import Path, PurePosixPath

from stages.formats import BLENDER_FORMATS
from stages.harvest.item import FetchError, Item, TransientError, with_retries
from stages.harvest.local import fetch_error, folder_reader
from stages.harvest.objaverse_source import package_cache
from stages.untrusted_files import UntrustedFileError, read_regular
from stages.harvest.pack import pack_gltf, read_json_document

XL_SOURCES = ("github", "sketchfab", "thingiverse", "smithsonian")
FILE_TYPES = ("glb", "gltf", *BLENDER_FORMATS)
ANIMATION_MARKERS = {"fbx": (b"AnimationCurve",), "dae": (b"<animation",)}
STATIC_TYPES = ("obj", "ply", "stl")


class Filtered(FetchError):
    """A downloaded file the source's filters leave out (a `skipped` harvest row, not a failure)."""

    status = "skipped"


def check_source(source) -> None:
    """ValueError naming a source or file type the XL source does not know."""
    for field, values, known in (("sources", source.sources, XL_SOURCES), ("file_types", source.file_types, FILE_TYPES)):
        unknown = sorted(set(values or ()) - set(known))
        if unknown:
            raise ValueError(f"{field}: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    if source.min_animations < 0:
        raise ValueError(f"min_animations must be >= 0, not {source.min_animations}")


def download_dir(source) -> str:
    return os.path.abspath(os.path.expanduser(source.download_dir or "~/.objaverse"))


def load_annotations(source):
    """The annotations of the configured XL sources, one frame (the package reads each source's parquet file,
    downloading it only when it is not in download_dir yet)."""
    import pandas as pd
    from objaverse import xl

    frames = [xl.downloaders[name].get_annotations(download_dir=download_dir(source))
              for name in (source.sources or XL_SOURCES)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def select(source, annotations) -> list[dict]:
    """Rows passing the source, file type and licence filters, sorted by fileIdentifier, cut to `limit`."""
    needed = {"fileIdentifier", "source", "license", "fileType", "sha256"}
    if not needed <= set(annotations.columns):
        raise ValueError(f"annotations lack {', '.join(sorted(needed - set(annotations.columns)))}")
    frame = annotations[annotations["fileType"].astype(str).str.lower().isin(source.file_types)]
    if source.sources is not None:
        frame = frame[frame["source"].isin(source.sources)]
    if source.licenses is not None:
        frame = frame[frame["license"].isin(source.licenses)]
    rows = sorted(frame.to_dict("records"), key=lambda r: str(r["fileIdentifier"]))
    return rows[: source.limit] if source.limit is not None else rows


def describe(row: dict) -> dict:
    """Name, licence, attribution and tags of one annotation row."""
    identifier = str(row["fileIdentifier"])
    metadata = row.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            metadata = {}
    metadata = metadata if isinstance(metadata, dict) else {}
    owner = "/".join(str(metadata[k]) for k in ("repo_owner", "repo") if isinstance(metadata.get(k), str))
    licence = row.get("license")
    return {"name": PurePosixPath(identifier.split("?")[0]).stem,
            "license": licence if isinstance(licence, str) else "",
            "attribution": f"{owner + ': ' if owner else ''}{identifier} (Objaverse-XL, {row['source']})",
            "tags": ()}


def animation_count(data: bytes, file_type: str) -> int | None:
    """Animations in the file: exact for glTF, 0/1 from a record scan for FBX and COLLADA, 0 for static formats,
    None (unknown until conversion) for the rest."""
    if file_type in ("glb", "gltf"):
        document = read_json_document(data)
        animations = document.get("animations") if document else None
        return len(animations) if isinstance(animations, list) else 0
    if file_type in ANIMATION_MARKERS:
        return int(any(marker in data for marker in ANIMATION_MARKERS[file_type]))
    return 0 if file_type in STATIC_TYPES else None


class Downloads:
    """Downloads a batch of rows with `objaverse.xl.download_objects` on the first request for one of them."""

    def __init__(self, source, config, rows: list[dict], batch: int = 64):
        self.source, self.config = source, config
        self.batches = [rows[i : i + batch] for i in range(0, len(rows), batch)]
        self.batch_of = {str(r["fileIdentifier"]): b for b, rows_ in enumerate(self.batches) for r in rows_}
        self.paths: dict[str, str] = {}
        self.failed: dict[int, FetchError] = {}
        self.done: set[int] = set()
        self.lock = threading.Lock()

    def _download(self, rows: list[dict]) -> dict[str, str]:
        import pandas as pd
        from objaverse import xl

        with package_cache(None, self.config.timeout_s):
            try:
                return xl.download_objects(pd.DataFrame(rows), download_dir=download_dir(self.source),
                                           processes=self.source.download_processes, save_repo_format="files")
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
                raise TransientError("network", f"objaverse-xl download: {exc}") from None
            except (OSError, ValueError, RuntimeError) as exc:
                raise FetchError("download", f"objaverse-xl download: {type(exc).__name__}: {exc}") from None

    def path(self, identifier: str) -> str:
        with self.lock:
            batch = self.batch_of[identifier]
            if batch not in self.done:
                self.done.add(batch)
                try:
                    self.paths.update(with_retries(lambda: self._download(self.batches[batch]),
                                                   self.config.retries, self.config.backoff_s))
                except FetchError as exc:
                    self.failed[batch] = exc
            if batch in self.failed:
                raise self.failed[batch]
        if identifier not in self.paths:
            raise FetchError("not-found", f"{identifier}: not returned by objaverse.xl.download_objects (gone or "
                                          "renamed at its source)")
        return self.paths[identifier]


def fetch(row: dict, downloads: Downloads, source, config) -> tuple[bytes, str]:
    """The file's bytes (a .gltf packed with its side files), after the checksum and animation filters."""
    identifier, file_type = str(row["fileIdentifier"]), str(row["fileType"]).lower()
    path = downloads.path(identifier)
    folder = str(Path(path).parent)
    try:  # a cloned GitHub repository may hold links and FIFOs: the local source's rules apply
        data = read_regular(path, config.max_asset_bytes, root=folder, follow_links=False,
                            timeout_s=config.timeout_s, what=identifier)
    except UntrustedFileError as exc:
        raise fetch_error(exc) from None
    digest = hashlib.sha256(data).hexdigest()
    if isinstance(row.get("sha256"), str) and row["sha256"] and digest != row["sha256"].lower():
        raise FetchError("checksum", f"{identifier}: sha256 {digest[:12]}... differs from the annotation's "
                                     f"{row['sha256'][:12]}... (the file changed at its source)")
    count = animation_count(data, file_type)
    if count is not None and count < source.min_animations:
        raise Filtered("few-animations", f"{identifier}: {count} animation(s), fewer than min_animations="
                                         f"{source.min_animations}")
    if file_type == "gltf":
        return pack_gltf(data, folder_reader(folder, folder, config, False, identifier))
    return data, file_type


def list_items(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    try:
        rows = select(source, load_annotations(source))
    except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
        return [], [("objaverse-xl", "objaverse-xl-metadata", f"cannot read Objaverse-XL annotations ({exc}); "
                     f"check download_dir={download_dir(source)} or the network")]
    downloads = Downloads(source, config, rows)
    items = [Item(kind="objaverse-xl", uri=str(row["fileIdentifier"]), fetch=lambda row=row: fetch(row, downloads,
                                                                                                      source, config),
                  **describe(row)) for row in rows]
    return items, []
