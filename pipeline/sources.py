"""The source kinds of a job spec's `sources:` list: one frozen dataclass each, parsed by pipeline.config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

@dataclass(frozen=True)
class LocalSource:
    """Files, folders (searched recursively for .glb/.gltf) and glob patterns on this machine."""

    paths: list[str]
    follow_symlinks: bool = False  # read symlinks (and hard links) whose target is outside the folder
    kind: Literal["local"] = "local"


@dataclass(frozen=True)
class UrlListSource:
    """A text file with one http(s)://, s3:// or gs:// URL per line ('#' starts a comment)."""

    path: str
    allow_private_networks: bool = False  # fetch loopback/private/link-local addresses too (on-premises mirrors)
    kind: Literal["url-list"] = "url-list"


@dataclass(frozen=True)
class ObjectStoreSource:
    """Every .glb/.gltf under a prefix: s3://bucket/prefix, gs://bucket/prefix or a local folder, via pyarrow.fs."""

    uri: str
    endpoint: str | None = None  # e.g. http://127.0.0.1:9000 for MinIO / a local S3
    region: str | None = None
    anonymous: bool = False
    kind: Literal["objectstore"] = "objectstore"


@dataclass(frozen=True)
class ObjaverseSource:
    """Objaverse-1.0 through the `objaverse` package: annotations filtered, GLBs fetched with its loader."""

    cache_dir: str | None = None  # default: the package's ~/.objaverse
    uids: list[str] | None = None  # restrict to these uids (unknown uids are harvest errors)
    min_animations: int = 1  # annotation animationCount >= this
    licenses: list[str] | None = None  # Sketchfab licence slugs allowed (by, by-sa, cc0, ...); None = all
    limit: int | None = None  # first N matching uids (sorted)
    download_processes: int = 4
    batch: int = 64  # uids per load_objects call (one retry unit)
    kind: Literal["objaverse"] = "objaverse"


@dataclass(frozen=True)
class GeneratedSource:
    """Procedural animated assets from stages.generate (deterministic by seed)."""

    count: int = 24
    seed: int = 0
    kind: Literal["generated"] = "generated"


@dataclass(frozen=True)
class Dt4dSource:
    """DeformingThings4D .anime files (files, folders searched for .anime, globs); frame f at f / fps seconds."""

    paths: list[str]
    fps: float = 30.0
    license: str = "LicenseRef-DeformingThings4D"  # non-commercial research terms of the dataset
    attribution: str = "DeformingThings4D (Li et al., 4DComplete, ICCV 2021)"
    kind: Literal["dt4d"] = "dt4d"

    def __post_init__(self):
        if not 0 < self.fps <= 1000:
            raise ValueError(f"fps must be in (0, 1000], not {self.fps!r}")


@dataclass(frozen=True)
class AmassSource:
    """AMASS motions (files, folders searched for *_poses.npz / *_stageii.npz, globs) posed with `body_model`: a
    SMPL-H / SMPL-X .npz the user supplies, or a folder with <gender>/model.npz or SMPLH_<GENDER>.npz files."""

    paths: list[str]
    body_model: str
    license: str = "LicenseRef-AMASS"  # non-commercial research terms of AMASS and of each sub-dataset
    attribution: str = "AMASS (Mahmood et al., ICCV 2019)"
    kind: Literal["amass"] = "amass"


@dataclass(frozen=True)
class BlenderSource:
    """Files Blender imports (.fbx, .dae, .blend, .abc, .usd*, .obj, .ply, .stl; folders searched for `formats`),
    converted to GLB at evaluate time (needs the optional extra: pip install -e '.[blender]')."""

    paths: list[str]
    formats: list[str] | None = None  # suffixes without the dot; None = every format Blender imports
    license: str = ""
    attribution: str = ""
    kind: Literal["blender"] = "blender"

    def __post_init__(self):
        from stages.harvest.blender_files import suffixes_of

        suffixes_of(self.formats)


@dataclass(frozen=True)
class ObjaverseXLSource:
    """Objaverse-XL through the `objaverse` package's XL API: annotations filtered by source, file type and licence,
    files downloaded per source, then filtered by animation count; each file keeps its licence."""

    download_dir: str | None = None  # annotations and downloads; default the package's ~/.objaverse
    sources: list[str] | None = None  # github, sketchfab, thingiverse, smithsonian; None = all
    file_types: list[str] = dataclasses.field(default_factory=lambda: ["glb", "gltf", "fbx", "dae", "blend", "abc"])
    licenses: list[str] | None = None  # licence strings allowed, as the annotations spell them; None = all
    min_animations: int = 1  # after download: files with fewer animations are skipped
    limit: int | None = None  # first N matching files (sorted by fileIdentifier)
    download_processes: int = 4
    kind: Literal["objaverse-xl"] = "objaverse-xl"

    def __post_init__(self):
        from stages.harvest.objaverse_xl import check_source

        check_source(self)


SOURCE_TYPES: dict[str, type] = {
    "local": LocalSource,
    "url-list": UrlListSource,
    "objectstore": ObjectStoreSource,
    "objaverse": ObjaverseSource,
    "generated": GeneratedSource,
    "dt4d": Dt4dSource,
    "amass": AmassSource,
    "blender": BlenderSource,
    "objaverse-xl": ObjaverseXLSource,
}
SOURCE_KINDS = tuple(SOURCE_TYPES)
