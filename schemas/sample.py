"""The in-memory clip, its rows in the `clips` and `clip_arrays` tables, and the keys of its WebDataset sample.

WebDataset sample (one per clip, key = clip id with '.' replaced by '_'):
  <key>.vertices.npy   [T, N, 3] float32 (or float16 by shard config)
  <key>.faces.npy      [F, 3] int32
  <key>.json           every `clips` column under its own name, plus SAMPLE_KEYS (the chosen caption, every
                       caption with CAPTION_KEYS of `captions`, ASSET_KEYS of `assets`, format version, dtype)
  <key>.txt            the chosen caption
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

SAMPLE_FORMAT_VERSION = 1
ARRAY_COLUMNS = ("vertices", "faces")  # the `clip_arrays` columns that hold the arrays
# captions columns each caption of a sample carries
CAPTION_KEYS = ("caption_index", "text", "backend", "model", "revision", "prompt_hash", "cpu_stand_in")
ASSET_KEYS = ("license", "attribution", "sources")  # assets columns
# `<key>.json` keys besides the clips columns, with their meaning (docs/tables.md lists them)
SAMPLE_KEYS = {
    "sample_format_version": "version of this sample layout (schemas.sample.SAMPLE_FORMAT_VERSION)",
    "vertices_dtype": "dtype of <key>.vertices.npy: float32 | float16",
    "caption": "the chosen caption (the same text as <key>.txt; '' when the clip has none)",
    "captions": f"every caption of the clip, each with the captions columns {', '.join(CAPTION_KEYS)}",
    "license": "assets.license of the clip's asset",
    "attribution": "assets.attribution of the clip's asset",
    "sources": "assets.sources of the clip's asset (kind, uri, name, license, attribution)",
}


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
    split: str = ""  # train | val | test (stages.splits.assign_split), "" until assigned
    extra: dict = field(default_factory=dict)  # not stored in the tables

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
        """Its `clips` row: every column, as plain JSON-able values."""
        meta = {}
        for f in fields(self):
            if f.name in ARRAY_COLUMNS or f.name == "extra":
                continue
            value = getattr(self, f.name)
            meta[f.name] = [float(x) for x in value] if f.name == "center" else value
        meta.update(frames=self.frames, num_vertices=self.num_vertices, num_faces=self.num_faces)
        return meta


def clip_rows(clip: Clip) -> tuple[dict, dict]:
    """Its `schemas.tables.CLIPS` row and its `CLIP_ARRAYS` row (arrays as little-endian bytes)."""
    vertices = np.ascontiguousarray(clip.vertices, dtype="<f4")
    faces = np.ascontiguousarray(clip.faces, dtype="<i4")
    arrays = {"clip_id": clip.clip_id, "vertices": vertices.tobytes(), "vertices_shape": list(vertices.shape),
              "faces": faces.tobytes(), "faces_shape": list(faces.shape)}
    return clip.metadata(), arrays


def clip_from_rows(row: dict, arrays: dict) -> Clip:
    """Inverse of `clip_rows` (the arrays are views on the row's bytes)."""
    if arrays["clip_id"] != row["clip_id"]:
        raise ValueError(f"clip_arrays row {arrays['clip_id']!r} does not belong to clips row {row['clip_id']!r}")
    vertices = np.frombuffer(arrays["vertices"], dtype="<f4").reshape(arrays["vertices_shape"])
    faces = np.frombuffer(arrays["faces"], dtype="<i4").reshape(arrays["faces_shape"])
    names = {f.name for f in fields(Clip)} - set(ARRAY_COLUMNS) - {"extra"}
    kwargs = {k: row[k] for k in names if k in row}
    kwargs["center"] = tuple(float(x) for x in row["center"])
    return Clip(vertices=vertices, faces=faces, **kwargs)
