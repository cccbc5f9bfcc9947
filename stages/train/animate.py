"""`dymesh animate`: encode a mesh's rest pose, sample a trajectory latent from text, decode, write an animated GLB.

The GLB holds the rest mesh plus one morph target per frame (POSITION deltas from frame 0) and one animation whose
`weights` channel is keyed STEP at t = k / fps with a one-hot weight vector, so frame k shows target k exactly.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FLOAT, UINT32 = 5126, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


class GLBBuilder:
    """Accumulates accessors into one binary buffer (4-byte aligned)."""

    def __init__(self):
        self.binary = bytearray()
        self.buffer_views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, array: np.ndarray, kind: str, component: int, target: int | None = None,
            bounds: bool = False) -> int:
        data = np.ascontiguousarray(array, dtype="<f4" if component == FLOAT else "<u4")
        view = {"buffer": 0, "byteOffset": len(self.binary), "byteLength": data.nbytes}
        if target is not None:
            view["target"] = target
        self.binary += data.tobytes()
        self.binary += b"\x00" * (-len(self.binary) % 4)
        self.buffer_views.append(view)
        width = {"SCALAR": 1, "VEC3": 3}[kind]
        accessor = {"bufferView": len(self.buffer_views) - 1, "componentType": component,
                    "count": int(data.size // width), "type": kind}
        if bounds:
            flat = data.reshape(-1, width).astype(np.float64)
            accessor["min"] = [float(x) for x in flat.min(0)]
            accessor["max"] = [float(x) for x in flat.max(0)]
        self.accessors.append(accessor)
        return len(self.accessors) - 1


def key_times(count: int, fps: float) -> np.ndarray:
    """float32 key times k / fps rounded down, so sampling at exactly k / fps (float64) lands on key k."""
    exact = np.arange(count, dtype=np.float64) / fps
    times = exact.astype(np.float32)
    above = times.astype(np.float64) > exact
    times[above] = np.nextafter(times[above], np.float32(-np.inf))
    return times


def animated_glb(frames: np.ndarray, faces: np.ndarray, fps: float, name: str = "dymesh", extras: dict | None = None
                 ) -> bytes:
    """GLB bytes for frames [T, N, 3] float32 over faces [F, 3]: rest mesh = frame 0, morph target k = frame k."""
    frames = np.asarray(frames, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    count, n = frames.shape[0], frames.shape[1]
    if count < 1 or n < 1 or frames.shape[2] != 3:
        raise ValueError(f"frames must be [T, N, 3] with T, N >= 1, got {frames.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= n):
        raise ValueError("faces index vertices outside the mesh")
    glb = GLBBuilder()
    position = glb.add(frames[0], "VEC3", FLOAT, ARRAY_BUFFER, bounds=True)
    primitive: dict = {"attributes": {"POSITION": position}, "mode": 4}
    if faces.size:
        primitive["indices"] = glb.add(faces.reshape(-1), "SCALAR", UINT32, ELEMENT_ARRAY_BUFFER)
    primitive["targets"] = [
        {"POSITION": glb.add(frames[k] - frames[0], "VEC3", FLOAT, ARRAY_BUFFER, bounds=True)} for k in range(count)
    ]
    times = glb.add(key_times(count, fps), "SCALAR", FLOAT, bounds=True)
    weights = glb.add(np.eye(count, dtype=np.float32).reshape(-1), "SCALAR", FLOAT)
    document = {
        "asset": {"version": "2.0", "generator": "dymesh animate", "extras": extras or {}},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"name": name, "primitives": [primitive], "weights": [0.0] * count,
                    "extras": {"targetNames": [f"frame_{k:03d}" for k in range(count)]}}],
        "animations": [{
            "name": "dymesh",
            "samplers": [{"input": times, "output": weights, "interpolation": "STEP"}],
            "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}],
        }],
        "buffers": [{"byteLength": len(glb.binary)}],
        "bufferViews": glb.buffer_views,
        "accessors": glb.accessors,
    }
    text = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 4)
    binary = bytes(glb.binary)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join([
        struct.pack("<4sII", b"glTF", 2, total),
        struct.pack("<I4s", len(text), b"JSON"), text,
        struct.pack("<I4s", len(binary), b"BIN\x00"), binary,
    ])


@dataclass
class AnimationModel:
    """The models a flow checkpoint holds: VAE, flow, scaling and text encoder (all in eval mode)."""

    vae: torch.nn.Module
    flow: torch.nn.Module
    scaling: torch.nn.Module
    text: torch.nn.Module
    frames: int
    source: str


def load_animation_model(checkpoint: str, device: str = "cpu") -> AnimationModel:
    """Models from a flow checkpoint folder (or a flow run folder: its latest checkpoint)."""
    from stages.train import checkpoint as ckpt
    from stages.train.configs import FlowConfig, TextConfig, VAEConfig
    from stages.train.flow import FlowModel, LatentScaling
    from stages.train.text_encoder import TextEncoder
    from stages.train.vae import vae_from_state

    meta, state = ckpt.load_checkpoint(checkpoint)
    if meta.get("kind") != "flow":
        raise ValueError(f"{checkpoint} holds a {meta.get('kind')!r} checkpoint; animate needs a flow checkpoint")
    vae_config = VAEConfig(**meta["vae_config"])
    vae = vae_from_state({"config": meta["vae_config"], "model": state["vae"]})
    text_config = TextConfig(**meta["text_config"])
    text = TextEncoder(text_config.model, text_config.max_length)
    flow = FlowModel(FlowConfig(**meta["flow_config"]), vae_config.latent_channels, vae_config.shape_channels,
                     text.width)
    scaling = LatentScaling(vae_config.shape_channels)
    flow.load_state_dict({k[len("flow."):]: v for k, v in state["model"].items() if k.startswith("flow.")})
    scaling.load_state_dict({k[len("scaling."):]: v for k, v in state["model"].items() if k.startswith("scaling.")})
    models = [m.to(device).eval() for m in (vae, flow, scaling, text)]
    return AnimationModel(*models, frames=vae_config.frames, source=f"{checkpoint} (step {meta['step']})")


def weld(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge identical positions: (unique vertices, faces over them without degenerate ones, inverse map)."""
    unique, inverse = np.unique(vertices, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    welded = inverse[faces] if faces.size else faces.reshape(0, 3)
    keep = (welded[:, 0] != welded[:, 1]) & (welded[:, 1] != welded[:, 2]) & (welded[:, 0] != welded[:, 2])
    return unique.astype(np.float32), welded[keep], inverse


@torch.no_grad()
def animate_vertices(model: AnimationModel, rest: np.ndarray, faces: np.ndarray, prompt: str, seed: int = 0,
                     steps: int | None = None, guidance: float | None = None) -> np.ndarray:
    """Frames [T, N, 3] for a rest mesh (positions [N, 3], faces [F, 3]) and a prompt."""
    from stages.train.vae import normalise_frames

    device = next(model.vae.parameters()).device
    points, welded_faces, inverse = weld(np.asarray(rest, np.float32), np.asarray(faces, np.int64))
    vertices = torch.from_numpy(points)[None, None].to(device)
    valid = torch.ones(1, points.shape[0], dtype=torch.bool, device=device)
    normalised, centre, scale = normalise_frames(vertices, valid)
    v0 = normalised[:, 0]
    motion = torch.zeros(1, points.shape[0], 3 * (model.frames - 1), device=device)
    face_tensor = torch.from_numpy(welded_faces).long()[None].to(device)
    latent = model.vae.encode(v0, motion, valid, face_tensor)  # shape channels ignore the (unknown) motion
    shape_channels = model.scaling.shape_channels
    scaled_shape = model.scaling.scale(latent.z)[..., :shape_channels]
    generator = torch.Generator(device=device).manual_seed(seed)
    trajectory = model.flow.sample(scaled_shape, latent.token_valid, model.text([prompt]), model.text([""]),
                                   steps=steps, guidance=guidance, generator=generator)
    z = model.scaling.unscale(torch.cat([scaled_shape, trajectory], -1))
    offsets = model.vae.decode(z, latent.token_valid, v0, latent.token_index)  # [1, T-1, N, 3]
    frames = torch.cat([v0[:, None], v0[:, None] + offsets], 1)[0]
    frames = frames * scale[0] + centre[0]
    return frames.cpu().numpy()[:, inverse].astype(np.float32)


def animate_file(mesh: str, prompt: str, checkpoint: str, out: str, fps: float = 10.0, seed: int = 0,
                 steps: int | None = None, guidance: float | None = None, max_vertices: int = 50_000) -> dict:
    """Animate the rest pose of `mesh` (.glb/.gltf) and write `out`; returns a summary dict."""
    from stages.evaluate import Limits, load_asset

    scene = load_asset(mesh, limits=Limits())
    if scene.num_vertices > max_vertices:
        raise ValueError(f"{mesh} has {scene.num_vertices} vertices, over --max-vertices {max_vertices}")
    rest = scene.evaluate(None, np.zeros(1))[0]
    model = load_animation_model(checkpoint)
    frames = animate_vertices(model, rest, np.asarray(scene.faces), prompt, seed, steps, guidance)
    extras = {"prompt": prompt, "seed": seed, "checkpoint": model.source, "source": Path(mesh).name}
    data = animated_glb(frames, np.asarray(scene.faces), fps, name=Path(mesh).stem, extras=extras)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(data)
    return {"out": out, "frames": int(frames.shape[0]), "vertices": int(frames.shape[1]),
            "faces": int(len(scene.faces)), "bytes": len(data), "checkpoint": model.source}
