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
    """base [n, 3] + sum_k weights[t, k] * targets[k] -> [T, n, 3] (weights [T, K], targets [K, n, 3]);
    [1, n, 3] (base itself) when every weight is 0.

    One product [T, K] x [K, n*3] in the dtype of `base` (float32 for the per-frame path); einsum, not BLAS,
    whose threads spin on a busy machine for such a thin product.
    """
    count = min(targets.shape[0], weights.shape[1])
    active = np.flatnonzero(np.any(weights[:, :count] != 0, axis=0))  # targets whose weight is ever non-zero
    if len(active) == 0:
        return base[None]
    flat = targets.reshape(targets.shape[0], -1)
    flat, weights = (flat[:count], weights[:, :count]) if len(active) == count else (flat[active], weights[:, active])
    out = np.einsum("tk,kn->tn", weights.astype(base.dtype), flat).reshape((len(weights),) + base.shape)
    out += base
    return out
