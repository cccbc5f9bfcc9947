"""DeformingThings4D: `.anime` files (files, folders, globs), stored as DT4D packages (the file's bytes, their
sha256 and the source's fps) and read by stages.formats.anime at evaluate time."""

from __future__ import annotations

import re

from stages.formats.anime import dt4d_package
from stages.harvest.source_files import file_items

NAME = re.compile(r"^([A-Za-z]+?)[A-Z0-9][A-Za-z0-9]*_(.+)$")  # DT4D's "<creature><id>_<action>", e.g. bear3EP_Walk


def name_tags(stem: str) -> tuple[str, ...]:
    """Creature and action words of a DT4D sequence name ("bear3EP_Agression" -> ("bear", "agression"))."""
    match = NAME.match(stem)
    if not match:
        return ()
    return match.group(1).lower(), match.group(2).replace("_", " ").lower()


def list_items(source, config, base_dir: str):
    items, problems = file_items(source, config, base_dir, (".anime",),
                                 lambda path, data: (dt4d_package(data, source.fps), "dt4d"),
                                 license=source.license, attribution=source.attribution)
    for item in items:
        item.tags = name_tags(item.name)
    return items, problems
