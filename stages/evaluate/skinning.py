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


def vertex_influences(doc: Document, reader: AccessorReader, where: str, pairs: list[tuple[int, int]],
                      count: int, joint_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Joints [n, 4s] and weights [n, 4s] of the (JOINTS_i, WEIGHTS_i) accessor pairs, renormalised over all of
    them as three.js does for its 4 (sum 1; all-zero weights -> the first joint)."""
    joints, weights, ctypes = [], [], []
    for s, (joints_index, weights_index) in enumerate(pairs):
        j, w = reader.read(joints_index), reader.read(weights_index, finite=True)
        if j.shape != (count, 4) or w.shape != (count, 4) or j.dtype.kind not in "iu":
            raise doc.fail(MalformedAsset, f"{where}: JOINTS_{s}/WEIGHTS_{s} must be VEC4 with one element per vertex")
        if j.size and int(j.max()) >= joint_count:
            raise doc.fail(BadData, f"{where}.JOINTS_{s} references joint {int(j.max())} of a {joint_count}-joint skin")
        joints.append(j.astype(np.int64))
        weights.append(w)
        ctypes.append(reader.accessors[weights_index].get("componentType"))
    weights = np.concatenate(weights, axis=1)
    total = np.abs(weights).sum(axis=1, keepdims=True)
    first = np.zeros(weights.shape[1])
    first[0] = 1.0
    unit = np.where(total > 0, weights / np.where(total > 0, total, 1.0), first)
    for s, ctype in enumerate(ctypes):
        if ctype in NORMALISED_DIVISORS:  # three.js stores the renormalised weight back into the integer attribute
            divisor = NORMALISED_DIVISORS[ctype]
            unit[:, 4 * s:4 * s + 4] = np.floor(unit[:, 4 * s:4 * s + 4] * divisor + 0.5) / divisor
    return np.concatenate(joints, axis=1), unit
