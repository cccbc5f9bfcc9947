"""Render a clip's frames as a grid of views per frame, with the EGL renderer when it works, else NumPy."""

from __future__ import annotations

import numpy as np

from stages.render import raster
from stages.render.camera import BACKGROUND, grid_shape, view_cameras
from stages.render.gl import GLRenderer, GLUnavailable

RENDERERS = ("auto", "numpy", "egl")
MAX_RENDER_FACES = 2_000_000
MAX_RENDER_SIZE = 4096

_gl: GLRenderer | None = None
_gl_error: str | None = None


def gl_renderer() -> GLRenderer | None:
    """The process-wide EGL renderer, or None (the reason is in `gl_unavailable_reason()`)."""
    global _gl, _gl_error
    if _gl is None and _gl_error is None:
        try:
            _gl = GLRenderer()
        except GLUnavailable as exc:
            _gl_error = str(exc)
    return _gl


def gl_unavailable_reason() -> str | None:
    gl_renderer()
    return _gl_error


def renderer_label(renderer: str = "auto") -> str:
    """What `renderer` resolves to here: "numpy", "egl:<GL device>" (with "software" when EGL has no GPU)."""
    name = resolve_renderer(renderer)
    if name == "numpy":
        return "numpy"
    gl = gl_renderer()
    return f"egl:{gl.device}" + (" (software)" if gl.software else "")


def resolve_renderer(renderer: str) -> str:
    """"auto" -> "egl" when an EGL context can be made, else "numpy"; "egl" fails loudly when it cannot."""
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}; choose one of {', '.join(RENDERERS)}")
    if renderer == "numpy":
        return "numpy"
    if gl_renderer() is not None:
        return "egl"
    if renderer == "egl":
        raise GLUnavailable(f"the egl renderer is unavailable: {_gl_error}; use renderer 'numpy'")
    return "numpy"


def check_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 vertices [T, N, 3] and int64 faces [F, 3] (faces with out-of-range indices dropped)."""
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 3 or vertices.shape[2] != 3 or vertices.shape[0] < 1:
        raise ValueError(f"vertices must have shape [T, N, 3], got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape [F, 3], got {faces.shape}")
    if len(faces) > MAX_RENDER_FACES:
        raise ValueError(f"{len(faces)} faces is over the render limit of {MAX_RENDER_FACES}")
    faces = faces.astype(np.int64)
    faces = faces[((faces >= 0) & (faces < vertices.shape[1])).all(axis=1)]
    return vertices.astype(np.float64), faces


def render_clip(
    vertices: np.ndarray, faces: np.ndarray, size: int = 256, views: int = 4, renderer: str = "auto"
) -> np.ndarray:
    """Frames [T, H, W, 3] uint8: a grid of `views` shaded views per frame (2x2 for 4), cameras framed on frame 0.

    `size` is the side of the whole grid; each view is a square tile of size // columns pixels.
    """
    vertices, faces = check_mesh(vertices, faces)
    if not 8 <= size <= MAX_RENDER_SIZE:
        raise ValueError(f"size must be between 8 and {MAX_RENDER_SIZE}, got {size}")
    rows, columns = grid_shape(views)
    tile = size // columns
    cameras = view_cameras(vertices[0], views, tile)
    draw = gl_renderer().render_view if resolve_renderer(renderer) == "egl" else raster.render_view
    frames = np.empty((len(vertices), rows * tile, columns * tile, 3), dtype=np.uint8)
    frames[:] = BACKGROUND
    for t, frame in enumerate(vertices):
        for v, camera in enumerate(cameras):
            r, c = divmod(v, columns)
            frames[t, r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = draw(frame, faces, camera, BACKGROUND)
    return frames
