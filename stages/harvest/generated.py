"""Procedural animated assets from stages.generate, for demos and tests (same seed, same bytes)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from stages.harvest.item import Item
from stages.harvest.metadata import read_metadata


def list_items(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    from stages.generate import generate_assets

    items = []
    with tempfile.TemporaryDirectory(prefix="dymesh-generated-") as folder:
        for path in generate_assets(source.count, source.seed, folder):
            data = Path(path).read_bytes()
            meta = read_metadata(data)
            items.append(Item(kind="generated", uri=f"generated:seed{source.seed}/{Path(path).name}",
                              name=meta.name or Path(path).stem, license="CC0-1.0", attribution="DyMesh generator",
                              tags=meta.tags, fetch=lambda data=data: (data, "glb")))
    return items, []
