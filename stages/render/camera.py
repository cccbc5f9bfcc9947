"""Camera, framing and lighting shared by every renderer, so the CPU and GL images agree.

Conventions: glTF world space (+Y up, metres), OpenGL-style camera (looks down -Z), 4x4 matrices acting on
column vectors, NDC in [-1, 1]^3, pixel (0, 0) at the top-left corner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FOV_Y_DEGREES = 35.0
ELEVATION_DEGREES = 20.0
# Azimuths of the views, in order: three-quarter front-right, front-left, back-left, back-right.
VIEW_AZIMUTHS_DEGREES = (30.0, -60.0, -150.0, 120.0)
BACKGROUND = np.array([236, 238, 242], dtype=np.uint8)
BASE_COLOR = np.array([0.62, 0.70, 0.86], dtype=np.float32)
AMBIENT = 0.22
# Directional lights in camera space (x right, y up, z towards the viewer), with their intensities.
LIGHTS_CAMERA_SPACE = (
    (np.array([-0.45, 0.60, 0.66]), 0.62),  # key: upper left, in front
    (np.array([0.60, 0.15, 0.78]), 0.30),  # fill: right, in front
    (np.array([0.00, 0.85, -0.53]), 0.16),  # rim: above, behind
)


@dataclass(frozen=True)
class Camera:
    """One view: world->camera `view` and camera->clip `projection` matrices, and the image size in pixels."""

    view: np.ndarray  # [4, 4] float64
    projection: np.ndarray  # [4, 4] float64
    width: int
    height: int

    @property
    def matrix(self) -> np.ndarray:
        """World -> clip space."""
        return self.projection @ self.view


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """World -> camera matrix of a camera at `eye` looking at `target`."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight up or down
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right = right / np.linalg.norm(right)
    true_up = np.cross(right, forward)
    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = right, true_up, -forward
    view[:3, 3] = -view[:3, :3] @ eye
    return view


def perspective(fov_y_degrees: float, aspect: float, near: float, far: float) -> np.ndarray:
    """OpenGL perspective projection (camera -> clip space)."""
    f = 1.0 / math.tan(math.radians(fov_y_degrees) / 2.0)
    projection = np.zeros((4, 4))
    projection[0, 0] = f / aspect
    projection[1, 1] = f
    projection[2, 2] = (far + near) / (near - far)
    projection[2, 3] = 2.0 * far * near / (near - far)
    projection[3, 2] = -1.0
    return projection


def framing(first_frame: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and radius of the frame-0 bounding box (the radius is half its diagonal, never zero)."""
    points = np.asarray(first_frame, dtype=np.float64).reshape(-1, 3)
    finite = points[np.isfinite(points).all(axis=1)]
    if len(finite) == 0:
        return np.zeros(3), 1.0
    low, high = finite.min(axis=0), finite.max(axis=0)
    radius = float(np.linalg.norm(high - low) / 2.0)
    return (low + high) / 2.0, radius if radius > 1e-9 else 1.0


def view_cameras(first_frame: np.ndarray, views: int, tile: int) -> list[Camera]:
    """`views` cameras around the frame-0 bounding box, each seeing its bounding sphere whole in a square tile."""
    if not 1 <= views <= len(VIEW_AZIMUTHS_DEGREES):
        raise ValueError(f"views must be between 1 and {len(VIEW_AZIMUTHS_DEGREES)}, got {views}")
    center, radius = framing(first_frame)
    distance = radius / math.sin(math.radians(FOV_Y_DEGREES) / 2.0) * 1.08
    projection = perspective(FOV_Y_DEGREES, 1.0, near=distance * 0.05, far=distance + radius * 8.0)
    elevation = math.radians(ELEVATION_DEGREES)
    cameras = []
    for azimuth_degrees in VIEW_AZIMUTHS_DEGREES[:views]:
        azimuth = math.radians(azimuth_degrees)
        direction = np.array(
            [math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth)]
        )
        cameras.append(Camera(look_at(center + distance * direction, center), projection, tile, tile))
    return cameras


def grid_shape(views: int) -> tuple[int, int]:
    """(rows, columns) of the view grid: 1 -> 1x1, 2 -> 1x2, 3 or 4 -> 2x2."""
    columns = math.ceil(math.sqrt(views))
    return math.ceil(views / columns), columns


def face_normals(triangles: np.ndarray) -> np.ndarray:
    """Unit normals of triangles [..., 3, 3] (zero for degenerate ones)."""
    normals = np.cross(triangles[..., 1, :] - triangles[..., 0, :], triangles[..., 2, :] - triangles[..., 0, :])
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def face_colors(triangles: np.ndarray, camera: Camera) -> np.ndarray:
    """Flat two-sided Lambert shading of world-space triangles [F, 3, 3] -> float32 RGB in [0, 1], [F, 3]."""
    normals = face_normals(np.asarray(triangles, dtype=np.float64))
    camera_to_world = camera.view[:3, :3].T
    intensity = np.full(len(normals), AMBIENT)
    for direction, strength in LIGHTS_CAMERA_SPACE:
        light = camera_to_world @ (direction / np.linalg.norm(direction))
        intensity = intensity + strength * np.abs(np.einsum("fj,j->f", normals, light))
    return np.clip(BASE_COLOR[None, :] * intensity[:, None], 0.0, 1.0).astype(np.float32)


def to_clip_space(points: np.ndarray, camera: Camera) -> np.ndarray:
    """World points [..., 3] -> homogeneous clip coordinates [..., 4]."""
    points = np.asarray(points, dtype=np.float64)
    homogeneous = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], axis=-1)
    return np.einsum("...j,ij->...i", homogeneous, camera.matrix)  # einsum: no BLAS threads for 4x4
