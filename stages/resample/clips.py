"""`clips_from_scene`: one evaluated asset -> fixed-shape clips, error rows and its yield funnel (no Ray, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.sample import Clip
from schemas.failures import error_row
from stages.resample import filters
from stages.resample.config import ResampleConfig
from stages.resample.decimate import DecimationError
from stages.resample.fingerprint import content_hash
from stages.resample.funnel import Funnel
from stages.resample.motion import displacement, normalisation
from stages.resample.quality import MEASURES
from stages.resample.short import loop_measure, loop_times, short_window
from stages.resample.step_clock import StepClock
from stages.resample.timeline import Window, clip_id, frame_count, group_windows, regular_windows, union_times
from stages.resample.topology import Topologies
from stages.resample.weld import WeldedMesh, bbox_diagonal

STAGE = "resample"
Rejection = tuple[str, str]  # (error_type, message)
LIMITS = {"vertex": "max_vertex_error", "face": "max_face_error", "coverage": "max_coverage_error"}


@dataclass
class Resampled:
    """One group of windows at N vertices: all its evaluated frames (rows), with per-row surface measures."""

    vertices: np.ndarray  # [rows, N, 3]
    faces: np.ndarray
    method: str  # identity | subdivide | decimate
    source: WeldedMesh
    measures: dict[str, np.ndarray]  # name -> [rows] absolute (stages.resample.quality)


def clips_from_scene(
    scene, asset_id: str, config: ResampleConfig, clock: StepClock | None = None, funnel: Funnel | None = None,
) -> tuple[list[Clip], list[dict]]:
    """Every clip of every animation of `scene` (sorted by clip id), and one error row per window not kept.

    `clock` (optional) collects the seconds spent per step; `funnel` (optional) gets this asset's counts added:
    animations seen, windows cut, clips kept, rows per rejection reason.
    """
    config.validate()
    clock = clock or StepClock()
    clips: list[Clip] = []
    errors: list[dict] = []
    if not scene.animations:
        errors.append(_skip(asset_id, "no-animation", "the asset has no animations, so it has no clips"))
    topologies = Topologies(scene, config, clock)
    too_many = filters.too_many_vertices(int(scene.num_vertices), config)
    for info in scene.animations:
        with clock.step("evaluate"):
            windows = _plan(scene, asset_id, info, config, errors)
        if windows and too_many is not True:
            errors.extend(_skip(_window_id(asset_id, info, w), "too-many-vertices", too_many[1]) for w in windows)
            continue
        for group in group_windows(windows, int(scene.num_vertices), config.max_evaluate_bytes):
            group_clips: list[Clip] = []
            group_errors: list[dict] = []
            try:
                _group_clips(scene, asset_id, info, group, config, group_clips, group_errors, clock, topologies)
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
    if funnel is not None:
        funnel.assets += 1
        funnel.animations += len(scene.animations)
        funnel.windows += len(clips)
        funnel.clips += len(clips)
        funnel.count(errors)
    return clips, errors


def _plan(scene, asset_id: str, info, config: ResampleConfig, errors: list[dict]) -> list[Window]:
    """Windows of each length; an animation shorter than a length is filled by the short policies."""
    total = frame_count(info.duration, config.fps)
    windows: list[Window] = []
    measured: list[tuple[float, float]] = []

    def measure() -> tuple[float, float]:  # evaluated once per animation, only if a policy asks
        if not measured:
            measured.append(loop_measure(scene.evaluate(info.index, loop_times(info.duration, config.fps))))
        return measured[0]

    for length in config.frames:
        if total >= length:
            windows += regular_windows(info.duration, config.fps, length, config.stride, config.max_clips_per_animation)
            continue
        unit = clip_id(asset_id, info.index, 0, length - 1)
        try:
            window = short_window(info.duration, length, config.fps, config.short_policies, config.loop_tolerance,
                                  measure)
        except Exception as exc:  # noqa: BLE001 - one bad animation must not stop the asset
            errors.append(_row(unit, type(exc).__name__, f"evaluate failed: {exc}", "failed"))
            continue
        if isinstance(window, Window):
            windows.append(window)
        else:
            errors.append(_skip(unit, "too-short", f"animation {info.index} has {window}"))
    return windows


def _group_clips(scene, asset_id, info, group: list[Window], config, clips, errors, clock: StepClock,
                 topologies: Topologies) -> None:
    """Evaluate a group of windows once, resample it with the asset's cached topology, then cut and filter."""
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
    resampled = _resample(trajectories, rows, config, clock, topologies)
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


