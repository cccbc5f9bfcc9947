"""AnimateAnyMesh's released format: one pickle `<clip id>.bin` per clip.

What their loaders read (train_dvae_dis.py / train_diff_dis.py, DyMeshDataset.__getitem__):
    mesh_file = pickle.load(f); mesh_file["vertices"] (T, N, 3) absolute positions, mesh_file["faces"] (M, 3),
    mesh_file.get("caption", " "); they normalise by frame 0's bbox at load time.
Export writes exactly that dict; arrays are pickled as `numpy.ndarray(shape, dtype, buffer)` so that both
NumPy 1.x (their pin: 1.26) and 2.x load them. Import never runs pickle's normal loader: the restricted
unpickler of stages.shard.safe_pickle admits only NumPy array/dtype/scalar reconstruction and plain data within
a memory budget; anything else (os.system, eval, ...) raises UnsafePickleError. Import reads only regular files
inside its folder, size-capped; export names every file from a sanitised key, inside its output folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
from pathlib import Path

import numpy as np

from schemas.sample import Clip
from stages.shard.safe_pickle import UnsafePickleError, safe_loads
from stages.untrusted_files import UntrustedFileError, list_tree, read_regular, shown

__all__ = ["UnsafePickleError", "safe_loads", "read_aam", "aam_bytes", "import_aam", "export_aam", "export_name"]

MAX_FILE_BYTES = 1 << 30
MAX_CAPTION_CHARS = 10_000
MAX_LISTED_ENTRIES = 1_000_000


def read_aam(path: str | Path, max_bytes: int = MAX_FILE_BYTES, root: str | Path | None = None) -> dict:
    """One AnimateAnyMesh .bin: {"vertices" float32 [T,N,3], "faces" int32 [M,3], "caption" str}; checks shapes.

    Only a regular file is read (never a FIFO or device), inside `root` when given, at most `max_bytes`."""
    path = Path(path)
    try:
        data = read_regular(str(path), max_bytes, root=None if root is None else str(root))
    except UntrustedFileError as exc:
        if exc.kind == "limit":
            raise UnsafePickleError(str(exc)) from None
        raise
    content = safe_loads(data, max_bytes)
    if not isinstance(content, dict) or "vertices" not in content or "faces" not in content:
        raise ValueError(f"{shown(str(path))}: expected a dict with 'vertices' and 'faces' (AnimateAnyMesh .bin)")
    vertices = np.asarray(content["vertices"], dtype=np.float32)
    faces = np.asarray(content["faces"])
    if vertices.ndim != 3 or vertices.shape[2] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"{shown(str(path))}: vertices {vertices.shape} / faces {faces.shape} are not (T, N, 3) / "
                         "(M, 3)")
    if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[1]):
        raise ValueError(f"{shown(str(path))}: face indices outside [0, {vertices.shape[1]})")
    caption = content.get("caption", "")
    caption = caption if isinstance(caption, str) else ""  # printable (lone surrogates escaped) and bounded
    caption = caption.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_CAPTION_CHARS]
    return {"vertices": vertices, "faces": faces.astype(np.int32), "caption": caption}


class _ArrayPickler(pickle.Pickler):
    """Pickles arrays as numpy.ndarray(shape, dtype, bytes): readable by NumPy 1.x and 2.x alike."""

    def reducer_override(self, obj):
        if type(obj) is np.ndarray:
            array = np.ascontiguousarray(obj)
            return np.ndarray, (array.shape, array.dtype.str, array.tobytes())
        return NotImplemented


def aam_bytes(vertices: np.ndarray, faces: np.ndarray, caption: str) -> bytes:
    """The .bin bytes AnimateAnyMesh's DyMeshDataset reads (protocol 4; deterministic)."""
    content = {
        "vertices": np.asarray(vertices, dtype=np.float32),
        "faces": np.asarray(faces, dtype=np.int64),
        "caption": str(caption),
    }
    buffer = io.BytesIO()
    _ArrayPickler(buffer, protocol=4).dump(content)
    return buffer.getvalue()


CLIP_NAME = re.compile(r"^(?P<asset>.+?)_(?:offset|a)(?P<animation>\d+)_(?P<first>\d+)-(?P<last>\d+)$")


