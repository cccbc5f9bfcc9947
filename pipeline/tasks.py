"""The work of one asset and of one unit's captions, as plain functions (no Ray): the executor ships them to workers.

`clips_for_asset` is the one worker function of evaluate + resample: bytes -> Scene -> clips, so full-resolution
trajectories never leave the process that computed them; only N-vertex clips come back.
"""

from __future__ import annotations

import time
from collections import Counter
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
    """One asset through evaluate + resample: its counts, clips (CLIPS and CLIP_ARRAYS tables, None if not
    evaluated), its `funnel` row and its error rows."""

    asset_id: str
    stats: AssetStats = field(default_factory=AssetStats)
    evaluate_errors: list[dict] = field(default_factory=list)
    resample_errors: list[dict] = field(default_factory=list)
    clips: Any = None  # pyarrow.Table of schemas.tables.CLIPS
    arrays: Any = None  # pyarrow.Table of schemas.tables.CLIP_ARRAYS, row for row with `clips`
    funnel: dict | None = None  # schemas.tables.FUNNEL row (None if not evaluated)
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


def funnel_row(asset_id: str, windows_cut: int, clips_kept: int, rejected: dict[str, int]) -> dict:
    """The asset's schemas.tables.FUNNEL row (windows_cut -1: resampling failed before counting its windows)."""
    return {"asset_id": asset_id, "windows_cut": windows_cut, "clips_kept": clips_kept,
            "rejections": [{"reason": reason, "count": n} for reason, n in sorted(rejected.items())]}


def clips_for_asset(asset_id: str, data: bytes, fmt: str, source: str, limits, resample_config,
                    split_config=None) -> AssetResult:
    """Evaluate one asset, cut its clips and give them the asset's split; every failure becomes an error row,
    never an exception."""
    from stages.evaluate import AssetError
    from stages.formats import load_scene_bytes
    from stages.resample import Funnel, clips_from_scene
    from stages.splits import assign_split

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
        funnel: Funnel | None = Funnel()
        try:
            clips, errors = clips_from_scene(scene, asset_id, resample_config, funnel=funnel)
        except Exception as exc:  # noqa: BLE001 - likewise for the resampler
            clips, funnel = [], None
            errors = [error_row("resample", asset_id, getattr(exc, "kind", type(exc).__name__),
                                f"{source}: {type(exc).__name__}: {exc}", source=source)]
        result.resample_errors = [dict(row, source=row.get("source") or source) for row in errors]
        clips = sorted(clips, key=lambda c: c.clip_id)
        for clip in clips:
            clip.split = assign_split(asset_id, split_config)
        result.clips, result.arrays = clip_tables(clips)
        rejected = funnel.rejected if funnel else Counter(row["error_type"] for row in errors)
        result.funnel = funnel_row(asset_id, funnel.windows if funnel else -1, len(clips), rejected)
    result.stage_seconds = time.perf_counter() - start
    return result


def clip_tables(clips: list) -> tuple[Any, Any]:
    """The `clips` and `clip_arrays` tables of some Clip objects (row for row, in the given order)."""
    import pyarrow as pa

    from schemas.sample import clip_rows
    from schemas.tables import CLIP_ARRAYS, CLIPS

    rows = [clip_rows(c) for c in clips]
    return (pa.Table.from_pylist([r for r, _ in rows], schema=CLIPS),
            pa.Table.from_pylist([a for _, a in rows], schema=CLIP_ARRAYS))


def readable_clips(clips_table, arrays_table, stage: str) -> tuple[list, list[dict]]:
    """Clip objects from a `clips` table and its `clip_arrays` table (joined on clip_id; the arrays are views on
    its buffers), and one failed `stage` error row per clips row that cannot be read (one bad row is that clip's
    failure, not the unit's)."""
    from schemas.sample import clip_from_rows

    arrays = {row["clip_id"]: row for row in arrays_table.to_pylist()}
    clips, unreadable = [], []
    for row in clips_table.to_pylist():
        try:
            clips.append(clip_from_rows(row, arrays[row["clip_id"]]))
        except Exception as exc:  # noqa: BLE001 - one bad row is that clip's failure
            detail = "it has no clip_arrays row" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
            unreadable.append(error_row(stage, row["clip_id"], "bad-row", f"{row['clip_id']}: clip row cannot be "
                                        f"read: {detail}"[:500], source=row.get("asset_id") or ""))
    return clips, unreadable


