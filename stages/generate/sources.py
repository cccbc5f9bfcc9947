"""Synthetic inputs of the non-glTF sources, for tests, demos and jobs/mixed-sources.yaml: a small SMPL-H-layout
body model (NOT the licensed SMPL-H: a smooth blob with the real key layout and joint tree), AMASS-layout motions
and DeformingThings4D .anime files. Same seed, same bytes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from stages.formats.anime import write_anime
from stages.formats.npz import write_npz

# SMPL-H's kinematic tree (22 body joints, then 15 per hand), parents before children
SMPLH_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                 20, 22, 23, 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35,
                 21, 37, 38, 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50]


def sphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Icosphere vertices [V, 3] and faces [F, 3]."""
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def synthetic_body_model(seed: int = 0, subdivisions: int = 3, shape_components: int = 16,
                         parents: list[int] = SMPLH_PARENTS) -> dict[str, np.ndarray]:
    """Arrays of a body model with the official .npz keys (plus smplx's SMPL-H hand keys)."""
    rng = np.random.default_rng(seed)
    unit, faces = sphere(subdivisions)
    template = unit * np.array([0.25, 0.9, 0.15])  # a tall ellipsoid, about a person's size
    v, j = len(template), len(parents)
    depth = np.zeros(j)
    for k in range(1, j):
        depth[k] = depth[parents[k]] + 1
    anchors = rng.choice(v, size=j, replace=False)  # each joint sits near a surface point, pulled inwards
    regressor = np.zeros((j, v))
    near = np.argsort(((template[None] - template[anchors][:, None]) ** 2).sum(-1), axis=1)[:, :6]
    regressor[np.arange(j)[:, None], near] = 1 / 6
    joints = 0.5 * (regressor @ template)
    distance = np.linalg.norm(template[:, None] - joints[None], axis=-1)
    weights = np.exp(-distance / 0.08)
    weights /= weights.sum(axis=1, keepdims=True)
    return {
        "v_template": template,
        "shapedirs": rng.normal(0, 0.01, (v, 3, shape_components)),
        "posedirs": rng.normal(0, 0.002, (v, 3, 9 * (j - 1))),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.stack([np.array([2**32 - 1] + parents[1:], dtype=np.int64), np.arange(j)]),
        "f": faces.astype(np.uint32),
        "hands_componentsl": np.eye(45), "hands_componentsr": np.eye(45),
        "hands_meanl": np.zeros(45), "hands_meanr": np.zeros(45),
    }


def synthetic_motion(seed: int = 0, frames: int = 60, fps: float = 60.0, joints: int = 52,
                     gender: str = "neutral", betas: int = 16) -> dict[str, np.ndarray]:
    """Arrays of an AMASS-layout motion: smooth joint rotations and a walk forward."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    amplitude = rng.uniform(0.1, 0.6, (1, joints * 3))
    phase = rng.uniform(0, 2 * np.pi, (1, joints * 3))
    speed = rng.uniform(0.5, 2.0, (1, joints * 3))
    poses = amplitude * np.sin(2 * np.pi * speed * t[:, None] + phase)
    trans = np.stack([0.3 * t, 0.05 * np.sin(4 * np.pi * t), np.zeros_like(t)], axis=1)
    return {"poses": poses, "trans": trans, "betas": rng.normal(0, 1, betas), "gender": np.array(gender),
            "mocap_framerate": np.array(float(fps)), "dmpls": np.zeros((frames, 8))}


def synthetic_anime(seed: int = 0, frames: int = 40, subdivisions: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Frames [F, V, 3] float32 and faces of a wobbling, drifting sphere (fixed topology)."""
    rng = np.random.default_rng(seed)
    unit, faces = sphere(subdivisions)
    t = np.arange(frames)[:, None, None] / 30.0
    wave = 0.15 * np.sin(2 * np.pi * (t * rng.uniform(0.5, 1.5) + unit[None, :, :1] * rng.uniform(1, 3)))
    frames_ = unit[None] * (1 + wave) + np.array([0.2, 0.0, 0.0]) * t
    return frames_.astype(np.float32), faces


def write_source_inputs(folder: str | Path, seed: int = 0, motions: int = 2, anime: int = 2) -> dict[str, list[str]]:
    """Write a body model, AMASS-layout motions and .anime files under `folder`; returns the paths by kind."""
    folder = Path(folder)
    written: dict[str, list[str]] = {"body_model": [], "amass": [], "dt4d": []}
    (folder / "body_models" / "neutral").mkdir(parents=True, exist_ok=True)
    model_path = folder / "body_models" / "neutral" / "model.npz"
    model_path.write_bytes(write_npz(synthetic_body_model(seed)))
    written["body_model"].append(str(model_path))
    (folder / "amass").mkdir(exist_ok=True)
    for k in range(motions):
        path = folder / "amass" / f"motion_{k:02d}_poses.npz"
        path.write_bytes(write_npz(synthetic_motion(seed + k, frames=120)))
        written["amass"].append(str(path))
    (folder / "dt4d").mkdir(exist_ok=True)
    for k in range(anime):
        path = folder / "dt4d" / f"blob{k:02d}" / f"blob{k:02d}.anime"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(write_anime(*synthetic_anime(seed + k, frames=60, subdivisions=2)))
        written["dt4d"].append(str(path))
    return written


def write_mixed_inputs(folder: str | Path, seed: int = 0, fbx: bool = True) -> dict[str, list[str]]:
    """Every input of jobs/mixed-sources.yaml under `folder`: generated GLBs (gltf/), .anime files (dt4d/), AMASS
    motions (amass/) with a synthetic SMPL-H-layout body model (body_models/), and FBX copies of generated skinned
    creatures made by Blender (fbx/; needs bpy, skipped with `fbx=False`)."""
    from stages.generate import generate_assets

    folder = Path(folder)
    written = write_source_inputs(folder, seed=seed)
    written["gltf"] = [str(p) for p in generate_assets(3, seed, folder / "gltf", detail=0.5)]
    written["fbx"] = []
    if fbx:
        from stages.generate.fbx import gltf_to_fbx

        with tempfile.TemporaryDirectory(prefix="dymesh-fbx-") as scratch:
            creatures = generate_assets(4, seed + 1, scratch, detail=0.5)[::3]  # kinds cycle: creatures
            pairs = [(path, folder / "fbx" / (path.stem + ".fbx")) for path in creatures]
            gltf_to_fbx(pairs)
        written["fbx"] = [str(target) for _, target in pairs]
    return written
