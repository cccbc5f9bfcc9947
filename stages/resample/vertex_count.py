"""Bring a welded surface to exactly N vertices with one topology, as a fixed linear map of the source vertices.

The map is built once per topology from a reference pose and applied to every frame of every animation:
  identity   already N vertices: the source trajectories untouched
  subdivide  fewer: longest-edge midpoints of source edges (each lies on a source face)
  decimate   more: quadric decimation (stages.resample.decimate), then, to land exactly on N, midpoints of the
             longest edges; every such vertex is projected onto the source surface at the reference pose and
             carried by its barycentric coordinates on that source face
Every resampled vertex is therefore a point of the source surface in every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from stages.resample.decimate import DecimationError, components, decimate
from stages.resample.step_clock import StepClock
from stages.resample.subdivide import split_to_count
from stages.resample.surface_transfer import SurfaceIndex
from stages.resample.weld import clean_faces


@dataclass
class SurfaceMap:
    """Resampled vertices = `matrix` [N, V] @ welded source vertices (None: identity), with their faces."""

    matrix: sparse.csr_matrix | None
    faces: np.ndarray  # int32 [F, 3]
    method: str  # identity | subdivide | decimate

    @property
    def vertex_count(self) -> int:
        return int(self.faces.max()) + 1 if self.matrix is None else self.matrix.shape[0]

    def apply(self, trajectories: np.ndarray) -> np.ndarray:
        """Trajectories [T, V, 3] of the source -> [T, N, 3] float32 (kept source vertices bit-exact)."""
        if self.matrix is None:
            return np.ascontiguousarray(trajectories, dtype=np.float32)
        frames, count = trajectories.shape[:2]
        out = self.matrix @ flat_frames(trajectories)
        return np.ascontiguousarray(out.reshape(-1, frames, 3).transpose(1, 0, 2), dtype=np.float32)


def flat_frames(trajectories: np.ndarray) -> np.ndarray:
    """[T, V, 3] -> [V, T * 3] float64, the layout a sparse [M, V] map multiplies."""
    frames, count = trajectories.shape[:2]
    return np.ascontiguousarray(trajectories.transpose(1, 0, 2), dtype=np.float64).reshape(count, frames * 3)


def surface_map(points: np.ndarray, faces: np.ndarray, target: int, clock: StepClock | None = None,
                joined: np.ndarray | None = None, moving: np.ndarray | None = None,
                index: SurfaceIndex | None = None) -> SurfaceMap:
    """The map bringing the surface (reference positions [V, 3], faces) to exactly `target` vertices.

    Decimation only: `joined` is a representative per vertex (vertices sharing one are one vertex for the
    decimation: parts joined there merge instead of vanishing, see topology.joined_parts); `moving` marks the
    vertices of parts that move, which are decimated apart from the static ones with at least half the budget
    (or all they have), so the motion cannot vanish behind a large static part.
    `index`: a SurfaceIndex of (points, faces) to reuse. Raises decimate.DecimationError when no face would be
    left."""
    clock = clock or StepClock()
    points = np.asarray(points, dtype=np.float64)
    count = len(points)
    if count == target:
        return SurfaceMap(None, np.asarray(faces, dtype=np.int32), "identity")
    if count < target:
        with clock.step("subdivide"):
            new_faces, parents = split_to_count(points, faces, target)
            return SurfaceMap(midpoint_rows(sparse.identity(count, format="csr"), parents), new_faces, "subdivide")
    joined = np.arange(count) if joined is None else joined
    with clock.step("decimate"):
        topology = clean_faces(joined[faces])
        reduced, reduced_faces, origins = _decimate_groups(points, topology, target, moving)
    with clock.step("subdivide"):
        new_faces, parents = split_to_count(reduced, reduced_faces, target)
        placed = midpoint_rows(sparse.identity(len(reduced), format="csr"), parents) @ reduced
        origins = np.concatenate([origins, _chain(origins, parents)])
    with clock.step("transfer"):  # onto the vertex's own (joined) part: parts coinciding at rest may part later
        labels = components(count, topology)
        own = _incident_face(count, faces)[origins]
        index = index or SurfaceIndex(points, faces)
        face_index, bary, _ = index.closest(placed, guess=own, labels=(labels[origins], labels[joined[faces[:, 0]]]))
    return SurfaceMap(barycentric_rows(faces, face_index, bary, count), new_faces, "decimate")


def _decimate_groups(points: np.ndarray, faces: np.ndarray, target: int,
                     moving: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`decimate` of the moving and the static faces apart (moving: max(its share, half) of the budget)."""
    face_moving = np.zeros(len(faces), dtype=bool) if moving is None else moving[faces[:, 0]]
    groups = [faces[face_moving], faces[~face_moving]]
    sizes = [len(np.unique(group)) for group in groups]
    if not sizes[0] or not sizes[1]:
        budgets = [target if sizes[0] else 0, target if sizes[1] else 0]
    else:
        budgets = [min(sizes[0], max(target * sizes[0] // sum(sizes), target // 2))]
        budgets.append(target - budgets[0])
    pieces, offset = [], 0
    for group, budget in zip(groups, budgets):
        if not len(group) or budget < 3:
            continue
        used = np.unique(group)
        part_points, part_faces, origins = decimate(points[used], np.searchsorted(used, group), budget)
        pieces.append((part_points, part_faces + offset, used[origins]))
        offset += len(part_points)
    if not pieces:
        raise DecimationError(f"no face is left at {target} vertices")
    return tuple(np.concatenate(column) for column in zip(*pieces))


def _chain(origins: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Origins of split vertices: that of their edge's first end (itself possibly a split vertex)."""
    result = np.concatenate([origins, np.zeros(len(parents), dtype=np.int64)])
    for i, (a, _) in enumerate(parents):
        result[len(origins) + i] = result[a]
    return result[len(origins):]


def _incident_face(count: int, faces: np.ndarray) -> np.ndarray:
    """One face holding each vertex (the last listed), -1 for unused vertices."""
    incident = np.full(count, -1, dtype=np.int64)
    incident[np.asarray(faces).ravel()] = np.repeat(np.arange(len(faces)), 3)
    return incident


def midpoint_rows(base: sparse.csr_matrix, parents: np.ndarray) -> sparse.csr_matrix:
    """Rows of `base` followed by one row per parents pair: the mean of the two (earlier) rows, in order."""
    rows, done = base.tocsr(), 0
    while done < len(parents):
        ready = parents[done:].max(axis=1) < rows.shape[0]  # a split round only uses vertices made before it
        end = done + (int(np.argmin(ready)) if not ready.all() else len(ready))
        pair = parents[done:end]
        rows = sparse.vstack([rows, 0.5 * (rows[pair[:, 0]] + rows[pair[:, 1]])], format="csr")
        done = end
    return rows


def barycentric_rows(faces: np.ndarray, face_index: np.ndarray, bary: np.ndarray, count: int) -> sparse.csr_matrix:
    """Rows [M, count] placing each point at its barycentric coordinates on faces[face_index]."""
    corners = np.asarray(faces)[face_index]
    rows = np.repeat(np.arange(len(face_index)), 3)
    return sparse.csr_matrix((bary.ravel(), (rows, corners.ravel())), shape=(len(face_index), count))
