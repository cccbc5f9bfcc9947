"""The one frame-0 normalisation of DyMesh clips (AnimateAnyMesh's): centre frame 0's bbox, scale frame 0 into [-1, 1]^3.

centre = midpoint of frame 0's bounding box; scale = max |coordinate - centre| over frame 0. Clips store them
(`clips.center`, `clips.scale`, not applied); the loader applies them on request and the models on every batch.
`frame0_center_scale` is the NumPy form (one clip, float64), `normalise_frames` the batched, masked PyTorch form.
"""

from __future__ import annotations

import numpy as np

MIN_SCALE = 1e-8  # a clip collapsed to a point is divided by this instead of 0


def frame0_center_scale(points: np.ndarray) -> tuple[tuple[float, float, float], float]:
    """Frame-0 bbox centre and scale of one clip's frame 0 [N, 3] (float64; scale 0 for no points)."""
    points = points.astype(np.float64)
    center = 0.5 * (points.min(axis=0) + points.max(axis=0))
    scale = float(np.abs(points - center).max()) if len(points) else 0.0
    return (float(center[0]), float(center[1]), float(center[2])), scale


def normalise_frame0(vertices: np.ndarray) -> np.ndarray:
    """[T, N, 3] with frame 0 centred and scaled into [-1, 1]^3 (float32)."""
    center, scale = frame0_center_scale(vertices[0])
    return ((vertices - np.asarray(center)) / max(scale, MIN_SCALE)).astype(np.float32)


def normalise_frames(vertices, valid):
    """Batched torch form for [B, T, N, 3] with a [B, N] valid mask: (normalised vertices with padded vertices zeroed,
    centre [B, 3], scale [B]); padded vertices take no part in the centre and scale."""
    import torch

    vertices = vertices.float()
    mask = valid[:, None, :, None]
    frame0 = vertices[:, 0]
    big = torch.finfo(frame0.dtype).max
    low = frame0.masked_fill(~valid[..., None], big).amin(1)
    high = frame0.masked_fill(~valid[..., None], -big).amax(1)
    any_valid = valid.any(1, keepdim=True)
    centre = torch.where(any_valid, (low + high) / 2, torch.zeros_like(low))
    centred = (frame0 - centre[:, None]).abs().masked_fill(~valid[..., None], 0.0)
    scale = centred.flatten(1).amax(1).clamp(min=MIN_SCALE)
    normalised = (vertices - centre[:, None, None]) / scale[:, None, None, None]
    return normalised.masked_fill(~mask, 0.0), centre, scale
