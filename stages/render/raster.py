"""A vectorised NumPy triangle rasteriser: z-buffer, flat colours, no Python loop per pixel or per triangle."""

from __future__ import annotations

import numpy as np

from stages.render.camera import Camera, face_colors, to_clip_space

# Fragments (covered pixels) merged into the z-buffer at once; bounds the memory of one chunk.
FRAGMENT_BUDGET = 1 << 20


def project(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Screen triangles [F', 3, 2] in pixels, NDC depth [F', 3] and the indices of the faces kept.

    Faces with a vertex behind the camera, outside the depth range or not finite are dropped.
    """
    clip = to_clip_space(vertices, camera)[faces]  # [F, 3, 4]
    w = clip[..., 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndc = clip[..., :3] / w[..., None]
    keep = np.isfinite(ndc).all(axis=(1, 2)) & (w > 0).all(axis=1) & (np.abs(ndc[..., 2]) <= 1.0).all(axis=1)
    ndc = ndc[keep]
    screen = np.stack([(ndc[..., 0] + 1.0) * 0.5 * camera.width, (1.0 - ndc[..., 1]) * 0.5 * camera.height], -1)
    return screen, ndc[..., 2], np.flatnonzero(keep)


def rasterize(screen: np.ndarray, depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """Index of the nearest triangle covering each pixel centre, -1 where none: int64 [height, width].

    Scanline spans, vectorised: every (triangle, pixel row) pair gets its covered x-span from the triangle's
    edges, then every covered pixel becomes one fragment; fragments are merged into the z-buffer in chunks.
    """
    nearest_depth = np.full(width * height, np.inf)
    nearest_face = np.full(width * height, -1, dtype=np.int64)
    if len(screen) == 0:
        return nearest_face.reshape(height, width)
    y0 = np.clip(np.ceil(screen[..., 1].min(axis=1) - 0.5), 0, height).astype(np.int64)
    y1 = np.clip(np.floor(screen[..., 1].max(axis=1) - 0.5), -1, height - 1).astype(np.int64)
    a, b, c = screen[:, 0], screen[:, 1], screen[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    visible = np.flatnonzero((y1 >= y0) & (np.abs(area) > 1e-12))
    rows_per_face = y1[visible] - y0[visible] + 1
    face = np.repeat(visible, rows_per_face)  # one entry per (triangle, row)
    first_row = np.repeat(np.cumsum(rows_per_face) - rows_per_face, rows_per_face)
    centre_y = (y0[face] + np.arange(len(face)) - first_row) + 0.5
    left, right = np.full(len(face), np.inf), np.full(len(face), -np.inf)
    for p, q in ((a, b), (b, c), (c, a)):
        py, qy, px, qx = p[face, 1], q[face, 1], p[face, 0], q[face, 0]
        crosses = (np.minimum(py, qy) <= centre_y) & (centre_y <= np.maximum(py, qy)) & (py != qy)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = px + (centre_y - py) * (qx - px) / (qy - py)
        left = np.where(crosses, np.minimum(left, x), left)
        right = np.where(crosses, np.maximum(right, x), right)
    x_start = np.maximum(np.ceil(left - 0.5), 0)
    x_stop = np.minimum(np.floor(right - 0.5), width - 1)
    span = np.where(np.isfinite(x_start) & np.isfinite(x_stop), np.maximum(x_stop - x_start + 1, 0), 0).astype(np.int64)
    x_start = np.where(span > 0, x_start, 0).astype(np.int64)
    ends = np.cumsum(span)
    start = 0
    while start < len(span):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + FRAGMENT_BUDGET, side="right"))
        stop = max(stop, start + 1)
        rows = np.arange(start, stop)
        counts = span[rows]
        row = np.repeat(rows, counts)
        offset = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
        x = x_start[row] + offset
        y = (centre_y[row] - 0.5).astype(np.int64)
        f = face[row]
        z = _interpolate_depth(f, x + 0.5, y + 0.5, a, b, c, area, depth)
        _merge_fragments(y * width + x, z, f, nearest_depth, nearest_face)
        start = stop
    return nearest_face.reshape(height, width)


def _interpolate_depth(f, cx, cy, a, b, c, area, depth) -> np.ndarray:
    """Screen-space barycentric interpolation of NDC depth (which is affine in screen space)."""
    def edge(p, q):
        return (q[f, 0] - p[f, 0]) * (cy - p[f, 1]) - (q[f, 1] - p[f, 1]) * (cx - p[f, 0])

    w_a, w_b, w_c = edge(b, c) / area[f], edge(c, a) / area[f], edge(a, b) / area[f]
    return w_a * depth[f, 0] + w_b * depth[f, 1] + w_c * depth[f, 2]


def _merge_fragments(pixel, z, face, nearest_depth, nearest_face) -> None:
    """Keep, per pixel, the nearest fragment (ties: the lower face index)."""
    if len(pixel) == 0:
        return
    order = np.lexsort((face, z, pixel))
    pixel, z, face = pixel[order], z[order], face[order]
    first = np.ones(len(pixel), dtype=bool)
    first[1:] = pixel[1:] != pixel[:-1]
    pixel, z, face = pixel[first], z[first], face[first]
    closer = z < nearest_depth[pixel]
    nearest_depth[pixel[closer]] = z[closer]
    nearest_face[pixel[closer]] = face[closer]


def render_view(vertices: np.ndarray, faces: np.ndarray, camera: Camera, background: np.ndarray) -> np.ndarray:
    """One shaded view of one frame: uint8 [height, width, 3]."""
    screen, depth, kept = project(vertices, faces, camera)
    colors = face_colors(vertices[faces[kept]], camera)
    colors8 = np.round(colors * 255.0).astype(np.uint8)
    face_at = rasterize(screen, depth, camera.width, camera.height)
    image = np.broadcast_to(background, (camera.height, camera.width, 3)).copy()
    covered = face_at >= 0
    image[covered] = colors8[face_at[covered]]
    return image
