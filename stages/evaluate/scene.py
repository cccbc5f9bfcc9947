"""Scene: a loaded asset's default scene, evaluated at many times at once -> world-space vertices [T, V, 3]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .accessors import AccessorReader
from .animation import Animation, AnimationInfo, ChannelGroup, read_animations
from stages.untrusted_files import UntrustedFileError, read_regular

from .errors import AssetError, BadData, LimitExceeded, MalformedAsset
from .gltf_container import Document, read_document
from .interpolation import sample
from .limits import Limits
from .morph import default_weights, morph_positions
from .palette import (FixedPart, Influences, blend_fixed_points, blend_moving_points, fixed_parts, influences,
                      palette_columns, transform_points)
from .primitives import TRIANGLE_MODES, Primitive, read_primitives
from .scene_graph import NodeGraph, compose, default_scene_nodes, dynamic_levels, read_nodes, world_matrices
from .skinning import Skin, read_skin

TRS_PATHS = ("translation", "rotation", "scale")
CACHED_SETS = 8  # per-clip structures (fixed blend, dynamic node levels) kept for this many distinct clips


class Scene:
    """The default scene of one glTF asset; `evaluate(animation, times)` gives world-space vertices."""

    def __init__(self, doc: Document):
        self.name = doc.name
        self.limits = doc.limits
        reader = AccessorReader(doc)
        self.graph: NodeGraph = read_nodes(doc)
        self.scene_index, order = default_scene_nodes(doc)
        skin_indices = sorted({s for n in order if (s := doc.index(doc.array("nodes")[n], "skin", "skins",
                                                                      f"nodes[{n}]", required=False)) is not None})
        self.skins: dict[int, Skin] = {s: read_skin(doc, reader, s) for s in skin_indices}
        self.primitives: list[Primitive] = read_primitives(doc, reader, order,
                                                           {s: len(k.joints) for s, k in self.skins.items()})
        self.morph_counts = self._morph_counts()
        self.rest_weights = {node: default_weights(doc, node, self._node_mesh(doc, node), k)
                             for node, k in self.morph_counts.items()}
        self._animations: list[Animation] = read_animations(doc, reader, self.morph_counts)
        self._entries = self._palette_entries()
        self._palette_nodes, self._palette_bind = self._compact_palette()
        self._palette_size = len(self._palette_nodes)
        self._fixed_blends: dict[frozenset[int], list[FixedPart]] = {}
        self._moving_influences: dict[int, Influences] = {}
        self._dynamic_levels: dict[bytes, list[np.ndarray]] = {}  # per set of moving nodes
        self._morph_data: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # float32 positions, targets when animated
        self.num_vertices = sum(p.count for p in self.primitives)
        self._morph_vertices = sum(p.count for p in self.primitives if p.targets.shape[0])
        tris = [p.triangles + p.offset for p in self.primitives]
        self.faces = (np.concatenate(tris) if tris else np.zeros((0, 3), np.int64)).astype(np.int32)
        self.warnings: list[str] = list(doc.warnings)
        self._summary = self._describe()

    @staticmethod
    def _node_mesh(doc: Document, node: int) -> int:
        return doc.array("nodes")[node]["mesh"]

    def _morph_counts(self) -> dict[int, int]:
        """Morph target count per mesh node of the scene (nodes whose primitives have targets)."""
        counts: dict[int, int] = {}
        for p in self.primitives:
            counts[p.node] = max(counts.get(p.node, 0), p.targets.shape[0])
        return {node: k for node, k in counts.items() if k > 0}

    def _palette_entries(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per primitive palette entries and weights [n, k]: node world matrices, then each skin's joints."""
        skin_offsets, offset = {}, self.graph.count
        for s, skin in self.skins.items():
            skin_offsets[s] = offset
            offset += len(skin.joints)
        entries = []
        for p in self.primitives:
            if p.skin is None:
                entries.append((np.full((p.count, 1), p.node), np.ones((p.count, 1))))
            else:
                entries.append((p.joints + skin_offsets[p.skin], p.weights))
        return entries

    def _compact_palette(self) -> tuple[np.ndarray, np.ndarray]:
        """Keep the palette entries some vertex uses (renumbering self._entries): (node [U], inverse bind [U])."""
        nodes = [np.arange(self.graph.count)] + [k.joints for k in self.skins.values()]
        binds = [np.broadcast_to(np.eye(4), (self.graph.count, 4, 4))] + [k.inverse_bind for k in self.skins.values()]
        renumber = np.zeros(sum(len(n) for n in nodes), dtype=np.int64)
        for e, _ in self._entries:  # a mask, not np.unique (which imports numpy.ma: start-up time)
            renumber[e.reshape(-1)] = 1
        used = np.flatnonzero(renumber)
        renumber[used] = np.arange(len(used))
        self._entries = [(renumber[e], w) for e, w in self._entries]
        return np.concatenate(nodes)[used], np.ascontiguousarray(np.concatenate(binds)[used])

    def _fixed_blend(self, moving: frozenset[int]) -> list[FixedPart]:
        """fixed_parts of every primitive not in `moving` (at rest morph weights), cached per set."""
        if moving not in self._fixed_blends:
            if len(self._fixed_blends) >= CACHED_SETS:  # bounded memory for assets with many distinct clips
                self._fixed_blends.clear()
            self._fixed_blends[moving] = fixed_parts([(p.offset, *self._entries[i], self._rest_points(p))
                                                      for i, p in enumerate(self.primitives) if i not in moving])
        return self._fixed_blends[moving]

    def _moving_influence(self, i: int) -> Influences:
        if i not in self._moving_influences:
            self._moving_influences[i] = influences(*self._entries[i])
        return self._moving_influences[i]

    def _rest_points(self, p: Primitive) -> np.ndarray:
        if p.node in self.rest_weights and p.targets.shape[0]:
            return morph_positions(p.positions, p.targets, self.rest_weights[p.node][None])[0]
        return p.positions

    @property
    def animations(self) -> list[AnimationInfo]:
        return [a.info for a in self._animations]

    # ---- evaluation ---------------------------------------------------------------------------
    def evaluate(self, animation: int | None, times: np.ndarray) -> np.ndarray:
        """World-space vertices [T, V, 3] float32 of `animation` (None: rest pose) at `times` [T] seconds."""
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if not np.isfinite(times).all():
            raise ValueError("times must be finite")
        count = len(times)
        if count > self.limits.max_frames:
            raise LimitExceeded(self.name, f"{count} times, over the {self.limits.max_frames} frame cap")
        # Output, morphing vertices' two intermediates (morphed points, their moved copy), the per-frame local,
        # world and palette matrices (float64) and the float32 palette columns; blending works in bounded blocks.
        work_bytes = count * (self.num_vertices * 12 + self._morph_vertices * 24
                              + (2 * self.graph.count + self._palette_size) * 128 + self._palette_size * 48)
        if work_bytes > self.limits.max_output_bytes:
            raise LimitExceeded(self.name, f"{count} frames of {self.num_vertices} vertices need {work_bytes} bytes, "
                                           f"over the {self.limits.max_output_bytes} byte cap")
        if animation is None:
            channels = []
        elif isinstance(animation, (int, np.integer)) and 0 <= animation < len(self._animations):
            channels = self._animations[int(animation)].groups
        else:
            raise IndexError(f"{self.name}: no animation {animation!r} ({len(self._animations)} exist)")
        with np.errstate(over="ignore", invalid="ignore"):
            out = self._vertices(channels, times)
        if not np.isfinite(out).all():
            raise BadData(self.name, "evaluated vertices overflow to infinity/NaN (extreme transforms or weights)")
        return out

    def _vertices(self, channels: list[ChannelGroup], times: np.ndarray) -> np.ndarray:
        count = len(times)
        nodes, local = self._local_matrices(channels, times)
        key = nodes.tobytes()
        if key not in self._dynamic_levels:
            if len(self._dynamic_levels) >= CACHED_SETS:
                self._dynamic_levels.clear()
            self._dynamic_levels[key] = dynamic_levels(self.graph, nodes)
        world = world_matrices(self.graph, nodes, local, self._dynamic_levels[key])  # [T or 1, N, 4, 4]
        palette = np.matmul(np.take(world, self._palette_nodes, axis=1), self._palette_bind)  # [T or 1, U, 4, 4]
        weights = self._morph_weights(channels, times)
        moving = frozenset(i for i, p in enumerate(self.primitives) if p.node in weights and p.targets.shape[0])
        out = np.empty((count, self.num_vertices, 3), dtype=np.float32)
        parts = self._fixed_blend(moving)
        columns = palette_columns(palette) if parts else None
        if parts:
            blend_fixed_points(parts, columns, out)
        for i in sorted(moving):
            p = self.primitives[i]
            if i not in self._morph_data:
                self._morph_data[i] = (p.positions.astype(np.float32), p.targets.astype(np.float32))
            points = morph_positions(*self._morph_data[i], weights[p.node])
            if p.skin is None:
                moved = transform_points(world[:, p.node], points)
            else:
                columns = palette_columns(palette) if columns is None else columns
                moved = blend_moving_points(self._moving_influence(i), columns, points)
            out[:, p.offset:p.offset + p.count] = moved
        return out

    def _local_matrices(self, channels: list[ChannelGroup], times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(moving nodes [m], their local matrices [T, m, 4, 4]); m = 0 when nothing moves."""
        graph = self.graph
        moving = sorted({int(n) for c in channels if c.path in TRS_PATHS for n in c.nodes})
        nodes = np.asarray(moving, dtype=np.int64)
        if not moving:
            return nodes, np.zeros((1, 0, 4, 4))
        slot = np.full(graph.count, -1)
        slot[nodes] = np.arange(len(nodes))
        count = len(times)
        trs = {path: np.repeat(getattr(graph, path)[nodes][None], count, axis=0) for path in TRS_PATHS}
        for c in channels:
            if c.path in TRS_PATHS:
                trs[c.path][:, slot[c.nodes]] = sample(c.keys, c.values, c.interpolation, times, c.path == "rotation")
        return nodes, compose(trs["translation"], trs["rotation"], trs["scale"])

    def _morph_weights(self, channels: list[ChannelGroup], times: np.ndarray) -> dict[int, np.ndarray]:
        """Morph weights [T, K] of the nodes whose weights this clip animates."""
        weights = {}
        for c in channels:
            if c.path == "weights":
                weights[int(c.nodes[0])] = sample(c.keys, c.values, c.interpolation, times)[:, 0]
        return weights

    # ---- description --------------------------------------------------------------------------
    def _describe(self) -> dict:
        skins_used = {p.skin for p in self.primitives if p.skin is not None}
        return {
            "file": self.name,
            "scene": self.scene_index,
            "nodes": self.graph.count,
            "meshes": len({p.mesh for p in self.primitives}),
            "primitives": [
                {"node": p.node, "mesh": p.mesh, "primitive": p.primitive, "mode": TRIANGLE_MODES[p.mode],
                 "offset": p.offset, "vertices": p.count, "faces": len(p.triangles),
                 "skin": p.skin, "morph_targets": int(p.targets.shape[0])}
                for p in self.primitives
            ],
            "vertices": self.num_vertices,
            "faces": len(self.faces),
            "skins": [{"index": s, "joints": len(self.skins[s].joints)} for s in sorted(skins_used)],
            "morph_targets": max((int(p.targets.shape[0]) for p in self.primitives), default=0),
            "animations": [
                {"index": a.index, "name": a.name, "duration": a.duration, "channels": a.channels,
                 "interpolations": list(a.interpolations)}
                for a in self.animations
            ],
            "warnings": list(self.warnings),
        }

    def summary(self) -> dict:
        """What `dymesh inspect` prints: counts, skins, morph targets, animations, warnings."""
        return dict(self._summary)


def sample_times(duration: float, fps: float, max_frames: int) -> np.ndarray:
    """times[f] = min(f / fps, duration) for f < min(max_frames, floor(duration * fps + 1e-6) + 1)."""
    count = max(1, min(int(max_frames), int(np.floor(duration * fps + 1e-6)) + 1))
    return np.minimum(np.arange(count) / fps, duration)


def load_asset_bytes(data: bytes, name: str = "asset.glb", limits: Limits = Limits(),
                     folder: Path | None = None) -> Scene:
    """A Scene from GLB bytes or self-contained .gltf bytes (side files only from `folder` when given)."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow surfaces as BadData in evaluate()
            return Scene(read_document(bytes(data), name, folder, limits))
    except AssetError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, RecursionError) as exc:
        # Safety net: any malformed structure the explicit checks missed still becomes one typed line.
        raise MalformedAsset(name, f"unreadable structure ({type(exc).__name__}: {exc})") from None


def load_asset(path: str | Path, limits: Limits = Limits()) -> Scene:
    """A Scene from a .glb, or a .gltf whose side files lie in (or below) its folder."""
    path = Path(path)
    name = str(path)
    try:  # a regular file only (never a FIFO or device), at most the cap whatever stat says
        data = read_regular(name, limits.max_file_bytes, follow_links=True)
    except UntrustedFileError as exc:
        error = LimitExceeded if exc.kind == "limit" else MalformedAsset
        raise error(name, exc.detail) from None
    return load_asset_bytes(data, name=name, limits=limits, folder=path.parent)
