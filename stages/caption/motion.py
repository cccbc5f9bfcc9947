"""Describe a clip's motion from its trajectories alone: which parts move, how far, how fast, periodic or not,
and whether it is a rigid rotation or translation, a uniform scaling (pulsing) or a non-rigid deformation.

All lengths are in units of the frame-0 bounding-box diagonal, so thresholds do not depend on the asset's scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

STATIC_DISPLACEMENT = 0.01  # a vertex moving less than this (x bbox diagonal) is still
PART_DISPLACEMENT = 0.03  # a vertex moving more than this, once the body's own motion is removed, is in a moving part
RIGID_TOLERANCE = 0.08  # rms fit residual / rms displacement under which a motion counts as rigid (or similar)
RIGID_ABSOLUTE = 0.004  # ... or under this absolute rms residual
MIN_ROTATION_DEGREES = 8.0
MIN_TRANSLATION = 0.04
MIN_SCALE_CHANGE = 0.03  # uniform scaling
MIN_PULSE_CHANGE = 0.02  # mean radius change of a non-uniform, mostly radial deformation
PART_RIGID_TOLERANCE = 0.3  # looser for parts: a skinned limb bends a little but still swings about a joint
MAX_PARTS = 3


@dataclass
class PartMotion:
    """One moving part: where it is on the body, how big, and how it moves relative to the body."""

    location: str  # e.g. "upper right", "lower", "central"
    fraction: float  # share of the vertices
    motion: str  # swing | slide | deform
    degrees: float  # largest rotation from frame 0 (swing); for a one-way spin, the total turned
    displacement: float  # largest vertex displacement relative to the body
    pattern: str = "none"  # as MotionSummary.pattern, for this part alone
    period_seconds: float | None = None


@dataclass
class MotionSummary:
    """What `analyse_motion` found; `describe` in `stages.caption.phrasing` turns it into sentences."""

    kind: str  # static | rigid | scaling | pulsing | articulated | deforming
    pattern: str  # periodic | back-and-forth | there-and-back | one-way | none
    period_seconds: float | None
    speed: str  # slow | moderate | fast
    extent: float  # largest vertex displacement from frame 0
    moving_fraction: float  # share of vertices that move at all
    rotation_degrees: float = 0.0  # rigid body: total turned (signed sum of steps, absolute)
    rotation_axis: str = ""  # vertical | left-right | front-back
    translation: float = 0.0  # rigid body: largest centroid displacement
    direction: str = ""  # dominant translation direction: up | down | sideways (x) | forward | backward (z)
    scale_change: float = 0.0  # scaling: (largest - smallest scale) / 1
    body_moves: bool = False  # articulated/deforming: the body as a whole also moves (see direction)
    radial: float = 0.0  # share of displacement along the direction from the centroid (1 = pure swelling)
    parts: list[PartMotion] = field(default_factory=list)


def similarity_fits(source: np.ndarray, targets: np.ndarray, with_scale: bool) -> list[tuple]:
    """Kabsch/Umeyama for every frame at once: [(scale, rotation [3,3], translation [3], rms residual)] mapping
    source [N,3] onto each of targets [T,N,3]."""
    mu_s, mu_t = source.mean(axis=0), targets.mean(axis=1)
    a, b = source - mu_s, targets - mu_t[:, None]
    u, sigma, vt = np.linalg.svd(np.einsum("tni,nj->tij", b, a))
    d = np.sign(np.linalg.det(u @ vt))
    correction = np.ones((len(targets), 3))
    correction[:, 2] = np.where(d == 0, 1.0, d)
    rotations = u @ (correction[:, :, None] * vt)
    variance = float((a**2).sum())
    if with_scale and variance > 0:
        scales = (sigma * correction).sum(axis=1) / variance
    else:
        scales = np.ones(len(targets))
    translations = mu_t - scales[:, None] * (rotations @ mu_s)
    predicted = scales[:, None, None] * np.einsum("nj,tij->tni", a, rotations)
    residuals = np.sqrt(((predicted - b) ** 2).sum(axis=-1).mean(axis=-1))
    return [(float(scales[t]), rotations[t], translations[t], float(residuals[t])) for t in range(len(targets))]


def rotation_vector(rotation: np.ndarray) -> np.ndarray:
    """Axis * angle (radians) of a rotation matrix."""
    angle = math.acos(float(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)))
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # angle ~ 180 degrees: axis from the symmetric part
        w, v = np.linalg.eigh((rotation + np.eye(3)) / 2.0)
        return v[:, -1] * angle
    return axis / norm * angle


def motion_pattern(signal: np.ndarray, fps: float) -> tuple[str, float | None]:
    """Classify a 1-D motion signal over time: periodic, back-and-forth, there-and-back, one-way or none."""
    signal = np.asarray(signal, dtype=np.float64)
    span = float(signal.max() - signal.min()) if len(signal) else 0.0
    if len(signal) < 3 or span < 1e-9:
        return "none", None
    # Turning points with hysteresis (10% of the range) so that jitter is not counted.
    threshold = 0.1 * span
    reversals, direction, extreme = 0, 0, signal[0]
    for value in signal[1:]:
        if direction == 0:
            if abs(value - extreme) > threshold:
                direction, extreme = (1 if value > extreme else -1), value
        elif direction * (value - extreme) > 0:
            extreme = value
        elif direction * (extreme - value) > threshold:
            reversals, direction, extreme = reversals + 1, -direction, value
    centred = signal - signal.mean()
    energy = float((centred**2).sum())
    period = None
    if reversals >= 2 and energy > 0:
        lags = np.arange(2, len(signal) - 1)
        n = len(signal)
        correlation = np.array([(centred[:-lag] * centred[lag:]).sum() / energy * n / (n - lag) for lag in lags])
        dipped = np.flatnonzero(correlation < 0)
        if len(dipped):
            after = correlation[dipped[0]:]
            best = int(np.argmax(after))
            if after[best] > 0.4:
                period = float(lags[dipped[0] + best] / fps)
        return ("periodic" if period is not None else "back-and-forth"), period
    if reversals >= 2:
        return "back-and-forth", None
    return ("there-and-back" if reversals == 1 else "one-way"), None


def _speed_word(vertices: np.ndarray, fps: float) -> str:
    step = np.linalg.norm(np.diff(vertices, axis=0), axis=-1).max() * fps if len(vertices) > 1 else 0.0
    return "slow" if step < 0.35 else "moderate" if step < 1.2 else "fast"


def _direction_word(vector: np.ndarray) -> str:
    axis = int(np.argmax(np.abs(vector)))
    positive = vector[axis] > 0
    return [("sideways", "sideways"), ("up", "down"), ("forward", "backward")][axis][0 if positive else 1]


def _axis_word(axis: np.ndarray) -> str:
    return ("left-right", "vertical", "front-back")[int(np.argmax(np.abs(axis)))]


def _location_word(offset: np.ndarray) -> str:
    """Where a part sits relative to the body centre (normalised frame-0 coordinates)."""
    words = []
    if offset[1] > 0.12:
        words.append("upper")
    elif offset[1] < -0.12:
        words.append("lower")
    if offset[0] > 0.12:
        words.append("right")
    elif offset[0] < -0.12:
        words.append("left")
    if not words:
        words.append("front" if offset[2] > 0.12 else "back" if offset[2] < -0.12 else "central")
    return " ".join(words)


def _rotation_track(rotations: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Signed cumulative angle (degrees) about the main rotation axis, and that axis."""
    steps = [rotation_vector(rotations[t] @ rotations[t - 1].T) for t in range(1, len(rotations))]
    if not steps:
        return np.zeros(1), np.array([0.0, 1.0, 0.0])
    total = np.array([rotation_vector(r) for r in rotations])
    main = total[int(np.argmax(np.linalg.norm(total, axis=1)))]
    if np.linalg.norm(main) < 1e-9:
        main = steps[int(np.argmax([np.linalg.norm(s) for s in steps]))]
    axis = main / (np.linalg.norm(main) or 1.0)
    angles = np.concatenate([[0.0], np.cumsum([float(s @ axis) for s in steps])])
    return np.degrees(angles), axis


