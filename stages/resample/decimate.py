"""Quadric decimation of a frame-0 surface to at most a vertex budget, per connected part so none vanishes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from stages.resample.weld import clean_faces, drop_unreferenced


class BudgetError(ValueError):
    """The mesh cannot be brought down to the vertex budget without dropping parts."""


@dataclass
class Part:
    """One connected part of the decimated surface, tied to its source faces for surface transfer."""

    points: np.ndarray  # [n, 3] float64 positions at frame 0 (decimated, or the source's own)
    faces: np.ndarray  # [f, 3] indices into points
    vertex_ids: np.ndarray  # [V_part] source vertices of the part, ascending
    source_faces: np.ndarray  # [F_part, 3] the part's source faces, indices into vertex_ids
    decimated: bool  # False: points are exactly the source vertices vertex_ids, in order


def components(vertex_count: int, faces: np.ndarray) -> np.ndarray:
    """Connected-component label of every vertex (labels ordered by lowest vertex index)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(vertex_count,) * 2)
    _, labels = connected_components(graph, directed=False)
    return labels


def part_budgets(sizes: np.ndarray, areas: np.ndarray, total: int, floor: int) -> np.ndarray:
    """Vertices per part summing to min(total, sizes.sum()): proportional to half area share + half vertex share,
    at least min(floor, size), at most size. Raises BudgetError when the floors alone exceed `total`."""
    minimum = np.minimum(sizes, floor)
    if minimum.sum() > total:
        raise BudgetError(
            f"{len(sizes)} disconnected parts need at least {int(minimum.sum())} vertices, more than {total}"
        )
    if sizes.sum() <= total:
        return sizes.copy()
    area_share = areas / areas.sum() if areas.sum() > 0 else np.full(len(sizes), 1 / len(sizes))
    weight = 0.5 * area_share + 0.5 * sizes / sizes.sum()

    def filled(level: float) -> np.ndarray:
        return np.clip(level * weight, minimum, sizes)

    low, high = 0.0, float(total) / weight.min()  # water filling: find the level where the budgets sum to total
    for _ in range(100):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if filled(middle).sum() <= total else (low, middle)
    share = filled(low)
    budget = np.floor(share).astype(np.int64)
    # hand out what flooring left over, largest fractions first (ties by part order)
    room = np.flatnonzero(budget < sizes)
    order = room[np.argsort(-(share[room] - budget[room]), kind="stable")]
    budget[order[: max(total - int(budget.sum()), 0)]] += 1
    return budget


