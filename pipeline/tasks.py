"""The work of one asset and of one unit's captions, as plain functions (no Ray): the executor ships them to workers.

`clips_for_asset` is the one worker function of evaluate + resample: bytes -> Scene -> clips, so full-resolution
trajectories never leave the process that computed them; only N-vertex clips come back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from schemas.tables import error_row


@dataclass(frozen=True)
class AssetStats:
    """What evaluation counted in an asset (-1: not evaluated)."""

    animations: int = -1
    vertices: int = -1
    faces: int = -1


@dataclass
class AssetResult:
    """One asset through evaluate + resample: its counts, clips (a CLIPS table, None if not evaluated) and errors."""

    asset_id: str
    stats: AssetStats = field(default_factory=AssetStats)
    evaluate_errors: list[dict] = field(default_factory=list)
    resample_errors: list[dict] = field(default_factory=list)
    clips: Any = None  # pyarrow.Table of schemas.tables.CLIPS
    stage_seconds: float = 0.0

    @property
    def evaluated(self) -> bool:
        return not self.evaluate_errors

    @property
    def clip_count(self) -> int:
        return 0 if self.clips is None else self.clips.num_rows


@dataclass
class CaptionResult:
    """One unit's captions: caption rows, error rows, seconds spent."""

    rows: list[dict]
    errors: list[dict]
    stage_seconds: float = 0.0


def failed_asset(asset_id: str, kind: str, message: str, source: str, attempt: int) -> AssetResult:
    """The result of an asset whose worker never returned one (crash, timeout, out of memory)."""
    return AssetResult(asset_id, evaluate_errors=[error_row("evaluate", asset_id, kind, message, source=source,
                                                            attempt=attempt)])


def clips_for_asset(asset_id: str, data: bytes, fmt: str, source: str, limits, resample_config) -> AssetResult:
    """Evaluate one asset and cut its clips; every failure becomes an error row, never an exception."""
    import pyarrow as pa

    from schemas.sample import clip_to_row
    from schemas.tables import CLIPS
    from stages.evaluate import AssetError
    from stages.formats import load_scene_bytes
    from stages.resample import clips_from_scene

    result = AssetResult(asset_id)
    start = time.perf_counter()
    try:
        scene = load_scene_bytes(data, fmt, name=f"{asset_id}.{fmt}", limits=limits)
    except AssetError as exc:
        result.evaluate_errors.append(error_row("evaluate", asset_id, exc.kind, str(exc), source=source))
    except Exception as exc:  # noqa: BLE001 - an evaluator bug on one asset is that asset's failure, not the job's
        result.evaluate_errors.append(error_row("evaluate", asset_id, type(exc).__name__,
                                                f"{source}: unexpected {type(exc).__name__}: {exc}", source=source))
    else:
        result.stats = AssetStats(len(scene.animations), int(scene.num_vertices), int(len(scene.faces)))
        try:
            clips, errors = clips_from_scene(scene, asset_id, resample_config)
        except Exception as exc:  # noqa: BLE001 - likewise for the resampler
            clips, errors = [], [error_row("resample", asset_id, getattr(exc, "kind", type(exc).__name__),
                                           f"{source}: {type(exc).__name__}: {exc}", source=source)]
        result.resample_errors = [dict(row, source=row.get("source") or source) for row in errors]
        rows = [clip_to_row(c) for c in sorted(clips, key=lambda c: c.clip_id)]
        result.clips = pa.Table.from_pylist(rows, schema=CLIPS)
    result.stage_seconds = time.perf_counter() - start
    return result


def clips_of_table(table) -> list:
    """Clip objects from a `clips` table (the arrays are views on the table's buffers)."""
    from schemas.sample import clip_from_row

    return [clip_from_row(row) for row in table.to_pylist()]


def captions_for_unit(captioner, clips_table, assets: dict[str, dict]) -> CaptionResult:
    """Caption one unit's clips; a crash of the captioner fails every clip of the unit with one row each."""
    start = time.perf_counter()
    clips = clips_of_table(clips_table)
    try:
        rows, errors = captioner(clips, assets)
    except Exception as exc:  # noqa: BLE001 - a model failure must not lose the unit's accounting
        rows = []
        errors = [error_row("caption", c.clip_id, type(exc).__name__, f"captioner failed on this unit: {exc}",
                            source=c.asset_id) for c in clips]
    return CaptionResult(rows, errors, time.perf_counter() - start)
