"""`dymesh animate` and its morph-target GLB writer, read back by the evaluator."""

from __future__ import annotations

import numpy as np

from pipeline.cli import main
from stages.evaluate import load_asset, sample_times
from stages.train.animate import animated_glb
from pipeline.launch import train_here as train
from paths import ASSETS
from train_runs import small_run


def test_writer_round_trips_every_frame_through_the_evaluator(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(6, 40, 3)).astype(np.float32)
    faces = rng.integers(0, 40, size=(30, 3))
    path = tmp_path / "anim.glb"
    path.write_bytes(animated_glb(frames, faces, fps=10.0))
    scene = load_asset(path)
    assert scene.num_vertices == 40 and np.array_equal(scene.faces, faces)
    (info,) = scene.animations
    times = sample_times(info.duration, 10.0, 100)
    assert len(times) == 6
    np.testing.assert_allclose(scene.evaluate(0, times), frames, atol=1e-5)
    assert animated_glb(frames, faces, fps=10.0) == path.read_bytes()  # deterministic bytes


def test_animate_command_writes_a_glb_with_the_model_frame_count(tmp_path):
    train(small_run(tmp_path, "vae", steps=1))
    train(small_run(tmp_path, "flow", model="flow", steps=1, vae_checkpoint=str(tmp_path / "vae")))
    out = tmp_path / "box-anim.glb"
    mesh = ASSETS / "AnimatedMorphSphere.glb"
    code = main(["animate", str(mesh), "the object spins", "--out", str(out), "--checkpoint",
                 str(tmp_path / "flow"), "--steps", "2"])
    assert code == 0
    source, scene = load_asset(mesh), load_asset(out)
    assert scene.num_vertices == source.num_vertices and len(scene.faces) == len(source.faces)
    (info,) = scene.animations
    frames = scene.evaluate(0, sample_times(info.duration, 10.0, 100))
    assert frames.shape == (8, source.num_vertices, 3) and np.isfinite(frames).all()
    np.testing.assert_allclose(frames[0], source.evaluate(None, np.zeros(1))[0], atol=1e-5)


def test_animate_refuses_a_vae_checkpoint(tmp_path, capsys):
    train(small_run(tmp_path, "vae", steps=1))
    code = main(["animate", str(ASSETS / "Box.glb"), "x", "--out", str(tmp_path / "o.glb"), "--checkpoint",
                 str(tmp_path / "vae")])
    assert code == 2 and "needs a flow checkpoint" in capsys.readouterr().err
