"""Windows of an animation at the target fps: which frames, at which times, under which clip id."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class Window:
    """One clip's frames: indices `first..last` at `fps`; `times` are the seconds to evaluate."""

    length: int
    first: int
    last: int
    times: np.ndarray  # float64 [length]
    short_policy: str = "none"  # how an animation shorter than the window filled it: none | loop | retime | hold
    fps: float | None = None  # the clip's frame rate when it differs from the target (retime: effective fps)

    @property
    def looped(self) -> bool:
        return self.short_policy == "loop"


def clip_id(asset_id: str, animation: int, first: int, last: int) -> str:
    """`<asset_id>_a<animation>_<first>-<last>`, frame indices zero-padded to 4 digits (AnimateAnyMesh style)."""
    return f"{asset_id}_a{animation}_{first:04d}-{last:04d}"


def frame_count(duration: float, fps: float) -> int:
    """Frames of an animation at `fps` (the evaluator's `sample_times` count, uncapped)."""
    return int(math.floor(max(duration, 0.0) * fps + 1e-6)) + 1


def frame_times(frames: np.ndarray, duration: float, fps: float) -> np.ndarray:
    """Seconds of frame indices: min(f / fps, duration), as `stages.evaluate.sample_times`."""
    return np.minimum(np.asarray(frames, dtype=np.float64) / fps, max(duration, 0.0))


def looped_times(length: int, duration: float, fps: float) -> np.ndarray:
    """Seconds of `length` frames that wrap around a looping animation of `duration` > 0."""
    return np.mod(np.arange(length, dtype=np.float64) / fps, duration)


def window_starts(total: int, length: int, stride: int | None, max_count: int | None) -> list[int]:
    """First frames of the windows of `length` in `total` frames; evenly spaced pick when capped."""
    if total < length:
        return []
    starts = list(range(0, total - length + 1, stride or length))
    if max_count is not None and len(starts) > max_count:
        picks = np.round(np.linspace(0, len(starts) - 1, max_count)).astype(int)
        starts = [starts[i] for i in sorted(set(picks.tolist()))]
    return starts


def regular_windows(
    duration: float, fps: float, length: int, stride: int | None, max_count: int | None
) -> list[Window]:
    """Windows fully inside the animation (none if it is shorter than `length` frames)."""
    total = frame_count(duration, fps)
    windows = []
    for first in window_starts(total, length, stride, max_count):
        frames = np.arange(first, first + length)
        windows.append(Window(length, first, first + length - 1, frame_times(frames, duration, fps)))
    return windows


def looped_window(duration: float, fps: float, length: int) -> Window:
    """The one window of a looping animation shorter than `length` frames, wrapping around."""
    return Window(length, 0, length - 1, looped_times(length, duration, fps), short_policy="loop")


def retimed_window(duration: float, length: int) -> Window:
    """The whole animation (duration > 0) sampled at `length` evenly spaced frames: effective fps (length-1)/duration."""
    times = np.linspace(0.0, duration, length)
    return Window(length, 0, length - 1, times, short_policy="retime", fps=(length - 1) / duration)


def held_window(duration: float, fps: float, length: int) -> Window:
    """The animation at `fps`, its last pose held until `length` frames."""
    return Window(length, 0, length - 1, frame_times(np.arange(length), duration, fps), short_policy="hold")


def group_windows(windows: list[Window], vertex_count: int, max_bytes: int) -> list[list[Window]]:
    """Consecutive windows whose union of frames as float32 [T, V, 3] stays under `max_bytes` (at least one each)."""
    groups: list[list[Window]] = []
    current: list[Window] = []
    for window in windows:
        candidate = current + [window]
        frames = len(np.unique(np.concatenate([w.times for w in candidate])))
        if current and frames * vertex_count * 12 > max_bytes:
            groups.append(current)
            candidate = [window]
        current = candidate
    if current:
        groups.append(current)
    return groups


def union_times(windows: list[Window]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted distinct times of the windows and, per window, the rows of its frames in them."""
    times = np.unique(np.concatenate([w.times for w in windows]))
    return times, [np.searchsorted(times, w.times) for w in windows]
