"""The model-free `motion` backend: captions from the trajectories and the asset's name and tags."""

from __future__ import annotations

import time

from stages.caption.backend import CaptionRequest, Generated
from stages.caption.config import CaptionConfig
from stages.caption.motion import analyse_motion
from stages.caption.phrasing import distinct_captions


class MotionBackend:
    """Runs on any CPU; deterministic (phrasing seeded by clip id and caption index).

    A CPU stand-in for the VLM captioner: it phrases trajectory statistics and the asset's name and tags, it
    never looks at the renders, so its rows say `cpu_stand_in = true` (caption rows and sample JSON) next to
    backend "motion", model "motion-heuristic".
    """

    cpu_stand_in = True

    def __init__(self, config: CaptionConfig) -> None:
        self.config = config

    def generate(self, requests: list[CaptionRequest]) -> list[Generated]:
        summaries: dict[str, object] = {}
        out = []
        for request in requests:
            start = time.perf_counter()
            clip = request.clip
            if clip.clip_id not in summaries:
                summaries[clip.clip_id] = analyse_motion(clip.vertices, clip.faces, clip.fps)
            texts = distinct_captions(summaries[clip.clip_id], request.asset, clip.clip_id, request.caption_index + 1)
            text = texts[request.caption_index]
            out.append(Generated(text=text, seconds=time.perf_counter() - start))
        return out
