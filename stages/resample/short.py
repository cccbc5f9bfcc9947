"""Animations shorter than a window: fill the window by a policy, or say precisely why not.

Policies, tried in the order `ResampleConfig.short` lists them until one gives a window:
  skip    no window (a `too-short` row)
  loop    wrap around, only when the animation loops: the gap between its first and last pose is at most
          `loop_tolerance` x its own motion (the largest vertex displacement from the first pose over its frames)
  retime  the whole animation sampled at the window's T frames; the clip records the effective fps
  hold    the animation at the target fps, then its last pose held
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from stages.resample.timeline import Window, frame_count, frame_times, held_window, looped_window, retimed_window


def loop_measure(poses: np.ndarray) -> tuple[float, float]:
    """(gap, motion) of poses [F+1, V, 3]: frames at the target fps then the pose at the animation's end.

    gap = max vertex distance between the first and the end pose; motion = max vertex distance from the first
    pose over all of them. Both absolute; inf when a pose is not finite."""
    if not np.isfinite(poses).all():
        return float("inf"), float("inf")
    poses = poses.astype(np.float64)
    moved = np.linalg.norm(poses - poses[:1], axis=-1).max(axis=1)
    return float(moved[-1]), float(moved.max())


def loop_times(duration: float, fps: float) -> np.ndarray:
    """Seconds where `loop_measure` wants the poses: every frame at `fps`, then the end."""
    return np.append(frame_times(np.arange(frame_count(duration, fps)), duration, fps), duration)


def short_window(
    duration: float, length: int, fps: float, policies: tuple[str, ...], loop_tolerance: float,
    measure: Callable[[], tuple[float, float]],
) -> Window | str:
    """The window that fills `length` frames by the first policy that applies, or the `too-short` message.

    `measure()` gives (gap, motion) of the animation (called at most once, only for `loop`)."""
    total = frame_count(duration, fps)
    reasons = []
    for policy in policies:
        if policy == "skip":
            reasons.append("policy skip")
            break
        if policy == "loop":
            gap, motion = measure()
            if motion > 0 and gap <= loop_tolerance * motion:
                return looped_window(duration, fps, length)
            relative = gap / motion if motion > 0 else float("inf")
            reasons.append(f"does not loop (first/last pose gap {relative:.3g} of its motion > loop_tolerance "
                           f"{loop_tolerance:g})" if motion > 0 else "does not loop (no motion)")
        elif policy == "retime":
            if duration > 0:
                return retimed_window(duration, length)
            reasons.append("cannot retime a zero-length animation")
        elif policy == "hold":
            return held_window(duration, fps, length)
    return (f"{total} frames at {fps:g} fps, fewer than {length}; short policies {list(policies)}: "
            + "; ".join(reasons))
