"""DeformingThings4D `.anime` files -> FrameScene, every count checked against the file size and caps first.

Layout (little-endian): int32 nf, nv, nt; float32 [nv, 3] first-frame vertices; int32 [nt, 3] faces;
float32 [nf - 1, nv, 3] offsets of frames 1.. from the first frame. Frame f is `first + offsets[f - 1]` in float32,
exactly as the DT4D loader computes it.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from stages.evaluate import BadData, LimitExceeded, Limits, MalformedAsset
from stages.formats.frames import FrameScene
from stages.formats.npz import NpzError, read_npz, write_npz

HEADER = struct.Struct("<3i")


def anime_layout(data: bytes, name: str, limits: Limits) -> tuple[int, int, int]:
    """(nf, nv, nt) after checking them against the byte count and the caps (nothing allocated yet)."""
    if len(data) < HEADER.size:
        raise MalformedAsset(name, f"{len(data)} bytes: too short for the .anime header (12 bytes)")
    if len(data) > limits.max_file_bytes:
        raise LimitExceeded(name, f"file is {len(data)} bytes, over the {limits.max_file_bytes} byte cap")
    nf, nv, nt = HEADER.unpack_from(data)
    if nf < 1 or nv < 1 or nt < 0:
        raise MalformedAsset(name, f"header counts frames={nf} vertices={nv} faces={nt} are not valid")
    expected = HEADER.size + 12 * nv + 12 * nt + 12 * (nf - 1) * nv
    if expected != len(data):
        raise MalformedAsset(name, f"header says {nf} frames, {nv} vertices, {nt} faces = {expected} bytes, "
                                   f"but the file has {len(data)}")
    if nv > limits.max_vertices:
        raise LimitExceeded(name, f"{nv} vertices, over the {limits.max_vertices} cap")
    if nf > limits.max_frames:
        raise LimitExceeded(name, f"{nf} frames, over the {limits.max_frames} frame cap")
    if 12 * nf * nv > limits.max_output_bytes:
        raise LimitExceeded(name, f"{nf} frames of {nv} vertices need {12 * nf * nv} bytes, over the "
                                  f"{limits.max_output_bytes} byte cap")
    return nf, nv, nt


def read_anime(data: bytes, fps: float, name: str = "asset.anime", limits: Limits = Limits()) -> FrameScene:
    """A FrameScene of the file's frames at `fps`."""
    if not (isinstance(fps, (int, float)) and 0 < fps <= 1000):
        raise ValueError(f"fps must be in (0, 1000], not {fps!r}")
    nf, nv, nt = anime_layout(data, name, limits)
    offset = HEADER.size
    first = np.frombuffer(data, "<f4", nv * 3, offset).reshape(nv, 3)
    offset += 12 * nv
    faces = np.frombuffer(data, "<i4", nt * 3, offset).reshape(nt, 3)
    offset += 12 * nt
    offsets = np.frombuffer(data, "<f4", (nf - 1) * nv * 3, offset).reshape(nf - 1, nv, 3)
    if nt and (faces.min() < 0 or faces.max() >= nv):
        raise BadData(name, f"face indices outside 0..{nv - 1}")
    if not (np.isfinite(first).all() and np.isfinite(offsets).all()):
        raise BadData(name, "NaN or infinite vertex positions or offsets")
    frames = np.empty((nf, nv, 3), dtype=np.float32)
    frames[0] = first
    np.add(first[None], offsets, out=frames[1:])
    return FrameScene(name, faces, nv, nf, fps, lambda indices: frames[indices], limits,
                      animation_name="dt4d", details={"format": "DeformingThings4D .anime"})


def write_anime(frames: np.ndarray, faces: np.ndarray) -> bytes:
    """The .anime bytes of frames [F, V, 3] and faces [T, 3] (for tests and fixtures)."""
    frames = np.asarray(frames, dtype="<f4")
    faces = np.asarray(faces, dtype="<i4").reshape(-1, 3)
    offsets = (frames[1:] - frames[:1]).astype("<f4")
    return (HEADER.pack(frames.shape[0], frames.shape[1], len(faces)) + frames[0].tobytes() + faces.tobytes()
            + offsets.tobytes())


def dt4d_package(data: bytes, fps: float) -> bytes:
    """The bytes the pipeline stores for one .anime file: the file's bytes, its sha256 and the source's fps."""
    return write_npz({"anime": np.frombuffer(data, dtype=np.uint8), "fps": np.array(float(fps)),
                      "source_sha256": np.array(hashlib.sha256(data).hexdigest())})


def read_dt4d_package(data: bytes, name: str = "asset.dt4d", limits: Limits = Limits()) -> FrameScene:
    """The FrameScene of a package made by `dt4d_package` (sizes checked before reading, sha256 verified)."""
    try:
        arrays = read_npz(data, max_members=8, max_array_bytes=limits.max_file_bytes,
                          max_total_bytes=limits.max_file_bytes + 1024, wanted={"anime", "fps", "source_sha256"})
    except NpzError as exc:
        raise (LimitExceeded if exc.kind == "limit" else MalformedAsset)(name, str(exc)) from None
    if set(arrays) != {"anime", "fps", "source_sha256"} or arrays["anime"].dtype != np.uint8:
        raise MalformedAsset(name, "not a DyMesh DT4D package (anime, fps, source_sha256)")
    anime = arrays["anime"].tobytes()
    if hashlib.sha256(anime).hexdigest() != str(arrays["source_sha256"].item()):
        raise BadData(name, "the packaged .anime bytes do not match their recorded sha256")
    return read_anime(anime, float(arrays["fps"].reshape(-1)[0]), name, limits)
