"""Every .glb/.gltf under an object-store prefix (s3://, gs://, or a local folder) through pyarrow.fs."""

from __future__ import annotations

import posixpath
import time
from urllib.parse import urlparse

from stages.harvest.item import (ASSET_SUFFIXES, FetchError, Item, TransientError, format_of, read_bounded,
                                  with_retries)
from stages.harvest.pack import pack_gltf
from stages.untrusted_files import UntrustedFileError, list_tree, read_regular, shown

CHUNK = 8 * 1024 * 1024


def filesystem_for(source, base_dir: str = "."):
    """(pyarrow FileSystem, root path inside it) for an ObjectStoreSource."""
    import pyarrow.fs as pafs

    parsed = urlparse(source.uri)
    if not parsed.scheme or parsed.scheme == "file":
        from stages.harvest.local import resolve

        return pafs.LocalFileSystem(), resolve(parsed.path if parsed.scheme else source.uri, base_dir)[0]
    from stages.storage import filesystem

    return filesystem(source.uri, endpoint=source.endpoint, region=source.region, anonymous=source.anonymous)


def read_object(filesystem, path: str, cap: int, uri: str, timeout_s: float | None = None) -> bytes:
    """At most `cap` bytes of one object, read in chunks against a deadline; a local filesystem goes through
    stages.untrusted_files (regular files only) instead."""
    import pyarrow.fs as pafs

    if isinstance(filesystem, pafs.LocalFileSystem):
        return _read_local(path, None, cap, uri, timeout_s)
    deadline = time.monotonic() + timeout_s if timeout_s else None
    try:
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise FetchError("not-found", f"{uri}: no such object")
        if info.size is not None and info.size > cap:
            raise FetchError("limit", f"{uri}: {info.size} bytes, over the {cap} byte cap (harvest.max_asset_bytes)")
        with filesystem.open_input_stream(path) as stream:
            return read_bounded(stream.read, cap, deadline, uri, CHUNK)
    except FileNotFoundError:
        raise FetchError("not-found", f"{uri}: no such object") from None
    except OSError as exc:
        raise TransientError("objectstore", f"{uri}: {' '.join(str(exc).split())[:300]}") from None


def _read_local(path: str, root: str | None, cap: int, uri: str, timeout_s: float | None) -> bytes:
    try:
        return read_regular(path, cap, root=root, timeout_s=timeout_s, what=uri)
    except UntrustedFileError as exc:
        raise FetchError(exc.kind, str(exc)) from None


def fetch(filesystem, path: str, uri: str, config, root: str | None = None) -> tuple[bytes, str]:
    """One asset (a .gltf packed with its side files from the same prefix); `root` bounds local reads."""
    import pyarrow.fs as pafs

    local = isinstance(filesystem, pafs.LocalFileSystem)
    side_budget = [config.max_asset_bytes]

    def read(target: str, cap: int, shown: str) -> bytes:
        if local:
            return _read_local(target, root, cap, shown, config.timeout_s)
        return with_retries(lambda: read_object(filesystem, target, cap, shown, config.transfer_timeout_s),
                            config.retries, config.backoff_s)

    data = read(path, config.max_asset_bytes, uri)
    if format_of(path) != "gltf":
        return data, "glb"
    folder = posixpath.dirname(path)

    def side(name: str) -> bytes | None:
        try:
            data = read(posixpath.join(folder, name), min(config.max_side_file_bytes, side_budget[0]),
                        f"{uri}: side file {name}")
        except FetchError as exc:
            if exc.kind == "not-found":
                return None
            raise
        side_budget[0] -= len(data)
        return data

    return pack_gltf(data, side)


def _list_local(root: str, source, config) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Asset files below a local folder with the bounded, loop-safe walk of stages.untrusted_files."""
    listing = list_tree(root, max_entries=config.max_listed_entries,
                        wanted=lambda p: p.lower().endswith(ASSET_SUFFIXES))
    problems = [(shown(p), kind, f"{shown(p)}: {detail}") for p, kind, detail in listing.refused]
    if listing.truncated:
        problems.append((source.uri, "limit", f"{source.uri}: listing stopped after {config.max_listed_entries} "
                                              "entries (harvest.max_listed_entries)"))
    return sorted(listing.files), problems


def list_items(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    import pyarrow.fs as pafs

    try:
        filesystem, root = filesystem_for(source, base_dir)
        local = isinstance(filesystem, pafs.LocalFileSystem)
        if local:
            paths, problems = _list_local(root, source, config)
        else:
            infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
            paths = sorted(i.path for i in infos
                           if i.type == pafs.FileType.File and i.path.lower().endswith(ASSET_SUFFIXES))
            problems = []
            if len(paths) > config.max_listed_entries:
                problems.append((source.uri, "limit", f"{source.uri}: {len(paths)} objects, over "
                                                      f"harvest.max_listed_entries; the rest is not fetched"))
                paths = paths[: config.max_listed_entries]
    except (OSError, ValueError) as exc:
        return [], [(source.uri, "objectstore", f"{source.uri}: cannot list: {' '.join(str(exc).split())}")]
    prefix = source.uri.rstrip("/")
    if not paths:
        return [], problems + [(source.uri, "not-found", f"{source.uri}: no .glb or .gltf objects under this prefix")]
    items = []
    for path in paths:
        uri = shown(prefix + "/" + path[len(root):].lstrip("/"))
        items.append(Item(kind="objectstore", uri=uri, name=shown(posixpath.splitext(posixpath.basename(path))[0]),
                          fetch=lambda path=path, uri=uri: fetch(filesystem, path, uri, config,
                                                                 root if local else None)))
    return items, problems
