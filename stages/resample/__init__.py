"""Resample stage: evaluated animations -> clips of exactly N vertices, one topology and T frames.

    from stages.resample import ResampleConfig, clips_from_scene
    funnel = Funnel()
    clips, errors = clips_from_scene(scene, asset_id, ResampleConfig(vertices=2048, frames=[16]), funnel=funnel)

Steps (one module each): timeline + short (windows, short-animation policies, clip ids) -> topology (per asset:
weld, then vertex_count's map to N vertices -- decimate to a source-vertex subset, or subdivide -- and quality's
surface gates, built once from a reference pose) -> motion -> filters -> fingerprint (content hash, dedup);
funnel counts what each asset yields.
"""

from stages.resample.clips import clips_from_scene
from stages.resample.config import ResampleConfig
from stages.resample.funnel import Funnel
from stages.resample.step_clock import StepClock

__all__ = ["Funnel", "ResampleConfig", "StepClock", "clips_from_scene"]
