"""Weld vertices whose whole trajectories coincide; drop degenerate, duplicate and unreferenced elements."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass
class WeldedMesh:
    """Trajectories [T, V, 3] (original values of the kept vertices) and faces [F, 3] int32."""

    trajectories: np.ndarray
    faces: np.ndarray
    source_index: np.ndarray  # [V] index of each kept vertex in the input


def bbox_diagonal(points: np.ndarray) -> float:
    """Length of the axis-aligned bounding box diagonal of [V, 3] points (0 when empty)."""
    if len(points) == 0:
        return 0.0
    return float(np.linalg.norm(points.max(axis=0).astype(np.float64) - points.min(axis=0)))


def weld(trajectories: np.ndarray, faces: np.ndarray, tolerance: float) -> WeldedMesh:
    """Merge vertices within `tolerance` (absolute) of each other in every frame, then clean the faces.

    Each merged group keeps the trajectory of its lowest-index member; kept vertices stay in input order.
    """
    return weld_pairs(trajectories, faces, candidate_pairs(trajectories[0], tolerance), tolerance)


def candidate_pairs(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Candidates for welding in one pose: (lowest member, member) [P, 2] of every group of vertices linked by
    distances within `tolerance` (a star per group, not every pair: duplicated seams stay cheap to check)."""
    if len(points) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = cKDTree(points).query_pairs(r=tolerance, output_type="ndarray").astype(np.int64).reshape(-1, 2)
    if not len(pairs):
        return pairs
    lowest = lowest_linked(len(points), pairs)
    members = np.flatnonzero(lowest != np.arange(len(points)))
    return np.stack([lowest[members], members], axis=1)


def lowest_linked(count: int, pairs: np.ndarray) -> np.ndarray:
    """For each of `count` items, the lowest index linked to it through `pairs` [P, 2] (connected components by
    hooking roots onto smaller roots and pointer jumping: a few passes over the pairs)."""
    parent = np.arange(count)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    while True:
        first, second = parent[pairs[:, 0]], parent[pairs[:, 1]]
        low, high = np.minimum(first, second), np.maximum(first, second)
        apart = low != high
        if not apart.any():
            return parent
        np.minimum.at(parent, high[apart], low[apart])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def staying_pairs(trajectories: np.ndarray, pairs: np.ndarray, tolerance: float) -> np.ndarray:
    """Mask of the pairs that stay within `tolerance` in every frame."""
    return _max_gaps(trajectories, pairs) <= tolerance if len(pairs) else np.zeros(0, dtype=bool)


def weld_pairs(trajectories: np.ndarray, faces: np.ndarray, pairs: np.ndarray, tolerance: float,
               staying: np.ndarray | None = None) -> WeldedMesh:
    """`weld` with the candidate pairs given (and, optionally, which of them stay together: `staying_pairs`)."""
    count = trajectories.shape[1]
    representative = np.arange(count)
    if len(pairs):
        pairs = pairs[staying_pairs(trajectories, pairs, tolerance) if staying is None else staying]
    if len(pairs):
        representative = lowest_linked(count, pairs)
    faces = clean_faces(representative[np.asarray(faces, dtype=np.int64)])
    return WeldedMesh(*drop_unreferenced(trajectories, faces))


def _max_gaps(trajectories: np.ndarray, pairs: np.ndarray, block_bytes: int = 64 << 20) -> np.ndarray:
    """Largest distance over all frames between the two vertices of each pair (in blocks of bounded memory)."""
    block = max(1, block_bytes // (12 * trajectories.shape[0]))
    gaps = np.empty(len(pairs))
    for start in range(0, len(pairs), block):
        a, b = pairs[start : start + block, 0], pairs[start : start + block, 1]
        difference = trajectories[:, a] - trajectories[:, b]
        gaps[start : start + block] = np.sqrt(np.einsum("tpd,tpd->tp", difference, difference).max(axis=0))
    return gaps


def clean_faces(faces: np.ndarray) -> np.ndarray:
    """Drop faces with a repeated vertex and later copies of a face with the same vertex set, keeping order."""
    faces = np.asarray(faces).reshape(-1, 3)
    distinct = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    faces = faces[distinct]
    if len(faces) == 0:
        return faces
    ordered = np.sort(faces, axis=1).astype(np.int64)
    top = int(ordered.max()) + 1
    if top < 1 << 21:  # one int64 key per vertex set: np.unique of keys is several times faster than of rows
        _, first = np.unique((ordered[:, 0] * top + ordered[:, 1]) * top + ordered[:, 2], return_index=True)
    else:
        _, first = np.unique(ordered, axis=0, return_index=True)
    return faces[np.sort(first)]


def drop_unreferenced(trajectories: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep only vertices some face uses, in their order; re-index the faces; also return the kept indices."""
    used = np.flatnonzero(np.bincount(np.asarray(faces).ravel(), minlength=trajectories.shape[1]))  # sorted, unique
    remap = np.full(trajectories.shape[1], -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return trajectories[:, used], remap[faces].astype(np.int32).reshape(-1, 3), used
