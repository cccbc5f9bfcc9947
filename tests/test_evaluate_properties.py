"""Properties of the evaluator on small glTF documents built in memory (seeded loops)."""

from __future__ import annotations

import numpy as np
import pytest

from stages.evaluate import load_asset_bytes, sample_times
from glb import GltfBuilder, random_quaternion
from stages.evaluate.scene_graph import compose

SEEDS = range(6)
def random_trs(rng) -> dict:
    return {"translation": rng.normal(size=3).tolist(), "rotation": random_quaternion(rng).tolist(),
            "scale": rng.uniform(0.5, 2.0, size=3).tolist()}


def translated_point(keys, values, interpolation="LINEAR"):
    """A one-vertex mesh at the origin whose node translation is animated."""
    b = GltfBuilder()
    b.node(mesh=b.mesh(np.zeros((1, 3))))
    b.animate(0, "translation", keys, values, interpolation)
    return b.scene()


@pytest.mark.parametrize("seed", SEEDS)
def test_identity_skin_equals_no_skin(seed: int):
    rng = np.random.default_rng(seed)
    positions = rng.normal(size=(20, 3))
    b = GltfBuilder()
    joints = [b.node(**random_trs(rng)) for _ in range(3)]  # nodes 0..2 (node 0 is the scene root)
    b.gltf["nodes"][0]["children"] = [1, 2, 3]
    world = [compose(np.array(b.gltf["nodes"][j]["translation"]), np.array(b.gltf["nodes"][j]["rotation"]),
                     np.array(b.gltf["nodes"][j]["scale"])) for j in joints]
    world[1], world[2] = world[0] @ world[1], world[0] @ world[2]
    inverse_bind = np.stack([np.linalg.inv(w).T.reshape(16) for w in world])  # column-major MAT4
    b.gltf["skins"] = [{"joints": joints, "inverseBindMatrices": b.accessor(inverse_bind)}]
    weights = rng.uniform(0, 1, size=(20, 4))
    mesh = b.mesh(positions, JOINTS_0=b.accessor(rng.integers(0, 3, size=(20, 4)), 5121),
                  WEIGHTS_0=b.accessor(weights))
    b.node(mesh=mesh, skin=0, **random_trs(rng))  # its own transform must be ignored
    got = b.scene().evaluate(None, [0.0])[0]
    np.testing.assert_allclose(got, positions, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_single_joint_skin_follows_its_joint_like_a_child_mesh(seed: int):
    rng = np.random.default_rng(seed)
    positions = rng.normal(size=(10, 3))
    keys = np.sort(rng.uniform(0, 2, size=4))
    moves = rng.normal(size=(4, 3))
    times = np.linspace(-0.5, 2.5, 13)
    rigid = GltfBuilder()
    rigid.node(mesh=rigid.mesh(positions))
    rigid.animate(0, "translation", keys, moves)
    skinned = GltfBuilder()
    skinned.node(children=[1])
    skinned.node()
    skinned.gltf["skins"] = [{"joints": [1]}]
    mesh = skinned.mesh(positions, JOINTS_0=skinned.accessor(np.zeros((10, 4)), 5121),
                        WEIGHTS_0=skinned.accessor(np.tile([1.0, 0, 0, 0], (10, 1))))
    skinned.gltf["nodes"][0]["children"].append(skinned.node(mesh=mesh, skin=0, translation=[5.0, 0, 0]))
    skinned.animate(1, "translation", keys, moves)
    np.testing.assert_allclose(skinned.scene().evaluate(0, times), rigid.scene().evaluate(0, times), atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_translation_at_a_key_time_equals_the_key(seed: int):
    rng = np.random.default_rng(seed)
    keys = np.cumsum(rng.uniform(0.1, 1.0, size=5))
    values = rng.normal(size=(5, 3))
    got = translated_point(keys, values).evaluate(0, keys)[:, 0]
    np.testing.assert_allclose(got, values, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_cubicspline_with_zero_tangents_stays_within_the_keys(seed: int):
    rng = np.random.default_rng(seed)
    keys = np.cumsum(rng.uniform(0.1, 1.0, size=5))
    values = rng.normal(size=(5, 3))
    triples = np.stack([np.zeros_like(values), values, np.zeros_like(values)], axis=1).reshape(-1, 3)
    times = np.linspace(keys[0] - 1, keys[-1] + 1, 200)
    got = translated_point(keys, triples, "CUBICSPLINE").evaluate(0, times)[:, 0]
    assert (got >= values.min(0) - 1e-5).all() and (got <= values.max(0) + 1e-5).all()
    # Between two keys it never leaves their own range either (Hermite with zero tangents is monotone).
    for i in range(4):
        inside = (times >= keys[i]) & (times <= keys[i + 1])
        lo, hi = np.minimum(values[i], values[i + 1]), np.maximum(values[i], values[i + 1])
        assert (got[inside] >= lo - 1e-5).all() and (got[inside] <= hi + 1e-5).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_step_holds_the_previous_key(seed: int):
    rng = np.random.default_rng(seed)
    keys = np.cumsum(rng.uniform(0.1, 1.0, size=5))
    values = rng.normal(size=(5, 3))
    times = rng.uniform(keys[0], keys[-1], size=50)
    got = translated_point(keys, values, "STEP").evaluate(0, times)[:, 0]
    previous = np.searchsorted(keys.astype(np.float32), times, side="right") - 1
    np.testing.assert_allclose(got, values[previous], atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_times_outside_the_keys_clamp(seed: int):
    rng = np.random.default_rng(seed)
    keys = np.cumsum(rng.uniform(0.1, 1.0, size=4))
    values = rng.normal(size=(4, 3))
    for interpolation, output in (("LINEAR", values), ("STEP", values),
                                  ("CUBICSPLINE", np.repeat(values, 3, axis=0) * 1.0)):
        scene = translated_point(keys, output, interpolation)
        got = scene.evaluate(0, [keys[0] - 5.0, keys[0] - 1e-3, keys[-1] + 1e-3, keys[-1] + 5.0])[:, 0]
        np.testing.assert_allclose(got, [values[0], values[0], values[-1], values[-1]], atol=1e-5,
                                   err_msg=interpolation)


@pytest.mark.parametrize("angle", [0.5, 1.5, 2.5])
def test_slerp_takes_the_shortest_path(angle: float):
    """Keys q and -q' : the rotation halfway is half the SHORT angle, whatever the sign of the second key."""
    b = GltfBuilder()
    b.node(mesh=b.mesh(np.array([[1.0, 0.0, 0.0]])))
    q1 = np.array([0.0, 0.0, np.sin(angle / 2), np.cos(angle / 2)])
    b.animate(0, "rotation", [0.0, 1.0], np.stack([[0.0, 0.0, 0.0, 1.0], -q1]))
    got = b.scene().evaluate(0, [0.5])[0, 0]
    np.testing.assert_allclose(got, [np.cos(angle / 2), np.sin(angle / 2), 0.0], atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_morph_weights_blend_targets(seed: int):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(8, 3))
    targets = [rng.normal(size=(8, 3)) for _ in range(2)]
    b = GltfBuilder()
    b.node(mesh=b.mesh(base, targets, weights=[0.25, 0.5]))
    keys = np.array([0.0, 1.0])
    weight_keys = np.array([[0.0, 1.0], [1.0, 0.0]])
    b.animate(0, "weights", keys, weight_keys.reshape(-1, 1))
    scene = b.scene()
    rest = scene.evaluate(None, [0.0])[0]
    np.testing.assert_allclose(rest, base + 0.25 * targets[0] + 0.5 * targets[1], atol=1e-5)
    got = scene.evaluate(0, [0.5])[0]
    np.testing.assert_allclose(got, base + 0.5 * targets[0] + 0.5 * targets[1], atol=1e-5)


def test_strips_and_fans_become_triangles():
    b = GltfBuilder()
    positions = np.random.default_rng(0).normal(size=(6, 3))
    b.node(mesh=b.mesh(positions), children=[1])
    b.node(mesh=b.mesh(positions))
    b.gltf["meshes"][0]["primitives"][0]["mode"] = 5
    b.gltf["meshes"][1]["primitives"][0]["mode"] = 6
    scene = b.scene()
    assert scene.num_vertices == 12
    np.testing.assert_array_equal(scene.faces[:4], [[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4]])  # spec strip order
    np.testing.assert_array_equal(scene.faces[4:], [[7, 8, 6], [8, 9, 6], [9, 10, 6], [10, 11, 6]])


def test_sample_times():
    np.testing.assert_allclose(sample_times(0.35, 10, 64), [0.0, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(sample_times(0.3, 10, 64), [0.0, 0.1, 0.2, 0.3])
    assert len(sample_times(100.0, 10, 64)) == 64
    np.testing.assert_allclose(sample_times(0.0, 10, 64), [0.0])


@pytest.mark.parametrize("seed", SEEDS)
def test_cubicspline_reproduces_a_cubic_polynomial(seed: int):
    """Hermite keys sampled from a cubic (values and derivatives) give back that cubic: tangents scale by dt."""
    rng = np.random.default_rng(seed)
    coefficients = rng.normal(size=(4, 3))  # f(t) = c0 + c1 t + c2 t^2 + c3 t^3 per component
    keys = np.cumsum(rng.uniform(0.2, 1.0, size=4))

    def f(t):
        return sum(coefficients[i] * t[:, None] ** i for i in range(4))

    def df(t):
        return sum(i * coefficients[i] * t[:, None] ** (i - 1) for i in range(1, 4))

    triples = np.stack([df(keys), f(keys), df(keys)], axis=1).reshape(-1, 3)
    times = rng.uniform(keys[0], keys[-1], size=40)
    got = translated_point(keys, triples, "CUBICSPLINE").evaluate(0, times)[:, 0]
    np.testing.assert_allclose(got, f(times), atol=1e-3 * (1 + np.abs(f(times)).max()))


@pytest.mark.parametrize("seed", SEEDS)
def test_matrix_node_equals_its_trs(seed: int):
    """A node `matrix` is the composed T*R*S; animating its translation keeps the decomposed rotation/scale."""
    rng = np.random.default_rng(seed)
    trs = random_trs(rng)
    matrix = compose(np.array(trs["translation"]), np.array(trs["rotation"]), np.array(trs["scale"]))
    positions = rng.normal(size=(5, 3))
    moves = rng.normal(size=(2, 3))
    scenes = []
    for fields in (trs, {"matrix": matrix.T.reshape(16).tolist()}):
        b = GltfBuilder()
        b.node(mesh=b.mesh(positions), **fields)
        b.animate(0, "translation", [0.0, 1.0], moves)
        scenes.append(b.scene())
    np.testing.assert_allclose(scenes[1].evaluate(None, [0.0]), scenes[0].evaluate(None, [0.0]), atol=1e-5)
    np.testing.assert_allclose(scenes[1].evaluate(0, [0.0, 0.3, 1.0]), scenes[0].evaluate(0, [0.0, 0.3, 1.0]),
                               atol=1e-5)