def _components(vertex_mask: np.ndarray, faces: np.ndarray) -> list[np.ndarray]:
    """Connected groups of the masked vertices through face edges, largest first (ties by first index)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    index = np.flatnonzero(vertex_mask)
    if len(index) == 0:
        return []
    local = np.full(len(vertex_mask), -1)
    local[index] = np.arange(len(index))
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).reshape(-1, 2)
    edges = local[edges]
    edges = edges[(edges >= 0).all(axis=1)]
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(index), len(index)))
    count, labels = connected_components(graph, directed=False)
    groups = [index[labels == k] for k in range(count)]
    return sorted(groups, key=lambda g: (-len(g), int(g[0])))


def _fit_track(frames: np.ndarray, with_scale: bool = False):
    fits = similarity_fits(frames[0], frames, with_scale)
    return fits, np.array([f[3] for f in fits])


def _is_explained(residuals: np.ndarray, displacement: np.ndarray, tolerance: float = RIGID_TOLERANCE) -> bool:
    rms = float(np.sqrt((displacement**2).sum(axis=-1).mean(axis=-1)).max())
    return float(residuals.max()) <= max(RIGID_ABSOLUTE, tolerance * rms)


def _apply(fits: list[tuple], points: np.ndarray) -> np.ndarray:
    """Points [N,3] moved by each frame's fitted transform -> [T,N,3]."""
    return np.stack([s * points @ r.T + t for s, r, t, _ in fits])


