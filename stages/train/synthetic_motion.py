"""Seeded synthetic motion clips (no other stage needed): deformed spheres with smooth low-dimensional motion.

For tests, smoke runs and the loader-free path of `dymesh train` (`shards: "synthetic:<clips>"`). Each clip is a
UV sphere of random resolution (so N varies and batches are padded), random radii, and a motion mixing rigid
rotation, bending and pulsing with smooth sinusoids; the caption names the dominant motion.
"""

from __future__ import annotations

import numpy as np
import torch

MOTIONS = ("spins", "bends", "pulses", "sways")


def uv_sphere(rings: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """(vertices [N, 3], faces [F, 3] int32) of a closed UV sphere with poles."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    body = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    vertices = np.concatenate([[[0, 0, 1]], body, [[0, 0, -1]]]).astype(np.float32)
    faces = []
    for s in range(segments):
        faces.append((0, 1 + s, 1 + (s + 1) % segments))
    for r in range(rings - 3):
        for s in range(segments):
            a, b = 1 + r * segments + s, 1 + r * segments + (s + 1) % segments
            c, d = a + segments, b + segments
            faces += [(a, c, b), (b, c, d)]
    last = len(vertices) - 1
    base = 1 + (rings - 3) * segments
    for s in range(segments):
        faces.append((base + s, last, base + (s + 1) % segments))
    return vertices, np.asarray(faces, dtype=np.int32)


def rotation_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)], -2)


def synthetic_clip(index: int, seed: int = 0, frames: int = 16) -> dict:
    """One sample in `ShardDataset`'s format ({"key", "vertices" [T, N, 3], "faces" [F, 3], "caption", ...})."""
    rng = np.random.default_rng([seed, index])
    rings, segments = int(rng.integers(6, 12)), int(rng.integers(8, 16))
    rest, faces = uv_sphere(rings, segments)
    rest = rest * rng.uniform(0.4, 1.2, size=3).astype(np.float32) + rng.normal(scale=0.2, size=3).astype(np.float32)
    time = np.linspace(0.0, 1.0, frames)[:, None]
    amplitude = rng.dirichlet(np.ones(len(MOTIONS))) * rng.uniform(0.5, 1.5)
    phase = rng.uniform(0, 2 * np.pi, size=len(MOTIONS))
    speed = rng.uniform(0.5, 2.0, size=len(MOTIONS))
    wave = np.sin(2 * np.pi * speed * time + phase) - np.sin(phase)  # [T, 4], zero at frame 0
    spun = np.einsum("tij,nj->tni", rotation_z(amplitude[0] * wave[:, 0]), rest)
    height = rest[None, :, 2:3]
    bend = np.zeros_like(spun)
    bend[..., 0:1] = amplitude[1] * wave[:, 1, None, None] * height**2
    pulse = amplitude[2] * 0.3 * wave[:, 2, None, None] * rest[None]
    sway = np.zeros_like(spun)
    sway[..., 1:2] = amplitude[3] * 0.5 * wave[:, 3, None, None] * (height + 1.0)
    vertices = (spun + bend + pulse + sway).astype(np.float32)
    caption = f"the object {MOTIONS[int(np.argmax(amplitude))]}"
    return {
        "key": f"synthetic_{seed}_{index:06d}",
        "vertices": torch.from_numpy(vertices),
        "faces": torch.from_numpy(faces.astype(np.int64)),
        "caption": caption,
        "meta": {},
        "slot": 0,
        "slots": 1,
        "index": index,
    }


class SyntheticMotionClips(torch.utils.data.IterableDataset):
    """`count` synthetic clips, split exactly once across ranks and loader workers, shuffled per epoch by seed."""

    def __init__(self, count: int, seed: int = 0, frames: int = 16, rank: int = 0, world_size: int = 1,
                 first: int = 0, shuffle: bool = True):
        super().__init__()
        self.count, self.seed, self.frames = count, seed, frames
        self.rank, self.world_size, self.first, self.shuffle = rank, world_size, first, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        order = np.arange(self.first, self.first + self.count)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
        slot, slots = self.rank * workers + worker, self.world_size * workers
        for position, index in enumerate(order[slot::slots]):
            sample = synthetic_clip(int(index), self.seed, self.frames)
            yield {**sample, "slot": slot, "slots": slots, "index": position}

