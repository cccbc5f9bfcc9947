"""Caps applied to untrusted assets before anything is allocated, and the one evaluation option."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Upper bounds for one asset (every count is checked before the array it sizes is allocated), and
    `influences`: "all" skins with JOINTS_0..1/WEIGHTS_0..1 (up to 8 joints per vertex, as the glTF spec
    requires); "first4" uses JOINTS_0/WEIGHTS_0 only, as three.js does (the shared references)."""

    max_file_bytes: int = 512 * MiB  # the .glb / .gltf file itself
    max_json_bytes: int = 64 * MiB  # the JSON document
    max_buffer_bytes: int = 512 * MiB  # all buffers of one asset together
    max_accessor_count: int = 16_000_000  # elements of one accessor
    max_accessor_values: int = 32_000_000  # numbers of one decoded accessor (count x components)
    max_vertices: int = 4_000_000  # evaluated vertices of the default scene
    max_nodes: int = 50_000
    max_meshes_instances: int = 100_000  # (node, primitive) pairs in the default scene
    max_morph_targets: int = 256  # per primitive
    max_joints: int = 4096  # per skin
    max_animations: int = 4096
    max_channels: int = 100_000  # over all animations
    max_frames: int = 100_000  # times per evaluate() call
    max_output_bytes: int = 2048 * MiB  # output T*V*3*4 plus morph intermediates and per-frame matrices of one evaluate()
    influences: Literal["all", "first4"] = "all"  # skin influences per vertex: all sets, or the first 4 (three.js)
    convert_timeout_s: float = 120.0  # wall clock of one Blender conversion (.fbx, .blend, ...; stages.formats.blender)
    convert_memory_mb: int = 4096  # address-space cap of the Blender conversion subprocess

    def __post_init__(self):
        if self.influences not in ("all", "first4"):
            raise ValueError(f"influences must be 'all' or 'first4', not {self.influences!r}")
