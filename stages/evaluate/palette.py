"""The matrix palette: every vertex is a weighted sum of palette matrices applied to its point.

Rigid meshes use their node's world matrix (one entry, weight 1); skinned meshes use their skin's joint
matrices (glTF 2.0 section 3.7.3: sum_j w_j * world(joint_j) * inverseBind_j * p). One sparse matrix holds
the weighted points of all fixed (not morphing) vertices, so all their frames are one sparse-dense product;
morphing primitives are transformed per primitive. Matrices are composed in float64 and applied in float32
(per-vertex work; errors ~1e-7 of the coordinates, the output's own precision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where a matrix is built: loading an asset does not need scipy
    from scipy import sparse


def influence_matrix(entries: np.ndarray, weights: np.ndarray, palette_size: int) -> sparse.csr_matrix:
    """Sparse float32 [n, P] weights of palette entries [n, k] per vertex (repeated entries of a vertex add up)."""
    from scipy import sparse

    n, k = entries.shape
    rows = np.repeat(np.arange(n), k)
    return sparse.csr_matrix((weights.reshape(-1).astype(np.float32), (rows, entries.reshape(-1))),
                             shape=(n, palette_size))


def point_blend_matrix(parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], vertices: int,
                       palette_size: int) -> sparse.csr_matrix:
    """Sparse float32 [V, P*4]: entry (v, 4p + j) = weight(v, p) * homogeneous(point v)[j], for fixed points.

    parts: (first vertex, palette entries [n, k], weights [n, k], points [n, 3]) by increasing first vertex;
    vertices in no part get empty rows. Built in CSR order directly (a repeated entry of a vertex stays two
    terms of one sum).
    """
    from scipy import sparse

    counts = np.zeros(vertices, dtype=np.int64)
    data, indices = [], []
    for first, entries, weights, points in parts:
        n, k = entries.shape
        values = np.empty((n, k, 4), dtype=np.float32)
        values[:, :, :3] = weights[:, :, None] * points[:, None, :]
        values[:, :, 3] = weights
        data.append(values.reshape(-1))
        indices.append((entries[:, :, None] * 4 + np.arange(4)).reshape(-1))
        counts[first:first + n] = k * 4
    indptr = np.zeros(vertices + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    index_type = np.int32 if palette_size * 4 < 2**31 and indptr[-1] < 2**31 else np.int64
    return sparse.csr_matrix((np.concatenate(data), np.concatenate(indices).astype(index_type),
                              indptr.astype(index_type)), shape=(vertices, palette_size * 4))


def palette_columns(palette: np.ndarray) -> np.ndarray:
    """Palette matrices [T, P, 4, 4] as float32 [P * 4 (matrix column), 3 (matrix row) * T]."""
    frames, size = palette.shape[:2]
    columns = np.empty((size, 4, 3, frames), dtype=np.float32)
    columns[:] = palette[:, :, :3, :].transpose(1, 3, 2, 0)
    return columns.reshape(size * 4, 3 * frames)


def blend_fixed_points(blend: sparse.csr_matrix, columns: np.ndarray, out: np.ndarray) -> None:
    """Write world positions of fixed points (point_blend_matrix) into out [T, V, 3] (columns: T or 1 frames).

    The product [V, 3 * T] is [V * 3, T] in memory: a 2D transpose into out, in blocks of ~32 KiB of rows.
    """
    frames = columns.shape[1] // 3
    blended = (blend @ columns).reshape(-1, frames)  # [V*3, T'] float32
    flat = out.reshape(out.shape[0], -1)
    block = min(2048, max(128, 8192 // frames))
    for start in range(0, blended.shape[0], block):
        flat[:, start:start + block] = blended[start:start + block].T


def transform_points(matrices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """float32 [T, n, 3] of points [T or 1, n, 3] under one affine matrix per frame [T or 1, 4, 4] (float64)."""
    linear = matrices[:, :3, :3].transpose(0, 2, 1).astype(np.float32)
    out = np.matmul(points, linear)
    out += matrices[:, None, :3, 3].astype(np.float32)
    return out


def blend_moving_points(influence: sparse.csr_matrix, columns: np.ndarray, points: np.ndarray) -> np.ndarray:
    """World positions float32 [T, n, 3] of points that move themselves (morphs) [T or 1, n, 3].

    columns: palette_columns [P*4, 3*T']; each vertex's blended matrix [4, 3, T'] is one sparse product.
    """
    n, size = influence.shape
    blended = (influence @ columns.reshape(size, -1)).reshape(n, 4, 3, -1).transpose(3, 0, 2, 1)  # [T', n, 3, 4]
    out = blended[..., 3] + blended[..., 0] * points[..., 0:1]
    out += blended[..., 1] * points[..., 1:2]
    out += blended[..., 2] * points[..., 2:3]
    return out
