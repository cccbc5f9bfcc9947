"""One clip as the members of a WebDataset sample (format in schemas/sample.py)."""

from __future__ import annotations

import io
import json
import math
import re
from functools import lru_cache

import numpy as np

from schemas.sample import CAPTION_KEYS, SAMPLE_FORMAT_VERSION, Clip
from stages.splits import SPLITS


def sample_key(clip_id: str) -> str:
    """WebDataset key of a clip: its id with '.' replaced by '_' (a key may not contain dots)."""
    return clip_id.replace(".", "_")


NPY_MAGIC = b"\x93NUMPY\x01\x00"
NPY_HEADER = re.compile(rb"\{'descr': '([<>|][a-z]\d+)', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \}")


def npy_parts(array: np.ndarray) -> list:
    """np.save bytes (format 1.0, no pickle) as [header bytes, the array's own memory]: no copy of the data."""
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise ValueError("object arrays cannot be stored")
    return [npy_header(array.dtype.str, array.shape), memoryview(array.reshape(-1).view(np.uint8))]


@lru_cache(maxsize=4096)
def npy_header(descr: str, shape: tuple) -> bytes:
    """The .npy 1.0 header np.save writes for a C-order array (clips repeat a few shapes, so it is cached)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue()


def npy_array(data) -> np.ndarray:
    """Decode .npy bytes without ever unpickling (object arrays are refused); plain C-order arrays are not copied."""
    data = memoryview(data).cast("B")
    if data[:8] == NPY_MAGIC:
        end = 10 + int.from_bytes(data[8:10], "little")
        match = NPY_HEADER.match(bytes(data[10:end]))
        if match:
            shape = tuple(int(x) for x in match[2].split(b",") if x.strip())
            dtype = np.dtype(match[1].decode())
            return np.frombuffer(data, dtype, count=math.prod(shape), offset=end).reshape(shape)
    return np.load(io.BytesIO(bytes(data)), allow_pickle=False)


PLAIN_TYPES = frozenset((str, int, bool, type(None)))


def plain(value):
    """A JSON-able copy of `value` (NumPy scalars and arrays to Python, NaN/inf to None)."""
    if type(value) in PLAIN_TYPES:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def choose_caption(captions: list[dict], backends: tuple[str, ...]) -> str:
    """The first caption (by caption_index) of the most preferred backend; "" when there is none."""
    ranked = sorted(
        (r for r in captions if r.get("text")),
        key=lambda r: (
            backends.index(r.get("backend")) if r.get("backend") in backends else len(backends),
            int(r.get("caption_index") or 0),
            str(r.get("model") or ""),
        ),
    )
    return str(ranked[0]["text"]) if ranked else ""


def sample_metadata(clip: Clip, captions: list[dict], asset: dict | None, dtype: str, caption: str) -> dict:
    """The `<key>.json` document (schemas.sample): the clip's `clips` row, its captions and its asset's licence,
    attribution and sources."""
    asset = asset or {}
    meta = dict(clip.metadata())
    meta.update(
        sample_format_version=SAMPLE_FORMAT_VERSION,
        vertices_dtype=dtype,
        caption=caption,
        captions=[{f: r.get(f) for f in CAPTION_KEYS} for r in sorted(captions, key=_caption_order)],
        license=asset.get("license"),
        attribution=asset.get("attribution"),
        sources=[{k: s.get(k) for k in ("kind", "uri", "name", "license", "attribution")} for s in asset.get("sources") or []],
    )
    return plain(meta)


def _caption_order(row: dict) -> tuple:
    return (str(row.get("backend") or ""), str(row.get("model") or ""), int(row.get("caption_index") or 0))


def sample_members(clip: Clip, captions: list[dict], asset: dict | None, dtype: str, backends) -> list[tuple[str, list]]:
    """(member name, list of byte buffers) of one clip's sample, sorted by name."""
    key = sample_key(clip.clip_id)
    caption = choose_caption(captions, tuple(backends))
    meta = sample_metadata(clip, captions, asset, dtype, caption)
    document = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    members = [
        (f"{key}.faces.npy", npy_parts(np.asarray(clip.faces, dtype="<i4"))),
        (f"{key}.json", [document.encode()]),
        (f"{key}.txt", [caption.encode()]),
        (f"{key}.vertices.npy", npy_parts(np.asarray(clip.vertices, dtype="<f2" if dtype == "float16" else "<f4"))),
    ]
    return sorted(members, key=lambda member: member[0])


FLOAT16_MAX = 65504.0


def check_clip(clip: Clip, dtype: str = "float32") -> str | None:
    """Why a clip cannot be written as a sample with vertices of `dtype`, or None."""
    if clip.split not in SPLITS:
        return f"split must be one of {', '.join(SPLITS)} (stages.splits.assign_split), not {clip.split!r}"
    v, f = np.asarray(clip.vertices), np.asarray(clip.faces)
    if v.ndim != 3 or v.shape[2] != 3 or v.shape[0] < 1 or v.shape[1] < 1:
        return f"vertices must be [T, N, 3] with T, N >= 1, got shape {v.shape}"
    if f.ndim != 2 or (f.size and f.shape[1] != 3):
        return f"faces must be [F, 3], got shape {f.shape}"
    # one pass: a finite sum means no NaN/inf (an overflowing sum of finite values takes the exact check)
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(v.sum())
    if not math.isfinite(total) and not np.isfinite(v).all():
        return "vertices contain NaN or infinity"
    if dtype == "float16" and float(np.abs(v).max()) > FLOAT16_MAX:
        return "vertex coordinates exceed the float16 range; use ShardConfig(dtype='float32')"
    if f.size and (f.min() < 0 or f.max() >= v.shape[1]):
        return f"face indices outside [0, {v.shape[1]})"
    return None
