"""The matrix palette: every vertex is a weighted sum of palette matrices applied to its point.

Rigid meshes use their node's world matrix (one entry, weight 1); skinned meshes use their skin's joint
matrices (glTF 2.0 section 3.7.3: sum_j w_j * world(joint_j) * inverseBind_j * p). Blending is block-sparse numpy:
per block of vertices, each influence slot gathers its palette matrices for all frames at once ([b, 4, 3T]) and
adds them weighted; a rigid part (one entry for all its vertices) needs no gather. No scipy: importing
scipy.sparse costs a one-asset `dymesh evaluate` more than the evaluation. Matrices are composed in float64 and
applied in float32 (per-vertex work; errors ~1e-7 of the coordinates, the output's own precision).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_FLOATS = 1 << 17  # float32 values of one gathered block [b, 4, 3T]: 512 KiB, stays in cache


@dataclass
class Influences:
    """Palette entries [n, k] and float32 weights [n, k] of n vertices, each vertex's non-zero weights first
    (`used` [n]: how many); `entry` >= 0 when all are that one entry with weight 1 (a rigid part)."""

    entries: np.ndarray
    weights: np.ndarray
    used: np.ndarray
    entry: int = -1

    @property
    def count(self) -> int:
        return len(self.entries)

    def block(self, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """Entries and weights of `rows`, cut to the slots some vertex of them uses."""
        slots = max(1, int(self.used[rows].max()))
        return self.entries[rows, :slots], self.weights[rows, :slots]


@dataclass
class FixedPart:
    """Vertices first .. first+n whose points do not move themselves: influences and the float32 weighted
    homogeneous points [n, k, 4] (weight * (x, y, z, 1) per influence)."""

    first: int
    influences: Influences
    weighted: np.ndarray


def influences(entries: np.ndarray, weights: np.ndarray) -> Influences:
    """Influences of palette entries [n, k] with weights [n, k] (a repeated entry of a vertex adds up)."""
    rigid = entries.shape[1] == 1 and len(entries) and (entries == entries[0, 0]).all() and (weights == 1).all()
    order = np.argsort(weights == 0, axis=1, kind="stable")  # zero weights last: blocks skip slots none uses
    return Influences(np.ascontiguousarray(np.take_along_axis(entries, order, 1), dtype=np.intp),
                      np.ascontiguousarray(np.take_along_axis(weights, order, 1), dtype=np.float32),
                      np.count_nonzero(weights, axis=1), int(entries[0, 0]) if rigid else -1)


def fixed_parts(parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]) -> list[FixedPart]:
    """FixedPart of each (first vertex, palette entries [n, k], weights [n, k], points [n, 3])."""
    out = []
    for first, entries, weights, points in parts:
        influence = influences(entries, weights)
        weighted = np.empty(influence.weights.shape + (4,), dtype=np.float32)
        weighted[..., :3] = influence.weights[..., None] * np.asarray(points, dtype=np.float32)[:, None]
        weighted[..., 3] = influence.weights
        out.append(FixedPart(first, influence, weighted))
    return out


def palette_columns(palette: np.ndarray) -> np.ndarray:
    """Palette matrices [T, P, 4, 4] as float32 [P, 4 (matrix column), 3 (matrix row) * T]."""
    frames, size = palette.shape[:2]
    columns = np.empty((size, 4, 3, frames), dtype=np.float32)
    columns[:] = palette[:, :, :3, :].transpose(1, 3, 2, 0)
    return columns.reshape(size, 4, 3 * frames)


def _blocks(count: int, columns: np.ndarray):
    """Slices of at most BLOCK_FLOATS gathered floats over `count` vertices."""
    step = max(16, BLOCK_FLOATS // (4 * columns.shape[2]))
    return (slice(start, min(start + step, count)) for start in range(0, count, step))


def blend_fixed_points(parts: list[FixedPart], columns: np.ndarray, out: np.ndarray) -> None:
    """Write world positions of fixed points into out [T, V, 3] (columns: palette_columns of T or 1 frames).

    Per block and influence slot: one gather of the slot's matrices [b, 4, 3T] contracted with the weighted
    points; the points [b, 3T] (vertex-major) are then a 2D transpose into out's [T, 3V] rows.
    """
    frames = columns.shape[2] // 3
    flat = out.reshape(out.shape[0], -1)
    for part in parts:
        influence = part.influences
        for rows in _blocks(influence.count, columns):
            weighted = part.weighted[rows]
            if influence.entry >= 0:
                moved = np.einsum("bj,jc->bc", weighted[:, 0], columns[influence.entry])
            else:
                entries, _ = influence.block(rows)
                moved = np.einsum("bj,bjc->bc", weighted[:, 0], columns[entries[:, 0]])
                for s in range(1, entries.shape[1]):
                    moved += np.einsum("bj,bjc->bc", weighted[:, s], columns[entries[:, s]])
            start = 3 * (part.first + rows.start)
            flat[:, start:start + moved.shape[0] * 3] = moved.reshape(-1, frames).T  # [b * 3, T]


def transform_points(matrices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """float32 [T, n, 3] of points [T or 1, n, 3] under one affine matrix per frame [T or 1, 4, 4] (float64)."""
    linear = matrices[:, :3, :3].transpose(0, 2, 1).astype(np.float32)
    out = np.matmul(points, linear)
    out += matrices[:, None, :3, 3].astype(np.float32)
    return out


def blend_moving_points(influence: Influences, columns: np.ndarray, points: np.ndarray) -> np.ndarray:
    """World positions float32 [T, n, 3] of points that move themselves (morphs) [T or 1, n, 3].

    columns: palette_columns [P, 4, 3T']; each block's blended matrices [b, 4, 3, T'] are applied per frame.
    """
    frames = columns.shape[2] // 3
    out = np.empty((max(frames, len(points)), influence.count, 3), dtype=np.float32)
    for rows in _blocks(influence.count, columns):
        entries, weights = influence.block(rows)
        blended = np.einsum("bs,bsjc->bjc", weights, columns[entries])
        blended = blended.reshape(-1, 4, 3, frames).transpose(3, 0, 2, 1)  # [T', b, 3, 4]
        block = points[:, rows]
        moved = blended[..., 3] + blended[..., 0] * block[..., 0:1]
        moved += blended[..., 1] * block[..., 1:2]
        moved += blended[..., 2] * block[..., 2:3]
        out[:, rows] = moved
    return out
