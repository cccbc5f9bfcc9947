"""Clips of generated assets (stages.generate -> evaluate -> resample), picked by animation name, cached per session."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

from schemas.sample import Clip

_FOLDER_HANDLE = tempfile.TemporaryDirectory(prefix="dymesh-caption-test-")  # removed when the session ends
_FOLDER = Path(_FOLDER_HANDLE.name)


@lru_cache(maxsize=None)
def generated_clip(kind: str, animation_name: str, without: str = "", vertices: int = 768) -> tuple[Clip, dict]:
    """The first 16-frame clip of the first seed (0..7) whose asset of `kind` has an animation named so (and whose
    generator description of it does not mention `without`), and the asset's extras (name, tags, motion)."""
    import pygltflib

    from stages.evaluate import load_asset
    from stages.generate import generate_asset
    from stages.resample import ResampleConfig, clips_from_scene

    for seed in range(8):
        path = generate_asset(kind, seed, _FOLDER / f"{kind}-{seed}.glb")
        extras = pygltflib.GLTF2().load(str(path)).asset.extras or {}
        wanted = [a for a in extras.get("animations", []) if a.get("name") == animation_name]
        if not wanted or (without and without in str(wanted[0].get("motion", ""))):
            continue
        scene = load_asset(path)
        config = ResampleConfig(vertices=vertices, max_clips_per_animation=1)
        clips, _ = clips_from_scene(scene, f"{kind}-{seed}", config)
        for clip in clips:
            if clip.animation_name == animation_name:
                return clip, extras
    raise LookupError(f"no generated {kind} with a kept {animation_name!r} clip in seeds 0..7")
