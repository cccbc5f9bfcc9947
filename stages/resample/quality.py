"""Surface error between a resampled animated mesh and its source, per frame.

Samples (area-weighted surface points plus vertices) of each surface find their closest point on the other
surface at the first frame; those correspondences are carried through every frame by barycentric coordinates.
Those carried distances are upper bounds; where they grow past SLACK x the frame-0 maximum, the largest are
replaced by exact per-frame closest-point distances until the bounds left are within SLACK of the largest exact
one. The reported Hausdorff error is therefore an upper bound of the sampled one, and at most SLACK x the larger
of it and the frame-0 error; Chamfer (a mean over bounds) is an upper bound.
"""

from __future__ import annotations

import numpy as np

from stages.resample.surface_transfer import carry, closest_on_surface

SLACK = 1.25  # frames whose carried bounds stay below SLACK x the frame-0 maximum are not refined
STACKED_FACES = 2_000_000  # frames refined together hold at most this many faces (memory bound)


def surface_samples(
    points: np.ndarray, faces: np.ndarray, count: int, seed: int, vertices: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """`count` area-weighted surface points (plus up to `count` vertices), as (corner indices [M, 3], bary [M, 3])."""
    rng = np.random.default_rng(seed)
    cross = np.cross(points[faces[:, 1]] - points[faces[:, 0]], points[faces[:, 2]] - points[faces[:, 0]])
    area = np.linalg.norm(cross.astype(np.float64), axis=1)
    weights = area / area.sum() if area.sum() > 0 else np.full(len(faces), 1 / len(faces))
    chosen = rng.choice(len(faces), size=count, p=weights)
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    bary = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], axis=1)
    used = np.unique(faces) if vertices else np.zeros(0, dtype=np.int64)
    if len(used) > count:
        used = np.sort(rng.choice(used, size=count, replace=False))
    corners = np.concatenate([faces[chosen], np.repeat(used[:, None], 3, axis=1)])
    bary = np.concatenate([bary, np.tile([1.0, 0.0, 0.0], (len(used), 1))])
    return corners, bary


def directed_distances(
    trajectories_a: np.ndarray, faces_a: np.ndarray, trajectories_b: np.ndarray, faces_b: np.ndarray, count: int,
    seed: int, vertices: bool = True,
) -> np.ndarray:
    """[T, M] distances from samples of surface A (area-weighted, plus vertices if `vertices`) to surface B.

    Frame 0: exact closest points. Later frames: the frame-0 correspondences carried along give upper bounds; in a
    frame whose largest bound exceeds SLACK x the frame-0 maximum, the largest bounds are refined (see
    `_refine_largest`). Every value is an upper bound; each frame's maximum is at most SLACK x
    max(its exact maximum, the frame-0 maximum).
    """
    corners, bary = surface_samples(trajectories_a[0], faces_a, count, seed, vertices)
    index = np.arange(len(corners))
    points_a = carry(trajectories_a, corners, index, bary).astype(np.float64)
    face_index, bary_b, _ = closest_on_surface(points_a[0], trajectories_b[0], faces_b)
    points_b = carry(trajectories_b, faces_b, face_index, bary_b).astype(np.float64)
    distances = np.linalg.norm(points_a - points_b, axis=-1)
    drifted = np.flatnonzero(distances.max(axis=1) > SLACK * distances[0].max())
    drifted = drifted[drifted > 0]
    per_batch = max(1, STACKED_FACES // max(len(faces_b), 1))
    for start in range(0, len(drifted), per_batch):
        _refine_largest(distances, points_a, trajectories_b, faces_b, face_index, drifted[start : start + per_batch])
    return distances


def _refine_largest(distances, points_a, trajectories_b, faces_b, guess, frames) -> None:
    """In each of `frames`, replace the largest upper bounds by exact distances (in place) until the bounds left
    are at most SLACK x the largest exact distance, so the frame's maximum is within SLACK of the true one.
    All frames are searched in one query: each frame's surface is translated far from the others.
    """
    low = np.minimum(trajectories_b[frames].min(axis=(0, 1)), points_a[frames].min(axis=(0, 1)))
    high = np.maximum(trajectories_b[frames].max(axis=(0, 1)), points_a[frames].max(axis=(0, 1)))
    spacing = 4.0 * (float(np.max(high - low)) + float(distances[frames].max())) + 1.0
    shift = np.zeros((len(frames), 3))
    shift[:, 0] = spacing * np.arange(len(frames))
    surface = (trajectories_b[frames].astype(np.float64) + shift[:, None]).reshape(-1, 3)
    vertex_count, face_count = trajectories_b.shape[1], len(faces_b)
    stacked_faces = (faces_b[None] + vertex_count * np.arange(len(frames))[:, None, None]).reshape(-1, 3)
    order = np.argsort(-distances[frames], axis=1, kind="stable")  # [K, M]
    exact = np.zeros((len(frames), distances.shape[1]), dtype=bool)
    active = np.ones(len(frames), dtype=bool)
    chunk = 64
    while active.any():
        slot, rank = np.nonzero(active[:, None] & (np.arange(order.shape[1]) < chunk)[None])
        sample = order[slot, rank]
        todo = ~exact[slot, sample]
        slot, sample = slot[todo], sample[todo]
        if len(slot):
            points = points_a[frames[slot], sample] + shift[slot]
            _, _, found = closest_on_surface(points, surface, stacked_faces, guess=guess[sample] + face_count * slot)
            rows = frames[slot]
            distances[rows, sample] = np.minimum(distances[rows, sample], found)
            exact[slot, sample] = True
        for k in np.flatnonzero(active):
            row = distances[frames[k]]
            if chunk >= len(row) or row[order[k, chunk]] <= SLACK * row[order[k, :chunk]].max():
                active[k] = False
        chunk *= 4


def surface_error(
    trajectories_a: np.ndarray, faces_a: np.ndarray, trajectories_b: np.ndarray, faces_b: np.ndarray, count: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame symmetric Hausdorff [T] and symmetric Chamfer [T] (mean of both directed means), absolute.

    A is the resampled surface: its vertices lie on B by construction, so only its area samples are used; B's
    samples include its vertices, so a lost small feature shows."""
    ab = directed_distances(trajectories_a, faces_a, trajectories_b, faces_b, count, seed, vertices=False)
    ba = directed_distances(trajectories_b, faces_b, trajectories_a, faces_a, count, seed + 1)
    hausdorff = np.maximum(ab.max(axis=1), ba.max(axis=1))
    chamfer = 0.5 * (ab.mean(axis=1) + ba.mean(axis=1))
    return hausdorff, chamfer


def measured_rows(rows: list[np.ndarray], per_window: int) -> np.ndarray:
    """Sorted distinct rows where the error is measured: `per_window` evenly spaced frames of each window, its
    first and last included (0: all)."""
    picks = []
    for row in rows:
        count = len(row) if per_window == 0 else min(per_window, len(row))
        picks.append(row[np.unique(np.round(np.linspace(0, len(row) - 1, count)).astype(int))])
    return np.unique(np.concatenate(picks))
