"""The one way tests make a `Clip` from a trajectory: normalisation, displacement and content hash come from the
resample stage's own functions, as for a clip the pipeline makes."""

from __future__ import annotations

import numpy as np

from schemas.sample import Clip
from stages.resample import ResampleConfig
from stages.resample.fingerprint import content_hash
from stages.resample.motion import displacement, normalisation
from stages.splits import assign_split


def build_clip(asset_id: str, vertices, faces, *, animation: int = 0, animation_name: str = "anim",
               fps: float = 10.0, first_frame: int = 0, clip_id: str | None = None,
               resample_error: float = 0.0, split: str | None = None) -> Clip:
    """A clip of `vertices` [T, N, 3] and `faces` [F, 3]; its id is `<asset>_a<animation>_<first>-<last>`, its
    split `split` or the one the default stages.splits.SplitConfig draws for the asset."""
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.int32)
    last_frame = first_frame + len(vertices) - 1
    center, scale = normalisation(vertices[0])
    max_move, mean_move = displacement(vertices)
    return Clip(
        clip_id=clip_id or f"{asset_id}_a{animation}_{first_frame:04d}-{last_frame:04d}",
        asset_id=asset_id, animation=animation, animation_name=animation_name, fps=fps,
        first_frame=first_frame, last_frame=last_frame, vertices=vertices, faces=faces, center=center, scale=scale,
        source_vertices=vertices.shape[1], source_faces=len(faces), resample_error=resample_error,
        max_displacement=max_move, mean_displacement=mean_move,
        content_hash=content_hash(vertices, faces, center, scale, ResampleConfig().content_quantum),
        split=split or assign_split(asset_id),
    )
