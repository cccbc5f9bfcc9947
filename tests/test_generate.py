"""The procedural generator: deterministic bytes, valid glTF 2.0, every kind animated, CLI."""

from __future__ import annotations

import io

import numpy as np
import pygltflib
import pytest
import trimesh

from glb import split_glb
from pipeline.cli import main
from stages.generate import ASSET_KINDS, INTERPOLATIONS, AssetPlan, asset_bytes, generate_asset, generate_assets
from stages.generate import set_plans

COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
DTYPES = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}


def read_accessor(document: dict, binary: bytes, index: int) -> np.ndarray:
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    components = COMPONENTS[accessor["type"]]
    dtype = np.dtype(DTYPES[accessor["componentType"]])
    assert view["byteOffset"] % 4 == 0 and view["byteOffset"] + view["byteLength"] <= len(binary)
    assert view["byteLength"] == accessor["count"] * components * dtype.itemsize
    data = np.frombuffer(binary, dtype, accessor["count"] * components, view["byteOffset"])
    return data.reshape(accessor["count"], components)


@pytest.fixture(scope="module")
def small_set():
    """Six assets of one set: two of each kind, all interpolation modes, one- and two-clip assets."""
    plans = set_plans(6, seed=42, detail=0.5)
    return [(plan, asset_bytes(plan)) for plan in plans]


def test_same_seed_same_bytes_and_different_seed_different_bytes(tmp_path):
    for kind in ASSET_KINDS:
        first = generate_asset(kind, 3, tmp_path / f"{kind}_a.glb").read_bytes()
        again = generate_asset(kind, 3, tmp_path / f"{kind}_b.glb").read_bytes()
        other = generate_asset(kind, 4, tmp_path / f"{kind}_c.glb").read_bytes()
        assert first == again, kind
        assert first != other, kind
    paths_a = generate_assets(4, 9, tmp_path / "a")
    paths_b = generate_assets(4, 9, tmp_path / "b")
    assert [p.read_bytes() for p in paths_a] == [p.read_bytes() for p in paths_b]
    # Asset i of a set does not depend on how many are generated or in which chunk.
    (tail,) = generate_assets(1, 9, tmp_path / "c", first=3)
    assert tail.name == paths_a[3].name and tail.read_bytes() == paths_a[3].read_bytes()


def test_assets_parse_with_pygltflib_and_trimesh(small_set):
    for plan, data in small_set:
        gltf = pygltflib.GLTF2().load_from_bytes(data)
        assert gltf.asset.version == "2.0"
        assert gltf.animations, plan
        assert len(gltf.animations) == plan.animations
        scene = trimesh.load(io.BytesIO(data), file_type="glb", force="scene")
        assert len(scene.geometry) >= 1 and all(len(g.faces) > 0 for g in scene.geometry.values())


def test_assets_are_valid_gltf(small_set):
    for plan, data in small_set:
        document, binary = split_glb(data)
        assert document["asset"]["version"] == "2.0" and document["scene"] == 0
        assert len(binary) == document["buffers"][0]["byteLength"]
        for mesh in document["meshes"]:
            for primitive in mesh["primitives"]:
                positions = read_accessor(document, binary, primitive["attributes"]["POSITION"])
                accessor = document["accessors"][primitive["attributes"]["POSITION"]]
                assert np.allclose(positions.min(axis=0), accessor["min"]) and np.all(np.isfinite(positions))
                assert np.allclose(positions.max(axis=0), accessor["max"])
                indices = read_accessor(document, binary, primitive["indices"])
                assert indices.max() < len(positions) and len(indices) % 3 == 0
                normals = read_accessor(document, binary, primitive["attributes"]["NORMAL"])
                assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
        for animation in document["animations"]:
            assert animation["channels"]
            for channel in animation["channels"]:
                sampler = animation["samplers"][channel["sampler"]]
                times = read_accessor(document, binary, sampler["input"])[:, 0]
                assert np.all(np.diff(times) > 0) and times[0] == 0.0
                assert document["accessors"][sampler["input"]]["max"] == [float(times[-1])]
                outputs = read_accessor(document, binary, sampler["output"])
                per_key = 3 if sampler["interpolation"] == "CUBICSPLINE" else 1
                targets = 1
                if channel["target"]["path"] == "weights":
                    node = document["nodes"][channel["target"]["node"]]
                    targets = len(document["meshes"][node["mesh"]]["primitives"][0]["targets"])
                assert len(outputs) == len(times) * per_key * targets, (plan, channel)
                if channel["target"]["path"] == "rotation":
                    values = outputs[1::3] if per_key == 3 else outputs
                    assert np.allclose(np.linalg.norm(values, axis=1), 1.0, atol=1e-5)


