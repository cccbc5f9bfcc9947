"""The glTF container: GLB chunks or JSON text, buffers (GLB BIN, data: URIs, side files), safety checks.

Spec: glTF 2.0 sections 4.4 (GLB), 3.6.1 (buffers and URIs), 3.12 (extensions).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

from stages import untrusted_files, untrusted_json

from .errors import AssetError, LimitExceeded, MalformedAsset, UnsafeAsset, UnsupportedAsset
from .limits import Limits

GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
COMPRESSION_EXTENSIONS = ("KHR_draco_mesh_compression", "EXT_meshopt_compression", "KHR_meshopt_compression")
# Required extensions that do not change geometry or animation (or that we handle): evaluating is still exact.
HARMLESS_REQUIRED_PREFIXES = ("KHR_materials_", "KHR_texture_", "EXT_texture_", "KHR_lights_punctual")
HANDLED_REQUIRED = ("KHR_mesh_quantization", "EXT_mesh_gpu_instancing")
URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _describe(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


class Document:
    """A parsed glTF JSON document with its buffers, and typed field access that raises precise errors."""

    def __init__(self, name: str, gltf: dict, limits: Limits):
        self.name = name
        self.gltf = gltf
        self.limits = limits
        self.buffers: list[bytes] = []
        self.warnings: list[str] = []
        self._arrays: dict[str, list[dict]] = {}

    # ---- errors -------------------------------------------------------------------------------
    def fail(self, error: type[AssetError], detail: str) -> AssetError:
        return error(self.name, detail)

    # ---- typed access -------------------------------------------------------------------------
    def array(self, key: str) -> list[dict]:
        """A top-level array of objects (`nodes`, `meshes`, ...); absent means empty. Validated once."""
        if key in self._arrays:
            return self._arrays[key]
        value = self.gltf.get(key, [])
        if not isinstance(value, list):
            raise self.fail(MalformedAsset, f"`{key}` is {_describe(value)}, not an array")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.fail(MalformedAsset, f"{key}[{i}] is {_describe(item)}, not an object")
        self._arrays[key] = value
        return value

    def index(self, obj: dict, key: str, array: str, where: str, required: bool = True) -> int | None:
        """`obj[key]` as a valid index into the top-level array `array`."""
        value = obj.get(key)
        if value is None:
            if required:
                raise self.fail(MalformedAsset, f"{where} lacks required `{key}`")
            return None
        items = self._arrays.get(array)
        size = len(items if items is not None else self.array(array))
        if type(value) is int and 0 <= value < size:  # fast path; bool is not int here
            return value
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
            raise self.fail(MalformedAsset, f"{where}.{key} = {_describe(value)}: no such {array} entry ({size} exist)")
        return value

    def integer(self, obj: dict, key: str, where: str, default: int | None = None, minimum: int = 0) -> int:
        value = obj.get(key, default)
        if type(value) is int and value >= minimum:  # fast path
            return value
        if value is None:
            raise self.fail(MalformedAsset, f"{where} lacks required `{key}`")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(MalformedAsset, f"{where}.{key} = {_describe(value)} is not an integer >= {minimum}")
        return value

    def obj(self, obj: dict, key: str, where: str) -> dict:
        value = obj.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(MalformedAsset, f"{where}.{key} is {_describe(value)}, not an object")
        return value

    def int_list(self, obj: dict, key: str, where: str) -> list[int]:
        value = obj.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self.fail(MalformedAsset, f"{where}.{key} is not an array of integers")
        return value

    def numbers(self, obj: dict, key: str, where: str, length: int | None = None) -> list[float] | None:
        """A finite number array (`translation`, `weights`, ...), or None when absent."""
        value = obj.get(key)
        if value is None:
            return None
        ok = type(value) is list and all(type(v) is float or type(v) is int for v in value)  # bool is no number
        if not ok or (length is not None and len(value) != length):
            size = f"{length} " if length else ""
            raise self.fail(MalformedAsset, f"{where}.{key} is not an array of {size}numbers")
        if not all(map(math.isfinite, value)):
            raise self.fail(MalformedAsset, f"{where}.{key} holds NaN or infinity")
        return list(map(float, value))


def read_document(data: bytes, name: str, folder: Path | None, limits: Limits) -> Document:
    """Parse GLB or JSON bytes into a Document with every buffer loaded (side files only from `folder`)."""
    if len(data) == 0:
        raise MalformedAsset(name, "empty file (0 bytes)")
    if len(data) > limits.max_file_bytes:
        raise LimitExceeded(name, f"file is {len(data)} bytes, over the {limits.max_file_bytes} byte cap")
    bin_chunk: bytes | None = None
    if data[:4] == GLB_MAGIC:
        json_bytes, bin_chunk = _glb_chunks(data, name, limits)
    elif name.lower().endswith(".glb"):
        raise MalformedAsset(name, "not a GLB file (it does not start with the magic b'glTF')")
    else:
        json_bytes = data
    gltf = _parse_json(json_bytes, name, limits)
    doc = Document(name, gltf, limits)
    _check_version(doc)
    _check_extensions(doc)
    doc.buffers = _load_buffers(doc, bin_chunk, folder)
    return doc


def _glb_chunks(data: bytes, name: str, limits: Limits) -> tuple[bytes, bytes | None]:
    if len(data) < 12:
        raise MalformedAsset(name, f"GLB header truncated ({len(data)} of 12 bytes)")
    _, version, length = struct.unpack_from("<4sII", data, 0)
    if version == 1 and len(data) >= 20 and struct.unpack_from("<I", data, 16)[0] == 0:  # KHR_binary_glTF layout
        raise UnsupportedAsset(name, "glTF 1.0 binary (GLB version 1, KHR_binary_glTF); only glTF 2.0 is read: "
                                     "convert it to glTF 2.0 first")
    if version != 2:
        raise MalformedAsset(name, f"GLB header has container version {version}: neither GLB 2 nor a glTF 1.0 "
                                   "binary (damaged header?)")
    if length > len(data):
        raise MalformedAsset(name, f"GLB header says {length} bytes but the file has {len(data)} (truncated?)")
    chunks: list[tuple[int, bytes]] = []
    offset = 12
    while offset + 8 <= length:
        size, kind = struct.unpack_from("<II", data, offset)
        start, end = offset + 8, offset + 8 + size
        if end > length:
            raise MalformedAsset(name, f"GLB chunk {len(chunks)} ({size} bytes at {start}) runs past the end ({length})")
        chunks.append((kind, data[start:end]))
        offset = end + (-end % 4)
    if not chunks or chunks[0][0] != CHUNK_JSON:
        raise MalformedAsset(name, "GLB has no JSON chunk first")
    if len(chunks[0][1]) > limits.max_json_bytes:
        raise LimitExceeded(name, f"JSON chunk is {len(chunks[0][1])} bytes, over the {limits.max_json_bytes} cap")
    bin_chunk = chunks[1][1] if len(chunks) > 1 and chunks[1][0] == CHUNK_BIN else None
    return chunks[0][1], bin_chunk


def _parse_json(raw: bytes, name: str, limits: Limits) -> dict:
    if len(raw) > limits.max_json_bytes:
        raise LimitExceeded(name, f"JSON is {len(raw)} bytes, over the {limits.max_json_bytes} byte cap")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedAsset(name, f"not UTF-8 JSON ({exc.reason} at byte {exc.start})") from None
    try:
        gltf = untrusted_json.loads(text)
    except untrusted_json.JsonTooDeep as exc:
        raise LimitExceeded(name, str(exc)) from None
    except ValueError as exc:
        raise MalformedAsset(name, f"not valid JSON ({exc})") from None
    if not isinstance(gltf, dict):
        raise MalformedAsset(name, f"JSON top level is {_describe(gltf)}, not an object")
    return gltf


def _check_version(doc: Document) -> None:
    asset = doc.gltf.get("asset")
    if not isinstance(asset, dict) or "version" not in asset:
        raise doc.fail(MalformedAsset, "missing the required `asset` object with `version`")
    version = str(asset["version"])
    if version.split(".")[0] != "2":
        raise doc.fail(UnsupportedAsset, f"glTF version {version!r} (only 2.x is supported)")


def _check_extensions(doc: Document) -> None:
    used = doc.gltf.get("extensionsUsed", []) or []
    required = doc.gltf.get("extensionsRequired", []) or []
    if not isinstance(used, list) or not isinstance(required, list):
        raise doc.fail(MalformedAsset, "`extensionsUsed`/`extensionsRequired` must be arrays")
    compressed = [e for e in COMPRESSION_EXTENSIONS if e in used or e in required]
    if compressed:
        raise doc.fail(UnsupportedAsset, f"unsupported compression ({', '.join(compressed)}); decompress it first")
    for ext in required:
        if not isinstance(ext, str):
            raise doc.fail(MalformedAsset, f"extensionsRequired holds {_describe(ext)}")
        if ext in HANDLED_REQUIRED or ext.startswith(HARMLESS_REQUIRED_PREFIXES):
            continue
        raise doc.fail(UnsupportedAsset, f"unsupported required extension {ext!r}")


def _load_buffers(doc: Document, bin_chunk: bytes | None, folder: Path | None) -> list[bytes]:
    buffers: list[bytes] = []
    total = 0
    for i, buffer in enumerate(doc.array("buffers")):
        where = f"buffers[{i}]"
        length = doc.integer(buffer, "byteLength", where)
        total += length
        if total > doc.limits.max_buffer_bytes:
            raise doc.fail(LimitExceeded, f"{where}: buffers total {total} bytes, over the {doc.limits.max_buffer_bytes} cap")
        uri = buffer.get("uri")
        if uri is None:
            if i != 0 or bin_chunk is None:
                raise doc.fail(MalformedAsset, f"{where} has no `uri` and there is no GLB BIN chunk for it")
            data = bin_chunk
        elif not isinstance(uri, str):
            raise doc.fail(MalformedAsset, f"{where}.uri is {_describe(uri)}, not a string")
        elif uri.startswith("data:"):
            data = _data_uri(doc, uri, where, length)
        else:
            data = _side_file(doc, uri, where, folder, length)
        if len(data) < length:
            raise doc.fail(MalformedAsset, f"{where} holds {len(data)} bytes but byteLength is {length}")
        buffers.append(data[:length])
    return buffers


def _data_uri(doc: Document, uri: str, where: str, length: int) -> bytes:
    head, sep, body = uri[5:].partition(",")
    if not sep:
        raise doc.fail(MalformedAsset, f"{where}.uri is a data: URI without a comma")
    if len(body) > 4 * (doc.limits.max_buffer_bytes // 3 + 4):
        raise doc.fail(LimitExceeded, f"{where}: data: URI of {len(body)} characters is over the buffer cap")
    if head.lower().endswith(";base64"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise doc.fail(MalformedAsset, f"{where}.uri: invalid base64 ({exc}); expected {length} bytes") from None
    return urllib.parse.unquote_to_bytes(body)


def _side_file(doc: Document, uri: str, where: str, folder: Path | None, length: int) -> bytes:
    shown = _describe(uri)
    if URI_SCHEME.match(uri):
        raise doc.fail(UnsafeAsset, f"{where}.uri {shown} has a URL scheme; only relative paths and data: URIs are read")
    relative = urllib.parse.unquote(uri).replace("\\", "/")
    if relative.startswith("/") or uri.startswith("/") or "\x00" in relative or URI_SCHEME.match(relative):
        raise doc.fail(UnsafeAsset, f"{where}.uri {shown} is an absolute path; only paths inside the asset folder are read")
    if ".." in PurePosixPath(relative).parts:
        raise doc.fail(UnsafeAsset, f"{where}.uri {shown} escapes the asset folder with '..'")
    if folder is None:
        raise doc.fail(UnsafeAsset, f"{where}.uri {shown} is a side file, but the asset was given as bytes without a folder")
    try:  # a regular file inside the folder (symlinks resolved), never a FIFO or device; byteLength bytes of it
        return untrusted_files.read_regular(str(folder / relative), max(length, 0), root=str(folder), what=shown,
                                            allow_more=True)
    except untrusted_files.UntrustedFileError as exc:
        if exc.kind == "outside-root":
            raise doc.fail(UnsafeAsset, f"{where}.uri {shown} resolves outside the asset folder") from None
        error = {"hard-link": UnsafeAsset, "limit": LimitExceeded}.get(exc.kind, MalformedAsset)
        raise doc.fail(error, f"{where}.uri {shown}: {exc.detail}") from None
