"""Scene: a loaded asset's default scene, evaluated at many times at once -> world-space vertices [T, V, 3]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse

from .accessors import AccessorReader
from .animation import Animation, AnimationInfo, ChannelGroup, read_animations
from .errors import AssetError, BadData, LimitExceeded, MalformedAsset
from .gltf_container import Document, read_document
from .interpolation import sample
from .limits import Limits
from .morph import default_weights, morph_positions
from .palette import blend_fixed_points, blend_moving_points, influence_matrix, palette_rows, point_blend_matrix
from .primitives import TRIANGLE_MODES, Primitive, read_primitives
from .scene_graph import NodeGraph, compose, default_scene_nodes, read_nodes, world_matrices
from .skinning import Skin, joint_matrices, read_skin

TRS_PATHS = ("translation", "rotation", "scale")


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
        self._influences = self._palette_influences()
        fixed = [point_blend_matrix(inf, self._rest_points(p)) for p, inf in zip(self.primitives, self._influences)]
        self._fixed_blend = sparse.vstack(fixed, format="csr") if fixed else None
        self.num_vertices = sum(p.count for p in self.primitives)
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

    def _palette_influences(self) -> list[sparse.csr_matrix]:
        """Per primitive [n, P] weights over the palette: node world matrices, then each skin's joints."""
        offset = self.graph.count
        skin_offsets = {}
        for s, skin in self.skins.items():
            skin_offsets[s] = offset
            offset += len(skin.joints)
        self._palette_size = offset
        influences = []
        for p in self.primitives:
            if p.skin is None:
                entries, weights = np.full((p.count, 1), p.node), np.ones((p.count, 1))
            else:
                entries, weights = p.joints + skin_offsets[p.skin], p.weights
            influences.append(influence_matrix(entries, weights, self._palette_size))
        return influences

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
        # Output plus the per-frame local, world and palette matrices.
        work_bytes = count * (self.num_vertices * 12 + (2 * self.graph.count + self._palette_size) * 128)
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
        world = world_matrices(self.graph, self._local_matrices(channels, times))
        palette = np.concatenate([world] + [joint_matrices(world, skin) for skin in self.skins.values()], axis=1)
        rows = palette_rows(palette)
        out = np.empty((count, self.num_vertices, 3), dtype=np.float32)
        if self._fixed_blend is not None:
            out[:] = blend_fixed_points(self._fixed_blend, rows)
        weights = self._morph_weights(channels, times)
        for p, influence in zip(self.primitives, self._influences):
            if p.node in weights and p.targets.shape[0]:  # morph weights animated by this clip
                points = morph_positions(p.positions, p.targets, weights[p.node])
                out[:, p.offset:p.offset + p.count] = blend_moving_points(influence, rows, points)
        return out

    def _local_matrices(self, channels: list[ChannelGroup], times: np.ndarray) -> np.ndarray:
        """Local matrices [T, N, 4, 4] (or [1, N, 4, 4] when nothing moves)."""
        graph = self.graph
        moving = sorted({int(n) for c in channels if c.path in TRS_PATHS for n in c.nodes})
        if not moving:
            return graph.rest_local[None]
        nodes = np.asarray(moving)
        slot = np.full(graph.count, -1)
        slot[nodes] = np.arange(len(nodes))
        count = len(times)
        trs = {
            "translation": np.repeat(graph.translation[nodes][None], count, axis=0),
            "rotation": np.repeat(graph.rotation[nodes][None], count, axis=0),
            "scale": np.repeat(graph.scale[nodes][None], count, axis=0),
        }
        for c in channels:
            if c.path in TRS_PATHS:
                trs[c.path][:, slot[c.nodes]] = sample(c.keys, c.values, c.interpolation, times, c.path == "rotation")
        local = np.repeat(graph.rest_local[None], count, axis=0)
        local[:, nodes] = compose(trs["translation"], trs["rotation"], trs["scale"])
        return local

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
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MalformedAsset(name, f"cannot read the file ({exc.strerror})") from None
    if not path.is_file():
        raise MalformedAsset(name, "not a regular file")
    if size > limits.max_file_bytes:
        raise LimitExceeded(name, f"file is {size} bytes, over the {limits.max_file_bytes} byte cap")
    with open(path, "rb") as handle:
        data = handle.read(limits.max_file_bytes + 1)
    return load_asset_bytes(data, name=name, limits=limits, folder=path.parent)
