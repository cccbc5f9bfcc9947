"""Resample stage end to end: real and generated assets, exact shapes, the identity case, filters, ids, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from paths import ASSETS
from resample_scenes import ArrayScene, sphere, twist

from pipeline.cli import main
from stages.evaluate import load_asset
from stages.resample import ResampleConfig, clips_from_scene
from stages.resample.timeline import frame_times
from stages.resample.weld import bbox_diagonal, weld


def assert_valid_clip(clip, frames: int, vertices: int) -> None:
    assert clip.vertices.shape == (frames, vertices, 3) and clip.vertices.dtype == np.float32
    assert clip.faces.dtype == np.int32 and clip.faces.ndim == 2 and clip.faces.shape[1] == 3
    assert np.isfinite(clip.vertices).all()
    assert np.array_equal(np.unique(clip.faces), np.arange(vertices))  # every vertex used, indices in range
    f = clip.faces
    assert ((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])).all()
    assert len(np.unique(np.sort(f, axis=1), axis=0)) == len(f)


@pytest.mark.parametrize(
    "name, vertices, method",
    [
        ("Fox.glb", 1024, "subdivide"),  # 1728 evaluated vertices, 290 after welding
        ("CesiumMan.glb", 1024, "decimate"),  # 2338 welded
        ("AnimatedMorphSphere.glb", 300, "decimate"),
        ("RiggedSimple.glb", 512, "subdivide"),
        ("BoxAnimated.glb", 256, "subdivide"),
    ],
)
def test_real_assets_give_exact_shapes(shared_assets, name, vertices, method):
    scene = load_asset(shared_assets / name)
    config = ResampleConfig(vertices=vertices, frames=[16], max_clips_per_animation=2)
    clips, errors = clips_from_scene(scene, "x", config)
    assert clips, errors
    for clip in clips:
        assert_valid_clip(clip, 16, vertices)
        assert clip.extra["method"] == method
        assert clip.source_vertices <= scene.num_vertices
        errors = [clip.extra[f"{name}_error"] for name in ("vertex", "face", "coverage")]
        assert clip.resample_error == max(errors) and errors[0] == 0
        assert errors[1] <= config.max_face_error and errors[2] <= config.max_coverage_error
        assert (max(errors) > 0) == (method == "decimate")  # identity and splits of source faces are exact
        assert clip.scale > 0 and len(clip.content_hash) == 64
    assert [c.clip_id for c in clips] == sorted(c.clip_id for c in clips)


def test_decimation_error_is_reported_and_shrinks_with_n(shared_assets):
    scene = load_asset(shared_assets / "CesiumMan.glb")
    coarse, _ = clips_from_scene(scene, "man", ResampleConfig(vertices=400, frames=[16]))
    fine, _ = clips_from_scene(scene, "man", ResampleConfig(vertices=1600, frames=[16]))
    for clips in (coarse, fine):
        extra = clips[0].extra
        assert extra["vertex_error"] == 0 and 0 < extra["face_error"] and 0 < extra["coverage_error"]
        assert clips[0].resample_error == max(extra["face_error"], extra["coverage_error"])
    assert fine[0].resample_error < coarse[0].resample_error < 0.03


def test_generated_assets(tmp_path):
    from stages.generate import ASSET_KINDS, generate_asset

    for seed, kind in enumerate(ASSET_KINDS):
        scene = load_asset(generate_asset(kind, seed, tmp_path / f"{kind}.glb"))
        for vertices in (400, 3000):  # below and above the welded count
            clips, errors = clips_from_scene(scene, kind, ResampleConfig(vertices=vertices, frames=[8]))
            assert clips, (kind, errors)
            for clip in clips:
                assert_valid_clip(clip, 8, vertices)


def test_welded_count_equal_to_n_keeps_original_trajectories_exactly(shared_assets):
    scene = load_asset(shared_assets / "RiggedSimple.glb")
    duration = scene.animations[0].duration
    times = frame_times(np.arange(16), duration, 10.0)
    original = scene.evaluate(0, times)
    welded = weld(original, scene.faces, 1e-6 * bbox_diagonal(original[0]))
    count = welded.trajectories.shape[1]
    clips, _ = clips_from_scene(scene, "rs", ResampleConfig(vertices=count, frames=[16], max_clips_per_animation=1))
    assert clips[0].extra["method"] == "identity" and clips[0].resample_error == 0
    np.testing.assert_array_equal(clips[0].vertices, original[:, welded.source_index])
    np.testing.assert_array_equal(clips[0].faces, welded.faces)


def test_native_uses_welded_topology_capped(shared_assets):
    scene = load_asset(shared_assets / "CesiumMan.glb")
    clips, _ = clips_from_scene(scene, "m", ResampleConfig(vertices="native", frames=[16]))
    assert clips[0].num_vertices == clips[0].source_vertices == 2338
    capped, _ = clips_from_scene(scene, "m", ResampleConfig(vertices="native", frames=[16], max_native_vertices=1000))
    assert capped[0].num_vertices == 1000


def test_frames_are_evaluated_exactly_at_the_target_fps():
    points, faces = sphere(2)
    scene = ArrayScene(points, faces, durations=(3.25,))
    clips, _ = clips_from_scene(scene, "s", ResampleConfig(vertices=162, frames=[16], fps=12.0))
    assert [c.clip_id for c in clips] == ["s_a0_0000-0015", "s_a0_0016-0031"]  # 40 frames at 12 fps
    evaluated = np.concatenate([times for animation, times in scene.calls if animation is not None])
    np.testing.assert_array_equal(np.sort(evaluated), np.arange(32) / 12.0)
    np.testing.assert_allclose(clips[1].vertices[0], twist(points, 16 / 12.0), atol=1e-6)


def test_short_animations_follow_the_policies_in_order():
    points, faces = sphere(2)
    looping = ArrayScene(points, faces, durations=(np.pi / 2,))  # twist(t) has period pi/2 in sin(2t)
    clips, errors = clips_from_scene(looping, "l", ResampleConfig(vertices=162, frames=[32]))
    assert not errors and clips[0].looped and clips[0].short_policy == "loop" and clips[0].clip_id == "l_a0_0000-0031"
    np.testing.assert_allclose(clips[0].vertices[16], twist(points, 1.6 - np.pi / 2), atol=1e-5)
    one_way = ArrayScene(points, faces, durations=(1.0,))  # 11 frames, first and last pose far apart
    clips, errors = clips_from_scene(one_way, "o", ResampleConfig(vertices=162, frames=[16], short="loop"))
    assert not clips and errors[0]["error_type"] == "too-short" and errors[0]["status"] == "skipped"
    assert errors[0]["unit_id"] == "o_a0_0000-0015" and "11 frames" in errors[0]["message"]
    assert "does not loop" in errors[0]["message"]
    clips, errors = clips_from_scene(one_way, "o", ResampleConfig(vertices=162, frames=[16]))  # default: loop, retime
    assert not errors and clips[0].short_policy == "retime" and not clips[0].looped
    assert clips[0].fps == pytest.approx(15.0)  # 16 frames over 1 s
    np.testing.assert_allclose(clips[0].vertices[-1], twist(points, 1.0), atol=1e-5)
    clips, _ = clips_from_scene(one_way, "o", ResampleConfig(vertices=162, frames=[16], short=["hold"]))
    assert clips[0].short_policy == "hold" and clips[0].fps == 10.0
    np.testing.assert_array_equal(clips[0].vertices[10], clips[0].vertices[15])  # the last pose held
    _, errors = clips_from_scene(one_way, "o", ResampleConfig(vertices=162, frames=[16], short="skip"))
    assert errors[0]["error_type"] == "too-short" and "policy skip" in errors[0]["message"]


def test_loop_gap_is_measured_against_the_animation_own_motion():
    points, faces = sphere(2)

    def nearly_back(rest, t):  # a big swing whose end misses the start by 2% of the swing
        return rest + [10.0 * np.sin(np.pi * t / 1.2) + 0.2 * t / 1.2, 0.0, 0.0]

    scene = ArrayScene(points, faces, durations=(1.2,), motion=nearly_back)
    clips, _ = clips_from_scene(scene, "g", ResampleConfig(vertices=162, frames=[16], short="loop"))
    assert clips and clips[0].looped  # gap 0.2 is 6% of the diagonal (over loop_tolerance 0.1 if absolute)
    _, errors = clips_from_scene(scene, "g", ResampleConfig(vertices=162, frames=[16], short="loop",
                                                            loop_tolerance=0.01))
    assert errors[0]["error_type"] == "too-short" and "gap 0.0198 of its motion > loop_tolerance" in errors[0]["message"]


def test_determinism_same_bytes(shared_assets):
    config = ResampleConfig(vertices=700, frames=[16])
    runs = [clips_from_scene(load_asset(shared_assets / "CesiumMan.glb"), "m", config)[0] for _ in range(2)]
    assert len(runs[0]) == len(runs[1]) > 0
    for a, b in zip(*runs):
        assert a.vertices.tobytes() == b.vertices.tobytes() and a.faces.tobytes() == b.faces.tobytes()
        assert a.metadata() == b.metadata() and a.extra == b.extra


# --- filters: each rejects and accepts ------------------------------------------------------------------


def run_filter(motion=None, durations=(2.0,), points_faces=None, **config):
    points, faces = points_faces or sphere(2)
    scene = ArrayScene(points, faces, durations=durations, motion=motion)
    clips, errors = clips_from_scene(scene, "f", ResampleConfig(frames=[8], **{"vertices": 162, **config}))
    return clips, [e["error_type"] for e in errors], errors


def test_filter_static():
    clips, kinds, errors = run_filter(motion=lambda rest, t: rest)
    assert not clips and set(kinds) == {"static"} and "min_displacement" in errors[0]["message"]
    assert run_filter(motion=lambda rest, t: rest, min_displacement=None)[0]
    assert run_filter()[0]


def test_filter_exploding_nan_and_far():
    def nan_late(rest, t):
        return rest * np.nan if t > 1.0 else twist(rest, t)

    clips, kinds, _ = run_filter(motion=nan_late)
    assert [c.clip_id for c in clips] == ["f_a0_0000-0007"] and kinds == ["exploding"]  # 21 frames: 2 windows
    clips, kinds, errors = run_filter(motion=lambda rest, t: rest + [100.0 * t, 0, 0])
    assert not clips and set(kinds) == {"exploding"} and "max_displacement" in errors[0]["message"]
    assert run_filter(motion=lambda rest, t: rest + [100.0 * t, 0, 0], max_displacement=None)[0]


def test_collapsed_window_and_failing_evaluation_become_rows():
    clips, kinds, errors = run_filter(motion=lambda rest, t: rest * (0.0 if t >= 0.8 else 1.0 + t))
    assert [c.clip_id for c in clips] == ["f_a0_0000-0007"] and kinds == ["degenerate"]

    class Broken(ArrayScene):
        def evaluate(self, animation, times):
            raise RuntimeError("sampler exploded")

    points, faces = sphere(1)
    clips, errors = clips_from_scene(Broken(points, faces, durations=(2.0, 0.3)), "b", ResampleConfig(frames=[8]))
    assert not clips and [e["status"] for e in errors] == ["failed"] * 3
    assert {e["error_type"] for e in errors} == {"RuntimeError"} and "sampler exploded" in errors[0]["message"]


@pytest.mark.parametrize("measure", ["face", "coverage"])
def test_filter_surface_errors(measure):
    option = f"max_{measure}_error"
    clips, kinds, errors = run_filter(points_faces=sphere(3), vertices=100, **{option: 1e-4})
    assert not clips and set(kinds) == {f"{measure}-error"} and option in errors[0]["message"]
    assert run_filter(points_faces=sphere(3), vertices=100)[0]


def test_filter_source_vertex_counts():
    _, kinds, errors = run_filter(min_source_vertices=1000)
    assert set(kinds) == {"too-few-vertices"} and "welded source vertices 162 < " in errors[0]["message"]
    _, kinds, _ = run_filter(max_source_vertices=100)
    assert set(kinds) == {"too-many-vertices"}
    assert run_filter(min_source_vertices=162, max_source_vertices=162)[0]


def test_filter_duplicates_within_an_asset():
    clips, kinds, errors = run_filter(durations=(1.6, 1.6))  # two identical animations
    assert [c.animation for c in clips] == [0, 0] and kinds == ["duplicate", "duplicate"]
    assert "f_a0_0000-0007" in errors[0]["message"]
    clips, kinds, _ = run_filter(durations=(1.6, 1.6), dedup=False)
    assert len(clips) == 4 and not kinds


def test_more_parts_than_the_budget_vanish_and_the_loss_is_gated():
    many = [trimesh.creation.icosphere(0, radius=0.1).apply_translation([i, 0, 0]) for i in range(20)]
    mesh = trimesh.util.concatenate(many)
    clips, kinds, errors = run_filter(points_faces=(mesh.vertices, mesh.faces), vertices=50)
    assert not clips and set(kinds) == {"coverage-error"}  # 20 spheres apart cannot all fit in 50 vertices
    clips, kinds, _ = run_filter(points_faces=(mesh.vertices, mesh.faces), vertices=50, max_coverage_error=None)
    assert clips and clips[0].num_vertices == 50 and not kinds


def test_asset_without_animation_is_accounted_for():
    points, faces = sphere(1)
    clips, errors = clips_from_scene(ArrayScene(points, faces, durations=()), "n", ResampleConfig())
    assert not clips and errors[0]["error_type"] == "no-animation" and errors[0]["unit_id"] == "n"


# --- CLI ------------------------------------------------------------------------------------------------


def test_cli_writes_clips_jsonl_and_preview(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["resample", str(ASSETS / "RiggedSimple.glb"), "--vertices", "256", "--frames", "4", "16",
                 "--max-clips", "1", "--out", str(out), "--preview"])
    assert code == 0
    lines = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
    assert [line["clip_id"] for line in lines] == ["RiggedSimple_a0_0000-0003", "RiggedSimple_a0_0000-0015"]
    for line in lines:
        data = np.load(out / f"{line['clip_id']}.npz")
        assert data["vertices"].shape == (line["frames"], 256, 3) and data["faces"].shape == (line["num_faces"], 3)
        assert (out / f"{line['clip_id']}.gif").stat().st_size > 0
    assert "2 clip(s)" in capsys.readouterr().out


def test_cli_rejects_bad_options(tmp_path, capsys):
    assert main(["resample", str(ASSETS / "Fox.glb"), "--vertices", "lots", "--out", str(tmp_path)]) == 2
    assert main(["resample", str(ASSETS / "Fox.glb"), "--fps", "0", "--out", str(tmp_path)]) == 2
    assert "fps" in capsys.readouterr().err


def test_cli_short_policy_and_funnel(tmp_path, capsys):
    asset = str(ASSETS / "RiggedFigure.glb")  # 13 frames at 10 fps, does not loop
    assert main(["resample", asset, "--vertices", "256", "--short", "skip", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "0 clip(s)" in out and "1 skipped:too-short" in out and "1 animation(s) -> 1 window(s) -> 0 clip(s)" in out
    assert main(["resample", asset, "--vertices", "256", "--out", str(tmp_path / "b")]) == 0
    line = json.loads((tmp_path / "b" / "clips.jsonl").read_text())
    assert line["short_policy"] == "retime" and line["fps"] == pytest.approx(15 / 1.25, rel=1e-3)
