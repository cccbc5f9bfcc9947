"""Hostile inputs built in a temp folder: every file a hostile user can leave in a source folder, plus the
secrets outside it that must never be read. Each builder returns what a test needs to check the outcome."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from glb import pack_glb

SECRET = b"TOP-SECRET-OUTSIDE-THE-FOLDER"
DEEP = 100_000  # nesting of the deep-JSON probe


def deep_gltf(depth: int = DEEP) -> bytes:
    """A .gltf whose JSON nests `depth` arrays inside `extras` (RecursionError bait)."""
    return b'{"asset":{"version":"2.0","extras":' + b"[" * depth + b"]" * depth + b"}}"


def outside_files(root: Path) -> dict[str, Path]:
    """Files outside the source folder an attacker would like read: a secret text and a valid-looking .glb."""
    outside = root / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    secret = outside / "secret.txt"
    secret.write_bytes(SECRET)
    glb = outside / "outside.glb"
    glb.write_bytes(pack_glb({"asset": {"version": "2.0", "extras": {"secret": SECRET.decode()}}}))
    side = outside / "side.bin"
    side.write_bytes(SECRET * 4)
    return {"secret": secret, "glb": glb, "side": side}


def gltf_with_side(uri: str, length: int = 64) -> bytes:
    return json.dumps({"asset": {"version": "2.0"}, "buffers": [{"uri": uri, "byteLength": length}]}).encode()


def hostile_folder(root: Path, good_asset: Path | None = None) -> tuple[Path, dict[str, str]]:
    """A source folder holding every hostile local file; returns (folder, {file name: expected error kind}).

    A good asset, when given, is copied in as `good.glb` (expected to become clips)."""
    outside = outside_files(root)
    folder = root / "source"
    (folder / "nested" / "deeper").mkdir(parents=True)
    expected: dict[str, str] = {}

    def link(name: str, target: str | Path, kind: str) -> None:
        os.symlink(target, folder / name)
        expected[name] = kind

    link("passwd.glb", "/etc/passwd", "outside-root")
    link("outside.glb", outside["glb"], "outside-root")
    link("relative-escape.glb", "../outside/outside.glb", "outside-root")
    link("zero.glb", "/dev/zero", "outside-root")
    link("urandom.gltf", "/dev/urandom", "outside-root")
    link("null.glb", "/dev/null", "outside-root")
    link("environ.glb", "/proc/self/environ", "outside-root")
    link("chain1.glb", "chain2.glb", "outside-root")  # chain1 -> chain2 -> chain3 -> outside
    os.symlink("chain3.glb", folder / "chain2.glb")
    os.symlink(outside["glb"], folder / "chain3.glb")
    expected["chain2.glb"] = expected["chain3.glb"] = "outside-root"
    link("loop-a.glb", "loop-b.glb", "symlink-loop")
    link("loop-b.glb", "loop-a.glb", "symlink-loop")
    link("dangling.glb", "does-not-exist.glb", "not-found")
    os.symlink("..", folder / "up")  # `up -> ..`: leaves the folder (refused as a folder link)
    os.symlink("..", folder / "nested" / "up")  # `nested/up -> ..`: a loop inside the folder
    os.symlink("../../..", folder / "nested" / "deeper" / "top")
    expected["up"] = "outside-root"
    expected["nested/deeper/top"] = "outside-root"
    os.mkfifo(folder / "fifo.glb")
    expected["fifo.glb"] = "not-a-regular-file"
    os.mkfifo(folder / "nested" / "pipe.gltf")
    expected["nested/pipe.gltf"] = "not-a-regular-file"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "socket.glb"))
    expected["socket.glb"] = "not-a-regular-file"
    os.link(outside["glb"], folder / "hardlink.glb")
    expected["hardlink.glb"] = "hard-link"
    (folder / "deep.gltf").write_bytes(deep_gltf())
    expected["deep.gltf"] = "limit"  # the evaluator: JSON nests too deep
    name = os.fsdecode(b"bad-\xff\xfe-name.glb")
    (folder / name).write_bytes(b"not a glb at all")
    expected["bad-\\xff\\xfe-name.glb"] = "malformed"  # the evaluator: no GLB magic; the name stored escaped
    (folder / "side-secret.gltf").write_bytes(gltf_with_side("secret.bin"))
    os.symlink(outside["side"], folder / "secret.bin")
    expected["side-secret.gltf"] = "outside-root"
    expected["secret.bin"] = None  # not an asset name: never listed, never read
    (folder / "side-zero.gltf").write_bytes(gltf_with_side("zero.bin"))
    os.symlink("/dev/zero", folder / "zero.bin")
    expected["side-zero.gltf"] = "outside-root"
    expected["zero.bin"] = None
    (folder / "side-fifo.gltf").write_bytes(gltf_with_side("side.fifo"))
    os.mkfifo(folder / "side.fifo")
    expected["side-fifo.gltf"] = "not-a-regular-file"
    expected["side.fifo"] = None
    (folder / "side-escape.gltf").write_bytes(gltf_with_side("../outside/side.bin"))
    expected["side-escape.gltf"] = "unsafe"  # never read: the evaluator refuses the `..` URI
    (folder / "empty.glb").write_bytes(b"")
    expected["empty.glb"] = "empty"
    if good_asset is not None:
        (folder / "good.glb").write_bytes(good_asset.read_bytes())
        expected["good.glb"] = None
    return folder, {k: v for k, v in expected.items() if v is not None}


@pytest.fixture(scope="session")
def good_asset(tmp_path_factory) -> Path:
    """One small valid animated asset from stages.generate (the job test expects clips from it)."""
    from stages.generate import generate_asset

    return generate_asset("blob", 7, tmp_path_factory.mktemp("good") / "good.glb", detail=0.3, animations=1)
