"""Tessellated shapes (positions [V,3] float64, faces [F,3] int64) for the procedural assets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Shape:
    """A triangle mesh; `axial` is each vertex's position along a capsule's axis (0 start, 1 end)."""

    positions: np.ndarray
    faces: np.ndarray
    axial: np.ndarray | None = None

    def transformed(self, matrix: np.ndarray) -> "Shape":
        homogeneous = np.c_[self.positions, np.ones(len(self.positions))]
        return Shape((homogeneous @ matrix.T)[:, :3], self.faces, self.axial)


def merge(shapes: list[Shape]) -> Shape:
    """One mesh from several, faces re-indexed; `axial` kept only if every part has it."""
    offsets = np.cumsum([0] + [len(s.positions) for s in shapes[:-1]])
    axial = None
    if all(s.axial is not None for s in shapes):
        axial = np.concatenate([s.axial for s in shapes])
    return Shape(
        np.concatenate([s.positions for s in shapes]),
        np.concatenate([s.faces + offset for s, offset in zip(shapes, offsets)]),
        axial,
    )


def vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (float32); vertices in no face get +Y."""
    corners = positions[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(positions)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), [0.0, 1.0, 0.0])
    return normals.astype(np.float32)


def frame_to(direction: np.ndarray) -> np.ndarray:
    """A 3x3 rotation taking +Z onto `direction` (any unit vector)."""
    z = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])


def translation_matrix(offset) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = offset
    return matrix


def revolve(profile_z: np.ndarray, profile_r: np.ndarray, segments: int,
            poles: tuple[float, float] | None = None) -> Shape:
    """Surface of revolution about +Z from a (z, radius) profile; `poles` (z_bottom, z_top) closes the ends."""
    angles = np.arange(segments) * (2 * np.pi / segments)
    rings = len(profile_z)
    ring = np.stack([np.cos(angles), np.sin(angles), np.zeros(segments)], axis=1)
    positions = (ring[None] * profile_r[:, None, None]).reshape(-1, 3)
    positions[:, 2] = np.repeat(profile_z, segments)
    column = np.arange(segments)
    a = np.arange(rings - 1)[:, None] * segments + column[None]
    b = np.arange(rings - 1)[:, None] * segments + (column[None] + 1) % segments
    c, d = a + segments, b + segments
    faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    if poles is not None:
        n = len(positions)
        last = (rings - 1) * segments
        faces = np.concatenate([
            faces,
            np.stack([np.full(segments, n), (column + 1) % segments, column], -1),
            np.stack([np.full(segments, n + 1), last + column, last + (column + 1) % segments], -1),
        ])
        positions = np.concatenate([positions, [[0.0, 0.0, poles[0]], [0.0, 0.0, poles[1]]]])
    return Shape(positions, faces)


def capsule(start, end, radius_start: float, radius_end: float, segments: int, rings: int,
            cap_rings: int) -> Shape:
    """A (tapered) capsule from `start` to `end` with hemispherical ends; `axial` in [0, 1] on the body."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    length = float(np.linalg.norm(end - start))
    cap = np.linspace(0.0, np.pi / 2, cap_rings + 1)[1:-1]  # strictly between pole and equator
    body = np.linspace(0.0, 1.0, rings)
    z = np.concatenate([-radius_start * np.cos(cap), body * length, length + radius_end * np.sin(cap[::-1])])
    r = np.concatenate([radius_start * np.sin(cap), radius_start + (radius_end - radius_start) * body,
                        radius_end * np.sin(cap[::-1])])
    surface = revolve(z, r, segments, poles=(-radius_start, length + radius_end))
    local = surface.positions
    faces = surface.faces
    axial = local[:, 2] / max(length, 1e-9)
    rotation = frame_to(end - start) if length > 1e-9 else np.eye(3)
    return Shape(local @ rotation.T + start, faces, axial)


def disc(z: float, radius: float, segments: int, facing_up: bool) -> Shape:
    """A flat disc in the plane `z` (ring plus centre vertex) facing +Z or -Z."""
    angles = np.arange(segments) * (2 * np.pi / segments)
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles), np.full(segments, z)], axis=1)
    column = np.arange(segments)
    faces = np.stack([np.full(segments, segments), column, (column + 1) % segments], -1)
    return Shape(np.concatenate([ring, [[0.0, 0.0, z]]]), faces if facing_up else faces[:, ::-1])


def cylinder(radius: float, height: float, segments: int) -> Shape:
    """A closed cylinder along +Y centred at the origin, with separate (flat) cap vertices."""
    tube = revolve(np.array([-height / 2, height / 2]), np.array([radius, radius]), segments)
    shape = merge([tube, disc(-height / 2, radius, segments, False), disc(height / 2, radius, segments, True)])
    to_y = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # rotates +Z onto +Y
    return Shape(shape.positions @ to_y.T, shape.faces)


def box(size) -> Shape:
    """An axis-aligned box centred at the origin, 4 vertices per face (flat shading)."""
    half = np.asarray(size, float) / 2
    quads = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u, v = [(axis + 1) % 3, (axis + 2) % 3]
            corners = np.zeros((4, 3))
            corners[:, axis] = sign
            corners[:, u] = [-1, 1, 1, -1]
            corners[:, v] = [-1, -1, 1, 1]
            if sign < 0:
                corners = corners[::-1]
            quads.append(corners * half)
    positions = np.concatenate(quads)
    base = np.arange(6)[:, None] * 4
    faces = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]])
    return Shape(positions, faces)


def icosphere(subdivisions: int) -> Shape:
    """A unit icosphere (welded): 10 * 4**subdivisions + 2 vertices."""
    t = (1 + 5 ** 0.5) / 2
    positions = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                 [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    faces = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
             [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
             [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    positions = [np.asarray(p, float) / np.linalg.norm(p) for p in positions]
    for _ in range(subdivisions):
        midpoints: dict[tuple[int, int], int] = {}

        def midpoint(i: int, j: int) -> int:
            key = (min(i, j), max(i, j))
            if key not in midpoints:
                p = positions[i] + positions[j]
                positions.append(p / np.linalg.norm(p))
                midpoints[key] = len(positions) - 1
            return midpoints[key]

        refined = []
        for a, b, c in faces:
            ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
            refined += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = refined
    return Shape(np.array(positions), np.array(faces, dtype=np.int64))


def uv_sphere(segments: int, rings: int) -> Shape:
    """A unit UV sphere with single pole vertices."""
    polar = np.linspace(0.0, np.pi, rings + 1)[1:-1]
    return revolve(-np.cos(polar), np.sin(polar), segments, poles=(-1.0, 1.0))
