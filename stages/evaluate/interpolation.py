"""Animation samplers evaluated at all times at once: STEP, LINEAR (slerp for rotations), CUBICSPLINE.

Spec: glTF 2.0 section 3.11 (animations) and Appendix C (interpolation). Times outside the keys clamp.
"""

from __future__ import annotations

import numpy as np

INTERPOLATIONS = ("LINEAR", "STEP", "CUBICSPLINE")
LERP_ABOVE = 0.9995  # three.js Quaternion.slerpFlat: |dot| at or above this lerps and normalises


def sample(keys: np.ndarray, values: np.ndarray, interpolation: str, times: np.ndarray,
           rotation: bool = False) -> np.ndarray:
    """Sampler outputs at times [T] -> [T, ...].

    keys [K] seconds; values [K, ...] (CUBICSPLINE: [K, 3, ...] = in-tangent, value, out-tangent). Several
    channels sharing one key accessor are sampled together by stacking them in the trailing axes.
    """
    count = len(keys)
    if count == 1 or interpolation == "STEP":
        index = np.clip(np.searchsorted(keys, times, side="right") - 1, 0, count - 1)
        points = values[:, 1] if interpolation == "CUBICSPLINE" else values
        return points[index]
    i0 = np.clip(np.searchsorted(keys, times, side="right") - 1, 0, count - 2)
    i1 = i0 + 1
    dt = keys[i1] - keys[i0]
    safe_dt = np.where(dt > 0, dt, 1.0)
    u = np.clip((times - keys[i0]) / safe_dt, 0.0, 1.0)
    u = np.where(dt > 0, u, (times >= keys[i1]).astype(np.float64))
    trailing = values.ndim - (2 if interpolation == "CUBICSPLINE" else 1)
    u = u.reshape((-1,) + (1,) * trailing)
    if interpolation == "CUBICSPLINE":
        return _hermite(values, i0, i1, u, dt.reshape(u.shape), rotation)
    if rotation:
        out = slerp(values[i0], values[i1], u)
        # outside the keys three.js copies the stored key (Interpolant.copySampleValue_), not normalised
        before, after = times < keys[0], times >= keys[-1]
        if before.any() or after.any():
            out[before] = values[0]
            out[after] = values[-1]
        return out
    return values[i0] + (values[i1] - values[i0]) * u


def _hermite(values: np.ndarray, i0: np.ndarray, i1: np.ndarray, u: np.ndarray, dt: np.ndarray,
             rotation: bool) -> np.ndarray:
    """Spec Hermite spline; tangents (in, value, out per key) are scaled by the key interval."""
    u2, u3 = u * u, u * u * u
    out = ((2 * u3 - 3 * u2 + 1) * values[i0, 1] + (u3 - 2 * u2 + u) * dt * values[i0, 2]
           + (-2 * u3 + 3 * u2) * values[i1, 1] + (u3 - u2) * dt * values[i1, 0])
    return normalise(out) if rotation else out


def slerp(q0: np.ndarray, q1: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Shortest-path interpolation of quaternions [T, 4] by fractions [T, 1], as three.js (r187) does it.

    Follows the current three.js Quaternion.slerpFlat (used by QuaternionLinearInterpolant, what GLTFLoader's
    LINEAR rotation tracks play): keys are used as stored, so gltfpack's int16 keys (dequantised, not unit
    length) are not re-normalised first; equal keys give the first key; q1 is negated when the dot product is
    negative; at |dot| >= 0.9995 the result is a lerp normalised to unit length, below it the slerp weights
    sin((1-u)θ)/sin θ and sin(uθ)/sin θ with θ = acos(|dot|) (not normalised). Earlier three.js versions
    slerped down to sin²θ > EPSILON and normalised only then; quantised keys are where the two differ.
    """
    equal = np.all(q0 == q1, axis=-1, keepdims=True)
    dot = np.einsum("...i,...i->...", q0, q1)[..., None]
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    curved = dot < LERP_ABOVE
    theta = np.arccos(np.where(curved, dot, 0.0))
    sin = np.where(curved, np.sin(theta), 1.0)
    w0 = np.where(curved, np.sin((1.0 - u) * theta) / sin, 1.0 - u)
    w1 = np.where(curved, np.sin(u * theta) / sin, u)
    out = w0 * q0
    out += w1 * q1
    if not curved.all():
        out = np.where(curved, out, normalise(out))
    np.copyto(out, q0, where=equal)
    return out


def normalise(q: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / np.where(norm > 0, norm, 1.0)
