"""The shared listing of the file-based non-glTF sources (dt4d, amass, blender): local paths, folders searched
for given suffixes, globs; each file read through `local.read_local` (its caps and rules), then turned into the
bytes the pipeline stores by the source's own `package` function."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from stages.harvest.item import Item
from stages.harvest.local import list_files, read_local

Package = Callable[[str, bytes], tuple[bytes, str]]  # (path, file bytes) -> (stored bytes, format)


def file_items(source, config, base_dir: str, suffixes: tuple[str, ...], package: Package,
               license: str = "", attribution: str = "", tags: tuple[str, ...] = ()
               ) -> tuple[list[Item], list[tuple[str, str, str]]]:
    """Items of the files under `source.paths` (folders: files ending in `suffixes`), and the paths that matched
    nothing."""
    files, missing = list_files(source.paths, base_dir, suffixes)

    def fetch(path: str) -> tuple[bytes, str]:
        data, _ = read_local(path, config.max_asset_bytes, config.max_side_file_bytes)
        return package(path, data)

    items = [Item(kind=source.kind, uri=uri, name=Path(path).stem, license=license, attribution=attribution,
                  tags=tags, fetch=lambda path=path: fetch(path)) for path, uri in files]
    problems = [(p, "not-found", f"{p}: no such file, folder or matching glob (resolved against {base_dir})")
                for p in missing]
    return items, problems
