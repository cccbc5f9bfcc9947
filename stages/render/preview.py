"""Write a clip's rendered frames as an animated GIF (Pillow) or an MP4 (imageio-ffmpeg, when installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.render.clip import render_clip


def write_frames(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write uint8 frames [T, H, W, 3] to `path` (.gif or .mp4)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(frame) for frame in frames]
        duration_ms = max(20, int(round(1000.0 / fps)))
        images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0, optimize=False)
        return path
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401  (imageio's ffmpeg plugin needs it)
        except ImportError as exc:
            raise RuntimeError(
                "writing .mp4 needs imageio-ffmpeg (pip install imageio-ffmpeg==0.8.1); or write a .gif instead"
            ) from exc
        import imageio.v2 as imageio

        even = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]  # yuv420p needs even sides
        with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1, ffmpeg_log_level="error") as out:
            for frame in even:
                out.append_data(frame)
        return path
    raise ValueError(f"preview path must end in .gif or .mp4, got {path.name!r}")


def write_preview(
    vertices: np.ndarray,
    faces: np.ndarray,
    path: str | Path,
    fps: float = 10.0,
    size: int = 512,
    views: int = 4,
    renderer: str = "auto",
) -> Path:
    """Render a clip (a grid of views per frame) and write it as .gif or .mp4."""
    return write_frames(render_clip(vertices, faces, size=size, views=views, renderer=renderer), path, fps)
