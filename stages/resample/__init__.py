"""Resample stage: evaluated animations -> clips of exactly N vertices, one topology and T frames.

    from stages.resample import ResampleConfig, clips_from_scene
    clips, errors = clips_from_scene(scene, asset_id, ResampleConfig(vertices=2048, frames=[16]))

Steps (one module each): timeline (windows, times, clip ids) -> weld -> vertex_count (decimate + surface_transfer,
or subdivide) -> quality (surface error) -> motion -> filters -> fingerprint (content hash, dedup).
"""

from stages.resample.clips import clips_from_scene
from stages.resample.config import ResampleConfig
from stages.resample.step_clock import StepClock

__all__ = ["ResampleConfig", "StepClock", "clips_from_scene"]
