"""The in-memory clip and its conversions to a `clips` table row and to a WebDataset sample.

WebDataset sample (one per clip, key = clip id with '.' replaced by '_'):
  <key>.vertices.npy   [T, N, 3] float32 (or float16 by shard config)
  <key>.faces.npy      [F, 3] int32
  <key>.json           clip metadata (every `clips` column except the arrays), captions with provenance,
                       licence and attribution
  <key>.txt            the chosen caption
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

SAMPLE_FORMAT_VERSION = 1
ARRAY_COLUMNS = ("vertices", "faces")


@dataclass
class Clip:
    """One fixed-topology animation clip: `vertices` [T, N, 3] float32 and `faces` [F, 3] int32."""

    clip_id: str
    asset_id: str
    animation: int
    animation_name: str
    fps: float
    first_frame: int
    last_frame: int
    vertices: np.ndarray
    faces: np.ndarray
    center: tuple[float, float, float]
    scale: float
    source_vertices: int
    source_faces: int
    looped: bool = False
    short_policy: str = "none"  # how a window longer than its animation was filled: none | loop | retime | hold
    resample_error: float = 0.0
    max_displacement: float = 0.0
    mean_displacement: float = 0.0
    content_hash: str = ""
    split: str = ""
    extra: dict = field(default_factory=dict)  # not stored in the table

    @property
    def frames(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[1])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def metadata(self) -> dict:
        """Every table column except the arrays, as plain JSON-able values."""
        meta = {}
        for f in fields(self):
            if f.name in ARRAY_COLUMNS or f.name == "extra":
                continue
            value = getattr(self, f.name)
            meta[f.name] = [float(x) for x in value] if f.name == "center" else value
        meta.update(frames=self.frames, num_vertices=self.num_vertices, num_faces=self.num_faces)
        return meta


def clip_to_row(clip: Clip) -> dict:
    """A `schemas.tables.CLIPS` row (arrays as little-endian bytes)."""
    row = clip.metadata()
    row["vertices"] = np.ascontiguousarray(clip.vertices, dtype="<f4").tobytes()
    row["faces"] = np.ascontiguousarray(clip.faces, dtype="<i4").tobytes()
    return row


def clip_from_row(row: dict) -> Clip:
    """Inverse of `clip_to_row`."""
    t, n, f = int(row["frames"]), int(row["num_vertices"]), int(row["num_faces"])
    vertices = np.frombuffer(row["vertices"], dtype="<f4").reshape(t, n, 3)
    faces = np.frombuffer(row["faces"], dtype="<i4").reshape(f, 3)
    names = {f.name for f in fields(Clip)} - set(ARRAY_COLUMNS) - {"extra"}
    kwargs = {k: row[k] for k in names if k in row}
    kwargs["center"] = tuple(float(x) for x in row["center"])
    return Clip(vertices=vertices, faces=faces, **kwargs)
