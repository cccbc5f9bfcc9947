"""Per-asset topology cache: weld, resampling map and surface gate, built once from a reference pose and reused
across all animations and windows of the asset.

The reference pose is the asset's rest pose (evaluated once). A group of frames uses it when the rest pose is
usable for it: finite, not collapsed, and no surface that is visible in the group's first frame is degenerate at
rest (e.g. a part scaled to zero until the animation shows it); otherwise the group's first frame is its
reference. Welding candidates are the vertex pairs that coincide in the reference; a group welds those that stay
together in all its frames, so groups with the same outcome share one topology (the common case: all of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from stages.resample.config import ResampleConfig
from stages.resample.decimate import components
from stages.resample.quality import SurfaceGate
from stages.resample.step_clock import StepClock
from stages.resample.surface_transfer import SurfaceIndex
from stages.resample.vertex_count import SurfaceMap, surface_map
from stages.resample.weld import (WeldedMesh, bbox_diagonal, candidate_pairs, lowest_linked, staying_pairs,
                                  weld_pairs)

HIDDEN_AREA = 1e-3  # share of a frame's area on faces degenerate in the reference above which it does not fit
PARTS_PER_BUDGET = 1 / 8  # join parts for decimation when they outnumber this share of the vertex budget
NEIGHBOURS = 8  # join candidates per vertex (bounded memory on dense meshes)


@dataclass
class Topology:
    """One weld outcome: the welded source surface brought to N vertices, and its gate (None: exact by
    construction, for identity and subdivide)."""

    surface_map: SurfaceMap
    gate: SurfaceGate | None


class Topologies:
    """Weld + map + gate per asset, cached by the reference and the weld outcome."""

    def __init__(self, scene, config: ResampleConfig, clock: StepClock):
        self.scene, self.config, self.clock = scene, config, clock
        self._rest: np.ndarray | None | bool = False  # False: not evaluated yet
        self._rest_area: np.ndarray | None = None
        self._rest_pairs: np.ndarray | None = None
        self._welds: dict[tuple, WeldedMesh] = {}  # weld outcome -> its faces and kept vertices
        self._parts: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # weld outcome -> (labels, join candidates)
        self._cache: dict[tuple, Topology] = {}

    def weld(self, trajectories: np.ndarray) -> tuple[WeldedMesh, tuple, np.ndarray]:
        """(welded group, cache key, reference positions of the welded vertices) for frames [T, V, 3]."""
        reference, tag = self._reference_for(trajectories[0])
        tolerance = self.config.weld_tolerance * bbox_diagonal(reference)
        if tag == 0 and self._rest_pairs is None:
            self._rest_pairs = candidate_pairs(reference, tolerance)
        pairs = self._rest_pairs if tag == 0 else candidate_pairs(reference, tolerance)
        staying = staying_pairs(trajectories, pairs, tolerance)
        key = (tag, np.packbits(staying).tobytes()) if tag == 0 else None
        if key is not None and key in self._welds:
            known = self._welds[key]
            welded = WeldedMesh(trajectories[:, known.source_index], known.faces, known.source_index)
        else:
            welded = weld_pairs(trajectories, self.scene.faces, pairs, tolerance, staying)
            if key is not None:
                self._welds[key] = WeldedMesh(welded.trajectories[:0], welded.faces, welded.source_index)
        return welded, key, reference[welded.source_index]

    def topology(self, key: tuple | None, welded: WeldedMesh, reference: np.ndarray, target: int) -> Topology:
        """The topology of a weld outcome (cached when `key` is not None). Raises DecimationError."""
        joined = moving = None
        if target < len(reference):
            with self.clock.step("weld"):
                if key is None or key not in self._parts:
                    labels = components(len(reference), welded.faces)
                    radius = self.config.join_tolerance * bbox_diagonal(reference)
                    candidates = join_candidates(reference, labels, target, radius)
                    if key is not None:
                        self._parts[key] = labels, candidates
                labels, candidates = self._parts[key] if key is not None else (labels, candidates)
                joined = joined_parts(welded.trajectories, candidates, radius=self.config.join_tolerance
                                      * bbox_diagonal(reference))
                moving = moving_parts(welded.trajectories, labels, self.config.min_displacement or 1e-3)
            key = key and key + (joined.tobytes(), np.packbits(moving).tobytes())
        if key is not None and key in self._cache:
            return self._cache[key]
        index = SurfaceIndex(reference, welded.faces) if target < len(reference) else None
        mapping = surface_map(reference, welded.faces, target, self.clock, joined, moving, index)
        gate = None
        if mapping.method == "decimate":
            with self.clock.step("quality"):
                gate = SurfaceGate.build(mapping, reference, welded.faces, self.config.quality_samples,
                                         self.config.seed, index)
        topology = Topology(mapping, gate)
        if key is not None:
            self._cache[key] = topology
        return topology

    def _reference_for(self, first: np.ndarray) -> tuple[np.ndarray, int]:
        """(reference pose [V, 3], tag): the rest pose (tag 0) if it fits a group starting with `first`, else
        `first` itself (tag 1, not cached across groups)."""
        rest = self._rest_pose()
        if rest is not None and not self._hidden_at_rest(first):
            return rest, 0
        return np.asarray(first, dtype=np.float64), 1

    def _rest_pose(self) -> np.ndarray | None:
        if self._rest is False:
            try:
                rest = np.asarray(self.scene.evaluate(None, np.zeros(1)), dtype=np.float64)[0]
            except Exception:  # noqa: BLE001 - a scene without a usable rest pose uses each group's first frame
                rest = None
            if rest is not None and (not np.isfinite(rest).all() or bbox_diagonal(rest) == 0):
                rest = None
            self._rest = rest
            if rest is not None:
                self._rest_area = _areas(rest, self.scene.faces)
        return self._rest

    def _hidden_at_rest(self, first: np.ndarray) -> bool:
        """Whether surface visible in `first` is degenerate (zero area) in the rest pose."""
        first_area = _areas(first, self.scene.faces)
        total = first_area.sum()
        if total == 0:
            return False
        degenerate = self._rest_area <= 1e-12 * self._rest_area.sum()
        return float(first_area[degenerate].sum()) > HIDDEN_AREA * total


def _areas(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    corners = points[faces]
    return 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)


def moving_parts(trajectories: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Per vertex: whether its connected part moves by more than `threshold` x the first frame's diagonal."""
    moved = np.linalg.norm(trajectories - trajectories[:1], axis=-1).max(axis=0)
    part_moved = np.zeros(labels.max() + 1)
    np.maximum.at(part_moved, labels, moved)
    return part_moved[labels] > threshold * bbox_diagonal(trajectories[0])


