"""Renderer: shaded views of generated and synthetic clips, the NumPy and EGL paths agree, previews write."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from generated_clips import generated_clip
from stages.render import render_clip, write_preview
from stages.render.camera import BACKGROUND, Camera, look_at, perspective
from stages.render.clip import gl_unavailable_reason
from stages.render.raster import rasterize, render_view
from synthetic_clips import pulsing_sphere, rotating_box


def _object_mask(image: np.ndarray) -> np.ndarray:
    return (image != BACKGROUND).any(axis=-1)


def _tiles(frame: np.ndarray) -> list[np.ndarray]:
    h, w = frame.shape[0] // 2, frame.shape[1] // 2
    return [frame[:h, :w], frame[:h, w:], frame[h:, :w], frame[h:, w:]]


def test_generated_creature_views_are_centred_and_frames_move():
    clip, _ = generated_clip("creature", "wave")
    frames = render_clip(clip.vertices, clip.faces, size=192, views=4, renderer="numpy")
    assert frames.shape == (clip.frames, 192, 192, 3) and frames.dtype == np.uint8
    for tile in _tiles(frames[0]):
        mask = _object_mask(tile)
        assert 0.01 < mask.mean() < 0.8, "each view shows the object, not empty and not filling the tile"
        ys, xs = np.nonzero(mask)
        centre = np.array([(ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2]) / tile.shape[0]
        assert np.all(np.abs(centre - 0.5) < 0.15), f"object off centre: {centre}"
        assert len(np.unique(tile[mask].reshape(-1, 3), axis=0)) > 3, "shading varies over the surface"
    moved = [(_object_mask(frames[t]) != _object_mask(frames[0])).mean() for t in range(1, clip.frames)]
    assert max(moved) > 0.002, "frames differ when the creature moves"


def test_static_clip_gives_identical_frames_and_render_is_deterministic():
    clip = rotating_box(frames=4)
    still = np.repeat(clip.vertices[:1], 3, axis=0)
    frames = render_clip(still, clip.faces, size=96, renderer="numpy")
    assert (frames[0] == frames[1]).all() and (frames[1] == frames[2]).all()
    again = render_clip(clip.vertices, clip.faces, size=96, renderer="numpy")
    assert (again == render_clip(clip.vertices, clip.faces, size=96, renderer="numpy")).all()
    assert (again[0] != again[-1]).any()


def test_nearer_triangle_wins_and_coverage_matches_area():
    # two screen-space triangles: a big far one and a small near one on top of it
    screen = np.array([[[0, 0], [64, 0], [0, 64]], [[8, 8], [24, 8], [8, 24]]], dtype=np.float64)
    depth = np.array([[0.5, 0.5, 0.5], [0.1, 0.1, 0.1]])
    faces = rasterize(screen, depth, 64, 64)
    assert abs((faces >= 0).sum() - 64 * 64 / 2) < 64 + 1  # half the square, up to the diagonal's pixels
    assert faces[12, 12] == 1 and faces[40, 4] == 0 and faces[60, 60] == -1
    swapped = rasterize(screen, depth[::-1].copy(), 64, 64)
    assert swapped[12, 12] == 0


def test_camera_projection_puts_the_target_at_the_image_centre():
    camera = Camera(look_at(np.array([0.0, 0.0, 5.0]), np.zeros(3)), perspective(35.0, 1.0, 0.1, 50.0), 32, 32)
    triangle = np.array([[[-0.2, -0.2, 0.0], [0.2, -0.2, 0.0], [0.0, 0.2, 0.0]]])
    image = render_view(triangle.reshape(-1, 3), np.array([[0, 1, 2]]), camera, BACKGROUND)
    ys, xs = np.nonzero(_object_mask(image))
    assert abs(xs.mean() - 15.5) < 1.5 and abs(ys.mean() - 15.5) < 2.5


@pytest.mark.skipif(gl_unavailable_reason() is not None, reason=f"no EGL context: {gl_unavailable_reason()}")
def test_egl_and_numpy_renderers_agree():
    clip = pulsing_sphere(frames=3)
    cpu = render_clip(clip.vertices, clip.faces, size=128, renderer="numpy").astype(int)
    gpu = render_clip(clip.vertices, clip.faces, size=128, renderer="egl").astype(int)
    differing = (np.abs(cpu - gpu).max(axis=-1) > 2).mean()
    assert differing < 0.01, f"{differing:.2%} of pixels differ beyond edge pixels"


def test_bad_meshes_are_refused_or_cleaned():
    clip = rotating_box(frames=2)
    with pytest.raises(ValueError, match=r"\[T, N, 3\]"):
        render_clip(clip.vertices[0], clip.faces)
    nan_vertex = int(clip.faces[0, 0])
    on_nan = (clip.faces == nan_vertex).any(axis=1)
    faces = np.concatenate([clip.faces, [[0, 1, 10**6]]])  # out-of-range face dropped, not a crash
    vertices = clip.vertices.copy()
    vertices[1, nan_vertex] = np.nan  # non-finite vertex in frame 1: its faces are not drawn there
    frames = render_clip(vertices, faces, size=64, renderer="numpy")
    clean = clip.vertices.copy()
    without = render_clip(clean, clip.faces[~on_nan], size=64, renderer="numpy")
    everything = render_clip(clean, clip.faces, size=64, renderer="numpy")
    assert (frames[1] == without[1]).all(), "frame 1 draws exactly the faces that avoid the NaN vertex"
    assert (frames[1] != everything[1]).any(), "the dropped faces are visible when drawn (the check has teeth)"
    assert (frames[0] == everything[0]).all(), "frame 0 has no NaN: every valid face is drawn"


def test_write_preview_gif(tmp_path):
    clip = rotating_box(frames=5)
    path = write_preview(clip.vertices, clip.faces, tmp_path / "box.gif", fps=10, size=64, renderer="numpy")
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (64, 64)
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        write_preview(clip.vertices, clip.faces, tmp_path / "box.png", fps=10, size=64)


def test_write_preview_mp4_or_clear_error(tmp_path):
    clip = rotating_box(frames=4)
    try:
        import imageio_ffmpeg
    except ImportError:
        with pytest.raises(RuntimeError, match=r"imageio-ffmpeg.*\.gif"):
            write_preview(clip.vertices, clip.faces, tmp_path / "box.mp4", fps=10, size=64, renderer="numpy")
        return
    path = write_preview(clip.vertices, clip.faces, tmp_path / "box.mp4", fps=10, size=64, renderer="numpy")
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = list(reader)
    assert meta["size"] == (64, 64) and meta["fps"] == 10 and len(frames) == 4  # what was asked, read back


def test_preview_command_writes_gif_from_npz(tmp_path, capsys):
    from pipeline.cli import main

    clip = rotating_box(frames=3)
    np.savez(tmp_path / "clip.npz", vertices=clip.vertices, faces=clip.faces)
    assert main(["preview", str(tmp_path / "clip.npz"), "--out", str(tmp_path / "p.gif"), "--size", "64"]) == 0
    assert "renderer" in capsys.readouterr().err
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames == 3
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert main(["preview", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "q.gif")]) == 2
    assert "not an .npz" in capsys.readouterr().err


def test_preview_command_reads_a_shard_sample(tmp_path):
    from pipeline.cli import main
    from stages.shard import ShardConfig, write_shards

    clip = rotating_box(frames=3)
    rows, errors = write_shards([clip], {}, {}, str(tmp_path / "shards"), ShardConfig())
    assert not [e for e in errors if e["status"] == "failed"]
    key = rows[0]["key"]
    assert main(["preview", "--shards", str(tmp_path / "shards"), key, "--out", str(tmp_path / "s.gif"),
                 "--size", "64", "--renderer", "numpy"]) == 0
    with Image.open(tmp_path / "s.gif") as gif:
        assert gif.n_frames == 3
    assert main(["preview", "--shards", str(tmp_path / "shards"), "no-such-key", "--out", str(tmp_path / "t.gif")]) == 2


def test_preview_command_renders_the_glb_that_animate_writes(tmp_path, capsys):
    """`dymesh animate` writes a morph-target GLB; preview evaluates its animation and renders every frame."""
    from pipeline.cli import main
    from stages.train.animate import animated_glb

    clip = rotating_box(frames=6)
    (tmp_path / "anim.glb").write_bytes(animated_glb(clip.vertices, clip.faces, fps=10.0))
    assert main(["preview", str(tmp_path / "anim.glb"), "--out", str(tmp_path / "a.gif"), "--size", "64",
                 "--renderer", "numpy"]) == 0
    assert "1 animation(s) evaluated at 10 fps" in capsys.readouterr().err
    expected = render_clip(clip.vertices, clip.faces, size=64, renderer="numpy")
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 6
        gif.seek(5)
        last = np.asarray(gif.convert("RGB"))
    assert (_object_mask(last) == _object_mask(expected[5])).mean() > 0.99  # the last pose, not the rest pose


def test_preview_command_takes_gltf_assets_all_or_one_animation(tmp_path, capsys, shared_assets):
    from pipeline.cli import main

    fox = shared_assets / "Fox.glb"  # three animations: 0 'Survey', 1 'Walk', 2 'Run'
    assert main(["preview", str(fox), "--out", str(tmp_path / "all.gif"), "--size", "32", "--renderer", "numpy",
                 "--max-frames", "4"]) == 0
    assert main(["preview", str(fox), "--out", str(tmp_path / "walk.gif"), "--size", "32", "--renderer", "numpy",
                 "--animation", "1", "--fps", "5"]) == 0
    with Image.open(tmp_path / "all.gif") as everything, Image.open(tmp_path / "walk.gif") as walk:
        assert everything.n_frames == 12
        assert walk.n_frames == 4 and walk.info["duration"] == 200  # Walk lasts 0.71 s: t = 0, 0.2, 0.4, 0.6
    gltf = shared_assets / "AnimatedCube" / "AnimatedCube.gltf"  # a .gltf with a side .bin
    assert main(["preview", str(gltf), "--out", str(tmp_path / "cube.gif"), "--size", "32", "--renderer", "numpy"]) == 0
    assert main(["preview", str(shared_assets / "Box.glb"), "--out", str(tmp_path / "box.gif"), "--size", "32",
                 "--renderer", "numpy"]) == 0
    with Image.open(tmp_path / "box.gif") as box:
        assert box.n_frames == 1  # no animation: the rest pose
    capsys.readouterr()
    assert main(["preview", str(fox), "--out", str(tmp_path / "x.gif"), "--animation", "3"]) == 2
    assert "no animation 3 (it has 3: 0 'Survey', 1 'Walk', 2 'Run')" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["preview", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "y.gif")]) == 2
    assert "unknown asset format 'txt'" in capsys.readouterr().err
    broken = shared_assets / "broken" / "node_cycle.glb"
    assert main(["preview", str(broken), "--out", str(tmp_path / "z.gif")]) == 2
    assert "malformed: node hierarchy cycle" in capsys.readouterr().err
