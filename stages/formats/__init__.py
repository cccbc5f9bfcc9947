"""Every asset format DyMesh reads, behind one loader: bytes or a file -> a Scene (glTF) or FrameScene (frames).

    scene = load_scene_bytes(data, fmt, name, limits)   # the pipeline: fmt is the blob's format column
    scene = load_scene(path, limits)                     # the commands: the format comes from the suffix

Formats: "glb" / "gltf" (the spec-exact evaluator), "dt4d" and "amass" (packages the harvest builds from
DeformingThings4D .anime files and AMASS motions), and every suffix in BLENDER_SUFFIXES (converted to GLB by
Blender in an isolated subprocess, then evaluated like any GLB). Both functions raise only AssetError subclasses
for bad input. The readers of other formats are imported when a file of theirs is read: loading a glTF pays for
none of them (`dymesh evaluate` start-up).
"""

from __future__ import annotations

import os
from pathlib import Path

from stages.evaluate import LimitExceeded, Limits, MalformedAsset, UnsupportedAsset, load_asset, load_asset_bytes

BLENDER_SUFFIXES = (".fbx", ".dae", ".blend", ".abc", ".usd", ".usda", ".usdc", ".usdz", ".obj", ".ply", ".stl")  # via Blender
PACKAGE_FORMATS = ("dt4d", "amass")
BLENDER_FORMATS = tuple(s[1:] for s in BLENDER_SUFFIXES)
FORMATS = ("glb", "gltf", *PACKAGE_FORMATS, *BLENDER_FORMATS)
DT4D_DEFAULT_FPS = 30.0  # DeformingThings4D does not record a frame rate; its sources say 30


def load_scene_bytes(data: bytes, fmt: str, name: str = "asset", limits: Limits = Limits()):
    """The scene of asset bytes in format `fmt` (one of FORMATS)."""
    fmt = fmt.lower()
    if fmt in ("glb", "gltf"):
        return load_asset_bytes(data, name=name, limits=limits)
    if fmt == "dt4d":
        from stages.formats.anime import read_dt4d_package

        return read_dt4d_package(data, name, limits)
    if fmt == "amass":
        from stages.formats.amass import read_amass_package

        return read_amass_package(data, name, limits)
    if fmt in BLENDER_FORMATS:
        from stages.formats.blender import convert_to_glb

        return load_asset_bytes(convert_to_glb(data, "." + fmt, name, limits), name=name, limits=limits)
    raise UnsupportedAsset(name, f"unknown asset format {fmt!r}; known: {', '.join(FORMATS)}")


def load_scene(path: str | Path, limits: Limits = Limits(), fps: float | None = None,
               body_model: str | None = None):
    """The scene of a file, by suffix: .glb/.gltf, .anime (at `fps`, default 30), an AMASS .npz (posed with
    `body_model`, default $DYMESH_BODY_MODEL), a .dt4d/.amass package from a job's blobs, or a Blender format."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".glb", ".gltf"):
        return load_asset(path, limits)
    data = read_capped(path, limits.max_file_bytes)
    name = str(path)
    if suffix == ".anime":
        from stages.formats.anime import read_anime

        return read_anime(data, fps or DT4D_DEFAULT_FPS, name, limits)
    if suffix == ".npz":
        model = body_model or os.environ.get("DYMESH_BODY_MODEL")
        if not model:
            raise UnsupportedAsset(name, "an AMASS motion needs a body model: set DYMESH_BODY_MODEL to a SMPL-H or "
                                         "SMPL-X .npz (licensed; DyMesh never downloads one)")
        from stages.formats.amass import motion_scene

        return motion_scene(data, model, name, limits)
    return load_scene_bytes(data, suffix[1:], name, limits)


def read_capped(path: Path, cap: int) -> bytes:
    """A regular file's bytes (never a device, FIFO or socket), refusing more than `cap` whatever stat says."""
    from stages.untrusted_files import UntrustedFileError, read_regular

    try:
        return read_regular(str(path), cap, follow_links=True)
    except UntrustedFileError as exc:
        error = LimitExceeded if exc.kind == "limit" else MalformedAsset
        raise error(str(path), exc.detail) from None


__all__ = ["BLENDER_FORMATS", "BLENDER_SUFFIXES", "FORMATS", "load_scene", "load_scene_bytes"]