def _resample(trajectories, rows, config: ResampleConfig, clock: StepClock,
              topologies: Topologies) -> Resampled | Rejection:
    """Weld, check the source size, bring to N vertices with the cached map, and measure the surface gates."""
    if bbox_diagonal(trajectories[0]) == 0:
        return "degenerate", "all vertices coincide at the first frame"
    with clock.step("weld"):
        welded, key, reference = topologies.weld(trajectories)
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
        topology = topologies.topology(key and key + (target,), welded, reference, target)
    except DecimationError as exc:
        return "decimation-failed", f"{exc}; use more vertices or 'native'"
    unit = _row_diagonals(welded.trajectories, rows)
    limits = {name: unit * _limit(config, name) for name in MEASURES}
    vertices, measures = _apply(topology, welded, limits, clock)
    if _worst(measures, limits) > 1 and key is not None:
        # the reference pose did not hold for this motion (e.g. flat at rest, bent later): decimate again at
        # the group's worst frame and keep whichever fails less
        worst_row = int(np.argmax(np.max([measures[n] / limits[n] for n in ("face", "coverage")], axis=0)))
        try:
            retry = topologies.topology(None, welded, welded.trajectories[worst_row], target)
        except DecimationError:
            retry = None
        if retry is not None:
            again = _apply(retry, welded, limits, clock)
            if _worst(again[1], limits) < _worst(measures, limits):
                topology, (vertices, measures) = retry, again
    return Resampled(vertices, topology.surface_map.faces, topology.surface_map.method, welded, measures)


def _apply(topology, welded: WeldedMesh, limits: dict, clock: StepClock) -> tuple[np.ndarray, dict]:
    """Resampled frames of the welded group and their surface measures (zeros where exact by construction)."""
    with clock.step("transfer"):
        vertices = topology.surface_map.apply(welded.trajectories)
    if topology.gate is None:  # identity and splits of source faces lie on the source surface exactly
        return vertices, {name: np.zeros(len(vertices)) for name in MEASURES}
    with clock.step("quality"):
        return vertices, topology.gate.measure(welded.trajectories, vertices, limits)


def _worst(measures: dict, limits: dict) -> float:
    """Largest measure / limit over all rows and measures (above 1: some row fails a gate)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = [np.nan_to_num(measures[n] / limits[n], nan=0.0, posinf=np.inf) for n in MEASURES]
    return float(np.max(ratios))


def _row_diagonals(trajectories: np.ndarray, rows: list[np.ndarray]) -> np.ndarray:
    """Per evaluated row, the smallest first-frame bbox diagonal of the windows holding it (the gates' unit)."""
    unit = np.full(len(trajectories), np.inf)
    for row in rows:
        unit[row] = np.minimum(unit[row], bbox_diagonal(trajectories[row[0]]))
    return unit


def _limit(config: ResampleConfig, name: str) -> float:
    value = getattr(config, LIMITS[name])
    return np.inf if value is None else value


def _window_clip(asset_id, info, window: Window, name: str, row, resampled: Resampled, config) -> Clip | Rejection:
    """The clip of one window, or why it is rejected."""
    vertices = np.ascontiguousarray(resampled.vertices[row], dtype=np.float32)
    diagonal = bbox_diagonal(resampled.source.trajectories[row[0]])
    if not diagonal > 0:
        return "degenerate", "the source collapses to a point at the window's first frame"
    errors = {name: float(resampled.measures[name][row].max() / diagonal) for name in MEASURES}
    center, scale = normalisation(vertices[0])
    max_move, mean_move = displacement(vertices)
    rejection = filters.first_rejection([
        ("exploding", lambda: filters.exploding(vertices, max_move, config)),
        ("static", lambda: filters.static(max_move, config)),
        *[(f"{name}-error", lambda name=name: filters.surface_error(name, errors[name], config)) for name in MEASURES],
    ])
    if rejection:
        return rejection
    return Clip(
        clip_id=name,
        asset_id=asset_id,
        animation=int(info.index),
        animation_name=str(info.name),
        fps=float(window.fps or config.fps),
        first_frame=window.first,
        last_frame=window.last,
        vertices=vertices,
        faces=resampled.faces,
        center=center,
        scale=scale,
        source_vertices=int(resampled.source.trajectories.shape[1]),
        source_faces=int(len(resampled.source.faces)),
        looped=window.looped,
        short_policy=window.short_policy,
        resample_error=max(errors.values()),
        max_displacement=max_move,
        mean_displacement=mean_move,
        content_hash=content_hash(vertices, resampled.faces, center, scale, config.content_quantum),
        extra={"method": resampled.method, **{f"{name}_error": value for name, value in errors.items()}},
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
