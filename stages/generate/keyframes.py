"""Keyframed animation channels: motions are functions of time, sampled into glTF samplers.

A motion is `f(times [K]) -> values [K, n]` (n = 3 translation/scale, 4 rotation quaternion xyzw,
number of morph targets for weights). CUBICSPLINE tangents are the motion's time derivative
(central difference), which is what the spec's Hermite form expects (tangents in units per second).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from stages.generate.glb import GltfDocument

INTERPOLATIONS = ("STEP", "LINEAR", "CUBICSPLINE")
Motion = Callable[[np.ndarray], np.ndarray]

# Keys per second by interpolation: STEP needs many keys to look like motion, CUBICSPLINE few.
KEY_RATE = {"STEP": 12.0, "LINEAR": 15.0, "CUBICSPLINE": 6.0}
DERIVATIVE_STEP = 1e-4


def axis_angle(axis, angles: np.ndarray) -> np.ndarray:
    """Quaternions [K, 4] (x, y, z, w) rotating by `angles` [K] radians about `axis`."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    half = np.asarray(angles, float)[:, None] / 2
    return np.concatenate([np.sin(half) * axis, np.cos(half)], axis=1)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of quaternions [K, 4] in (x, y, z, w) order."""
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ], axis=-1)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def key_times(duration: float, interpolation: str, max_step: float | None = None) -> np.ndarray:
    """Evenly spaced key times over [0, duration] (both ends included)."""
    count = int(np.ceil(duration * KEY_RATE[interpolation])) + 1
    if max_step:
        count = max(count, int(np.ceil(duration / max_step)) + 1)
    return np.linspace(0.0, duration, count)


class AnimationWriter:
    """Builds one glTF animation: channels share their input (time) accessors where the keys match."""

    def __init__(self, doc: GltfDocument, name: str) -> None:
        self.doc = doc
        self.animation: dict = {"name": name, "channels": [], "samplers": []}
        self._inputs: dict[tuple[int, float], int] = {}

    def channel(self, node: int, path: str, motion: Motion, interpolation: str, times: np.ndarray) -> None:
        """Sample `motion` at `times` and add a sampler plus a channel targeting `node`.`path`."""
        key = (len(times), float(times[-1]))
        if key not in self._inputs:
            self._inputs[key] = self.doc.accessor(times.astype(np.float32), bounds=True)
        values = np.atleast_2d(np.asarray(motion(times), float).reshape(len(times), -1))
        if interpolation == "CUBICSPLINE":
            slope = (motion(times + DERIVATIVE_STEP) - motion(times - DERIVATIVE_STEP)) / (2 * DERIVATIVE_STEP)
            slope = np.asarray(slope, float).reshape(values.shape)
            values = np.stack([slope, values, slope], axis=1).reshape(-1, values.shape[1])
        if path == "weights":
            values = values.reshape(-1)  # SCALAR accessor: targets of key 0, then key 1, ...
        output = self.doc.accessor(values.astype(np.float32))
        sampler = len(self.animation["samplers"])
        self.animation["samplers"].append({"input": self._inputs[key], "output": output,
                                           "interpolation": interpolation})
        self.animation["channels"].append({"sampler": sampler, "target": {"node": node, "path": path}})

    def finish(self, extras: dict) -> int:
        self.animation["extras"] = extras
        return self.doc.add("animations", self.animation)
