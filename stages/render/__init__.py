"""Headless rendering of clips: a grid of shaded views per frame (EGL via moderngl when it works, else NumPy)."""

from stages.render.clip import RENDERERS, render_clip, renderer_label, resolve_renderer
from stages.render.preview import write_frames, write_preview

__all__ = ["RENDERERS", "render_clip", "renderer_label", "resolve_renderer", "write_frames", "write_preview"]