def join_candidates(reference: np.ndarray, labels: np.ndarray, target: int, radius: float) -> np.ndarray:
    """Vertex pairs [P, 2] of different connected parts within `radius` of each other in the reference (up to
    NEIGHBOURS per vertex), when the parts outnumber PARTS_PER_BUDGET x target; none otherwise (few parts keep
    their own topology)."""
    count = len(reference)
    if labels.max() + 1 <= PARTS_PER_BUDGET * target or radius <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    _, neighbour = cKDTree(reference).query(reference, k=NEIGHBOURS + 1, distance_upper_bound=radius)
    first = np.repeat(np.arange(count), NEIGHBOURS + 1)
    second = neighbour.ravel()
    close = (second < count) & (second != first)
    pairs = np.stack([first[close], second[close]], axis=1)
    return pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]]


def joined_parts(trajectories: np.ndarray, candidates: np.ndarray, radius: float) -> np.ndarray:
    """A representative per vertex: candidate pairs (join_candidates) that stay within `radius` in every frame
    share one (the lowest index), so many small parts merge in the decimation instead of vanishing."""
    count = trajectories.shape[1]
    pairs = candidates[staying_pairs(trajectories, candidates, radius)] if len(candidates) else candidates
    identity = np.arange(count)
    if not len(pairs):
        return identity
    return lowest_linked(count, pairs)
