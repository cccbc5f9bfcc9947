"""Motion of a clip: frame-0 normalisation, displacement statistics, looping."""

from __future__ import annotations

import numpy as np

from schemas.normalisation import frame0_center_scale
from stages.resample.weld import bbox_diagonal

normalisation = frame0_center_scale  # frame-0 bbox centre and scale: the one definition is in schemas/normalisation.py


def displacement(trajectories: np.ndarray) -> tuple[float, float]:
    """Max and mean vertex distance from frame 0 over all frames, relative to the frame-0 bbox diagonal."""
    diagonal = bbox_diagonal(trajectories[0])
    if diagonal == 0 or not np.isfinite(trajectories).all():
        return float("inf"), float("inf")
    distance = np.linalg.norm(trajectories.astype(np.float64) - trajectories[:1], axis=-1) / diagonal
    return float(distance.max()), float(distance.mean())


def pose_gap(first: np.ndarray, last: np.ndarray) -> float:
    """Max vertex distance between two poses relative to the first pose's bbox diagonal (inf if degenerate)."""
    diagonal = bbox_diagonal(first)
    if diagonal == 0 or not (np.isfinite(first).all() and np.isfinite(last).all()):
        return float("inf")
    return float(np.linalg.norm(last.astype(np.float64) - first, axis=-1).max() / diagonal)
