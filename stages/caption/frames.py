"""The images a vision-language model sees for one clip: a few evenly spaced frames, each a grid of views."""

from __future__ import annotations

import base64
import io

import numpy as np

from schemas.sample import Clip
from stages.caption.config import CaptionConfig
from stages.render import render_clip


def frame_indices(frames: int, wanted: int) -> np.ndarray:
    """`wanted` evenly spaced frame indices from 0 to frames - 1 (fewer if the clip is shorter)."""
    count = max(1, min(int(wanted), int(frames)))
    return np.unique(np.round(np.linspace(0, frames - 1, count)).astype(np.int64))


def clip_images(clip: Clip, config: CaptionConfig) -> list[np.ndarray]:
    """uint8 [H, W, 3] images, one per sampled frame (camera framed on the clip's first frame)."""
    chosen = frame_indices(clip.frames, config.frames)
    rendered = render_clip(clip.vertices[chosen], clip.faces, size=config.image_size, views=config.views,
                           renderer=config.renderer)
    return list(rendered)


def png_data_url(image: np.ndarray) -> str:
    """A `data:image/png;base64,...` URL of a uint8 RGB image (deterministic bytes)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