def test_each_kind_has_its_structure(small_set):
    for plan, data in small_set:
        document, binary = split_glb(data)
        paths = {c["target"]["path"] for a in document["animations"] for c in a["channels"]}
        if plan.kind == "creature":
            (skin,) = document["skins"]
            inverse_bind = read_accessor(document, binary, skin["inverseBindMatrices"])
            assert inverse_bind.shape == (len(skin["joints"]), 16)
            for primitive in document["meshes"][0]["primitives"]:
                weights = read_accessor(document, binary, primitive["attributes"]["WEIGHTS_0"])
                joints = read_accessor(document, binary, primitive["attributes"]["JOINTS_0"])
                assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-6) and joints.max() < len(skin["joints"])
                assert (np.count_nonzero(weights > 0.01, axis=1) > 1).mean() > 0.1  # smooth blends, not rigid
            assert "rotation" in paths
        elif plan.kind == "blob":
            (primitive,) = document["meshes"][0]["primitives"]
            assert 2 <= len(primitive["targets"]) <= 4
            assert len(document["meshes"][0]["weights"]) == len(primitive["targets"])
            assert "weights" in paths
        else:
            mesh_users = [n["mesh"] for n in document["nodes"] if "mesh" in n]
            assert len(set(mesh_users)) >= 3 and len(mesh_users) > len(set(mesh_users))  # a mesh reused
            assert paths & {"rotation", "translation"}


def test_set_covers_interpolations_clip_counts_and_looping(small_set):
    modes, clip_counts, looping = set(), set(), set()
    for plan, data in small_set:
        document, _ = split_glb(data)
        modes |= {s["interpolation"] for a in document["animations"] for s in a["samplers"]}
        clip_counts.add(len(document["animations"]))
        extras = document["asset"]["extras"]
        assert extras["license"] == "CC0-1.0" and extras["kind"] == plan.kind
        assert extras["generator"]["seed"] == plan.seed and extras["name"] and extras["motion"]
        assert plan.kind in extras["tags"]
        looping |= set(extras["looping"])
    assert modes == set(INTERPOLATIONS)
    assert clip_counts == {1, 2}
    assert looping == {True, False}


def test_looping_clips_end_where_they_start():
    from stages.evaluate import load_asset_bytes

    for plan in set_plans(12, seed=8, detail=0.1):
        data = asset_bytes(plan)
        scene = load_asset_bytes(data, name=f"{plan.kind}.glb")
        looping = split_glb(data)[0]["asset"]["extras"]["looping"]
        for animation, loops in zip(scene.animations, looping):
            ends = scene.evaluate(animation.index, np.array([0.0, animation.duration]))
            gap = float(np.abs(ends[0] - ends[1]).max())
            assert (gap < 1e-4) == loops, (plan, animation.name, gap)


def test_vertex_counts_scale_with_detail():
    counts = {}
    for detail in (0.5, 1.0, 4.0):
        counts[detail] = []
        for plan in set_plans(6, seed=1, detail=detail):
            document, _ = split_glb(asset_bytes(plan))
            counts[detail].append(sum(document["accessors"][p["attributes"]["POSITION"]]["count"]
                                      for n in document["nodes"] if "mesh" in n
                                      for p in document["meshes"][n["mesh"]]["primitives"]))
    assert all(100 <= c <= 5000 for c in counts[1.0]), counts[1.0]
    assert sum(counts[4.0]) > 2.5 * sum(counts[1.0]) > 2.5 * 1.5 * sum(counts[0.5])


def test_bad_plans_are_refused():
    with pytest.raises(ValueError, match="unknown asset kind"):
        asset_bytes(AssetPlan(kind="dragon", seed=1))
    with pytest.raises(ValueError, match="interpolation"):
        asset_bytes(AssetPlan(kind="blob", seed=1, interpolation="BEZIER"))


def test_cli_generates_a_set(tmp_path, capsys):
    assert main(["generate", "--count", "3", "--seed", "5", "--out", str(tmp_path / "set")]) == 0
    files = sorted((tmp_path / "set").glob("*.glb"))
    assert [f.name.split("_")[1] for f in files] == ["creature", "blob", "machine"]
    assert "wrote 3 assets" in capsys.readouterr().out
    assert main(["generate", "--count", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--count must be at least 1" in capsys.readouterr().err
