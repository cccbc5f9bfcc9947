"""What every caption backend takes and returns."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.sample import Clip


@dataclass
class CaptionRequest:
    """One caption to produce: the clip, its asset's metadata (name, tags) and which caption of the clip it is."""

    clip: Clip
    asset: dict
    caption_index: int


@dataclass
class Generated:
    """A backend's raw output for one request."""

    text: str
    seconds: float
    prompt_tokens: int = 0
    output_tokens: int = 0


def sampling_temperature(temperature: float, caption_index: int) -> float:
    """Caption 0 uses the configured temperature; later captions of a clip sample (at least 0.7) to differ."""
    return float(temperature) if caption_index == 0 else max(float(temperature), 0.7)
