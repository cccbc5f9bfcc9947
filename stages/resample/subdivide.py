"""Longest-edge splitting of a reference surface, to reach an exact vertex count."""

from __future__ import annotations

import numpy as np


def split_to_count(points: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces [F', 3] int32 and parents [target - V, 2] of the vertices added at edge midpoints until there are
    exactly `target` (vertex V + i is the midpoint of parents[i], which may themselves be added vertices).

    Each split replaces every face on the edge (a, b) by two faces through the midpoint, keeping orientation.
    Per round, every edge that is the longest of all its faces is split (deterministic: ties by edge order).
    """
    faces = np.asarray(faces, dtype=np.int64)
    points = np.asarray(points, dtype=np.float64)
    if target < len(points):
        raise ValueError(f"cannot split down: {len(points)} vertices > target {target}")
    if len(faces) == 0 and target > len(points):
        raise ValueError("cannot split a mesh without faces")
    parents = [np.zeros((0, 2), dtype=np.int64)]
    while len(points) < target:
        edges, face_edges = _edges(faces)
        chosen = _pick_edges(points, edges, face_edges, target - len(points))
        points, faces = _split(points, faces, edges, face_edges, chosen)
        parents.append(edges[chosen])
    return faces.astype(np.int32), np.concatenate(parents)


def _edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges [E, 2] (sorted pairs) and, per face, the index of its edges (v0v1, v1v2, v2v0)."""
    half = np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)
    edges, inverse = np.unique(np.sort(half, axis=1), axis=0, return_inverse=True)
    return edges, inverse.reshape(-1, 3)


def _pick_edges(points: np.ndarray, edges: np.ndarray, face_edges: np.ndarray, wanted: int) -> np.ndarray:
    """Up to `wanted` edges, longest first, each the longest edge of every face it touches (so none share a face)."""
    length = np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1)
    order = np.lexsort((np.arange(len(edges)), -length))
    rank = np.empty(len(edges), dtype=np.int64)
    rank[order] = np.arange(len(edges))
    face_best = rank[face_edges].min(axis=1)  # [F]
    beaten = np.zeros(len(edges), dtype=bool)
    beaten[face_edges[rank[face_edges] != face_best[:, None]]] = True
    chosen = order[~beaten[order]]
    return chosen[:wanted]


def _split(points, faces, edges, face_edges, chosen):
    """Split the chosen edges (no two share a face) at their midpoints."""
    count = len(points)
    midpoint = np.full(len(edges), -1, dtype=np.int64)
    midpoint[chosen] = count + np.arange(len(chosen))
    points = np.concatenate([points, 0.5 * (points[edges[chosen, 0]] + points[edges[chosen, 1]])])

    split_slot = midpoint[face_edges]  # [F, 3]: midpoint of edge (v_i, v_{i+1}) or -1
    has = (split_slot >= 0).any(axis=1)
    slot = np.argmax(split_slot >= 0, axis=1)[has]
    kept = faces[~has]
    f = faces[has]
    rows = np.arange(len(f))
    m = split_slot[has][rows, slot]
    v0, v1, v2 = f[rows, slot], f[rows, (slot + 1) % 3], f[rows, (slot + 2) % 3]
    first = np.stack([v0, m, v2], axis=1)
    second = np.stack([m, v1, v2], axis=1)
    faces = np.concatenate([kept, first, second])
    return points, faces
