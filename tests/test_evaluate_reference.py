"""Every trajectory in shared/reference is matched: max vertex error / frame-0 bbox diagonal <= 1e-4."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stages.evaluate import load_asset, sample_times
from paths import ASSETS, REFERENCE

TOLERANCE = 1e-4
FPS, MAX_FRAMES = 10, 64
# Assets in shared/assets without a shared reference (the holdout): they must still evaluate cleanly.
UNREFERENCED = ("Fox.glb", "RiggedFigure.glb", "RecursiveSkeletons.glb", "RobotExpressive.glb",
                "CesiumMilkTruck.glb", "AnimatedMorphSphere.glb", "InterpolationTest.glb",
                "AnimatedMorphCube_quantized/AnimatedMorphCube_quantized.gltf")


def asset_path(stem: str) -> Path:
    """shared/assets path of a reference folder name (`Fox` -> Fox.glb, `SimpleSkin` -> SimpleSkin/SimpleSkin.gltf)."""
    for candidate in (ASSETS / f"{stem}.glb", ASSETS / f"{stem}.gltf", ASSETS / stem / f"{stem}.gltf"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no asset for reference {stem} under {ASSETS}")


REFERENCE_ASSETS = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir()) if REFERENCE.is_dir() else []


def test_reference_folder_is_present():
    assert len(REFERENCE_ASSETS) >= 20, f"expected the shared references under {REFERENCE}"


@pytest.mark.parametrize("stem", REFERENCE_ASSETS)
def test_matches_reference(stem: str):
    scene = load_asset(asset_path(stem))
    meta = json.loads((REFERENCE / stem / "meta.json").read_text())
    assert scene.num_vertices == meta["vertices"], f"{stem}: {scene.num_vertices} vertices, reference {meta['vertices']}"
    assert len(scene.faces) == meta["faces"], f"{stem}: {len(scene.faces)} faces, reference {meta['faces']}"
    clips = [(a.index, a.duration) for a in scene.animations] or [(None, 0.0)]
    ref_files = sorted((REFERENCE / stem).glob("clip*.npz"))
    assert len(ref_files) == len(clips), f"{stem}: {len(clips)} clips, reference has {len(ref_files)}"
    failures = []
    for index, duration in clips:
        ref = np.load(REFERENCE / stem / f"clip{index or 0}.npz")
        times = sample_times(duration, FPS, MAX_FRAMES)
        np.testing.assert_allclose(times, ref["times"], atol=1e-6, err_msg=f"{stem} clip{index or 0}: times")
        got = scene.evaluate(index, times).astype(np.float64)
        want = ref["vertices"].astype(np.float64)
        assert got.shape == want.shape, f"{stem} clip{index or 0}: shape {got.shape} != reference {want.shape}"
        diag = float(np.linalg.norm(want[0].max(0) - want[0].min(0)))
        err = float(np.sqrt(((got - want) ** 2).sum(-1)).max())
        score = err / diag if diag > 0 else err
        if not score <= TOLERANCE:
            failures.append(f"{stem} clip{index or 0}: max_err/diag = {score:.3e} (abs {err:.3e}, diag {diag:.4g})")
    assert not failures, "; ".join(failures)


@pytest.mark.parametrize("relative", UNREFERENCED)
def test_unreferenced_assets_evaluate_finite_and_moving(relative: str):
    scene = load_asset(ASSETS / relative)
    assert scene.animations, relative
    assert scene.faces.min() >= 0 and scene.faces.max() < scene.num_vertices
    for info in scene.animations:
        vertices = scene.evaluate(info.index, sample_times(info.duration, FPS, MAX_FRAMES))
        assert vertices.dtype == np.float32 and vertices.shape[1:] == (scene.num_vertices, 3)
        assert np.isfinite(vertices).all(), f"{relative} clip{info.index}: non-finite vertices"
        assert np.abs(vertices - vertices[:1]).max() > 0, f"{relative} clip{info.index}: nothing moves"
