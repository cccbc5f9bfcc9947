"""Skins with 8 influences per vertex (JOINTS_0/1, WEIGHTS_0/1): Limits(influences="all") is the spec's sum over
all 8, renormalised; influences="first4" is three.js (JOINTS_0/WEIGHTS_0 only, renormalised over those 4)."""

from __future__ import annotations

import numpy as np
import pytest

from stages.evaluate import Limits, load_asset_bytes
from stages.evaluate.scene_graph import compose
from glb import GltfBuilder, random_quaternion

KEYS = np.array([0.0, 1.0])


def skinned_asset(seed: int, morph: bool) -> tuple[bytes, dict]:
    """A mesh skinned to 6 animated root joints with 8 influences per vertex (and a morph target if `morph`)."""
    rng = np.random.default_rng(seed)
    joints, count = 6, 12
    b = GltfBuilder()
    positions = rng.normal(size=(count, 3))
    target = rng.normal(size=(count, 3)) * 0.3
    indices = rng.integers(0, joints, size=(count, 8))
    weights = rng.uniform(0.05, 1.0, size=(count, 8))
    inverse_bind = np.linalg.inv(compose(rng.normal(size=(joints, 3)), np.array([random_quaternion(rng)
                                         for _ in range(joints)]), rng.uniform(0.5, 2.0, size=(joints, 3))))
    attributes = {"JOINTS_0": b.accessor(indices[:, :4], 5123), "JOINTS_1": b.accessor(indices[:, 4:], 5123),
                  "WEIGHTS_0": b.accessor(weights[:, :4]), "WEIGHTS_1": b.accessor(weights[:, 4:])}
    mesh = b.mesh(positions, targets=[target] if morph else (), **attributes)
    b.gltf["nodes"].append({"mesh": mesh, "skin": 0})
    joint_nodes = [b.node(scale=[1.0, 1.0, 1.0]) for _ in range(joints)]
    b.gltf["scenes"] = [{"nodes": [0, *joint_nodes]}]
    b.gltf["skins"] = [{"joints": joint_nodes,
                        "inverseBindMatrices": b.accessor(inverse_bind.transpose(0, 2, 1).reshape(joints, 16))}]
    translations = rng.normal(size=(joints, 2, 3))
    rotations = np.array([[random_quaternion(rng) for _ in range(2)] for _ in range(joints)])
    morph_weights = rng.uniform(-1.0, 1.0, size=2)
    samplers, channels = [], []
    for j, node in enumerate(joint_nodes):
        for path, values in (("translation", translations[j]), ("rotation", rotations[j])):
            samplers.append({"input": b.accessor(KEYS[:, None]), "output": b.accessor(values)})
            channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})
    if morph:
        samplers.append({"input": b.accessor(KEYS[:, None]), "output": b.accessor(morph_weights[:, None])})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": 0, "path": "weights"}})
    b.gltf["animations"] = [{"samplers": samplers, "channels": channels}]
    f32 = np.float32
    truth = {"positions": positions.astype(f32).astype(float), "target": target.astype(f32).astype(float),
             "indices": indices, "weights": weights.astype(f32).astype(float), "morph": morph,
             "morph_weights": morph_weights.astype(f32).astype(float),
             "skin": [compose(translations[:, k].astype(f32).astype(float), rotations[:, k].astype(f32).astype(float),
                              np.ones((joints, 3))) @ inverse_bind.astype(f32).astype(float) for k in range(2)]}
    return b.glb(), truth


def explicit_sum(truth: dict, used: int) -> np.ndarray:
    """[2, n, 3]: sum over the first `used` influences of w / sum(w) * world(joint) * inverseBind * point."""
    weights = truth["weights"][:, :used] / truth["weights"][:, :used].sum(axis=1, keepdims=True)
    frames = []
    for k in range(2):
        points = truth["positions"] + (truth["morph_weights"][k] * truth["target"] if truth["morph"] else 0.0)
        homogeneous = np.c_[points, np.ones(len(points))]
        moved = np.einsum("vi,vixy,vy->vx", weights, truth["skin"][k][truth["indices"][:, :used]], homogeneous)
        frames.append(moved[:, :3])
    return np.stack(frames)


@pytest.mark.parametrize("morph", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_all_eight_influences_are_summed(seed: int, morph: bool):
    data, truth = skinned_asset(seed, morph)
    scene = load_asset_bytes(data, name="eight.glb", limits=Limits(influences="all"))
    assert not any("JOINTS_1" in w for w in scene.warnings)
    got = scene.evaluate(0, KEYS)
    expected = explicit_sum(truth, 8)
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= 2e-6 * scale
    assert np.abs(got - explicit_sum(truth, 4)).max() > 1e-3 * scale  # the second set really matters


@pytest.mark.parametrize("morph", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_first4_is_three_js(seed: int, morph: bool):
    data, truth = skinned_asset(seed, morph)
    scene = load_asset_bytes(data, name="eight.glb", limits=Limits(influences="first4"))
    assert any("JOINTS_1/WEIGHTS_1 ignored" in w for w in scene.warnings)
    expected = explicit_sum(truth, 4)
    assert np.abs(scene.evaluate(0, KEYS) - expected).max() <= 2e-6 * np.abs(expected).max()


def test_default_is_all_and_bad_option_is_refused():
    assert Limits().influences == "all"
    with pytest.raises(ValueError, match="influences"):
        Limits(influences="first8")
