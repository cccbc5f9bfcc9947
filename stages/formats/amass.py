"""AMASS motions: read a motion .npz (no pickles, capped), package it with its body model's identity, and pose it.

A package (format "amass", the blob the pipeline stores) is a deterministic .npz: the motion's poses, trans, betas,
gender and frame rate, the sha256 of the motion file, and the path + sha256 of the body model to pose it with. The
body model itself is licensed and never copied into the job's output: workers read it from that path (on a cluster,
a path every node sees) and refuse it if its sha256 changed.
"""

from __future__ import annotations

import hashlib

import numpy as np

from stages.evaluate import BadData, LimitExceeded, Limits, MalformedAsset
from stages.formats.body_model import BodyModel, BodyModelError, load_body_model, pose_vertices
from stages.formats.frames import FrameScene
from stages.formats.npz import NpzError, read_npz, write_npz

GENDERS = ("male", "female", "neutral")
MOTION_KEYS = {"poses", "trans", "betas", "gender", "mocap_framerate", "mocap_frame_rate"}
PACKAGE_KEYS = {"poses", "trans", "betas", "gender", "fps", "source_sha256", "body_model_path", "body_model_sha256"}


class Motion:
    """One validated AMASS motion."""

    def __init__(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray, gender: str, fps: float):
        self.poses, self.trans, self.betas, self.gender, self.fps = poses, trans, betas, gender, fps


def _text(array: np.ndarray) -> str:
    value = array.item() if array.size == 1 else ""
    return (value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)).strip().lower()


def read_motion(data: bytes, name: str, limits: Limits) -> Motion:
    """The motion of an AMASS .npz; MalformedAsset / LimitExceeded / BadData name what is wrong."""
    try:
        arrays = read_npz(data, max_members=64, max_array_bytes=limits.max_file_bytes,
                          max_total_bytes=limits.max_file_bytes, wanted=MOTION_KEYS)
    except NpzError as exc:
        raise (LimitExceeded if exc.kind == "limit" else MalformedAsset)(name, str(exc)) from None
    missing = [k for k in ("poses", "trans", "betas") if k not in arrays]
    rate = arrays.get("mocap_framerate", arrays.get("mocap_frame_rate"))
    if missing or rate is None:
        raise MalformedAsset(name, "not an AMASS motion (needs poses, trans, betas, mocap_framerate; missing "
                                   f"{', '.join(missing + ([] if rate is not None else ['mocap_framerate']))})")
    poses, trans, betas = arrays["poses"], arrays["trans"], arrays["betas"]
    for key, array in (("poses", poses), ("trans", trans), ("betas", betas), ("mocap_framerate", rate)):
        if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
            raise MalformedAsset(name, f"{key} must be numeric, not {array.dtype}")
    if poses.ndim != 2 or poses.shape[1] % 3 or len(poses) < 1:
        raise MalformedAsset(name, f"poses must be [frames, 3 x joints], not {poses.shape}")
    if trans.shape != (len(poses), 3):
        raise MalformedAsset(name, f"trans must be [{len(poses)}, 3], not {trans.shape}")
    if len(poses) > limits.max_frames:
        raise LimitExceeded(name, f"{len(poses)} frames, over the {limits.max_frames} frame cap")
    fps = float(rate.reshape(-1)[0]) if rate.size == 1 else float("nan")
    if not 0 < fps <= 1000:
        raise BadData(name, f"mocap_framerate {fps!r} is not in (0, 1000]")
    for key, array in (("poses", poses), ("trans", trans), ("betas", betas)):
        if not np.isfinite(array).all():
            raise BadData(name, f"{key} has NaN or infinite values")
    gender = _text(arrays["gender"]) if "gender" in arrays else "neutral"
    if gender not in GENDERS:
        raise BadData(name, f"gender {gender!r} is not one of {', '.join(GENDERS)}")
    return Motion(poses.astype(np.float64), trans.astype(np.float64), betas.astype(np.float64).reshape(-1), gender, fps)


def check_fits(motion: Motion, model: BodyModel, name: str) -> None:
    """The motion's pose vector must have one axis-angle per joint of the body model."""
    if motion.poses.shape[1] != 3 * model.num_joints:
        raise MalformedAsset(name, f"poses have {motion.poses.shape[1]} values per frame but the body model has "
                                   f"{model.num_joints} joints ({3 * model.num_joints} values): SMPL-H motions need a "
                                   "SMPL-H model (52 joints), SMPL-X motions a SMPL-X model (55)")


def amass_package(data: bytes, motion: Motion, body_model_path: str, body_model_sha256: str) -> bytes:
    """The bytes the pipeline stores for one motion (deterministic)."""
    return write_npz({
        "poses": motion.poses, "trans": motion.trans, "betas": motion.betas, "gender": np.array(motion.gender),
        "fps": np.array(motion.fps), "source_sha256": np.array(hashlib.sha256(data).hexdigest()),
        "body_model_path": np.array(body_model_path), "body_model_sha256": np.array(body_model_sha256),
    })


def read_amass_package(data: bytes, name: str = "asset.amass", limits: Limits = Limits()) -> FrameScene:
    """A FrameScene posing the packaged motion with its body model (frame f at f / mocap_framerate)."""
    try:
        arrays = read_npz(data, max_members=16, max_array_bytes=limits.max_file_bytes,
                          max_total_bytes=limits.max_file_bytes, wanted=PACKAGE_KEYS)
    except NpzError as exc:
        raise (LimitExceeded if exc.kind == "limit" else MalformedAsset)(name, str(exc)) from None
    missing = sorted(PACKAGE_KEYS - set(arrays))
    if missing:
        raise MalformedAsset(name, f"not a DyMesh AMASS package (missing {', '.join(missing)})")
    motion = Motion(arrays["poses"], arrays["trans"], arrays["betas"], _text(arrays["gender"]),
                    float(arrays["fps"].reshape(-1)[0]))
    path = str(arrays["body_model_path"].item())
    try:
        model = load_body_model(path, str(arrays["body_model_sha256"].item()))
    except BodyModelError as exc:
        raise MalformedAsset(name, f"body model: {exc}") from None
    check_fits(motion, model, name)
    frames = len(motion.poses)
    if model.num_vertices > limits.max_vertices:
        raise LimitExceeded(name, f"body model has {model.num_vertices} vertices, over the {limits.max_vertices} cap")

    def frame(indices: np.ndarray) -> np.ndarray:
        return pose_vertices(model, motion.betas, motion.poses[indices], motion.trans[indices])

    return FrameScene(name, model.faces, model.num_vertices, frames, motion.fps, frame, limits,
                      animation_name="amass", details={"format": "AMASS motion", "gender": motion.gender,
                                                       "body_model": path, "joints": model.num_joints})


def motion_scene(data: bytes, body_model_path: str, name: str, limits: Limits = Limits()) -> FrameScene:
    """A FrameScene of an AMASS .npz file posed with the body model at `body_model_path` (for the commands)."""
    motion = read_motion(data, name, limits)
    try:
        model = load_body_model(body_model_path)
    except BodyModelError as exc:
        raise MalformedAsset(name, f"body model: {exc}") from None
    return read_amass_package(amass_package(data, motion, body_model_path, model.sha256), name, limits)
