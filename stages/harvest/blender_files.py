"""Files Blender imports (.fbx, .dae, .blend, .abc, .usd*, .obj, .ply, .stl): stored as they are (the asset id is
the sha256 of the file) and converted to GLB at evaluate time by stages.formats.blender (optional extra)."""

from __future__ import annotations

from pathlib import Path

from stages.formats.blender import BLENDER_SUFFIXES
from stages.harvest.item import FetchError
from stages.harvest.source_files import file_items


def suffixes_of(formats: list[str] | None) -> tuple[str, ...]:
    """The suffixes a source takes from folders: its `formats` (without dots), else every Blender format."""
    if formats is None:
        return BLENDER_SUFFIXES
    wanted = tuple("." + f.lower().lstrip(".") for f in formats)
    unknown = [s for s in wanted if s not in BLENDER_SUFFIXES]
    if unknown:
        raise ValueError(f"formats: {', '.join(unknown)} not converted with Blender; known: "
                         f"{', '.join(s[1:] for s in BLENDER_SUFFIXES)}")
    return wanted


def package(path: str, data: bytes) -> tuple[bytes, str]:
    suffix = Path(path).suffix.lower()
    if suffix not in BLENDER_SUFFIXES:
        raise FetchError("unsupported", f"{path}: {suffix or 'no suffix'} is not a format DyMesh converts with "
                                        f"Blender ({', '.join(s[1:] for s in BLENDER_SUFFIXES)})")
    return data, suffix[1:]


def list_items(source, config, base_dir: str):
    return file_items(source, config, base_dir, suffixes_of(source.formats), package, license=source.license,
                      attribution=source.attribution)
