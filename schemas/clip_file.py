"""The clip-file format of `dymesh resample --out DIR` (read by `dymesh caption` and `dymesh preview`).

  DIR/<clip_id>.npz   `vertices` [T,N,3] float32, `faces` [F,3] int32 (np.savez, no pickles)
  DIR/clips.jsonl     one line per clip: its metadata (every `clips` column except the arrays) and "extra"
  DIR/errors.jsonl    one `errors` row per window not kept
Reading is safe: size caps, no pickles; metadata comes from the clips.jsonl line with the same clip id.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from schemas.sample import Clip

MAX_CLIP_FILE_BYTES = 2 << 30
MAX_CLIP_VALUES = 200_000_000


def read_clip_file(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(vertices [T,N,3] float32, faces [F,3] int32, metadata) of a clip .npz; metadata from a sibling
    clips.jsonl line with the same clip id when there is one, else {}. Raises ValueError on bad files."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CLIP_FILE_BYTES:
        raise ValueError(f"{path}: {size} bytes is over the clip file limit of {MAX_CLIP_FILE_BYTES}")
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            raise ValueError(f"{path}: not an .npz file (no zip header); expected one written by `dymesh resample` or `dymesh evaluate`")
    try:
        with np.load(path, allow_pickle=False) as data:
            unpacked = sum(info.file_size for info in data.zip.infolist())
            if unpacked > MAX_CLIP_FILE_BYTES:
                raise ValueError(f"{path}: unpacks to {unpacked} bytes, over the limit of {MAX_CLIP_FILE_BYTES}")
            missing = {"vertices", "faces"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: missing array(s) {', '.join(sorted(missing))}; expected vertices and faces")
            vertices, faces = data["vertices"], data["faces"]
    except (OSError, EOFError, ValueError) as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path}: not a readable .npz clip ({exc})") from exc
    if vertices.ndim != 3 or vertices.shape[2] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"{path}: vertices must be [T,N,3] and faces [F,3], got {vertices.shape} and {faces.shape}")
    if vertices.size + faces.size > MAX_CLIP_VALUES:
        raise ValueError(f"{path}: {vertices.size + faces.size} values is over the limit of {MAX_CLIP_VALUES}")
    return vertices.astype(np.float32), faces.astype(np.int32), _sibling_metadata(path)


def _sibling_metadata(path: Path) -> dict:
    lines = path.parent / "clips.jsonl"
    if not lines.is_file():
        return {}
    with open(lines, encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("clip_id") == path.stem:
                return row
    return {}


def write_clip_files(folder: str | Path, clips: list[Clip], errors: list[dict]) -> None:
    """Write every clip's .npz, clips.jsonl and errors.jsonl into `folder` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "clips.jsonl", "w") as lines:
        for clip in clips:
            np.savez(folder / f"{clip.clip_id}.npz", vertices=clip.vertices, faces=clip.faces)
            lines.write(json.dumps({**clip.metadata(), "extra": clip.extra}, sort_keys=True) + "\n")
    with open(folder / "errors.jsonl", "w") as lines:
        for row in errors:
            lines.write(json.dumps(row, sort_keys=True) + "\n")


def clip_from_file(path: str | Path) -> Clip:
    """The Clip of a clip .npz and its clips.jsonl line (defaults where the line is missing); ValueError if bad."""
    path = Path(path)
    vertices, faces, meta = read_clip_file(path)
    return Clip(
        clip_id=str(meta.get("clip_id") or path.stem), asset_id=str(meta.get("asset_id") or path.stem),
        animation=int(meta.get("animation", 0)), animation_name=str(meta.get("animation_name", "")),
        fps=float(meta.get("fps") or 10.0), first_frame=int(meta.get("first_frame", 0)),
        last_frame=int(meta.get("last_frame", len(vertices) - 1)), vertices=vertices, faces=faces,
        center=tuple(meta.get("center") or (0.0, 0.0, 0.0)), scale=float(meta.get("scale") or 1.0),
        source_vertices=int(meta.get("source_vertices", vertices.shape[1])),
        source_faces=int(meta.get("source_faces", len(faces))), content_hash=str(meta.get("content_hash") or ""),
    )