def clips_of_tables(clips_table, arrays_table) -> list:
    """Clip objects from a `clips` table and its `clip_arrays` table, row for row; ValueError on a row that cannot
    be read."""
    if clips_table.num_rows != arrays_table.num_rows:
        raise ValueError(f"{clips_table.num_rows} clips rows but {arrays_table.num_rows} clip_arrays rows")
    clips, unreadable = readable_clips(clips_table, arrays_table, "resample")
    if unreadable:
        raise ValueError(unreadable[0]["message"])
    return clips


def storable(result: AssetResult, source: str = "") -> bool:
    """Whether an asset's clip tables fit CLIPS and CLIP_ARRAYS (cast to them in place); tables that do not become
    the asset's error row instead (its clips are dropped and its funnel row counts them as "bad-row")."""
    import pyarrow as pa

    from schemas.tables import CLIP_ARRAYS, CLIPS

    if result.clips is None:
        return False
    kept = result.clips.num_rows
    try:
        clips = result.clips.select(CLIPS.names).cast(CLIPS)
        arrays = result.arrays.select(CLIP_ARRAYS.names).cast(CLIP_ARRAYS)
        if clips.column("clip_id").to_pylist() != arrays.column("clip_id").to_pylist():
            raise ValueError("its clip_arrays rows do not match its clips rows")
    except (pa.ArrowException, AttributeError, KeyError, ValueError, TypeError) as exc:
        result.resample_errors.append(error_row("resample", result.asset_id, "bad-row", f"{result.asset_id}: its "
                                                f"clips cannot be stored: {' '.join(str(exc).split())[:300]}",
                                                source=source))
        result.clips = result.arrays = None
        if result.funnel is not None:
            rejected = Counter({r["reason"]: r["count"] for r in result.funnel["rejections"]})
            rejected["bad-row"] += kept
            result.funnel = funnel_row(result.asset_id, result.funnel["windows_cut"], 0, rejected)
        return False
    result.clips, result.arrays = clips, arrays
    return True


def unit_clip_tables(results: list[AssetResult], sources: dict[str, str] | None = None) -> dict[str, Any]:
    """One unit's `clips`, `clip_arrays` and `funnel` tables from its evaluated assets' results (sorted by id);
    `sources`: asset id -> where it came from (for the error row of clips that cannot be stored)."""
    import pyarrow as pa

    from schemas.tables import CLIP_ARRAYS, CLIPS, FUNNEL

    done = [r for r in results if storable(r, (sources or {}).get(r.asset_id, ""))]
    tables = {}
    for name, schema in (("clips", CLIPS), ("clip_arrays", CLIP_ARRAYS)):
        parts = [getattr(r, "arrays" if name == "clip_arrays" else name) for r in done]
        table = pa.concat_tables(parts).combine_chunks() if parts else schema.empty_table()
        tables[name] = table.sort_by("clip_id")
    rows = sorted((r.funnel for r in results if r.funnel is not None), key=lambda row: row["asset_id"])
    tables["funnel"] = pa.Table.from_pylist(rows, schema=FUNNEL)
    return tables


def captions_for_unit(captioner, clips_table, arrays_table, assets: dict[str, dict]) -> CaptionResult:
    """Caption one unit's clips; a clip row that cannot be read is that clip's error row, and a crash of the
    captioner fails every clip of the unit with one row each."""
    start = time.perf_counter()
    clips, unreadable = readable_clips(clips_table, arrays_table, "caption")
    try:
        rows, errors = captioner(clips, assets) if clips else ([], [])
    except Exception as exc:  # noqa: BLE001 - a model failure must not lose the unit's accounting
        rows = []
        errors = [error_row("caption", c.clip_id, type(exc).__name__, f"captioner failed on this unit: {exc}",
                            source=c.asset_id) for c in clips]
    return CaptionResult(rows, unreadable + errors, time.perf_counter() - start)
