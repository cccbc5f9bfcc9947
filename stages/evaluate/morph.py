"""Morph targets: default weights (mesh, then node) and batched blending of target POSITION offsets.

Spec: glTF 2.0 section 3.7.2.2 (morph targets).
"""

from __future__ import annotations

import numpy as np

from .gltf_container import Document


def default_weights(doc: Document, node: int, mesh: int, count: int) -> np.ndarray:
    """Rest weights [count]: node.weights if given, else mesh.weights, else 0 (three.js GLTFLoader)."""
    weights = np.zeros(count)
    mesh_weights = doc.numbers(doc.array("meshes")[mesh], "weights", f"meshes[{mesh}]")
    node_weights = doc.numbers(doc.array("nodes")[node], "weights", f"nodes[{node}]")
    for given in (mesh_weights, node_weights):
        if given is not None:
            n = min(count, len(given))
            weights[:n] = given[:n]
    return weights


def morph_positions(base: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """base [n, 3] + sum_k weights[t, k] * targets[k] -> [T, n, 3] (weights [T, K], targets [K, n, 3])."""
    count = min(targets.shape[0], weights.shape[1])
    if count == 0:
        return base[None]
    out = np.repeat(base[None], len(weights), axis=0)
    for k in range(count):  # K axpy's over [T, n, 3]; faster than a tiny-K matmul
        if weights[:, k].any():
            out += weights[:, k, None, None] * targets[k]
    return out
