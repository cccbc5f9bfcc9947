"""Bring a welded animated mesh to exactly N vertices with one topology: keep, decimate+transfer, or split."""

from __future__ import annotations

import numpy as np

from stages.resample.decimate import decimate
from stages.resample.step_clock import StepClock
from stages.resample.subdivide import split_to_count
from stages.resample.surface_transfer import carry, closest_on_surface


def to_vertex_count(
    trajectories: np.ndarray, faces: np.ndarray, target: int, min_part_vertices: int, clock: StepClock | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Trajectories [T, target, 3] float32, faces [F, 3] int32 and the method used.

    method: "identity" (already `target`: original trajectories untouched), "subdivide" (longest-edge splits,
    linear trajectories), or "decimate" (quadric decimation of frame 0 per connected part, every frame carried
    by barycentric coordinates of the closest source-surface point, then splits to land exactly on `target`).
    Raises decimate.BudgetError when the parts cannot fit in `target` vertices.
    """
    clock = clock or StepClock()
    count = trajectories.shape[1]
    if count == target:
        return trajectories, faces.astype(np.int32), "identity"
    if count < target:
        with clock.step("subdivide"):
            new_trajectories, new_faces = split_to_count(trajectories, faces, target)
        return new_trajectories, new_faces, "subdivide"
    with clock.step("decimate"):
        parts = decimate(trajectories[0], faces, target, min_part_vertices)
    pieces, piece_faces, offset = [], [], 0
    with clock.step("transfer"):
        for part in parts:
            source = trajectories[:, part.vertex_ids]
            if part.decimated:
                face_index, bary, _ = closest_on_surface(part.points, source[0], part.source_faces)
                pieces.append(carry(source, part.source_faces, face_index, bary))
            else:
                pieces.append(source)
            piece_faces.append(part.faces + offset)
            offset += len(part.points)
        reduced = np.concatenate(pieces, axis=1).astype(np.float32)
    with clock.step("subdivide"):
        new_trajectories, new_faces = split_to_count(reduced, np.concatenate(piece_faces), target)
    return new_trajectories, new_faces, "decimate"
