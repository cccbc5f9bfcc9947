"""FrameScene: a fixed-topology mesh given as its own frames at a frame rate (DeformingThings4D, posed bodies).

Same interface as `stages.evaluate.Scene` (animations, num_vertices, faces, evaluate, summary, warnings), so the
resample stage and the commands take it unchanged. A time that lands on a frame (within 1e-6 of a frame) returns
that frame's vertices bit for bit; times between frames blend the two neighbours linearly.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from stages.evaluate import AnimationInfo, LimitExceeded, Limits

FRAME_SNAP = 1e-6  # a time within this many frames of a frame is that frame


def frame_positions(times: np.ndarray, fps: float, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first frame [T], next frame [T], blend weight [T]) of each time, clamped to the clip."""
    position = np.clip(np.asarray(times, dtype=np.float64) * fps, 0.0, count - 1)
    nearest = np.rint(position)
    position = np.where(np.abs(position - nearest) <= FRAME_SNAP, nearest, position)
    first = np.floor(position).astype(np.int64)
    weight = position - first
    return first, np.minimum(first + 1, count - 1), weight


class FrameScene:
    """One animation whose frame f lies at f / fps seconds; `frame(indices)` gives [K, V, 3] float32 vertices."""

    def __init__(self, name: str, faces: np.ndarray, num_vertices: int, frame_count: int, fps: float,
                 frame: Callable[[np.ndarray], np.ndarray], limits: Limits = Limits(),
                 animation_name: str = "frames", details: dict | None = None):
        self.name = name
        self.limits = limits
        self.faces = np.ascontiguousarray(faces, dtype=np.int32).reshape(-1, 3)
        self.num_vertices = int(num_vertices)
        self.frame_count = int(frame_count)
        self.fps = float(fps)
        self._frame = frame
        self.warnings: list[str] = []
        self._info = AnimationInfo(index=0, name=animation_name, duration=(self.frame_count - 1) / self.fps,
                                   channels=1, interpolations=("LINEAR",))
        self._details = dict(details or {})

    @property
    def animations(self) -> list[AnimationInfo]:
        return [self._info]

    def evaluate(self, animation: int | None, times: np.ndarray) -> np.ndarray:
        """Vertices [T, V, 3] float32 at `times` seconds (None: the first frame, the rest pose)."""
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if not np.isfinite(times).all():
            raise ValueError("times must be finite")
        if animation is not None and not (isinstance(animation, (int, np.integer)) and int(animation) == 0):
            raise IndexError(f"{self.name}: no animation {animation!r} (1 exists)")
        if len(times) > self.limits.max_frames:
            raise LimitExceeded(self.name, f"{len(times)} times, over the {self.limits.max_frames} frame cap")
        if len(times) * self.num_vertices * 12 > self.limits.max_output_bytes:
            raise LimitExceeded(self.name, f"{len(times)} frames of {self.num_vertices} vertices, over the "
                                           f"{self.limits.max_output_bytes} byte cap")
        if animation is None:
            times = np.zeros_like(times)
        first, second, weight = frame_positions(times, self.fps, self.frame_count)
        needed = np.unique(np.concatenate([first, second[weight > 0]]))
        frames = self._frame(needed)
        row = np.searchsorted(needed, first)
        out = np.array(frames[row], dtype=np.float32)
        between = weight > 0
        if between.any():
            w = weight[between].astype(np.float32)[:, None, None]
            out[between] = (1 - w) * out[between] + w * frames[np.searchsorted(needed, second[between])]
        return out

    def summary(self) -> dict:
        """What `dymesh inspect` prints: the keys of Scene.summary() (one mesh, no nodes, skins or morph targets)
        plus the frame count, fps and the format's own details."""
        faces = int(len(self.faces))
        return {"file": self.name, "scene": 0, "nodes": 0, "meshes": 1,
                "primitives": [{"node": 0, "mesh": 0, "primitive": 0, "mode": "TRIANGLES", "offset": 0,
                                "vertices": self.num_vertices, "faces": faces, "skin": None, "morph_targets": 0}],
                "vertices": self.num_vertices, "faces": faces, "skins": [], "morph_targets": 0,
                "frames": self.frame_count, "fps": self.fps, **self._details,
                "animations": [{"index": 0, "name": self._info.name, "duration": self._info.duration,
                                "channels": 1, "interpolations": ["LINEAR"]}],
                "warnings": list(self.warnings)}
