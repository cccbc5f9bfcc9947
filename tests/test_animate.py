"""`dymesh animate` and its morph-target GLB writer, read back by the evaluator."""

from __future__ import annotations

import numpy as np
import pytest

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


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A one-step tiny VAE and a flow on it, trained once for the module: (vae folder, flow folder)."""
    folder = tmp_path_factory.mktemp("animate-runs")
    train(small_run(folder, "vae", steps=1))
    train(small_run(folder, "flow", model="flow", steps=1, vae_checkpoint=str(folder / "vae")))
    return folder / "vae", folder / "flow"


def animate(checkpoint, out, *extra, mesh=ASSETS / "AnimatedMorphSphere.glb") -> int:
    return main(["animate", str(mesh), "the object spins", "--out", str(out), "--checkpoint", str(checkpoint),
                 "--steps", "2", *extra])


def test_animate_command_writes_a_glb_with_the_model_frame_count(checkpoints, tmp_path):
    out = tmp_path / "box-anim.glb"
    mesh = ASSETS / "AnimatedMorphSphere.glb"
    assert animate(checkpoints[1], out, mesh=mesh) == 0
    source, scene = load_asset(mesh), load_asset(out)
    assert scene.num_vertices == source.num_vertices and len(scene.faces) == len(source.faces)
    (info,) = scene.animations
    frames = scene.evaluate(0, sample_times(info.duration, 10.0, 100))
    assert frames.shape == (8, source.num_vertices, 3) and np.isfinite(frames).all()
    np.testing.assert_allclose(frames[0], source.evaluate(None, np.zeros(1))[0], atol=1e-5)


def test_animate_same_seed_same_bytes_another_seed_another_motion(checkpoints, tmp_path, capsys):
    paths = {name: tmp_path / f"{name}.glb" for name in ("a", "again", "other")}
    assert animate(checkpoints[1], paths["a"], "--seed", "3") == 0
    assert animate(checkpoints[1], paths["again"], "--seed", "3") == 0
    assert animate(checkpoints[1], paths["other"], "--seed", "4") == 0
    assert paths["a"].read_bytes() == paths["again"].read_bytes()
    assert paths["a"].read_bytes() != paths["other"].read_bytes()
    first, other = (load_asset(paths[n]) for n in ("a", "other"))
    times = sample_times(first.animations[0].duration, 10.0, 100)
    assert not np.allclose(first.evaluate(0, times)[1:], other.evaluate(0, times)[1:])  # the seed moves the frames


def test_animate_honours_max_vertices(checkpoints, tmp_path, capsys):
    mesh = ASSETS / "AnimatedMorphSphere.glb"
    vertices = load_asset(mesh).num_vertices
    out = tmp_path / "o.glb"
    assert animate(checkpoints[1], out, "--max-vertices", str(vertices - 1), mesh=mesh) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{vertices} vertices, over --max-vertices {vertices - 1}" in err, err
    assert not out.exists()
    assert animate(checkpoints[1], out, "--max-vertices", str(vertices), mesh=mesh) == 0 and out.is_file()


def test_animate_refuses_a_vae_checkpoint(checkpoints, tmp_path, capsys):
    code = main(["animate", str(ASSETS / "Box.glb"), "x", "--out", str(tmp_path / "o.glb"), "--checkpoint",
                 str(checkpoints[0])])
    assert code == 2 and "needs a flow checkpoint" in capsys.readouterr().err