def simplify_part(points: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """fast_simplification to at most `target` vertices (tries shrinking face targets; may end above it)."""
    # quadric errors scale with size squared and the library's collapse threshold is absolute: work in a unit box
    center = 0.5 * (points.min(axis=0) + points.max(axis=0))
    scale = float(np.abs(points - center).max()) or 1.0
    unit_points, unit_faces = _simplify_unit((points - center) / scale, faces, target)
    if len(unit_points) > target:  # the quadric collapses stalled (e.g. thin closed cylinders): cluster instead
        clustered = cluster_vertices((points - center) / scale, faces, target)
        if len(clustered[1]):
            unit_points, unit_faces = clustered
    return unit_points * scale + center, unit_faces


def cluster_vertices(points: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering on the finest regular grid giving at most `target` vertices (cluster mean positions)."""
    low, extent = points.min(axis=0), float(np.ptp(points, axis=0).max()) or 1.0
    best = (points[:0], faces[:0])
    lo, hi = 1, 2
    while _cluster(points, faces, low, extent, hi)[0].shape[0] <= target and hi < 1 << 20:
        lo, hi = hi, hi * 2
    while lo <= hi:  # largest resolution whose clustered mesh fits
        middle = (lo + hi) // 2
        clustered = _cluster(points, faces, low, extent, middle)
        if len(clustered[0]) <= target:
            if len(clustered[1]):
                best = clustered
            lo = middle + 1
        else:
            hi = middle - 1
    return best


def _cluster(points, faces, low, extent, resolution) -> tuple[np.ndarray, np.ndarray]:
    cells = np.minimum((points - low) / extent * resolution, resolution - 1).astype(np.int64)
    _, label = np.unique(cells, axis=0, return_inverse=True)
    label = label.ravel()
    sums = np.zeros((label.max() + 1, 3))
    np.add.at(sums, label, points)
    means = sums / np.bincount(label)[:, None]
    new_points, new_faces, _ = drop_unreferenced(means[None], clean_faces(label[faces]))
    return new_points[0], new_faces


def _simplify_unit(points: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    import fast_simplification

    ratio = len(faces) / max(len(points), 1)
    face_target = max(1, int(target * ratio * 0.97))
    best = (points, faces)
    for _ in range(6):
        if face_target >= len(faces):
            face_target = len(faces) - 1
        if face_target < 1:
            break
        new_points, new_faces = fast_simplification.simplify(points, faces.astype(np.int32), target_count=face_target)
        new_faces = clean_faces(np.asarray(new_faces, dtype=np.int64))
        new_points, new_faces, _ = drop_unreferenced(np.asarray(new_points)[None], new_faces)
        new_points = new_points[0]
        if len(new_faces) == 0:
            break
        if len(new_points) >= len(best[0]):
            break  # no progress: the collapses stalled
        best = (new_points, new_faces)
        if len(new_points) <= target:
            return new_points, new_faces
        face_target = max(1, int(face_target * target / len(new_points) * 0.95))
    return best


def decimate(points: np.ndarray, faces: np.ndarray, target: int, floor: int) -> list[Part]:
    """Split into connected parts, give each a budget, decimate the parts above it. Total <= target."""
    points = np.asarray(points, dtype=np.float64)
    labels = components(len(points), faces)
    count = labels.max() + 1
    sizes = np.bincount(labels, minlength=count)
    face_label = labels[faces[:, 0]]
    cross = np.cross(points[faces[:, 1]] - points[faces[:, 0]], points[faces[:, 2]] - points[faces[:, 0]])
    areas = np.bincount(face_label, weights=0.5 * np.linalg.norm(cross, axis=1), minlength=count)
    budgets = part_budgets(sizes, areas, target, floor)
    vertex_groups = _groups(labels, count)
    face_groups = _groups(face_label, count)
    for _ in range(4):
        parts = [_decimate_part(points, faces, vertex_groups[k], face_groups[k], int(budgets[k])) for k in range(count)]
        got = np.array([len(p.points) for p in parts])
        over = int(got.sum()) - target
        if over <= 0:
            return parts
        # parts that could not shrink enough: take the excess from the largest decimated parts
        shrinkable = np.flatnonzero(got > np.minimum(sizes, floor))
        order = shrinkable[np.argsort(-got[shrinkable], kind="stable")]
        for k in order:
            take = min(over, int(got[k] - min(sizes[k], floor)))
            budgets[k] = min(budgets[k], got[k] - take)
            over -= take
            if over <= 0:
                break
    raise BudgetError(f"decimation could not reach {target} vertices (got {int(got.sum())})")


def _groups(labels: np.ndarray, count: int) -> list[np.ndarray]:
    """Indices of each label 0..count-1, ascending within a label."""
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.searchsorted(labels[order], np.arange(1, count)))


def _decimate_part(points, faces, vertex_ids, face_ids, budget) -> Part:
    local_faces = np.searchsorted(vertex_ids, faces[face_ids])
    if budget >= len(vertex_ids):
        return Part(points[vertex_ids], local_faces, vertex_ids, local_faces, decimated=False)
    new_points, new_faces = simplify_part(points[vertex_ids], local_faces, budget)
    return Part(new_points, new_faces, vertex_ids, local_faces, decimated=True)
