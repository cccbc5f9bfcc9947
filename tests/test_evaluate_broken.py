"""Every malformed asset in shared/assets/broken gives exactly one typed, one-line AssetError; unsafe paths refused."""

from __future__ import annotations

import csv
import os
import struct
from pathlib import Path

import pytest

from stages.evaluate import AssetError, Limits, load_asset, load_asset_bytes
from stages.evaluate.errors import LimitExceeded, MalformedAsset, UnsafeAsset, UnsupportedAsset
from paths import ASSETS, BROKEN, REPO

KINDS = {"malformed", "unsupported", "unsafe", "limit", "bad-data"}
BROKEN_FILES = sorted(p.name for p in BROKEN.iterdir() if p.suffix in (".glb", ".gltf")) if BROKEN.is_dir() else []
# The kind each file's defect calls for (broken/EXPECTED.csv says what each file is): malformed = not a readable
# glTF 2.0 document (container, JSON, references, layout); bad-data = readable but numerically unusable; unsafe =
# reaches outside the asset folder; unsupported = valid but not evaluated here; limit = over a cap.
EXPECTED_KINDS = {
    "empty.glb": "malformed", "empty.gltf": "malformed", "truncated_header.glb": "malformed",
    "truncated_fox.glb": "malformed", "truncated_json_chunk.glb": "malformed", "wrong_magic.glb": "malformed",
    "glb_version1.glb": "malformed",  # a GLB 2 body under a version-1 header (a real glTF 1.0 binary: unsupported)
    "glb_length_mismatch.glb": "malformed", "html_page.glb": "malformed", "html_page.gltf": "malformed",
    "gltf1_box.gltf": "unsupported", "not_json.gltf": "malformed", "json_array.gltf": "malformed",
    "json_string.gltf": "malformed", "json_null.gltf": "malformed", "no_asset.gltf": "malformed",
    "missing_buffer.gltf": "malformed", "path_traversal.gltf": "unsafe", "absolute_path.gltf": "unsafe",
    "network_uri.gltf": "unsafe", "file_uri.gltf": "unsafe", "bad_base64.gltf": "malformed",
    "index_out_of_range.glb": "bad-data", "nan_inf_positions.glb": "bad-data", "huge_accessor_count.glb": "limit",
    "accessor_past_bufferview.glb": "malformed", "bad_bufferview_index.glb": "malformed",
    "node_cycle.glb": "malformed", "node_self_child.glb": "malformed", "scene_bad_node.glb": "malformed",
    "bad_component_type.glb": "malformed", "draco_required.glb": "unsupported",
    "unknown_required_extension.glb": "unsupported", "skin_bad_joint.glb": "malformed",
    "anim_bad_sampler.glb": "malformed", "anim_nan_keyframe_time.glb": "bad-data",
}


def _evaluate_everything(path: Path):
    scene = load_asset(path)
    for info in scene.animations:
        scene.evaluate(info.index, [0.0, info.duration])
    scene.evaluate(None, [0.0])


def test_every_expected_file_is_present():
    with open(BROKEN / "EXPECTED.csv", newline="") as handle:
        listed = {row["file"] for row in csv.DictReader(handle)}
    assert listed <= set(BROKEN_FILES), f"missing broken files: {sorted(listed - set(BROKEN_FILES))}"
    assert len(BROKEN_FILES) >= 30


@pytest.mark.parametrize("name", BROKEN_FILES)
def test_broken_asset_gives_one_typed_error(name: str):
    path = BROKEN / name
    with pytest.raises(AssetError) as info:
        _evaluate_everything(path)
    error = info.value
    message = str(error)
    assert error.kind in KINDS, message
    assert "\n" not in message and len(message) < 600, message
    assert name in message, f"message does not name the file: {message}"
    assert message.startswith(f"{path}: {error.kind}: "), message
    assert error.kind == EXPECTED_KINDS[name], message


def test_every_broken_file_has_its_kind_pinned():
    assert sorted(EXPECTED_KINDS) == BROKEN_FILES and len(BROKEN_FILES) == 36
    assert set(EXPECTED_KINDS.values()) <= KINDS


