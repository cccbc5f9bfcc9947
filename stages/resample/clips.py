"""`clips_from_scene`: one evaluated asset -> fixed-shape clips and error rows (no Ray, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.sample import Clip
from schemas.tables import error_row
from stages.resample import filters
from stages.resample.config import ResampleConfig
from stages.resample.decimate import BudgetError
from stages.resample.fingerprint import content_hash
from stages.resample.motion import displacement, normalisation, pose_gap
from stages.resample.quality import measured_rows, surface_error
from stages.resample.step_clock import StepClock
from stages.resample.timeline import (
    Window,
    clip_id,
    frame_count,
    group_windows,
    looped_window,
    regular_windows,
    union_times,
)
from stages.resample.vertex_count import to_vertex_count
from stages.resample.weld import WeldedMesh, bbox_diagonal, weld

STAGE = "resample"
Rejection = tuple[str, str]  # (error_type, message)


@dataclass
class Resampled:
    """One group of windows at N vertices: all its evaluated frames (rows), with per-row surface errors."""

    vertices: np.ndarray  # [rows, N, 3]
    faces: np.ndarray
    method: str  # identity | subdivide | decimate
    source: WeldedMesh
    hausdorff: np.ndarray  # [rows] absolute, NaN where not measured
    chamfer: np.ndarray


def clips_from_scene(
    scene, asset_id: str, config: ResampleConfig, clock: StepClock | None = None
) -> tuple[list[Clip], list[dict]]:
    """Every clip of every animation of `scene` (sorted by clip id), and one error row per window not kept.

    `clock` (optional) collects the seconds spent per step.
    """
    config.validate()
    clock = clock or StepClock()
    clips: list[Clip] = []
    errors: list[dict] = []
    if not scene.animations:
        errors.append(_skip(asset_id, "no-animation", "the asset has no animations, so it has no clips"))
    for info in scene.animations:
        with clock.step("evaluate"):
            windows = _plan(scene, asset_id, info, config, errors)
        verdict = filters.too_many_vertices(int(scene.num_vertices), config)
        if windows and verdict is not True:
            errors.extend(_skip(_window_id(asset_id, info, w), "too-many-vertices", verdict[1]) for w in windows)
            continue
        for group in group_windows(windows, int(scene.num_vertices), config.max_evaluate_bytes):
            group_clips: list[Clip] = []
            group_errors: list[dict] = []
            try:
                _group_clips(scene, asset_id, info, group, config, group_clips, group_errors, clock)
            except Exception as exc:  # noqa: BLE001 - a bug or a library failure on one mesh must not stop the job
                message = f"resampling failed: {type(exc).__name__}: {exc}"
                group_clips = []
                group_errors = [_row(_window_id(asset_id, info, w), type(exc).__name__, message, "failed")
                                for w in group]
            clips.extend(group_clips)
            errors.extend(group_errors)
    clips.sort(key=lambda c: c.clip_id)
    if config.dedup:
        with clock.step("filters"):
            clips = _drop_duplicates(clips, errors)
    return clips, errors


def _plan(scene, asset_id: str, info, config: ResampleConfig, errors: list[dict]) -> list[Window]:
    """Windows of each length; a too-short animation loops if its first and last poses match, else is skipped."""
    total = frame_count(info.duration, config.fps)
    windows: list[Window] = []
    gap: float | Exception | None = None
    for length in config.frames:
        if total >= length:
            windows += regular_windows(info.duration, config.fps, length, config.stride, config.max_clips_per_animation)
            continue
        if gap is None:
            gap = _loop_gap(scene, info)
        unit = clip_id(asset_id, info.index, 0, length - 1)
        if isinstance(gap, Exception):
            errors.append(_row(unit, type(gap).__name__, f"evaluate failed: {gap}", "failed"))
        elif gap <= config.loop_tolerance:
            windows.append(looped_window(info.duration, config.fps, length))
        else:
            errors.append(_skip(
                unit, "too-short",
                f"animation {info.index} has {total} frames at {config.fps:g} fps, fewer than {length}, and does "
                f"not loop (first/last pose gap {gap:.3g} > loop_tolerance {config.loop_tolerance})",
            ))
    return windows


def _loop_gap(scene, info) -> float | Exception:
    """Gap between the first and the last pose (inf for a zero-length animation), or the evaluation error."""
    if info.duration <= 0:
        return float("inf")
    try:
        poses = scene.evaluate(info.index, np.array([0.0, info.duration]))
    except Exception as exc:  # noqa: BLE001 - one bad animation must not stop the asset
        return exc
    return pose_gap(poses[0], poses[1])


def _group_clips(scene, asset_id, info, group: list[Window], config, clips, errors, clock: StepClock) -> None:
    """Evaluate a group of windows once, resample it once, then cut and filter its clips."""
    names = [_window_id(asset_id, info, w) for w in group]
    times, rows = union_times(group)
    try:
        with clock.step("evaluate"):
            trajectories = np.asarray(scene.evaluate(info.index, times), dtype=np.float32)
    except Exception as exc:  # noqa: BLE001
        errors.extend(_row(n, type(exc).__name__, f"evaluate failed: {exc}", "failed") for n in names)
        return
    bad_frames = ~np.isfinite(trajectories).all(axis=(1, 2))
    if bad_frames.any():
        keep = [i for i, row in enumerate(rows) if not bad_frames[row].any()]
        errors.extend(_skip(n, "exploding", "non-finite vertex positions (NaN or inf) in the window")
                      for i, n in enumerate(names) if i not in keep)
        if not keep:
            return
        group, names, evaluated = [group[i] for i in keep], [names[i] for i in keep], times
        times, rows = union_times(group)
        trajectories = trajectories[np.searchsorted(evaluated, times)]
    resampled = _resample(trajectories, scene.faces, rows, config, clock)
    if not isinstance(resampled, Resampled):
        errors.extend(_skip(n, *resampled) for n in names)
        return
    with clock.step("filters"):  # motion statistics, normalisation, filters, content hash
        for window, name, row in zip(group, names, rows):
            clip = _window_clip(asset_id, info, window, name, row, resampled, config)
            if isinstance(clip, Clip):
                clips.append(clip)
            else:
                errors.append(_skip(name, *clip))


def _resample(trajectories, faces, rows, config: ResampleConfig, clock: StepClock) -> Resampled | Rejection:
    """Weld, check the source size, bring to N vertices and measure the surface error on the measured rows."""
    diagonal = bbox_diagonal(trajectories[0])
    if diagonal == 0:
        return "degenerate", "all vertices coincide at the first frame"
    with clock.step("weld"):
        welded = weld(trajectories, faces, config.weld_tolerance * diagonal)
    count = welded.trajectories.shape[1]
    rejection = filters.first_rejection([
        ("too-few-vertices", lambda: filters.too_few_vertices(count, config)),
        ("too-many-vertices", lambda: filters.too_many_vertices(count, config)),
    ])
    if rejection:
        return rejection
    if len(welded.faces) == 0:
        return "no-faces", "no triangle is left after welding and dropping degenerate faces"
    target = config.vertices if config.vertices != "native" else min(count, config.max_native_vertices)
    try:
        vertices, new_faces, method = to_vertex_count(
            welded.trajectories, welded.faces, target, config.min_part_vertices, clock
        )
    except BudgetError as exc:
        return "too-many-parts", f"{exc}; use more vertices or 'native'"
    hausdorff, chamfer = np.zeros(len(vertices)), np.zeros(len(vertices))
    if method == "decimate":  # identity and splits inside source triangles keep the surface in every frame
        with clock.step("quality"):
            measured = measured_rows(rows, config.quality_frames)  # includes every window's first frame
            hausdorff[:], chamfer[:] = np.nan, np.nan
            hausdorff[measured], chamfer[measured] = surface_error(
                vertices[measured], new_faces, welded.trajectories[measured], welded.faces,
                config.quality_samples, config.seed,
            )
    return Resampled(vertices, new_faces, method, welded, hausdorff, chamfer)


def _window_clip(asset_id, info, window: Window, name: str, row, resampled: Resampled, config) -> Clip | Rejection:
    """The clip of one window, or why it is rejected."""
    vertices = np.ascontiguousarray(resampled.vertices[row], dtype=np.float32)
    diagonal = bbox_diagonal(resampled.source.trajectories[row[0]])
    if not diagonal > 0:
        return "degenerate", "the source collapses to a point at the window's first frame"
    metric = resampled.hausdorff if config.error_metric == "hausdorff" else resampled.chamfer
    error = float(np.nanmax(metric[row]) / diagonal)
    center, scale = normalisation(vertices[0])
    max_move, mean_move = displacement(vertices)
    rejection = filters.first_rejection([
        ("exploding", lambda: filters.exploding(vertices, max_move, config)),
        ("static", lambda: filters.static(max_move, config)),
        ("resample-error", lambda: filters.resample_error(error, config)),
    ])
    if rejection:
        return rejection
    return Clip(
        clip_id=name,
        asset_id=asset_id,
        animation=int(info.index),
        animation_name=str(info.name),
        fps=float(config.fps),
        first_frame=window.first,
        last_frame=window.last,
        vertices=vertices,
        faces=resampled.faces,
        center=center,
        scale=scale,
        source_vertices=int(resampled.source.trajectories.shape[1]),
        source_faces=int(len(resampled.source.faces)),
        looped=window.looped,
        resample_error=error,
        max_displacement=max_move,
        mean_displacement=mean_move,
        content_hash=content_hash(vertices, resampled.faces, center, scale, config.content_quantum),
        extra={
            "method": resampled.method,
            "frame0_error": float(metric[row[0]] / diagonal),
            "hausdorff": float(np.nanmax(resampled.hausdorff[row]) / diagonal),
            "chamfer": float(np.nanmax(resampled.chamfer[row]) / diagonal),
        },
    )


def _drop_duplicates(clips: list[Clip], errors: list[dict]) -> list[Clip]:
    """Keep the first clip (by clip id) of each content hash; the others become `duplicate` rows."""
    seen: dict[str, str] = {}
    kept = []
    for clip in clips:
        verdict = filters.duplicate(clip.content_hash, seen)
        if verdict is not True:
            errors.append(_skip(clip.clip_id, "duplicate", verdict[1]))
            continue
        seen[clip.content_hash] = clip.clip_id
        kept.append(clip)
    return kept


def _window_id(asset_id: str, info, window: Window) -> str:
    return clip_id(asset_id, info.index, window.first, window.last)


def _skip(unit_id: str, error_type: str, message: str) -> dict:
    return _row(unit_id, error_type, message, "skipped")


def _row(unit_id: str, error_type: str, message: str, status: str) -> dict:
    return error_row(STAGE, unit_id, error_type, message, status=status)
