"""Small animated meshes built with NumPy for the render and caption tests (no assets, no generator)."""

from __future__ import annotations

import numpy as np
import trimesh

from clip_builder import build_clip
from schemas.sample import Clip


def _rotation(axis: str, radians: float) -> np.ndarray:
    c, s = np.cos(radians), np.sin(radians)
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _box(extents, center, size) -> tuple[np.ndarray, np.ndarray]:
    mesh = trimesh.creation.box(extents=extents).subdivide_to_size(size)
    return np.asarray(mesh.vertices) + np.asarray(center), np.asarray(mesh.faces)


def waving_arm(frames: int = 16, fps: float = 10.0) -> Clip:
    """A body box with an arm box hinged at its shoulder, swinging +-50 degrees with a 1 s period."""
    body_v, body_f = _box((1.0, 2.0, 0.6), (0, 0, 0), 0.25)
    arm_v, arm_f = _box((0.3, 1.2, 0.3), (0.65, 1.0 + 0.6, 0), 0.25)
    shoulder = np.array([0.65, 1.0, 0.0])
    out = []
    for t in range(frames):
        rotation = _rotation("z", np.radians(50) * np.sin(2 * np.pi * t / fps))
        out.append(np.concatenate([body_v, (arm_v - shoulder) @ rotation.T + shoulder]))
    return build_clip("waving-arm", np.stack(out), np.concatenate([body_f, arm_f + len(body_v)]), fps=fps)


def rotating_box(frames: int = 16, fps: float = 10.0) -> Clip:
    """A box spinning steadily about the vertical axis (180 degrees over the clip)."""
    v, f = _box((1.5, 0.8, 1.0), (0.2, 0.1, 0.0), 0.25)
    out = [v @ _rotation("y", np.pi * t / (frames - 1)).T for t in range(frames)]
    return build_clip("rotating-box", np.stack(out), f, fps=fps)


def pulsing_sphere(frames: int = 16, fps: float = 10.0) -> Clip:
    """A sphere scaling between 0.8 and 1.2 about its centre with a 0.8 s period."""
    mesh = trimesh.creation.icosphere(subdivisions=3)
    v = np.asarray(mesh.vertices)
    out = [v * (1.0 + 0.2 * np.sin(2 * np.pi * t / (0.8 * fps))) for t in range(frames)]
    return build_clip("pulsing-sphere", np.stack(out), np.asarray(mesh.faces), fps=fps)
