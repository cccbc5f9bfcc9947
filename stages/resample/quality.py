"""Surface gates of a resampled clip, measured the way a user would check it, in every frame:

  vertex    max distance of the resampled vertices to the evaluated source surface
  face      p99 distance of area-weighted points of the resampled faces to the source surface
  coverage  p99 distance of area-weighted points of the source surface to the resampled surface

`SurfaceGate.build` does the frame-0 work once per topology, at the reference pose: it draws the samples and
finds each one's closest point on the other surface. Every sample and its closest point are fixed linear
combinations of source vertices, so in any frame of any animation their distance is an upper bound of the true
one, for the price of a sparse product. Frames whose bounded statistic exceeds its limit are refined with exact
closest points for the samples above the limit, so a clip is rejected only on exact distances. Reported values
are therefore upper bounds of the sampled measures, exact wherever they matter for the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from stages.resample.surface_transfer import SurfaceIndex, closest_on_surface
from stages.resample.vertex_count import SurfaceMap, barycentric_rows, flat_frames

MEASURES = ("vertex", "face", "coverage")
PERCENTILE = {"vertex": 100.0, "face": 99.0, "coverage": 99.0}


@dataclass
class Probe:
    """Sample points and their reference-pose closest points on the other surface, as rows over source vertices."""

    points: sparse.csr_matrix  # [M, V]
    delta: sparse.csr_matrix  # points - closest points [M, V]
    guess: np.ndarray  # [M] face (of the other surface) holding each closest point
    on_source: bool  # the other surface is the source (else the resampled surface)


@dataclass
class SurfaceGate:
    """The three probes of one topology; `measure` gives per-frame statistics for any frames of the source."""

    probes: dict[str, Probe]
    surface_map: SurfaceMap
    source_faces: np.ndarray

    @classmethod
    def build(cls, surface_map: SurfaceMap, points: np.ndarray, faces: np.ndarray, samples: int,
              seed: int, index: SurfaceIndex | None = None) -> "SurfaceGate":
        """Probes at the reference pose `points` [V, 3] of the source surface `faces` (`index`: its SurfaceIndex,
        to reuse)."""
        points = np.asarray(points, dtype=np.float64)
        count = len(points)
        rows = surface_map.matrix if surface_map.matrix is not None else sparse.identity(count, format="csr")
        out_points = rows @ points
        out_faces = surface_map.faces
        rng = np.random.default_rng(seed)
        face_points = area_samples(out_points, out_faces, samples, rng) @ rows  # on the resampled faces
        cover_points = area_samples(points, faces, samples, rng)  # on the source faces
        probes = {
            # resampled vertices are source vertices or points of source faces (vertex_count): their own closest
            # points, so their bound is 0 in every frame and exact
            "vertex": Probe(rows, sparse.csr_matrix(rows.shape), np.zeros(rows.shape[0], dtype=np.int64), True),
            "face": _probe(face_points, points, index or SurfaceIndex(points, faces), rows=None, on_source=True),
            "coverage": _probe(cover_points, points, SurfaceIndex(out_points, out_faces), rows=rows, on_source=False),
        }
        return cls(probes, surface_map, np.asarray(faces))

    def measure(self, source: np.ndarray, resampled: np.ndarray, limits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-frame statistic [T] (absolute) of each measure for source frames [T, V, 3] and their resampled
        frames [T, N, 3]; frames above `limits[name]` [T] (absolute) are refined with exact distances."""
        flat = flat_frames(source)
        frames = len(source)
        result = {}
        for name, probe in self.probes.items():
            distance = np.linalg.norm((probe.delta @ flat).reshape(-1, frames, 3), axis=2).T  # [T, M]
            stat = np.percentile(distance, PERCENTILE[name], axis=1)
            for t in np.flatnonzero(stat > limits[name]):
                stat[t] = self._refined(probe, name, distance[t], source[t], resampled[t], limits[name][t])
            result[name] = stat
        return result

    def _refined(self, probe: Probe, name: str, bound: np.ndarray, source: np.ndarray, resampled: np.ndarray,
                 limit: float) -> float:
        """The frame's statistic once the samples whose bound exceeds `limit` have exact distances."""
        chosen = np.flatnonzero(bound > limit)
        points = probe.points[chosen] @ source.astype(np.float64)
        surface, faces = (source, self.source_faces) if probe.on_source else (resampled, self.surface_map.faces)
        _, _, exact = closest_on_surface(points, surface, faces, guess=probe.guess[chosen])
        bound = bound.copy()
        bound[chosen] = np.minimum(bound[chosen], exact)
        return float(np.percentile(bound, PERCENTILE[name]))


def _probe(samples: sparse.csr_matrix, points: np.ndarray, target: SurfaceIndex, rows: sparse.csr_matrix | None,
           on_source: bool) -> Probe:
    """Closest points of the samples on the target surface at the reference pose, as rows over source vertices
    (`rows` maps target vertices to source vertices when the target is the resampled surface)."""
    samples = sparse.csr_matrix(samples)
    face_index, bary, _ = target.closest(samples @ points)
    closest = barycentric_rows(target.faces, face_index, bary, len(target.surface))
    if rows is not None:
        closest = closest @ rows
    return Probe(samples, (samples - closest).tocsr(), face_index, on_source)


def area_samples(points: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator) -> sparse.csr_matrix:
    """`count` area-weighted uniform points on the surface, as barycentric rows [count, V]."""
    cross = np.cross(points[faces[:, 1]] - points[faces[:, 0]], points[faces[:, 2]] - points[faces[:, 0]])
    area = np.linalg.norm(cross, axis=1)
    weights = area / area.sum() if area.sum() > 0 else np.full(len(faces), 1 / len(faces))
    chosen = rng.choice(len(faces), size=count, p=weights)
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    bary = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], axis=1)
    return barycentric_rows(faces, chosen, bary, len(points))
