"""The shared listing of the file-based non-glTF sources (dt4d, amass, blender): local paths, folders searched
for given suffixes, globs; each file read through `local.read_local` (its caps and rules), then turned into the
bytes the pipeline stores by the source's own `package` function."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from stages.harvest.item import Item
from stages.harvest.local import file_ids, list_files, read_local, shown

Package = Callable[[str, bytes], tuple[bytes, str]]  # (path, file bytes) -> (stored bytes, format)


def file_items(source, config, base_dir: str, suffixes: tuple[str, ...], package: Package,
               license: str = "", attribution: str = "", tags: tuple[str, ...] = ()
               ) -> tuple[list[Item], list[tuple[str, str, str]]]:
    """Items of the files under `source.paths` (folders: files ending in `suffixes`), and (uri, kind, message) for
    what could not be listed; files are read with the local source's rules (regular files inside the root)."""
    follow = getattr(source, "follow_symlinks", False)
    files, problems = list_files(source.paths, base_dir, config.max_listed_entries, follow, suffixes)
    known_links = file_ids([path for path, _, _ in files])

    def fetch(path: str, uri: str, root: str) -> tuple[bytes, str]:
        data, _ = read_local(path, uri, root, config, follow, known_links)
        return package(path, data)

    items = [Item(kind=source.kind, uri=uri, name=shown(Path(path).stem), license=license, attribution=attribution,
                  tags=tags, fetch=lambda path=path, uri=uri, root=root: fetch(path, uri, root))
             for path, uri, root in files]
    return items, problems
