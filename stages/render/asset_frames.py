"""Frames to render from any file a user has: a clip .npz, or any asset `stages.formats` reads (glTF/GLB, .anime,
AMASS motions, Blender formats) whose animations are evaluated.

`load_frames` is the one entry point (`dymesh preview` uses it): a zip whose members are a clip's `vertices` and
`faces` is a clip file; everything else goes to `stages.formats.load_scene`, which picks the format by suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.clip_file import read_clip_file

ZIP_MAGIC, GLB_MAGIC = b"PK\x03\x04", b"glTF"
FORMATS = "a clip .npz (dymesh resample / dymesh evaluate) or an asset (.glb, .gltf, .anime, AMASS .npz, .fbx, ...)"


@dataclass
class Frames:
    """What to render: world-space vertices [T, V, 3] float32, faces [F, 3] int32, the clip's frame rate if it
    has one, and a one-line description of where the frames came from."""

    vertices: np.ndarray
    faces: np.ndarray
    fps: float | None
    description: str


def load_frames(path: str | Path, fps: float = 10.0, max_frames: int = 64, animation: int | None = None) -> Frames:
    """Frames of the clip or asset at `path`. A glTF/GLB asset is evaluated at t = min(f / fps, duration) for
    up to `max_frames` frames per animation: every animation one after another, or only `animation`; an asset
    without animations gives its rest pose. Raises ValueError for unreadable files (and the evaluator's
    AssetError, one line, for broken assets)."""
    path = Path(path)
    return _reader(path)(path, fps, max_frames, animation)


def _reader(path: Path):
    import zipfile

    with open(path, "rb") as handle:
        head = handle.read(4)
    if head == ZIP_MAGIC:
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{path}: a broken zip/.npz file ({exc})") from None
        if {"vertices.npy", "faces.npy"} <= names:
            return _clip_file
    elif path.suffix.lower() == ".npz":
        raise ValueError(f"{path}: not an .npz file (no zip header); give {FORMATS}")
    return _evaluated_asset


def _clip_file(path: Path, fps: float, max_frames: int, animation: int | None) -> Frames:
    vertices, faces, meta = read_clip_file(path)
    return Frames(vertices, faces, float(meta.get("fps") or 0) or None, f"clip file, {len(vertices)} frames")


def _evaluated_asset(path: Path, fps: float, max_frames: int, animation: int | None) -> Frames:
    from stages.evaluate import sample_times
    from stages.formats import load_scene

    scene = load_scene(path)
    infos = scene.animations
    if animation is not None and not any(info.index == animation for info in infos):
        raise ValueError(f"{path}: no animation {animation} (it has {len(infos)}: "
                         f"{', '.join(f'{i.index} {i.name!r}' for i in infos) or 'none'})")
    chosen = [i for i in infos if animation is None or i.index == animation]
    if not chosen:
        return Frames(scene.evaluate(None, np.zeros(1)), scene.faces, fps, "static asset: its rest pose")
    clips = [scene.evaluate(info.index, sample_times(info.duration, fps, max_frames)) for info in chosen]
    names = ", ".join(f"{info.index} {info.name!r}" for info in chosen)
    return Frames(np.concatenate(clips), scene.faces, fps,
                  f"{len(chosen)} animation(s) evaluated at {fps:g} fps ({names}), {sum(map(len, clips))} frames")
