"""Content hash of a clip: sha256 of its normalised trajectories quantised to a grid, and its faces."""

from __future__ import annotations

import hashlib

import numpy as np


def content_hash(vertices: np.ndarray, faces: np.ndarray, center, scale: float, quantum: float) -> str:
    """Equal for clips whose normalised positions round to the same multiples of `quantum` (and same faces)."""
    normalised = (vertices.astype(np.float64) - np.asarray(center)) / (scale if scale > 0 else 1.0)
    grid = np.round(normalised / quantum).astype("<i8")
    digest = hashlib.sha256()
    digest.update(np.asarray(vertices.shape, dtype="<i8").tobytes())
    digest.update(grid.tobytes())
    digest.update(np.ascontiguousarray(faces, dtype="<i4").tobytes())
    return digest.hexdigest()
