"""Closest points on a triangle surface as barycentric coordinates, and carrying trajectories by them."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree


def closest_on_triangles(points: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric [M, 3] of the closest point to each point on its paired triangle (a, b, c) (Ericson 5.1.5)."""
    ab, ac, ap = b - a, c - a, points - a
    bp, cp = points - b, points - c
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    d3, d4 = _dot(ab, bp), _dot(ac, bp)
    d5, d6 = _dot(ab, cp), _dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v = np.where(denom != 0, vb / np.where(denom != 0, denom, 1), 0.0)
        w = np.where(denom != 0, vc / np.where(denom != 0, denom, 1), 0.0)
        bary = np.stack([1 - v - w, v, w], axis=1)
        # Edge and vertex regions, lowest priority first so the checks Ericson makes first win.
        t_bc = _safe_ratio(d4 - d3, (d4 - d3) + (d5 - d6))
        _set(bary, (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), 0 * t_bc, 1 - t_bc, t_bc)
        t_ac = _safe_ratio(d2, d2 - d6)
        _set(bary, (vb <= 0) & (d2 >= 0) & (d6 <= 0), 1 - t_ac, 0 * t_ac, t_ac)
        _set(bary, (d6 >= 0) & (d5 <= d6), 0.0, 0.0, 1.0)
        t_ab = _safe_ratio(d1, d1 - d3)
        _set(bary, (vc <= 0) & (d1 >= 0) & (d3 <= 0), 1 - t_ab, t_ab, 0 * t_ab)
        _set(bary, (d3 >= 0) & (d4 <= d3), 0.0, 1.0, 0.0)
        _set(bary, (d1 <= 0) & (d2 <= 0), 1.0, 0.0, 0.0)
    return bary


