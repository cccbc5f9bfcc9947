"""Skins: joints, inverse bind matrices, three.js-style weight renormalisation, and batched linear blend skinning.

Spec: glTF 2.0 section 3.7.3 (skins). The skinned node's own transform is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .accessors import NORMALISED_DIVISORS, AccessorReader
from .errors import BadData, LimitExceeded, MalformedAsset
from .gltf_container import Document


@dataclass
class Skin:
    joints: np.ndarray  # [J] node indices
    inverse_bind: np.ndarray  # [J, 4, 4]


def read_skin(doc: Document, reader: AccessorReader, index: int) -> Skin:
    where = f"skins[{index}]"
    skin = doc.array("skins")[index]
    joints = doc.int_list(skin, "joints", where)
    node_count = len(doc.array("nodes"))
    if not joints:
        raise doc.fail(MalformedAsset, f"{where}.joints is empty")
    if len(joints) > doc.limits.max_joints:
        raise doc.fail(LimitExceeded, f"{where} has {len(joints)} joints, over the {doc.limits.max_joints} cap")
    for j in joints:
        if not 0 <= j < node_count:
            raise doc.fail(MalformedAsset, f"{where}.joints lists node {j} ({node_count} nodes exist)")
    ibm_index = doc.index(skin, "inverseBindMatrices", "accessors", where, required=False)
    if ibm_index is None:
        inverse_bind = np.tile(np.eye(4), (len(joints), 1, 1))
    else:
        data = reader.read(ibm_index, finite=True)
        if data.shape[1] != 16 or len(data) < len(joints):
            raise doc.fail(MalformedAsset, f"{where}.inverseBindMatrices (accessors[{ibm_index}]) is not "
                                           f"{len(joints)} MAT4 values")
        inverse_bind = data[: len(joints)].reshape(-1, 4, 4).transpose(0, 2, 1)
    return Skin(np.asarray(joints, dtype=np.int64), np.ascontiguousarray(inverse_bind))


def vertex_influences(doc: Document, reader: AccessorReader, where: str, joints_index: int, weights_index: int,
                      count: int, joint_count: int) -> tuple[np.ndarray, np.ndarray]:
    """JOINTS_0 [n, 4] and WEIGHTS_0 [n, 4] renormalised as three.js does (all-zero weights -> first joint)."""
    joints = reader.read(joints_index)
    weights = reader.read(weights_index, finite=True)
    if joints.shape != (count, 4) or weights.shape != (count, 4) or joints.dtype.kind not in "iu":
        raise doc.fail(MalformedAsset, f"{where}: JOINTS_0/WEIGHTS_0 must be VEC4 with one element per vertex")
    if joints.size and int(joints.max()) >= joint_count:
        raise doc.fail(BadData, f"{where}.JOINTS_0 references joint {int(joints.max())} of a {joint_count}-joint skin")
    total = np.abs(weights).sum(axis=1, keepdims=True)
    unit = np.where(total > 0, weights / np.where(total > 0, total, 1.0), [1.0, 0.0, 0.0, 0.0])
    ctype = reader.accessors[weights_index].get("componentType")
    if ctype in NORMALISED_DIVISORS:  # three.js stores the renormalised weight back into the integer attribute
        divisor = NORMALISED_DIVISORS[ctype]
        unit = np.floor(unit * divisor + 0.5) / divisor
    return joints.astype(np.int64), unit


def joint_matrices(world: np.ndarray, skin: Skin) -> np.ndarray:
    """[T, J, 4, 4] = world(joint) * inverseBind(joint)."""
    return np.matmul(world[:, skin.joints], skin.inverse_bind)
