"""The matrix palette: every vertex is a weighted sum of palette matrices applied to its point.

Rigid meshes use their node's world matrix (one entry, weight 1); skinned meshes use their skin's joint
matrices (glTF 2.0 section 3.7.3: sum_j w_j * world(joint_j) * inverseBind_j * p). One sparse matrix holds
the weights of all vertices, so all frames of all primitives are a single sparse-dense product.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .scene_graph import homogeneous


def influence_matrix(entries: np.ndarray, weights: np.ndarray, palette_size: int) -> sparse.csr_matrix:
    """Sparse [n, P] weights of palette entries [n, k] per vertex (repeated entries of a vertex add up)."""
    n, k = entries.shape
    rows = np.repeat(np.arange(n), k)
    return sparse.csr_matrix((weights.reshape(-1), (rows, entries.reshape(-1))), shape=(n, palette_size))


def point_blend_matrix(influence: sparse.csr_matrix, points: np.ndarray) -> sparse.csr_matrix:
    """Sparse [n, P*4]: entry (v, 4p + j) = weight(v, p) * homogeneous(point v)[j], for fixed points [n, 3]."""
    coo = influence.tocoo()
    ph = homogeneous(points)
    rows = np.repeat(coo.row, 4)
    cols = (coo.col[:, None] * 4 + np.arange(4)).reshape(-1)
    values = (coo.data[:, None] * ph[coo.row]).reshape(-1)
    return sparse.csr_matrix((values, (rows, cols)), shape=(influence.shape[0], influence.shape[1] * 4))


def palette_rows(palette: np.ndarray) -> np.ndarray:
    """Palette matrices [T, P, 4, 4] as [P, 4 (column), T*3 (frame, row)] for the products below."""
    frames, size = palette.shape[:2]
    return palette[:, :, :3, :].transpose(1, 3, 0, 2).reshape(size, 4, frames * 3)


def blend_fixed_points(blend: sparse.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """World positions [T, n, 3] float32 of fixed points from their point_blend_matrix and palette_rows."""
    size, _, width = rows.shape
    out = np.asarray(blend @ rows.reshape(size * 4, width)).astype(np.float32)  # [n, T*3]; cast before transposing
    return out.reshape(out.shape[0], width // 3, 3).transpose(1, 0, 2)


def blend_moving_points(influence: sparse.csr_matrix, rows: np.ndarray, points: np.ndarray) -> np.ndarray:
    """World positions [T, n, 3] of points that move themselves (morphs) [T or 1, n, 3].

    Per matrix column j: (weights @ column j of every palette matrix) * point_j, summed; no tiny matmuls.
    """
    frames = rows.shape[2] // 3
    ph = homogeneous(points.transpose(1, 0, 2))  # [n, T or 1, 4]
    out = None
    for j in range(4):
        column = np.asarray(influence @ rows[:, j]).reshape(-1, frames, 3)  # [n, T, 3]
        term = column * ph[:, :, j, None]
        out = term if out is None else out + term
    return out.transpose(1, 0, 2)