def test_the_kinds_are_the_documented_ones():
    """docs/evaluate.md lists the kinds an AssetError can have; they are the error classes' kinds, no more."""
    import re

    from stages.evaluate import errors

    classes = [getattr(errors, name) for name in dir(errors)]
    kinds = {c.kind for c in classes if isinstance(c, type) and issubclass(c, AssetError) and c is not AssetError}
    documented = re.search(r"Each error's `\.kind` is one of (.*?)\. ", (REPO / "docs" / "evaluate.md").read_text(),
                           re.S)
    assert documented, "docs/evaluate.md no longer lists the kinds"
    assert kinds == KINDS == set(re.findall(r"`([a-z-]+)`", documented.group(1)))


def test_glb_container_versions():
    """A real glTF 1.0 binary (KHR_binary_glTF: content length, content format 0, JSON) is unsupported; any
    other version than 2 is a damaged header."""
    scene = b'{"asset": {"version": "1.0"}, "scenes": {}}'
    gltf1 = struct.pack("<4sIIII", b"glTF", 1, 20 + len(scene), len(scene), 0) + scene
    with pytest.raises(UnsupportedAsset, match="glTF 1.0 binary"):
        load_asset_bytes(gltf1, name="old.glb")
    glb2 = (BROKEN.parent / "Box.glb").read_bytes()
    for version in (0, 3, 2**31):
        with pytest.raises(MalformedAsset, match=f"container version {version}"):
            load_asset_bytes(glb2[:4] + struct.pack("<I", version) + glb2[8:], name="odd.glb")


@pytest.mark.parametrize("name", [n for n in BROKEN_FILES if n.endswith(".glb")])
def test_broken_glb_bytes_give_the_same_kind(name: str):
    data = (BROKEN / name).read_bytes()
    with pytest.raises(AssetError) as from_path:
        _evaluate_everything(BROKEN / name)
    with pytest.raises(AssetError) as from_bytes:
        scene = load_asset_bytes(data, name=name)
        for info in scene.animations:
            scene.evaluate(info.index, [0.0])
    assert from_bytes.value.kind == from_path.value.kind
    assert str(from_bytes.value).startswith(f"{name}: ")


def test_side_file_needs_a_folder():
    data = (ASSETS / "SimpleSkin" / "SimpleSkin.gltf").read_bytes()
    with pytest.raises(UnsafeAsset, match="without a folder"):
        load_asset_bytes(data, name="SimpleSkin.gltf")
    assert load_asset_bytes(data, name="SimpleSkin.gltf", folder=ASSETS / "SimpleSkin").num_vertices == 10


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.bin").write_bytes(b"\0" * 64)
    asset = tmp_path / "asset"
    asset.mkdir()
    os.symlink(outside / "data.bin", asset / "data.bin")
    text = (ASSETS / "SimpleSkin" / "SimpleSkin.gltf").read_text().replace("skinGeometry.bin", "data.bin")
    (asset / "a.gltf").write_text(text)
    with pytest.raises(UnsafeAsset, match="outside the asset folder"):
        load_asset(asset / "a.gltf")


@pytest.mark.parametrize("uri", ["%2Fetc%2Fpasswd", "C:/windows/x.bin", "sub/../../x.bin", "ftp://h/x.bin",
                                 "\\\\server\\share\\x.bin"])
def test_unsafe_uris_are_refused(tmp_path: Path, uri: str):
    text = (ASSETS / "SimpleSkin" / "SimpleSkin.gltf").read_text().replace("skinGeometry.bin", uri.replace("\\", "\\\\"))
    (tmp_path / "a.gltf").write_text(text)
    with pytest.raises(UnsafeAsset):
        load_asset(tmp_path / "a.gltf")


def test_caps_are_checked():
    with pytest.raises(LimitExceeded, match="vertices"):
        load_asset(ASSETS / "Fox.glb", limits=Limits(max_vertices=1000))
    with pytest.raises(LimitExceeded, match="bytes"):
        load_asset(ASSETS / "Fox.glb", limits=Limits(max_file_bytes=1000))
    with pytest.raises(LimitExceeded, match="nodes"):
        load_asset(ASSETS / "Fox.glb", limits=Limits(max_nodes=3))
    scene = load_asset(ASSETS / "Fox.glb", limits=Limits(max_frames=10))
    with pytest.raises(LimitExceeded, match="frame cap"):
        scene.evaluate(0, [0.0] * 11)


def test_bad_animation_index_is_a_caller_error():
    scene = load_asset(ASSETS / "Box.glb")
    with pytest.raises(IndexError):
        scene.evaluate(0, [0.0])
