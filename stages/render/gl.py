"""Offscreen OpenGL rasterisation through EGL (`moderngl`, no display): the same projected, shaded triangles as
the NumPy rasteriser, drawn by the GPU (or by Mesa's llvmpipe where EGL has no GPU)."""

from __future__ import annotations

import numpy as np

from stages.render.camera import Camera, face_colors, to_clip_space

VERTEX_SHADER = """
#version 330
in vec4 in_clip;
in vec3 in_color;
flat out vec3 color;
void main() { gl_Position = in_clip; color = in_color; }
"""
FRAGMENT_SHADER = """
#version 330
flat in vec3 color;
out vec4 fragment;
void main() { fragment = vec4(color, 1.0); }
"""


class GLUnavailable(RuntimeError):
    """No usable EGL/OpenGL context (moderngl missing, or no EGL driver)."""


class GLRenderer:
    """Holds one standalone EGL context; renders views like `raster.render_view`."""

    def __init__(self) -> None:
        try:
            import moderngl
        except ImportError as exc:
            raise GLUnavailable("moderngl is not installed (pip install moderngl==5.13.0)") from exc
        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as exc:  # glcontext raises plain Exceptions for missing drivers
            raise GLUnavailable(f"no EGL context: {exc}") from exc
        self.device = self.ctx.info.get("GL_RENDERER", "unknown")
        self.program = self.ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        self._framebuffers: dict[tuple[int, int], object] = {}

    @property
    def software(self) -> bool:
        """True when EGL fell back to a CPU rasteriser (Mesa llvmpipe / softpipe)."""
        return any(name in self.device.lower() for name in ("llvmpipe", "softpipe", "swrast"))

    def _framebuffer(self, width: int, height: int):
        key = (width, height)
        if key not in self._framebuffers:
            self._framebuffers[key] = self.ctx.simple_framebuffer((width, height), components=4)
        return self._framebuffers[key]

    def render_view(
        self, vertices: np.ndarray, faces: np.ndarray, camera: Camera, background: np.ndarray
    ) -> np.ndarray:
        """One shaded view of one frame: uint8 [height, width, 3]."""
        triangles = vertices[faces]
        clip = to_clip_space(vertices, camera).astype(np.float32)[faces]  # [F, 3, 4]
        finite = np.isfinite(clip).all(axis=(1, 2))
        clip = clip[finite]
        colors = np.repeat(face_colors(triangles[finite], camera)[:, None, :], 3, axis=1).astype(np.float32)
        framebuffer = self._framebuffer(camera.width, camera.height)
        framebuffer.use()
        self.ctx.enable(self.ctx.DEPTH_TEST)
        framebuffer.clear(*(background / 255.0), 1.0, depth=1.0)
        if len(clip):
            interleaved = np.concatenate([clip, colors], axis=-1).reshape(-1, 7)
            buffer = self.ctx.buffer(np.ascontiguousarray(interleaved).tobytes())
            vertex_array = self.ctx.vertex_array(self.program, [(buffer, "4f 3f", "in_clip", "in_color")])
            vertex_array.render()
            vertex_array.release()
            buffer.release()
        pixels = framebuffer.read(components=3, alignment=1)
        return np.frombuffer(pixels, dtype=np.uint8).reshape(camera.height, camera.width, 3)[::-1].copy()

    def close(self) -> None:
        for framebuffer in self._framebuffers.values():
            framebuffer.release()
        self.ctx.release()
