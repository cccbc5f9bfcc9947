"""SMPL-family body models (SMPL-H, SMPL-X, SMPL) from .npz files, and linear blend skinning vectorised over frames.

Keys (the official .npz layout): v_template [V, 3], shapedirs [V, 3, S], posedirs [V, 3, 9 (J - 1)],
J_regressor [J, V], weights [V, J], kintree_table [2, J] (row 0: parents), f [F, 3]. Body models are licensed: the
user supplies them; nothing here downloads or bundles one. `.pkl` releases are pickles and are refused.

    vertices = pose_vertices(model, betas, poses, trans)   # [T, V, 3] float32, as smplx computes them
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

import numpy as np

from stages.formats.npz import NpzError, read_npz

KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
MAX_BODY_MODEL_BYTES = 2048 * 1024 * 1024  # a SMPL-X .npz with 400 shape components is ~0.5 GB uncompressed
SKIN_CHUNK_BYTES = 64 * 1024 * 1024  # per-vertex blended transforms are computed this many bytes at a time


class BodyModelError(ValueError):
    """A body model that cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class BodyModel:
    v_template: np.ndarray  # [V, 3] float64
    shapedirs: np.ndarray  # [V, 3, S]
    posedirs: np.ndarray  # [9 (J - 1), 3 V]: pose feature -> vertex offsets
    J_regressor: np.ndarray  # [J, V]
    weights: np.ndarray  # [V, J]
    parents: np.ndarray  # [J] int64, parents[0] = -1, parents[j] < j
    faces: np.ndarray  # [F, 3] int32
    sha256: str

    @property
    def num_joints(self) -> int:
        return int(self.J_regressor.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])


def body_model_from_bytes(data: bytes, name: str) -> BodyModel:
    """Validate the arrays of a body-model .npz (shapes, index ranges, finite values, a parent-first tree)."""
    try:
        arrays = read_npz(data, max_members=256, max_array_bytes=MAX_BODY_MODEL_BYTES,
                          max_total_bytes=MAX_BODY_MODEL_BYTES, wanted=set(KEYS))
    except NpzError as exc:
        raise BodyModelError(f"{name}: {exc}") from None
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise BodyModelError(f"{name}: not a SMPL-family .npz body model (missing {', '.join(missing)})")
    template = arrays["v_template"].astype(np.float64)
    if template.ndim != 2 or template.shape[1] != 3 or len(template) < 1:
        raise BodyModelError(f"{name}: v_template must be [V, 3], not {template.shape}")
    v = len(template)
    regressor = arrays["J_regressor"].astype(np.float64)
    if regressor.ndim != 2 or regressor.shape[1] != v or regressor.shape[0] < 1:
        raise BodyModelError(f"{name}: J_regressor must be [J, {v}], not {regressor.shape}")
    j = regressor.shape[0]
    expected = {"shapedirs": (v, 3, None), "posedirs": (v, 3, 9 * (j - 1)), "weights": (v, j), "kintree_table": (2, j)}
    for key, shape in expected.items():
        got = arrays[key].shape
        if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
            raise BodyModelError(f"{name}: {key} must be {tuple('S' if s is None else s for s in shape)}, not {got}")
    faces = arrays["f"]
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise BodyModelError(f"{name}: f must be integer [F, 3], not {faces.dtype} {faces.shape}")
    if len(faces) and (faces.min() < 0 or faces.max() >= v):
        raise BodyModelError(f"{name}: face indices outside 0..{v - 1}")
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    if not np.issubdtype(arrays["kintree_table"].dtype, np.integer) or (parents[1:] < 0).any() or \
            (parents[1:] >= np.arange(1, j)).any():
        raise BodyModelError(f"{name}: kintree_table parents must come before their children")
    model = BodyModel(template, arrays["shapedirs"].astype(np.float64),
                      arrays["posedirs"].astype(np.float64).reshape(-1, 9 * (j - 1)).T.copy(), regressor,
                      arrays["weights"].astype(np.float64), parents, faces.astype(np.int32),
                      hashlib.sha256(data).hexdigest())
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        if not np.isfinite(getattr(model, key)).all():
            raise BodyModelError(f"{name}: {key} has NaN or infinite values")
    return model


_CACHE: dict[tuple, BodyModel] = {}
_LOCK = threading.Lock()


