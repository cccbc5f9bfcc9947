"""Mesh primitives of the default scene, in evaluation order, with positions, morph targets, skin data, triangles.

Spec: glTF 2.0 section 3.7.2 (meshes). Order: shared/reference/README.md (pre-order, a node's primitives first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .accessors import AccessorReader
from .errors import BadData, LimitExceeded, MalformedAsset
from .gltf_container import Document
from .skinning import vertex_influences

TRIANGLE_MODES = {4: "TRIANGLES", 5: "TRIANGLE_STRIP", 6: "TRIANGLE_FAN"}
SKIPPED_MODES = {0: "POINTS", 1: "LINES", 2: "LINE_LOOP", 3: "LINE_STRIP"}
INDEX_TYPES = (5121, 5123, 5125)


@dataclass
class Primitive:
    node: int
    mesh: int
    primitive: int
    mode: int
    offset: int  # first vertex in the evaluated vertex order
    positions: np.ndarray  # [n, 3] float64
    targets: np.ndarray  # [K, n, 3] float64 (K may be 0)
    triangles: np.ndarray  # [f, 3] int64, local to the primitive
    skin: int | None = None
    joints: np.ndarray | None = None  # [n, 4 or 8] JOINTS_0 (and JOINTS_1)
    weights: np.ndarray | None = None  # [n, 4 or 8] WEIGHTS_0 (and WEIGHTS_1), renormalised

    @property
    def count(self) -> int:
        return len(self.positions)


def read_primitives(doc: Document, reader: AccessorReader, order: list[int],
                    joint_counts: dict[int, int]) -> list[Primitive]:
    """Triangle primitives of the nodes in `order`; `joint_counts[skin]` = joints of each skin used."""
    meshes = doc.array("meshes")
    nodes = doc.array("nodes")
    result: list[Primitive] = []
    offset = 0
    for node_index in order:
        node = nodes[node_index]
        mesh_index = doc.index(node, "mesh", "meshes", f"nodes[{node_index}]", required=False)
        if mesh_index is None:
            continue
        skin_index = doc.index(node, "skin", "skins", f"nodes[{node_index}]", required=False)
        if "EXT_mesh_gpu_instancing" in doc.obj(node, "extensions", f"nodes[{node_index}]"):
            doc.warnings.append(f"nodes[{node_index}]: EXT_mesh_gpu_instancing ignored; the base mesh appears once")
        prims = meshes[mesh_index].get("primitives")
        if not isinstance(prims, list) or not all(isinstance(p, dict) for p in prims):
            raise doc.fail(MalformedAsset, f"meshes[{mesh_index}].primitives is not an array of objects")
        for p_index, prim in enumerate(prims):
            where = f"meshes[{mesh_index}].primitives[{p_index}]"
            mode = doc.integer(prim, "mode", where, 4)
            if mode in SKIPPED_MODES:
                doc.warnings.append(f"{where} (nodes[{node_index}]): mode {SKIPPED_MODES[mode]} skipped")
                continue
            if mode not in TRIANGLE_MODES:
                raise doc.fail(MalformedAsset, f"{where}.mode {mode} is not a glTF primitive mode")
            attributes = doc.obj(prim, "attributes", where)
            if "POSITION" not in attributes:
                doc.warnings.append(f"{where} (nodes[{node_index}]): no POSITION attribute; skipped")
                continue
            item = _primitive(doc, reader, where, prim, attributes, node_index, mesh_index, p_index, mode, offset,
                              skin_index, joint_counts)
            offset += item.count
            if offset > doc.limits.max_vertices:
                raise doc.fail(LimitExceeded, f"default scene has over {doc.limits.max_vertices} vertices (cap)")
            if len(result) >= doc.limits.max_meshes_instances:
                raise doc.fail(LimitExceeded, f"over {doc.limits.max_meshes_instances} primitive instances (cap)")
            result.append(item)
    return result


def _primitive(doc: Document, reader: AccessorReader, where: str, prim: dict, attributes: dict, node: int, mesh: int,
               p_index: int, mode: int, offset: int, skin: int | None, joint_counts: dict[int, int]) -> Primitive:
    pos_index = doc.index(attributes, "POSITION", "accessors", f"{where}.attributes")
    _, _, _, count = reader.info(pos_index)
    if offset + count > doc.limits.max_vertices:
        raise doc.fail(LimitExceeded, f"{where}: default scene has over {doc.limits.max_vertices} vertices (cap)")
    positions = _vec3(doc, reader, pos_index, f"{where}.attributes.POSITION", count)
    targets = _targets(doc, reader, where, prim, count)
    triangles = _triangles(doc, reader, where, prim, mode, count)
    item = Primitive(node, mesh, p_index, mode, offset, positions, targets, triangles)
    if skin is not None:
        if "JOINTS_0" in attributes and "WEIGHTS_0" in attributes:
            sets = 2 if doc.limits.influences == "all" and "JOINTS_1" in attributes else 1
            if "JOINTS_1" in attributes and sets == 1:
                doc.warnings.append(f"{where}: JOINTS_1/WEIGHTS_1 ignored (influences='first4', as three.js)")
            pairs = [(doc.index(attributes, f"JOINTS_{s}", "accessors", f"{where}.attributes"),
                      doc.index(attributes, f"WEIGHTS_{s}", "accessors", f"{where}.attributes")) for s in range(sets)]
            item.skin = skin
            item.joints, item.weights = vertex_influences(doc, reader, where, pairs, count, joint_counts[skin])
        else:
            doc.warnings.append(f"{where} (nodes[{node}]): skinned node but no JOINTS_0/WEIGHTS_0; not skinned")
    return item


def _vec3(doc: Document, reader: AccessorReader, index: int, where: str, count: int) -> np.ndarray:
    data = reader.read(index)
    if data.shape != (count, 3):
        raise doc.fail(MalformedAsset, f"{where} (accessors[{index}]) is not VEC3 with {count} elements")
    data = data.astype(np.float64)
    if not np.isfinite(data).all():
        raise doc.fail(BadData, f"{where} (accessors[{index}]) holds NaN or infinity")
    return data


def _targets(doc: Document, reader: AccessorReader, where: str, prim: dict, count: int) -> np.ndarray:
    targets = prim.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise doc.fail(MalformedAsset, f"{where}.targets is not an array of objects")
    if len(targets) > doc.limits.max_morph_targets:
        raise doc.fail(LimitExceeded, f"{where} has {len(targets)} morph targets, over the cap")
    out = np.zeros((len(targets), count, 3))
    for k, target in enumerate(targets):
        index = doc.index(target, "POSITION", "accessors", f"{where}.targets[{k}]", required=False)
        if index is not None:
            out[k] = _vec3(doc, reader, index, f"{where}.targets[{k}].POSITION", count)
    return out


def _triangles(doc: Document, reader: AccessorReader, where: str, prim: dict, mode: int, count: int) -> np.ndarray:
    index = doc.index(prim, "indices", "accessors", where, required=False)
    if index is None:
        indices = np.arange(count, dtype=np.int64)
    else:
        ctype, atype, _, _ = reader.info(index)
        if ctype not in INDEX_TYPES or atype != "SCALAR":
            raise doc.fail(MalformedAsset, f"{where}.indices (accessors[{index}]) is not an unsigned SCALAR accessor")
        indices = reader.read(index)[:, 0].astype(np.int64)
        if indices.size and int(indices.max()) >= count:
            raise doc.fail(BadData, f"{where}.indices (accessors[{index}]) reference vertex {int(indices.max())} "
                                    f"of {count}")
    if mode == 4:
        usable = len(indices) - len(indices) % 3
        return indices[:usable].reshape(-1, 3)
    n = max(len(indices) - 2, 0)
    if n == 0:
        return np.zeros((0, 3), dtype=np.int64)
    i = np.arange(n)
    if mode == 5:  # strip: spec p_i = {v_i, v_(i+1+i%2), v_(i+2-i%2)}
        return np.stack([indices[i], indices[i + 1 + i % 2], indices[i + 2 - i % 2]], axis=1)
    return np.stack([indices[i + 1], indices[i + 2], np.broadcast_to(indices[0], (n,))], axis=1)  # fan
