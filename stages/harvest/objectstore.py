"""Every .glb/.gltf under an object-store prefix (s3://, gs://, or a local folder) through pyarrow.fs."""

from __future__ import annotations

import posixpath
from urllib.parse import urlparse

from stages.harvest.item import ASSET_SUFFIXES, FetchError, Item, TransientError, format_of, read_capped, with_retries
from stages.harvest.pack import pack_gltf


def filesystem_for(source, base_dir: str = "."):
    """(pyarrow FileSystem, root path inside it) for an ObjectStoreSource."""
    import pyarrow.fs as pafs

    parsed = urlparse(source.uri)
    if not parsed.scheme or parsed.scheme == "file":
        from stages.harvest.local import resolve

        return pafs.LocalFileSystem(), resolve(parsed.path if parsed.scheme else source.uri, base_dir)[0]
    from stages.storage import filesystem

    return filesystem(source.uri, endpoint=source.endpoint, region=source.region, anonymous=source.anonymous)


def read_object(filesystem, path: str, cap: int, uri: str) -> bytes:
    try:
        with filesystem.open_input_stream(path) as stream:
            return read_capped(stream, cap, uri)
    except FileNotFoundError:
        raise FetchError("not-found", f"{uri}: no such object") from None
    except OSError as exc:
        raise TransientError("objectstore", f"{uri}: {' '.join(str(exc).split())}") from None


def fetch(filesystem, path: str, uri: str, config) -> tuple[bytes, str]:
    def read(target: str, cap: int) -> bytes:
        return with_retries(lambda: read_object(filesystem, target, cap, uri), config.retries, config.backoff_s)

    data = read(path, config.max_asset_bytes)
    if format_of(path) != "gltf":
        return data, "glb"
    folder = posixpath.dirname(path)

    def side(name: str) -> bytes | None:
        try:
            return read(posixpath.join(folder, name), config.max_side_file_bytes)
        except FetchError:
            return None

    return pack_gltf(data, side)


def list_items(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    import pyarrow.fs as pafs

    try:
        filesystem, root = filesystem_for(source, base_dir)
        infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except (OSError, ValueError) as exc:
        return [], [(source.uri, "objectstore", f"{source.uri}: cannot list: {' '.join(str(exc).split())}")]
    prefix = source.uri.rstrip("/")
    paths = sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.lower().endswith(ASSET_SUFFIXES))
    if not paths:
        return [], [(source.uri, "not-found", f"{source.uri}: no .glb or .gltf objects under this prefix")]
    items = []
    for path in paths:
        uri = prefix + "/" + path[len(root):].lstrip("/")
        items.append(Item(kind="objectstore", uri=uri, name=posixpath.splitext(posixpath.basename(path))[0],
                          fetch=lambda path=path, uri=uri: fetch(filesystem, path, uri, config)))
    return items, []
