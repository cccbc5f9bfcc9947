"""ms per frame of each renderer at 512x512 (a 2x2 grid of 256x256 views), against matplotlib's
Poly3DCollection (the naive baseline), on a generated creature clip and an icosphere. Prints a table with ratios."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAMES = 4
SIZE = 512


def creature_clip(vertices: int) -> tuple[np.ndarray, np.ndarray, str]:
    from stages.evaluate import load_asset
    from stages.generate import generate_asset
    from stages.resample import ResampleConfig, clips_from_scene

    with tempfile.TemporaryDirectory() as folder:
        scene = load_asset(generate_asset("creature", 0, Path(folder) / "creature.glb"))
    clips, _ = clips_from_scene(scene, "creature", ResampleConfig(vertices=vertices, max_clips_per_animation=1))
    return clips[0].vertices[:FRAMES], clips[0].faces, f"generated creature, N={vertices}"


def sphere_clip() -> tuple[np.ndarray, np.ndarray, str]:
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=5)
    base = np.asarray(mesh.vertices)
    frames = np.stack([base * (1 + 0.1 * np.sin(t)) for t in range(FRAMES)]).astype(np.float32)
    return frames, np.asarray(mesh.faces), "icosphere, N=10242"


def matplotlib_frames(vertices: np.ndarray, faces: np.ndarray) -> None:
    """The baseline: four Poly3DCollection subplots with per-face Lambert colours, drawn with Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    from stages.render.camera import ELEVATION_DEGREES, VIEW_AZIMUTHS_DEGREES, face_normals

    for frame in vertices:
        figure = plt.figure(figsize=(SIZE / 100, SIZE / 100), dpi=100)
        triangles = frame[faces]
        shade = 0.3 + 0.7 * np.abs(face_normals(triangles.astype(np.float64)) @ np.array([0.3, 0.8, 0.5]))
        for v, azimuth in enumerate(VIEW_AZIMUTHS_DEGREES):
            axes = figure.add_subplot(2, 2, v + 1, projection="3d")
            axes.add_collection3d(Poly3DCollection(triangles, facecolors=np.outer(shade, [0.62, 0.70, 0.86])))
            low, high = frame.min(axis=0), frame.max(axis=0)
            axes.set_xlim(low[0], high[0]), axes.set_ylim(low[2], high[2]), axes.set_zlim(low[1], high[1])
            axes.view_init(ELEVATION_DEGREES, azimuth)
            axes.set_axis_off()
        figure.canvas.draw()
        np.asarray(figure.canvas.buffer_rgba())
        plt.close(figure)


def time_ms_per_frame(run, frames: int) -> float:
    run()  # warm-up (imports, GL context, caches)
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / frames * 1000


def main() -> None:
    from stages.render import render_clip, renderer_label
    from stages.render.clip import gl_unavailable_reason

    renderers = ["numpy"] + (["egl"] if gl_unavailable_reason() is None else [])
    print(f"render benchmark: {FRAMES} frames per mesh, {SIZE}x{SIZE} per frame (2x2 grid of {SIZE // 2}px views)")
    if "egl" not in renderers:
        print(f"egl renderer skipped: {gl_unavailable_reason()}")
    rows = []
    for vertices, faces, name in (creature_clip(4096), sphere_clip()):
        baseline = time_ms_per_frame(lambda: matplotlib_frames(vertices, faces), len(vertices))
        rows.append((name, len(faces), "matplotlib Poly3DCollection (baseline)", baseline))
        for renderer in renderers:
            ms = time_ms_per_frame(lambda: render_clip(vertices, faces, size=SIZE, views=4, renderer=renderer),
                                   len(vertices))
            rows.append((name, len(faces), renderer_label(renderer), ms))
    print(f"| mesh | faces | renderer | ms/frame | speed-up vs baseline |")
    print("|---|---|---|---|---|")
    for name, faces, renderer, ms in rows:
        base = next(r[3] for r in rows if r[0] == name and "baseline" in r[2])
        print(f"| {name} | {faces} | {renderer} | {ms:.1f} | {base / ms:.1f}x |")


if __name__ == "__main__":
    main()
