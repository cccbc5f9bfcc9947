"""Blender-converted formats: FBX files made by Blender from the shared glTF assets follow the glTF's trajectories
(per-frame bounding boxes within 2% of the diagonal); hostile or huge files end within their limits as typed
errors; without Blender every such file is an error row saying how to enable it.

Needs Blender (`pip install -e '.[blender]'`, or DYMESH_BLENDER_PYTHON naming a Python with bpy: `make test` builds
.venv-blender and sets it); the tests that convert are skipped with that reason otherwise.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from stages.evaluate import LimitExceeded, Limits, MalformedAsset, UnsupportedAsset, load_asset, sample_times
from stages.formats import load_scene, load_scene_bytes
from stages.formats.blender import ConversionFailed, blender_python

from paths import ASSETS

needs_blender = pytest.mark.skipif(blender_python() is None, reason="Blender (bpy) not installed: pip install -e "
                                   "'.[blender]' or set DYMESH_BLENDER_PYTHON (make test does)")
# assets animated through one armature: Blender's FBX exporter keeps each of their animations as one take.
# Measured box errors with the timeline kept (CONVERSION_VERSION 2): Fox 0.07-0.15%, CesiumMan 0.19%,
# RiggedFigure 0.05%, RiggedSimple 0%; Blender's default FBX import put every take one frame late (Fox Run 2.9%).
ROUND_TRIP = ("Fox", "CesiumMan", "RiggedFigure", "RiggedSimple")
FBX_FPS = 24.0  # Blender bakes the FBX's keys at its scene's default 24 frames per second


@pytest.fixture(scope="module")
def fbx_files(tmp_path_factory):
    from stages.generate.fbx import gltf_to_fbx

    if blender_python() is None:
        pytest.skip("Blender (bpy) not installed")
    folder = tmp_path_factory.mktemp("fbx")
    pairs = [(ASSETS / f"{name}.glb", folder / f"{name}.fbx") for name in ROUND_TRIP]
    gltf_to_fbx(pairs)
    return {name: target for (_, target), name in zip(pairs, ROUND_TRIP)}


def boxes(vertices: np.ndarray) -> np.ndarray:
    return np.concatenate([vertices.min(axis=1), vertices.max(axis=1)], axis=1)


@needs_blender
@pytest.mark.parametrize("name", ROUND_TRIP)
def test_fbx_trajectories_follow_the_gltf(fbx_files, name):
    reference = load_asset(ASSETS / f"{name}.glb")
    converted = load_scene(fbx_files[name])
    assert converted.num_vertices == reference.num_vertices
    assert len(converted.animations) == len(reference.animations)
    for animation in reference.animations:
        # Blender names a take "<object>|<animation>"; unnamed glTF animations become Anim_<index>
        label = animation.name if not animation.name.startswith("#") else f"Anim_{animation.index}"
        match = [a for a in converted.animations if label in a.name]
        assert len(match) == 1, (animation.name, [a.name for a in converted.animations])
        duration = min(animation.duration, match[0].duration)
        assert abs(animation.duration - match[0].duration) <= 1 / FBX_FPS + 1e-6
        times = sample_times(duration, FBX_FPS, 1000)  # the FBX's own frames
        expected = reference.evaluate(animation.index, times)
        got = converted.evaluate(match[0].index, times)
        diagonal = np.linalg.norm(expected[0].max(0) - expected[0].min(0))
        error = np.abs(boxes(expected) - boxes(got)).max(axis=1) / diagonal
        assert error.max() < 0.02, (name, animation.name, float(error.max()))


@needs_blender
def test_conversion_is_deterministic(fbx_files):
    from stages.formats.blender import convert_to_glb

    data = fbx_files["RiggedSimple"].read_bytes()
    assert convert_to_glb(data, ".fbx", "a.fbx") == convert_to_glb(data, ".fbx", "a.fbx")


def grid_obj(path: Path, side: int) -> Path:
    """A flat grid of side x side vertices as OBJ text."""
    u, v = np.meshgrid(np.arange(side, dtype=np.float32), np.arange(side, dtype=np.float32))
    index = np.arange(side * side).reshape(side, side) + 1
    quads = np.stack([index[:-1, :-1], index[:-1, 1:], index[1:, 1:], index[1:, :-1]], axis=-1).reshape(-1, 4)
    with open(path, "w") as handle:
        np.savetxt(handle, np.stack([u.ravel(), v.ravel(), np.zeros(side * side)], 1), fmt="v %g %g %g")
        np.savetxt(handle, quads, fmt="f %d %d %d %d")
    return path


@needs_blender
def test_hostile_and_huge_files_end_within_their_limits(tmp_path):
    with pytest.raises(MalformedAsset, match="Blender could not convert it"):
        load_scene_bytes(b"Kaydara FBX Binary  \x00\x1a\x00" + bytes(200), "fbx", "garbage.fbx")
    big = grid_obj(tmp_path / "big.obj", 560).read_bytes()  # 313k vertices, 9 MB
    checks = [
        (Limits(convert_memory_mb=512), LimitExceeded, "convert_memory_mb=512"),
        (Limits(convert_timeout_s=1.0), ConversionFailed, "convert_timeout_s=1s"),
        (Limits(max_file_bytes=len(big) - 1), LimitExceeded, "byte cap"),
    ]
    for limits, error, words in checks:
        start = time.monotonic()
        with pytest.raises(error, match=words):
            load_scene_bytes(big, "obj", "big.obj", limits)
        assert time.monotonic() - start < limits.convert_timeout_s + 30  # ended within its limits


BLEND_SCRIPT = """
import sys, bpy
target, marker, library = sys.argv[1], sys.argv[2], sys.argv[3]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.mesh.primitive_cube_add()
cube = bpy.context.object
cube.keyframe_insert("location", frame=1)
cube.location.x = 3
cube.keyframe_insert("location", frame=20)
text = bpy.data.texts.new("payload.py")  # runs at load time when script auto-execution is on
text.write(f"open({marker!r}, 'w').write('ran'); import socket; socket.create_connection(('127.0.0.1', 9))")
text.use_module = True
bpy.ops.wm.save_as_mainfile(filepath=target)
bpy.ops.wm.save_as_mainfile(filepath=library)
bpy.ops.wm.read_factory_settings(use_empty=True)
with bpy.data.libraries.load(library, link=True) as (source, linked):
    linked.objects = list(source.objects)