def clip_from_aam(path: str | Path, content: dict, fps: float = 10.0) -> Clip:
    """A Clip from an imported .bin: ids from its name `<uid>_offset<k>_<first>-<last>` when it has that form; the
    split drawn from the asset id with the default stages.splits.SplitConfig."""
    stem = shown(Path(path).stem)
    vertices, faces = content["vertices"], content["faces"]
    match = CLIP_NAME.match(stem)
    asset_id = match["asset"] if match else stem
    animation = int(match["animation"]) if match else 0
    first = int(match["first"]) if match else 0
    from stages.resample.config import ResampleConfig
    from stages.resample.fingerprint import content_hash
    from stages.splits import assign_split

    first_frame = vertices[0]
    center = (first_frame.max(0) + first_frame.min(0)) / 2
    scale = float(np.abs(first_frame - center).max())
    displacement = np.linalg.norm(vertices - vertices[:1], axis=-1)
    diagonal = float(np.linalg.norm(first_frame.max(0) - first_frame.min(0))) or 1.0
    return Clip(
        clip_id=stem,
        asset_id=asset_id,
        animation=animation,
        animation_name="",
        fps=fps,
        first_frame=first,
        last_frame=first + len(vertices) - 1,
        vertices=vertices,
        faces=faces,
        center=tuple(float(c) for c in center),
        scale=scale,
        source_vertices=int(vertices.shape[1]),
        source_faces=int(faces.shape[0]),
        max_displacement=float(displacement.max() / diagonal),
        mean_displacement=float(displacement.mean() / diagonal),
        content_hash=content_hash(vertices, faces, center, scale, ResampleConfig().content_quantum),
        split=assign_split(asset_id),
        extra={"imported_from": shown(str(path))},
    )


def import_aam(source: str | Path, out_dir: str, config=None, max_bytes: int = MAX_FILE_BYTES) -> tuple[list[dict], list[dict], int]:
    """Shard every `*.bin` under `source` (sorted by name) into out_dir; returns (shard rows, error rows, files seen).

    Listing is bounded and loop-safe (folder symlinks not followed); each file that cannot be read or unpickled
    safely is one error row."""
    from schemas.tables import error_row
    from stages.shard.writer import write_shards

    listing = list_tree(str(source), max_entries=MAX_LISTED_ENTRIES, wanted=lambda p: p.endswith(".bin"))
    paths = sorted((Path(p) for p in listing.files), key=lambda p: (p.stem, str(p)))
    errors: list[dict] = [error_row("aam-import", shown(p), kind, f"{shown(p)}: {detail}", source=shown(p))
                          for p, kind, detail in listing.refused]
    if listing.truncated:
        errors.append(error_row("aam-import", shown(str(source)), "limit",
                                f"{shown(str(source))}: listing stopped after {MAX_LISTED_ENTRIES} entries"))
    captions: dict[str, list[dict]] = {}

    def clips():
        for path in paths:
            try:
                content = read_aam(path, max_bytes, root=source)
                clip = clip_from_aam(path, content)
            except Exception as exc:  # noqa: BLE001 - one bad file is one error row, never the end of the import
                message = " ".join(str(exc).split())[:300]
                kind = exc.kind if isinstance(exc, UntrustedFileError) else type(exc).__name__
                errors.append(error_row("aam-import", shown(path.stem), kind, message,
                                        source=shown(str(path))))
                continue
            if content["caption"].strip():
                captions[clip.clip_id] = [
                    dict(clip_id=clip.clip_id, content_hash=clip.content_hash, caption_index=0, text=content["caption"],
                         backend="imported", model="animateanymesh", revision="", prompt_hash="", cpu_stand_in=False, seconds=0.0)
                ]
            yield clip

    rows, shard_errors = write_shards(clips(), captions, {}, out_dir, config)
    return rows, errors + shard_errors, len(paths) + len(listing.refused)


SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]")
MAX_NAME_BYTES = 200


def export_name(key: str) -> str:
    """A file name for a sample key: the key when it is plain (letters, digits, ._+-, no leading dot, short),
    else its plain characters plus a digest of the whole key, so different keys never share a name."""
    text = key if isinstance(key, str) else str(key)
    plain = SAFE_NAME.sub("_", text).lstrip(".")[:MAX_NAME_BYTES]
    if plain == text and plain:
        return plain
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{plain[:MAX_NAME_BYTES - 17] or 'sample'}-{digest}"


def _write_inside(folder: Path, name: str, data: bytes) -> None:
    """Write `folder/name` through a temp file created exclusively (O_EXCL|O_NOFOLLOW), then one rename."""
    path = folder / name
    if path.parent != folder or name in (".", ".."):
        raise ValueError(f"export name {name!r} is not a plain file name")
    partial = folder / f".{name}.{os.getpid()}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def export_aam(shards: str, out_folder: str | Path, split: str | None = None, on_corrupt: str = "raise",
               skipped: list | None = None) -> int:
    """Write one `<key>.bin` per sample of a shard set, as AnimateAnyMesh's loaders read them; returns the count.

    Keys come from the shards (tar member names): each is sanitised by export_name, so `../x`, absolute paths,
    NUL and very long keys all stay plain file names inside `out_folder`. Every sample is checked against its
    manifest digest first: a corrupt one raises CorruptSampleError (naming shard and key), or with
    on_corrupt="skip" is left out and its error appended to `skipped`."""
    from stages.shard.reader import ShardDataset

    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    count = 0
    dataset = ShardDataset(shards, split=split, rank=0, world_size=1, shuffle=False, on_corrupt=on_corrupt)
    for sample in dataset:
        data = aam_bytes(sample["vertices"].numpy(), sample["faces"].numpy(), sample["caption"])
        _write_inside(out, f"{export_name(sample['key'])}.bin", data)
        count += 1
    if skipped is not None:
        skipped.extend(dataset.skipped_errors)
    return count