def load_body_model(path: str, expected_sha256: str | None = None) -> BodyModel:
    """The body model at `path` (cached per process by path, size and mtime); BodyModelError when it cannot be
    read, is not a valid model, or is not the file (`expected_sha256`) a package was built with."""
    if path.lower().endswith(".pkl"):
        raise BodyModelError(f"{path}: .pkl body models are pickles and are refused; use the .npz release "
                             "(SMPL-H: the AMASS 'Extended SMPL+H' npz; SMPL-X: SMPLX_<GENDER>.npz)")
    try:
        stat = os.stat(path)
        if not os.path.isfile(path):
            raise BodyModelError(f"{path}: not a regular file")
        if stat.st_size > MAX_BODY_MODEL_BYTES:
            raise BodyModelError(f"{path}: {stat.st_size} bytes, over the {MAX_BODY_MODEL_BYTES} byte cap")
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
        with _LOCK:
            model = _CACHE.get(key)
        if model is None:
            with open(path, "rb") as handle:
                data = handle.read(MAX_BODY_MODEL_BYTES + 1)
            model = body_model_from_bytes(data, path)
            with _LOCK:
                _CACHE.clear()  # one model per process at a time: they are hundreds of MB
                _CACHE[key] = model
    except OSError as exc:
        raise BodyModelError(f"{path}: cannot read the body model ({exc.strerror or exc})") from None
    if expected_sha256 is not None and model.sha256 != expected_sha256:
        raise BodyModelError(f"{path}: the body model changed since harvest (sha256 {model.sha256[:12]}, expected "
                             f"{expected_sha256[:12]}); re-run the job from a fresh output folder")
    return model


def rodrigues(axis_angles: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] of axis-angle vectors [..., 3] (float64)."""
    r = np.asarray(axis_angles, dtype=np.float64)
    angle = np.linalg.norm(r, axis=-1, keepdims=True)
    axis = r / np.where(angle > 0, angle, 1.0)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*r.shape[:-1], 3, 3)
    sin, cos = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + sin * k + (1 - cos) * (k @ k)


def pose_vertices(model: BodyModel, betas: np.ndarray, poses: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Vertices [T, V, 3] float32: shape blend shapes, pose blend shapes, then linear blend skinning, plus `trans`.

    `poses` is [T, 3 J] axis-angle per joint (root first), `trans` [T, 3], `betas` [B] (the first min(B, S) used).
    """
    poses = np.asarray(poses, dtype=np.float64)
    count, joints = len(poses), model.num_joints
    if poses.shape != (count, 3 * joints):
        raise ValueError(f"poses must be [T, {3 * joints}] for this body model, not {poses.shape}")
    betas = np.asarray(betas, dtype=np.float64).reshape(-1)
    used = min(len(betas), model.shapedirs.shape[2])
    shaped = model.v_template + model.shapedirs[:, :, :used] @ betas[:used]
    rest_joints = model.J_regressor @ shaped  # [J, 3]
    rotations = rodrigues(poses.reshape(count, joints, 3))  # [T, J, 3, 3]
    feature = (rotations[:, 1:] - np.eye(3)).reshape(count, -1)
    posed = shaped[None] + (feature @ model.posedirs).reshape(count, -1, 3)
    relative = rest_joints.copy()
    relative[1:] -= rest_joints[model.parents[1:]]
    local = np.zeros((count, joints, 4, 4))
    local[..., :3, :3] = rotations
    local[..., :3, 3] = relative
    local[..., 3, 3] = 1.0
    world = np.empty_like(local)
    world[:, 0] = local[:, 0]
    for j in range(1, joints):
        world[:, j] = world[:, model.parents[j]] @ local[:, j]
    world[..., :3, 3] -= np.einsum("tjab,jb->tja", world[..., :3, :3], rest_joints)  # skin from the rest pose
    out = np.empty((count, model.num_vertices, 3), dtype=np.float32)
    palette = world[..., :3, :].reshape(count, joints, 12)
    chunk = max(1, SKIN_CHUNK_BYTES // (model.num_vertices * 12 * 8))
    trans = np.asarray(trans, dtype=np.float64).reshape(count, 3)
    for start in range(0, count, chunk):
        blended = (model.weights @ palette[start:start + chunk]).reshape(-1, model.num_vertices, 3, 4)
        points = posed[start:start + chunk]
        moved = np.einsum("tvab,tvb->tva", blended[..., :3], points) + blended[..., 3]
        out[start:start + chunk] = moved + trans[start:start + chunk, None]
    return out
