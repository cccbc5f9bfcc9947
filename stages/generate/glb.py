"""A minimal glTF 2.0 document builder that writes binary GLB containers deterministically."""

from __future__ import annotations

import json
import struct

import numpy as np

# glTF componentType codes and accessor element sizes (glTF 2.0 spec, section 3.6.2).
COMPONENT_TYPES = {
    np.dtype(np.int8): 5120,
    np.dtype(np.uint8): 5121,
    np.dtype(np.int16): 5122,
    np.dtype(np.uint16): 5123,
    np.dtype(np.uint32): 5125,
    np.dtype(np.float32): 5126,
}
ELEMENT_TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963

GLB_MAGIC = 0x46546C67  # "glTF"
CHUNK_JSON = 0x4E4F534A  # "JSON"
CHUNK_BIN = 0x004E4942  # "BIN\0"


def round_floats(values) -> list[float]:
    """Floats for the JSON chunk, rounded so the document text is short and stable."""
    return [round(float(v), 7) for v in np.asarray(values, dtype=np.float64).ravel()]


class GltfDocument:
    """Collects glTF objects and one binary buffer; `to_glb()` returns the container bytes."""

    def __init__(self, generator: str, extras: dict) -> None:
        self.json: dict = {"asset": {"version": "2.0", "generator": generator, "extras": extras}}
        self._binary = bytearray()

    def _append(self, key: str, item: dict) -> int:
        items = self.json.setdefault(key, [])
        items.append(item)
        return len(items) - 1

    def buffer_view(self, data: bytes, target: int | None = None) -> int:
        """Append bytes (4-byte aligned) to the binary chunk and return the new bufferView index."""
        self._binary.extend(b"\0" * (-len(self._binary) % 4))
        view = {"buffer": 0, "byteOffset": len(self._binary), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self._binary.extend(data)
        return self._append("bufferViews", view)

    def accessor(self, array: np.ndarray, target: int | None = None, bounds: bool = False,
                 normalized: bool = False) -> int:
        """Store `array` ([count] or [count, components]) as an accessor; `bounds` adds min/max."""
        array = np.ascontiguousarray(array)
        components = 1 if array.ndim == 1 else int(np.prod(array.shape[1:]))
        little_endian = array.astype(array.dtype.newbyteorder("<"), copy=False)
        accessor = {
            "bufferView": self.buffer_view(little_endian.tobytes(), target),
            "componentType": COMPONENT_TYPES[array.dtype],
            "count": int(array.shape[0]),
            "type": ELEMENT_TYPES[components],
        }
        if normalized:
            accessor["normalized"] = True
        if bounds:
            flat = array.reshape(array.shape[0], components)
            if array.dtype == np.float32:
                accessor["min"] = [float(v) for v in flat.min(axis=0)]
                accessor["max"] = [float(v) for v in flat.max(axis=0)]
            else:
                accessor["min"] = [int(v) for v in flat.min(axis=0)]
                accessor["max"] = [int(v) for v in flat.max(axis=0)]
        return self._append("accessors", accessor)

    def triangles(self, positions: np.ndarray, faces: np.ndarray, normals: np.ndarray) -> dict:
        """A TRIANGLES primitive (POSITION with bounds, NORMAL, indices) for `mesh.primitives`."""
        index_type = np.uint16 if len(positions) < 65536 else np.uint32
        return {
            "attributes": {"POSITION": self.accessor(positions.astype(np.float32), ARRAY_BUFFER, bounds=True),
                           "NORMAL": self.accessor(normals.astype(np.float32), ARRAY_BUFFER)},
            "indices": self.accessor(faces.reshape(-1).astype(index_type), ELEMENT_ARRAY_BUFFER),
            "mode": 4,
        }

    def node(self, **fields) -> int:
        return self._append("nodes", {key: value for key, value in fields.items() if value is not None})

    def add(self, key: str, item: dict) -> int:
        """Append a top-level object (mesh, skin, animation, scene) and return its index."""
        return self._append(key, item)

    def to_glb(self) -> bytes:
        """The GLB container: 12-byte header, JSON chunk (space padded), BIN chunk (zero padded)."""
        self._binary.extend(b"\0" * (-len(self._binary) % 4))
        document = dict(self.json)
        document["buffers"] = [{"byteLength": len(self._binary)}]
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()
        text += b" " * (-len(text) % 4)
        total = 12 + 8 + len(text) + 8 + len(self._binary)
        return b"".join([
            struct.pack("<III", GLB_MAGIC, 2, total),
            struct.pack("<II", len(text), CHUNK_JSON), text,
            struct.pack("<II", len(self._binary), CHUNK_BIN), bytes(self._binary),
        ])
