"""GLB files in tests: packing a JSON document and a BIN chunk, taking a GLB apart (checking the container as
the glTF 2.0 spec lays it out, independently of the project's writers), and a small builder of documents."""

from __future__ import annotations

import json
import struct

import numpy as np

from stages.evaluate import load_asset_bytes

GLB_MAGIC, CHUNK_JSON, CHUNK_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942


def pack_glb(document: dict | bytes, binary: bytes | None = None) -> bytes:
    """A GLB 2.0 container: the JSON chunk (a dict dumped, or given bytes; space-padded) and, when given, the BIN
    chunk (zero-padded). The one GLB packer of the tests."""
    text = json.dumps(document).encode() if isinstance(document, dict) else bytes(document)
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), CHUNK_JSON) + text
    if binary is not None:
        binary += b"\0" * (-len(binary) % 4)
        body += struct.pack("<II", len(binary), CHUNK_BIN) + binary
    return struct.pack("<III", GLB_MAGIC, 2, 12 + len(body)) + body


def split_glb(data: bytes) -> tuple[dict, bytes]:
    """(JSON document, BIN chunk or b"") of a GLB, asserting the container's layout on the way."""
    magic, version, length = struct.unpack_from("<III", data)
    assert (magic, version, length) == (GLB_MAGIC, 2, len(data))
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == CHUNK_JSON and json_length % 4 == 0
    document = json.loads(data[20:20 + json_length])
    if 20 + json_length == len(data):
        return document, b""
    bin_length, bin_type = struct.unpack_from("<II", data, 20 + json_length)
    assert bin_type == CHUNK_BIN and bin_length % 4 == 0
    binary = data[28 + json_length:28 + json_length + bin_length]
    assert len(binary) == bin_length and 28 + json_length + bin_length == len(data)
    return document, binary


TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


class GltfBuilder:
    """A tiny GLB writer: accessors from numpy arrays, everything else as plain JSON."""

    def __init__(self):
        self.blob = bytearray()
        self.gltf: dict = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [],
                           "meshes": [], "accessors": [], "bufferViews": [], "animations": []}

    def accessor(self, array, component: int = 5126) -> int:
        dtype = {5126: "<f4", 5125: "<u4", 5123: "<u2", 5121: "<u1"}[component]
        array = np.asarray(array)
        flat = array.reshape(len(array), -1).astype(dtype)
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        self.gltf["bufferViews"].append({"buffer": 0, "byteOffset": len(self.blob), "byteLength": flat.nbytes})
        self.blob.extend(flat.tobytes())
        self.gltf["accessors"].append({"bufferView": len(self.gltf["bufferViews"]) - 1, "componentType": component,
                                       "count": len(flat), "type": TYPES[flat.shape[1]]})
        return len(self.gltf["accessors"]) - 1

    def node(self, **fields) -> int:
        self.gltf["nodes"].append(fields)
        return len(self.gltf["nodes"]) - 1

    def mesh(self, positions, targets=(), weights=None, **attributes) -> int:
        prim = {"attributes": {"POSITION": self.accessor(positions), **attributes}}
        if targets:
            prim["targets"] = [{"POSITION": self.accessor(t)} for t in targets]
        mesh = {"primitives": [prim]}
        if weights is not None:
            mesh["weights"] = list(weights)
        self.gltf["meshes"].append(mesh)
        return len(self.gltf["meshes"]) - 1

    def animate(self, node: int, path: str, keys, values, interpolation: str = "LINEAR") -> None:
        sampler = {"input": self.accessor(np.asarray(keys, dtype=np.float64)[:, None]),
                   "output": self.accessor(values), "interpolation": interpolation}
        self.gltf["animations"].append({"samplers": [sampler],
                                        "channels": [{"sampler": 0, "target": {"node": node, "path": path}}]})

    def glb(self) -> bytes:
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        self.gltf["buffers"] = [{"byteLength": len(self.blob)}]
        return pack_glb(self.gltf, bytes(self.blob))

    def scene(self):
        return load_asset_bytes(self.glb(), name="built.glb")


def random_quaternion(rng) -> np.ndarray:
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)
