"""Synthetic animated scenes for the resample tests: arrays plus an analytic motion, evaluated at any time.

They implement the evaluator's scene interface (num_vertices, faces, animations, evaluate) so the resample
stage can be tested on exact, known trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh


@dataclass
class Animation:
    index: int
    name: str
    duration: float


class ArrayScene:
    """Rest points [V, 3] and faces moved by `motion(rest, t) -> [V, 3]` in every animation."""

    def __init__(self, rest, faces, durations=(2.0,), motion=None):
        self.rest = np.asarray(rest, dtype=np.float64)
        self.faces = np.asarray(faces, dtype=np.int32)
        self.num_vertices = len(self.rest)
        self.animations = [Animation(i, f"anim{i}", d) for i, d in enumerate(durations)]
        self.motion = motion or twist
        self.calls: list[tuple[int | None, np.ndarray]] = []

    def evaluate(self, animation, times):
        times = np.asarray(times, dtype=np.float64)
        self.calls.append((animation, times))
        return np.stack([self.motion(self.rest, t) for t in times]).astype(np.float32)


def twist(rest: np.ndarray, t: float) -> np.ndarray:
    """Rotate about z by an angle growing with height and time (a smooth non-rigid motion)."""
    angle = 0.8 * np.sin(t * 2.0) * rest[:, 1]
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * rest[:, 0] - s * rest[:, 2], rest[:, 1], s * rest[:, 0] + c * rest[:, 2]], axis=1)


def sphere(subdivisions: int = 3, unmerged: bool = False) -> tuple[np.ndarray, np.ndarray]:
    mesh = trimesh.creation.icosphere(subdivisions)
    if unmerged:
        return mesh.vertices[mesh.faces].reshape(-1, 3), np.arange(3 * len(mesh.faces)).reshape(-1, 3)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def two_parts(big: int = 4, small_offset=(3.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """A dense sphere plus a tiny tetrahedron-ish sphere far away (a small disconnected part)."""
    a_points, a_faces = sphere(big)
    b = trimesh.creation.icosphere(1, radius=0.05)
    points = np.concatenate([a_points, np.asarray(b.vertices) + small_offset])
    faces = np.concatenate([a_faces, np.asarray(b.faces) + len(a_points)])
    return points, faces