def closest_on_surface(
    points: np.ndarray, surface: np.ndarray, faces: np.ndarray, guess: np.ndarray | None = None,
    labels: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point, the face index, barycentric [M, 3] and distance of its exact closest point on the surface.

    One query on a fresh SurfaceIndex (build the index once to query one surface several times).
    """
    return SurfaceIndex(surface, faces).closest(points, guess, labels)


class SurfaceIndex:
    """Search structures of one triangle surface, for repeated exact closest-point queries.

    An upper bound of each distance (from the faces around the nearest surface vertex, or the point's `guess`
    face) limits the search to the faces whose bounding sphere comes within it (per face-size class, k-d trees).
    """

    def __init__(self, surface: np.ndarray, faces: np.ndarray):
        self.surface = np.asarray(surface, dtype=np.float64)
        self.faces = np.asarray(faces)
        self.corners = self.surface[self.faces]  # [F, 3, 3]
        self.centroid = self.corners.mean(axis=1)
        self.radius = np.linalg.norm(self.corners - self.centroid[:, None], axis=2).max(axis=1)
        self.low, self.high = self.corners.min(axis=1), self.corners.max(axis=1)  # per-face bounding boxes
        self.tiny = 1e-12 * (float(np.linalg.norm(np.ptp(self.surface, axis=0))) if len(self.surface) else 1.0)
        largest = self.radius.max() if len(self.radius) else 1.0
        size_class = np.floor(np.log(largest / np.maximum(self.radius, largest * 1e-9)) / np.log(4)).astype(np.int64)
        self.classes = [np.flatnonzero(size_class == level) for level in np.unique(size_class)]
        self._trees: dict[int, cKDTree] = {}
        self._vertex_tree: tuple[np.ndarray, cKDTree] | None = None

    def closest(self, points: np.ndarray, guess: np.ndarray | None = None,
                labels: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face index, barycentric [M, 3], distance) of each point's exact closest point. With `labels` =
        (point labels [M], face labels [F]) only faces with the point's label count (then `guess` must be one)."""
        points = np.asarray(points, dtype=np.float64)
        if guess is None:
            owner, candidate = self._faces_at_nearest_vertex(points)
        else:
            owner, candidate = np.arange(len(points)), np.asarray(guess)
        first = _best(points, self.corners, owner, candidate)
        bound = first[2]
        open_points = np.flatnonzero(bound > self.tiny)  # a point already on its guess face is answered
        near_owner, near = self._faces_within(points[open_points], bound[open_points])
        near_owner = open_points[near_owner]
        if labels is not None:
            same = labels[0][near_owner] == labels[1][near]
            near_owner, near = near_owner[same], near[same]
        return _best(points, self.corners, np.concatenate([owner, near_owner]), np.concatenate([candidate, near]))

    def _faces_at_nearest_vertex(self, points) -> tuple[np.ndarray, np.ndarray]:
        """(point, face) pairs: every face around each point's nearest used surface vertex."""
        faces = self.faces
        if self._vertex_tree is None:
            used = np.unique(faces)
            self._vertex_tree = used, cKDTree(self.surface[used])
        used, tree = self._vertex_tree
        _, nearest = tree.query(points)
        nearest = used[nearest]
        order = np.argsort(faces.ravel(), kind="stable")
        starts = np.searchsorted(faces.ravel()[order], np.arange(len(self.surface) + 1))
        degree = np.diff(starts)[nearest]
        owner = np.repeat(np.arange(len(points)), degree)
        offsets = np.arange(degree.sum()) - np.repeat(np.cumsum(degree) - degree, degree)
        return owner, order[np.repeat(starts[nearest], degree) + offsets] // 3

    def _faces_within(self, points, bound) -> tuple[np.ndarray, np.ndarray]:
        """(point, face) pairs whose face bounding sphere is within `bound` of the point."""
        centroid, radius = self.centroid, self.radius
        owners, candidates = [], []
        for level, members in enumerate(self.classes):
            if level not in self._trees:
                self._trees[level] = cKDTree(centroid[members])
            reach = bound * (1 + 1e-9) + radius[members].max() + 1e-12
            lists = self._trees[level].query_ball_point(points, r=reach, return_sorted=False)
            lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
            if lengths.sum() == 0:
                continue
            found = members[np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64,
                                        count=int(lengths.sum()))]
            owner = np.repeat(np.arange(len(points)), lengths)
            gap = np.linalg.norm(points[owner] - centroid[found], axis=1) - radius[found]
            close = gap <= bound[owner] * (1 + 1e-9) + 1e-12
            owner, found = owner[close], found[close]
            outside = np.maximum(np.maximum(self.low[found] - points[owner], points[owner] - self.high[found]), 0.0)
            close = np.linalg.norm(outside, axis=1) <= bound[owner] * (1 + 1e-9) + 1e-12
            owners.append(owner[close])
            candidates.append(found[close])
        if not owners:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(owners), np.concatenate(candidates)


def _best(points, corners, owner, candidate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point, the closest of its candidate faces: (face, bary, distance); ties go to the lowest face index."""
    tri = corners[candidate]
    bary = closest_on_triangles(points[owner], tri[:, 0], tri[:, 1], tri[:, 2])
    distance = np.linalg.norm(np.einsum("mk,mkd->md", bary, tri) - points[owner], axis=1)
    best = np.lexsort((candidate, distance, owner))
    first = best[np.searchsorted(owner[best], np.arange(len(points)))]
    return candidate[first], bary[first], distance[first]


def carry(trajectories: np.ndarray, faces: np.ndarray, face_index: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Positions [T, M, 3] of barycentric points on `faces` of trajectories [T, V, 3] in every frame (float32)."""
    corners = faces[face_index]  # [M, 3]
    result = np.einsum("mk,tmkd->tmd", bary, trajectories[:, corners].astype(np.float64))
    return result.astype(np.float32)


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("md,md->m", x, y)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.clip(np.where(den != 0, num / np.where(den != 0, den, 1), 0.0), 0.0, 1.0)


def _set(bary: np.ndarray, mask: np.ndarray, u, v, w) -> None:
    for column, value in enumerate((u, v, w)):
        bary[:, column] = np.where(mask, value, bary[:, column])
