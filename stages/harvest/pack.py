"""Pack a .gltf and its side files (relative .bin / image URIs inside its folder) into one .glb.

Only plain relative URIs are inlined; data: URIs stay in the JSON, and anything else (absolute paths, `..`,
schemes such as http: or file:) is left untouched for the evaluator to reject. Nothing is fetched here.
"""

from __future__ import annotations

import json
import struct
from typing import Callable
from urllib.parse import unquote

from stages import untrusted_json

GLB_MAGIC = 0x46546C67
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".ktx2": "image/ktx2"}

SideReader = Callable[[str], "bytes | None"]
MAX_JSON_VALUES = 1_000_000  # JSON parsed in the harvest driver: ~50 MB of Python objects at most per document


def side_file_name(uri: object) -> str | None:
    """The relative file name a URI names, or None when it is not a plain in-folder relative path."""
    if not isinstance(uri, str) or not uri or uri.startswith("data:"):
        return None
    name = unquote(uri)
    if ":" in name.split("/")[0] or name.startswith(("/", "\\")) or "\\" in name:
        return None
    if any(part in ("..", "") for part in name.split("/")):
        return None
    return name


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def glb_bytes(document: dict, binary: bytes | None) -> bytes:
    """Serialise a glTF document and its BIN chunk as GLB 2.0."""
    json_chunk = _pad(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode(), b" ")
    chunks = struct.pack("<II", len(json_chunk), CHUNK_JSON) + json_chunk
    if binary is not None:
        bin_chunk = _pad(binary, b"\0")
        chunks += struct.pack("<II", len(bin_chunk), CHUNK_BIN) + bin_chunk
    return struct.pack("<III", GLB_MAGIC, 2, 12 + len(chunks)) + chunks


def pack_gltf(text: bytes, read_side: SideReader) -> tuple[bytes, str]:
    """Returns (bytes, format): a packed .glb when a side file was inlined, else the .gltf bytes unchanged."""
    try:
        document = untrusted_json.loads(text, max_items=MAX_JSON_VALUES)
    except ValueError:  # not JSON, too deep or too many values: left as it is for the evaluator to report
        return text, "gltf"
    if not isinstance(document, dict):
        return text, "gltf"
    buffers = document.get("buffers")
    views = document.get("bufferViews")
    images = document.get("images")
    buffers = buffers if isinstance(buffers, list) else []
    views = views if isinstance(views, list) else []
    images = images if isinstance(images, list) else []

    blob = bytearray()
    moved: dict[int, int] = {}  # old buffer index -> byte offset inside the packed BIN
    for index, buffer in enumerate(buffers):
        name = side_file_name(buffer.get("uri")) if isinstance(buffer, dict) else None
        data = read_side(name) if name else None
        if data is None:
            continue
        blob.extend(b"\0" * (-len(blob) % 8))
        moved[index] = len(blob)
        blob.extend(data)
    inlined_images: list[tuple[dict, bytes, str]] = []
    for image in images:
        name = side_file_name(image.get("uri")) if isinstance(image, dict) else None
        data = read_side(name) if name else None
        if data is not None:
            suffix = name[name.rfind("."):].lower() if "." in name else ""
            inlined_images.append((image, data, image.get("mimeType") or IMAGE_TYPES.get(suffix, "image/png")))
    if not moved and not inlined_images:
        return text, "gltf"

    kept = [i for i in range(len(buffers)) if i not in moved]
    new_index = {old: new + 1 for new, old in enumerate(kept)}
    for view in views:
        if not isinstance(view, dict) or not isinstance(view.get("buffer"), int):
            continue
        old = view["buffer"]
        if old in moved:
            view["buffer"] = 0
            offset = view.get("byteOffset", 0)
            view["byteOffset"] = (offset if isinstance(offset, int) else 0) + moved[old]
        elif old in new_index:
            view["buffer"] = new_index[old]
    for image, data, mime in inlined_images:
        blob.extend(b"\0" * (-len(blob) % 8))
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)})
        blob.extend(data)
        image.pop("uri", None)
        image["bufferView"] = len(views) - 1
        image["mimeType"] = mime
    document["buffers"] = [{"byteLength": len(blob)}] + [buffers[i] for i in kept]
    if views:
        document["bufferViews"] = views
    return glb_bytes(document, bytes(blob)), "glb"


def read_json_document(data: bytes, max_json_bytes: int = 64 * 1024 * 1024) -> dict | None:
    """The glTF JSON of GLB or .gltf bytes, or None when it cannot be read (the evaluator reports why)."""
    try:
        if data[:4] == b"glTF":
            length, kind = struct.unpack_from("<II", data, 12)
            if kind != CHUNK_JSON or length > max_json_bytes:
                return None
            document = untrusted_json.loads(data[20 : 20 + length], max_items=MAX_JSON_VALUES)
        else:
            if len(data) > max_json_bytes:
                return None
            document = untrusted_json.loads(data, max_items=MAX_JSON_VALUES)
    except (ValueError, struct.error):
        return None
    return document if isinstance(document, dict) else None

