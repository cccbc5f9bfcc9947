"""AnimateAnyMesh's released format: one pickle `<clip id>.bin` per clip.

What their loaders read (train_dvae_dis.py / train_diff_dis.py, DyMeshDataset.__getitem__):
    mesh_file = pickle.load(f); mesh_file["vertices"] (T, N, 3) absolute positions, mesh_file["faces"] (M, 3),
    mesh_file.get("caption", " "); they normalise by frame 0's bbox at load time.
Export writes exactly that dict; arrays are pickled as `numpy.ndarray(shape, dtype, buffer)` so that both
NumPy 1.x (their pin: 1.26) and 2.x load them. Import never runs pickle's normal loader: `SafeUnpickler`
admits only NumPy array/dtype/scalar reconstruction (with allocation checks) and plain containers,
strings and numbers; anything else (os.system, eval, ...) raises UnsafePickleError. Files are size-capped.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import numpy as np

from schemas.sample import Clip

MAX_FILE_BYTES = 1 << 30
MAX_ARRAY_ELEMENTS = 1 << 28


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something other than plain data and NumPy arrays."""


def _checked_shape(shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(s, int) and s >= 0 for s in shape) or int(np.prod(shape, dtype=np.float64)) > MAX_ARRAY_ELEMENTS:
        raise UnsafePickleError(f"array shape {shape} is not allowed (more than {MAX_ARRAY_ELEMENTS} elements or not integers)")
    return shape


def _plain_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise UnsafePickleError("object arrays are not allowed")
    return dtype


def _dtype(*args):
    return _plain_dtype(np.dtype(*args))


def _ndarray(shape, dtype, buffer=None, offset=0, strides=None, order=None):
    if not isinstance(buffer, (bytes, bytearray)):
        raise UnsafePickleError("numpy.ndarray(...) is only allowed over a bytes buffer")
    return np.ndarray(_checked_shape(shape), _plain_dtype(dtype), buffer, offset, strides, order)


def _reconstruct(subtype, shape, dtype):
    if subtype is not _ndarray:  # what find_class gave for numpy.ndarray
        raise UnsafePickleError("only numpy.ndarray can be reconstructed")
    return np.ndarray.__new__(np.ndarray, _checked_shape(shape), dtype)


def _scalar(dtype, data=None):
    from numpy._core.multiarray import scalar

    return scalar(_plain_dtype(dtype), data) if data is not None else scalar(_plain_dtype(dtype))


def _frombuffer(buffer, dtype, shape, order):
    return np.frombuffer(buffer, dtype=_plain_dtype(dtype)).reshape(_checked_shape(shape), order=order)


def _encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is only allowed for latin1 strings")
    return text.encode("latin1")


ALLOWED = {
    ("numpy", "ndarray"): _ndarray,
    ("numpy", "dtype"): _dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the names in ALLOWED; every other global raises UnsafePickleError."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"pickle wants {module}.{name}; only NumPy arrays and plain data are allowed") from None

    def persistent_load(self, pid):
        raise UnsafePickleError("persistent ids are not allowed")


def safe_loads(data: bytes, max_bytes: int = MAX_FILE_BYTES):
    """Unpickle plain data and NumPy arrays only, from at most max_bytes."""
    if len(data) > max_bytes:
        raise UnsafePickleError(f"pickle of {len(data)} bytes is over the {max_bytes}-byte cap")
    content = SafeUnpickler(io.BytesIO(data)).load()
    _refuse_objects(content)
    return content


def _refuse_objects(value, depth: int = 0) -> None:
    """Raise if any array in the loaded structure holds Python objects (or nesting is absurd)."""
    if depth > 100:
        raise UnsafePickleError("pickle nests deeper than 100 levels")
    if isinstance(value, (np.ndarray, np.generic)):
        _plain_dtype(value.dtype)
    elif isinstance(value, dict):
        for item in value.values():
            _refuse_objects(item, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _refuse_objects(item, depth + 1)


def read_aam(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> dict:
    """One AnimateAnyMesh .bin: {"vertices" float32 [T,N,3], "faces" int32 [M,3], "caption" str}; checks shapes."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise UnsafePickleError(f"{path}: {size} bytes is over the {max_bytes}-byte cap")
    content = safe_loads(path.read_bytes(), max_bytes)
    if not isinstance(content, dict) or "vertices" not in content or "faces" not in content:
        raise ValueError(f"{path}: expected a dict with 'vertices' and 'faces' (AnimateAnyMesh .bin)")
    vertices = np.asarray(content["vertices"], dtype=np.float32)
    faces = np.asarray(content["faces"])
    if vertices.ndim != 3 or vertices.shape[2] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"{path}: vertices {vertices.shape} / faces {faces.shape} are not (T, N, 3) / (M, 3)")
    if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[1]):
        raise ValueError(f"{path}: face indices outside [0, {vertices.shape[1]})")
    caption = content.get("caption", "")
    return {"vertices": vertices, "faces": faces.astype(np.int32), "caption": caption if isinstance(caption, str) else ""}


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
    stem = Path(path).stem
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
        extra={"imported_from": str(path)},
    )


def import_aam(source: str | Path, out_dir: str, config=None, max_bytes: int = MAX_FILE_BYTES) -> tuple[list[dict], list[dict], int]:
    """Shard every `*.bin` under `source` (sorted by name) into out_dir; returns (shard rows, error rows, files seen)."""
    from schemas.tables import error_row
    from stages.shard.writer import write_shards

    paths = sorted(Path(source).rglob("*.bin"), key=lambda p: (p.stem, str(p)))
    errors: list[dict] = []
    captions: dict[str, list[dict]] = {}

    def clips():
        for path in paths:
            try:
                content = read_aam(path, max_bytes)
                clip = clip_from_aam(path, content)
            except (pickle.UnpicklingError, ValueError, EOFError, TypeError, AttributeError, IndexError) as exc:
                errors.append(error_row("aam-import", path.stem, type(exc).__name__, f"{path}: {exc}", source=str(path)))
                continue
            if content["caption"].strip():
                captions[clip.clip_id] = [
                    dict(clip_id=clip.clip_id, content_hash=clip.content_hash, caption_index=0, text=content["caption"],
                         backend="imported", model="animateanymesh", revision="", prompt_hash="", cpu_stand_in=False, seconds=0.0)
                ]
            yield clip

    rows, shard_errors = write_shards(clips(), captions, {}, out_dir, config)
    return rows, errors + shard_errors, len(paths)


def export_aam(shards: str, out_folder: str | Path, split: str | None = None) -> int:
    """Write one `<key>.bin` per sample of a shard folder, as AnimateAnyMesh's loaders read them; returns the count."""
    from stages.shard.reader import ShardDataset

    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for sample in ShardDataset(shards, split=split, rank=0, world_size=1, shuffle=False):
        path = out / f"{sample['key']}.bin"
        partial = out / f".{path.name}.partial"
        partial.write_bytes(aam_bytes(sample["vertices"].numpy(), sample["faces"].numpy(), sample["caption"]))
        partial.replace(path)
        count += 1
    return count
