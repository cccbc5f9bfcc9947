"""Measures of generated motion against data: motion features, Fréchet distance, jerk, and text alignment through
the model-free motion captioner's labels (a labelled proxy: it never sees the prompt, only the motion).

Every clip is frames [T, N, 3] in frame-0-normalised units (frame 0 fits [-1, 1]^3), one fixed topology.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

LABEL_FIELDS = ("kind", "pattern", "speed", "direction", "rotation_axis")


def motion_features(frames: np.ndarray) -> np.ndarray:
    """A per-clip feature vector: RMS displacement from frame 0 per frame, RMS speed per frame step, RMS
    acceleration and jerk, and the share of displacement variance along each axis."""
    frames = np.asarray(frames, dtype=np.float64)
    displacement = frames - frames[:1]
    per_frame = np.sqrt((displacement[1:] ** 2).sum(-1).mean(-1))  # [T-1]
    velocity = np.diff(frames, axis=0)
    speed = np.sqrt((velocity**2).sum(-1).mean(-1))  # [T-1]
    acceleration = np.sqrt((np.diff(frames, 2, axis=0) ** 2).sum(-1).mean())
    axis_variance = (displacement**2).mean((0, 1))
    axis_share = axis_variance / max(axis_variance.sum(), 1e-12)
    return np.concatenate([per_frame, speed, [acceleration, mean_jerk(frames)], axis_share])


def mean_jerk(frames: np.ndarray) -> float:
    """Mean magnitude of the third finite difference of vertex positions (normalised units per frame^3)."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.shape[0] < 4:
        return 0.0
    return float(np.linalg.norm(np.diff(frames, 3, axis=0), axis=-1).mean())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [n, d] and b [m, d] (as FID)."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    root = root.real
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def motion_label(frames: np.ndarray, faces: np.ndarray, fps: float) -> dict:
    """The motion captioner's attributes of a clip (what its captions phrase): kind, pattern, speed, direction,
    rotation axis."""
    from stages.caption.motion import analyse_motion

    summary = analyse_motion(np.asarray(frames, dtype=np.float32), np.asarray(faces), fps)
    return {field: getattr(summary, field) for field in LABEL_FIELDS}


def label_agreement(a: dict, b: dict) -> float:
    """Share of the label fields on which two labels agree."""
    return sum(a[f] == b[f] for f in LABEL_FIELDS) / len(LABEL_FIELDS)


def retrieval_accuracy(generated: list[dict], prompts: list[dict], distractors: int, seed: int = 0) -> float:
    """Top-1 retrieval through labels: for each generated clip, its own prompt's label against `distractors` other
    prompts' labels drawn at random; a hit when its own scores highest (ties share the hit). Chance is
    1 / (distractors + 1) when labels differ."""
    rng = np.random.default_rng(seed)
    hits = 0.0
    for i, label in enumerate(generated):
        others = rng.choice([j for j in range(len(prompts)) if j != i], size=min(distractors, len(prompts) - 1), replace=False)
        scores = [label_agreement(label, prompts[i])] + [label_agreement(label, prompts[j]) for j in others]
        best = max(scores)
        if scores[0] == best:
            hits += 1.0 / scores.count(best)
    return hits / max(len(generated), 1)