def _body_fits(x: np.ndarray, rounds: int = 3) -> list[tuple]:
    """Per-frame rigid motion of the body: refit on the vertices that follow the current fit (the largest
    rigidly moving set), so that limbs or wheels with many vertices do not drag the body's estimate."""
    inliers = np.ones(x.shape[1], dtype=bool)
    fits = similarity_fits(x[0], x, with_scale=False)
    for _ in range(rounds):
        error = np.linalg.norm(x - _apply(fits, x[0]), axis=-1).max(axis=0)
        chosen = error <= max(PART_DISPLACEMENT, float(np.quantile(error, 0.3)))
        if chosen.sum() < 4 or (chosen == inliers).all():
            break
        inliers = chosen
        fits = similarity_fits(x[0, inliers], x[:, inliers], with_scale=False)
    return fits


def analyse_motion(vertices: np.ndarray, faces: np.ndarray, fps: float) -> MotionSummary:
    """Summarise the motion of a clip (vertices [T, N, 3], faces [F, 3])."""
    frames = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    low, high = frames[0].min(axis=0), frames[0].max(axis=0)
    diagonal = float(np.linalg.norm(high - low)) or 1.0
    x = (frames - (low + high) / 2.0) / diagonal
    displacement = x - x[0]
    distance = np.linalg.norm(displacement, axis=-1)  # [T, N]
    extent = float(distance.max()) if distance.size else 0.0
    moving_fraction = float((distance.max(axis=0) > STATIC_DISPLACEMENT).mean()) if distance.size else 0.0
    speed = _speed_word(x, fps)
    if len(x) < 2 or extent < STATIC_DISPLACEMENT:
        return MotionSummary("static", "none", None, "slow", extent, moving_fraction)

    rigid_fits, rigid_residual = _fit_track(x)
    if _is_explained(rigid_residual, displacement):
        angles, axis = _rotation_track([f[1] for f in rigid_fits])
        rotates = float(np.abs(angles).max()) >= MIN_ROTATION_DEGREES
        centroid_path = x.mean(axis=1) - x[0].mean(axis=0)
        if rotates:  # translation of the best pivot, so that turning about an off-centre point is not a move
            lhs = np.concatenate([f[1] - np.eye(3) for f in rigid_fits])
            rhs = -np.concatenate([f[2] for f in rigid_fits])
            pivot = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
            centroid_path = np.stack([f[1] @ pivot + f[2] - pivot for f in rigid_fits])
        translation = float(np.linalg.norm(centroid_path, axis=1).max())
        if rotates:
            pattern, period = motion_pattern(angles, fps)
        else:
            _, _, vt = np.linalg.svd(centroid_path - centroid_path.mean(axis=0), full_matrices=False)
            pattern, period = motion_pattern(centroid_path @ vt[0], fps)
        turned = float(abs(angles[-1]) if pattern == "one-way" else np.abs(angles).max())
        far = centroid_path[int(np.argmax(np.linalg.norm(centroid_path, axis=1)))]
        return MotionSummary(
            "rigid", pattern, period, speed, extent, moving_fraction,
            rotation_degrees=turned if rotates else 0.0,
            rotation_axis=_axis_word(axis) if rotates else "",
            translation=translation if translation >= MIN_TRANSLATION else 0.0,
            direction=_direction_word(far) if translation >= MIN_TRANSLATION else "",
        )

    scaled_fits, scaled_residual = _fit_track(x, with_scale=True)
    scales = np.array([f[0] for f in scaled_fits])
    if _is_explained(scaled_residual, displacement) and scales.max() - scales.min() >= MIN_SCALE_CHANGE:
        pattern, period = motion_pattern(scales, fps)
        return MotionSummary("scaling", pattern, period, speed, extent, moving_fraction,
                             scale_change=float(scales.max() - scales.min()))

    # Non-rigid: the body is what stays still, or failing that the best rigid fit of the whole.
    still = distance.max(axis=0) <= STATIC_DISPLACEMENT
    body_fits = _body_fits(x)
    body_path = np.stack([f[2] + f[1] @ x[0].mean(axis=0) for f in body_fits]) - x[0].mean(axis=0)
    body_angles, _ = _rotation_track([f[1] for f in body_fits])
    if still.mean() >= 0.2:
        relative, body_moves = displacement, False
    else:
        relative = x - _apply(body_fits, x[0])
        body_moves = bool(np.linalg.norm(body_path, axis=1).max() >= MIN_TRANSLATION
                          or np.abs(body_angles).max() >= MIN_ROTATION_DEGREES)
    centred = x - x.mean(axis=1, keepdims=True)
    radii = np.linalg.norm(centred, axis=-1).mean(axis=1)
    scale_change = float((radii.max() - radii.min()) / max(radii[0], 1e-9))
    outward = centred[0] / np.maximum(np.linalg.norm(centred[0], axis=-1, keepdims=True), 1e-9)
    radial_energy = float(((relative * outward[None]).sum(axis=-1) ** 2).sum())
    radial = radial_energy / max(float((relative**2).sum()), 1e-12)
    direction = ""
    if body_moves and np.linalg.norm(body_path, axis=1).max() >= MIN_TRANSLATION:
        direction = _direction_word(body_path[int(np.argmax(np.linalg.norm(body_path, axis=1)))])

    relative_distance = np.linalg.norm(relative, axis=-1).max(axis=0)
    moving = relative_distance > PART_DISPLACEMENT
    groups = [g for g in _components(moving, faces) if len(g) >= max(4, 0.03 * moving.sum())]
    body_center = x[0].mean(axis=0)
    parts: list[PartMotion] = []
    for group in groups[:MAX_PARTS]:
        part = x[0, group][None] + relative[:, group]  # positions with the body's own motion removed
        fits, residual = _fit_track(part)
        part_displacement = part - part[0]
        if _is_explained(residual, part_displacement, PART_RIGID_TOLERANCE):
            angles, _ = _rotation_track([f[1] for f in fits])
            degrees = float(np.abs(angles).max())
            motion = "swing" if degrees >= MIN_ROTATION_DEGREES else "slide"
            along = part_displacement.mean(axis=1) @ _main_direction(part_displacement)
            signal = angles if motion == "swing" else along
        else:
            degrees, motion = 0.0, "deform"
            signal = np.linalg.norm(part_displacement, axis=-1).mean(axis=1)
        pattern, period = motion_pattern(signal, fps)
        if motion == "swing" and pattern == "one-way":
            degrees = float(abs(angles[-1]))
        parts.append(PartMotion(
            location=_location_word(part[0].mean(axis=0) - body_center),
            fraction=float(len(group) / x.shape[1]),
            motion=motion,
            degrees=degrees,
            displacement=float(np.linalg.norm(part_displacement, axis=-1).max()),
            pattern=pattern,
            period_seconds=period,
        ))
    whole = _principal_signal(relative.reshape(len(x), -1))
    separable = bool(parts) and sum(p.fraction for p in parts) < 0.6
    if separable:
        pattern, period = parts[0].pattern, parts[0].period_seconds
    else:
        pattern, period = motion_pattern(radii if radial >= 0.5 else whole, fps)
    if separable and all(p.motion != "deform" for p in parts):
        kind = "articulated"
    elif not separable and radial >= 0.5 and scale_change >= MIN_PULSE_CHANGE:
        kind = "pulsing"
    else:
        kind = "deforming"
    return MotionSummary(
        kind, pattern, period, speed, extent, moving_fraction, scale_change=scale_change,
        body_moves=body_moves, direction=direction, radial=radial, parts=parts if separable else [],
    )


def _principal_signal(flat: np.ndarray) -> np.ndarray:
    """The first principal component over time of flattened displacements [T, D] (via the small T x T Gram
    matrix: a [T, D] SVD is slow under multi-threaded BLAS on busy machines)."""
    centred = flat - flat.mean(axis=0)
    gram = np.einsum("ik,jk->ij", centred, centred)
    values, vectors = np.linalg.eigh(gram)
    return vectors[:, -1] * np.sqrt(max(float(values[-1]), 0.0))


def _main_direction(displacement: np.ndarray) -> np.ndarray:
    """Principal direction of a part's mean displacement over time."""
    path = displacement.mean(axis=1)
    _, _, vt = np.linalg.svd(path - path.mean(axis=0), full_matrices=False)
    return vt[0]
