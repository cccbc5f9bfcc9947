"""Local files, folders (recursive) and glob patterns; .gltf side files are packed from the file's folder."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from stages.harvest.item import ASSET_SUFFIXES, FetchError, Item, format_of
from stages.harvest.pack import pack_gltf


def resolve(path: str, base_dir: str) -> tuple[str, str]:
    """(absolute path or pattern, path as written): relative to the job file's folder, else to the cwd."""
    expanded = os.path.expanduser(path)
    if os.path.isabs(expanded):
        return expanded, path
    candidates = [os.path.normpath(os.path.join(base, expanded)) for base in (base_dir, os.getcwd())]
    for candidate in candidates:
        if glob.glob(candidate, recursive=True) if glob.has_magic(candidate) else os.path.exists(candidate):
            return candidate, path
    return candidates[0], path


def static_root(pattern: str) -> str:
    """The leading folders of a glob pattern that contain no wildcard."""
    parts = pattern.split(os.sep)
    for index, part in enumerate(parts):
        if glob.has_magic(part):
            return os.sep.join(parts[:index]) or "."
    return os.path.dirname(pattern)


def list_files(paths: list[str], base_dir: str,
               suffixes: tuple[str, ...] = ASSET_SUFFIXES) -> tuple[list[tuple[str, str]], list[str]]:
    """[(absolute file, uri as written)] sorted by uri, and the paths that matched nothing (folders: `suffixes`)."""
    found: dict[str, str] = {}
    missing = []
    for path in paths:
        absolute, written = resolve(path, base_dir)
        if os.path.isdir(absolute):
            for root, dirs, files in os.walk(absolute):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(suffixes):
                        full = os.path.join(root, name)
                        found[full] = os.path.join(written, os.path.relpath(full, absolute))
        elif os.path.isfile(absolute):
            found[absolute] = written
        elif glob.has_magic(absolute):
            matches = [m for m in glob.glob(absolute, recursive=True) if os.path.isfile(m)]
            if not matches:
                missing.append(path)
            for match in matches:
                found[match] = os.path.join(static_root(written), os.path.relpath(match, static_root(absolute)))
        else:
            missing.append(path)
    return sorted(found.items(), key=lambda kv: kv[1]), missing


def folder_reader(folder: Path, cap: int):
    """Reads side files strictly inside `folder` (symlinks resolved), None when missing or too big."""
    root = folder.resolve()

    def read(name: str) -> bytes | None:
        target = (root / name).resolve()
        if root not in target.parents or not target.is_file() or target.stat().st_size > cap:
            return None
        return target.read_bytes()

    return read


def read_local(path: str, max_bytes: int, max_side_bytes: int) -> tuple[bytes, str]:
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise FetchError("limit", f"{path}: {size} bytes, over the {max_bytes} byte cap (harvest.max_asset_bytes)")
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FetchError("io", f"{path}: cannot read: {exc.strerror or exc}") from None
    if format_of(path) == "gltf":
        return pack_gltf(data, folder_reader(Path(path).parent, max_side_bytes))
    return data, "glb"


def list_items(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    """Items of a LocalSource, and (uri, error type, message) for paths that matched nothing."""
    files, missing = list_files(source.paths, base_dir)
    items = [
        Item(kind="local", uri=uri, name=Path(path).stem,
             fetch=lambda path=path: read_local(path, config.max_asset_bytes, config.max_side_file_bytes))
        for path, uri in files
    ]
    problems = [(p, "not-found", f"{p}: no such file, folder or matching glob (resolved against {base_dir})")
                for p in missing]
    return items, problems