for obj in linked.objects:
    bpy.context.scene.collection.objects.link(obj)
bpy.ops.wm.save_as_mainfile(filepath=target.replace(".blend", "-linking.blend"))
"""


@needs_blender
def test_blend_files_run_no_scripts_and_link_nothing(tmp_path):
    target, marker = tmp_path / "payload.blend", tmp_path / "outside" / "ran.txt"
    marker.parent.mkdir()
    subprocess.run([blender_python(), "-I", "-c", BLEND_SCRIPT, str(target), str(marker), str(tmp_path / "lib.blend")],
                   check=True, capture_output=True, timeout=300)
    scene = load_scene(target)
    assert len(scene.animations) == 1 and not marker.exists()  # converted; the embedded script never ran
    with pytest.raises(MalformedAsset, match="linked files are refused"):
        load_scene(tmp_path / "payload-linking.blend")
    assert not marker.exists()


def test_without_blender_the_files_are_error_rows_saying_how_to_enable_it(monkeypatch):
    from pipeline.tasks import clips_for_asset
    from stages.resample import ResampleConfig

    monkeypatch.setattr("stages.formats.blender.blender_python", lambda: None)
    with pytest.raises(UnsupportedAsset, match=r"pip install -e '\.\[blender\]'"):
        load_scene_bytes(b"; FBX 7.4.0 project file", "fbx", "a.fbx")
    result = clips_for_asset("a" * 64, b"; FBX 7.4.0 project file", "fbx", "models/a.fbx", Limits(), ResampleConfig())
    [row] = result.evaluate_errors
    assert row["error_type"] == "unsupported" and "pip install -e '.[blender]'" in row["message"]
    assert row["source"] == "models/a.fbx"


def test_the_conversion_script_changes_only_with_its_version():
    """blender_convert.py's output is part of the evaluate hash only through CONVERSION_VERSION."""
    import hashlib

    from stages.formats.blender import CONVERSION_VERSION, SCRIPT

    assert (CONVERSION_VERSION, hashlib.sha256(SCRIPT.read_bytes()).hexdigest()) == (
        2, "bcaaf603c8bbd0f57880984c537f79b776399f6df6f779fa0c4ccb34fd655a59"), "blender_convert.py changed: if its output changes, bump CONVERSION_VERSION " \
                       "(and docs/CHANGES.md); then update this pin"
