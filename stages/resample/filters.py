"""Clip filters: each returns True (keep) or (False, reason with the measured value and the threshold).

The filter's name is the `error_type` of the "skipped" error row it causes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from stages.resample.config import ResampleConfig

Verdict = bool | tuple[bool, str]
DIAGONALS = " (bbox diagonals)"


def too_few_vertices(source_vertices: int, config: ResampleConfig) -> Verdict:
    return _at_least(source_vertices, config.min_source_vertices, "welded source vertices", "min_source_vertices")


def too_many_vertices(source_vertices: int, config: ResampleConfig) -> Verdict:
    return _at_most(source_vertices, config.max_source_vertices, "source vertices", "max_source_vertices")


def exploding(vertices: np.ndarray, max_displacement: float, config: ResampleConfig) -> Verdict:
    if not np.isfinite(vertices).all():
        return False, f"{int((~np.isfinite(vertices)).sum())} non-finite coordinates (NaN or inf)"
    return _at_most(max_displacement, config.max_displacement, "max displacement", "max_displacement", DIAGONALS)


def static(max_displacement: float, config: ResampleConfig) -> Verdict:
    return _at_least(max_displacement, config.min_displacement, "max displacement", "min_displacement", DIAGONALS)


SURFACE_MEASURES = {
    "vertex": ("max distance of a resampled vertex to the evaluated surface", "max_vertex_error"),
    "face": ("p99 distance of the resampled faces to the evaluated surface", "max_face_error"),
    "coverage": ("p99 distance of the evaluated surface to the resampled one", "max_coverage_error"),
}


def surface_error(measure: str, error: float, config: ResampleConfig) -> Verdict:
    """Gate `measure` (vertex | face | coverage, see stages.resample.quality), worst frame of the window."""
    what, option = SURFACE_MEASURES[measure]
    return _at_most(error, getattr(config, option), what + " (worst frame)", option, DIAGONALS)


def duplicate(content_hash: str, seen: dict[str, str]) -> Verdict:
    """Reject a clip whose content hash an earlier clip (by clip id) already has; remember it otherwise."""
    if content_hash in seen:
        return False, f"same content hash as {seen[content_hash]}"
    return True


FILTER_NAMES = ("too-few-vertices", "too-many-vertices", "exploding", "static", "vertex-error", "face-error",
                "coverage-error", "duplicate")


def first_rejection(checks: list[tuple[str, Callable[[], Verdict]]]) -> tuple[str, str] | None:
    """Run (name, check) pairs in order; (name, reason) of the first that rejects, or None."""
    for name, check in checks:
        verdict = check()
        if verdict is not True:
            return name, verdict[1]
    return None


def _at_least(value: float, limit: float | None, what: str, option: str, unit: str = "") -> Verdict:
    if limit is not None and not value >= limit:
        return False, f"{what} {value:.4g} < {option} {limit}{unit}"
    return True


def _at_most(value: float, limit: float | None, what: str, option: str, unit: str = "") -> Verdict:
    if limit is not None and not value <= limit:
        return False, f"{what} {value:.4g} > {option} {limit}{unit}"
    return True
