"""What a rerun tries again, and what it keeps: failed items are retried item by item, finished work is read back.

A committed unit whose marker counts transient failures (schemas.failures; every failure with --retry-failed) is
reopened: its retried items run again, every other item's result is read back from the unit's committed partitions
(or from another hash's partitions of the same evaluate+resample config, when new harvested inputs re-cut the
units), so the outputs equal a clean run's once the transient cause is gone. Rows of a retried item that fails again
count the earlier tries in `attempt`.

Markers chain what each unit was made from: evaluate's "outputs" digest (the evaluated assets) is resample's
"inputs", resample's "outputs" (its clips) caption's "inputs", and the shard marker's "inputs" digests every unit's
outputs; a unit whose inputs changed since it was committed is redone (markers without these keys are trusted).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.manifest import Manifest, read_table
from pipeline.supersede import SUPERSEDED
from schemas.failures import row_is_transient


def digest(value) -> str:
    """Short sha256 of a JSON-able value (marker fields)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RetryPolicy:
    """Which failed items a run tries again: transient failures always, every failure with `retry_failed`."""

    retry_failed: bool = False

    def retries(self, row: dict) -> bool:
        return row["status"] == "failed" and (self.retry_failed or row_is_transient(row))

    def reopens(self, marker: dict | None) -> bool:
        """A committed unit with items to try again."""
        if not marker:
            return False
        return marker.get("transient", 0) > 0 or (self.retry_failed and marker.get("failed", 0) > 0)

    def split(self, rows: list[dict], owner=lambda row: row["unit_id"]) -> tuple[dict[str, list[dict]], dict[str, int]]:
        """Error rows grouped by the item `owner(row)` names: ({item: its rows} of items kept as they are,
        {item: tries so far} of items to try again)."""
        grouped: dict[str, list[dict]] = {}
        for row in rows:
            grouped.setdefault(owner(row), []).append(row)
        retried = {item: max(r["attempt"] for r in group) for item, group in grouped.items()
                   if any(self.retries(r) for r in group)}
        return {item: group for item, group in grouped.items() if item not in retried}, retried


def carry_attempts(rows: list[dict], earlier: dict[str, int], owner=lambda row: row["unit_id"]) -> list[dict]:
    """Failed rows of items tried before count those tries too. Skipped rows stay as a clean run writes them: a
    retried item that now passes may still have parts a filter leaves out (windows of an asset, say)."""
    return [dict(row, attempt=row["attempt"] + earlier[owner(row)])
            if row["status"] == "failed" and owner(row) in earlier else row for row in rows]


def consistent(marker: dict | None, upstream: dict | None) -> bool:
    """A committed unit was made from what its upstream unit holds now."""
    if marker is None or upstream is None:
        return False
    inputs, outputs = marker.get("inputs"), upstream.get("outputs")
    return inputs is None or outputs is None or inputs == outputs


def asset_of(row: dict) -> str:
    """The asset an evaluate or resample error row is about (clip and window ids start with `<asset id>_`)."""
    return row["unit_id"].partition("_")[0]


# ---- harvest -------------------------------------------------------------------------------------------------------
def previous_harvest(manifest: Manifest, provenance: Path, stage_hash: str, policy: RetryPolicy):
    """What a committed source keeps on a rerun: ({uri: (provenance rows, error rows)} of inputs not retried,
    {uri: tries so far} of inputs to fetch again). `provenance`: the source's partition (the plan's path)."""
    rows = read_table(provenance).to_pylist()
    kept_errors, retried = policy.split(read_table(manifest.errors("harvest", stage_hash, "source")).to_pylist())
    previous = {row["uri"]: ([row], []) for row in rows}
    for uri, errors in kept_errors.items():
        previous[uri] = (previous.get(uri, ([], []))[0], errors)
    return previous, retried


# ---- evaluate + resample ---------------------------------------------------------------------------------------------
@dataclass
class CommittedUnit:
    """The partitions of one committed evaluate+resample unit, read back."""

    stats: dict[str, dict]  # asset id -> its assets row
    evaluate_errors: dict[str, list[dict]]
    resample_errors: dict[str, list[dict]]
    clips: object  # pyarrow Table (CLIPS)
    arrays: object  # pyarrow Table (CLIP_ARRAYS), row for row with `clips`
    funnel: dict[str, dict]  # asset id -> its funnel row


def by_asset(rows: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(asset_of(row), []).append(row)
    return grouped


def read_unit(manifest: Manifest, evaluate_hash: str, resample_hash: str, unit: str) -> CommittedUnit:
    assets = read_table(manifest.partition("assets", evaluate_hash, unit)).to_pylist()
    return CommittedUnit(
        {row["asset_id"]: row for row in assets},
        by_asset(read_table(manifest.errors("evaluate", evaluate_hash, unit)).to_pylist()),
        by_asset(read_table(manifest.errors("resample", resample_hash, unit)).to_pylist()),
        read_table(manifest.partition("clips", resample_hash, unit)),
        read_table(manifest.partition("clip_arrays", resample_hash, unit)),
        {row["asset_id"]: row for row in read_table(manifest.partition("funnel", resample_hash, unit)).to_pylist()})


@dataclass
class KeptAssets:
    """Asset results read back from committed partitions, and the tries so far of the assets to run again."""

    results: dict = field(default_factory=dict)  # asset id -> pipeline.tasks.AssetResult
    earlier: dict[str, int] = field(default_factory=dict)  # asset id -> attempts so far


def committed_units(manifest: Manifest, evaluate_hash: str, resample_hash: str) -> list[str]:
    """Units of one evaluate hash whose resample unit was made from them (both committed)."""
    evaluate = manifest.markers("evaluate", evaluate_hash)
    resample = manifest.markers("resample", resample_hash)
    return [u for u, marker in evaluate.items() if consistent(resample.get(u), marker)]


def keep_assets(manifest: Manifest, plan, job, units: list[str], policy: RetryPolicy, config_key: str) -> KeptAssets:
    """Results of the assets of `units` that committed partitions hold with nothing to retry: first this run's own
    partitions, then those of other evaluate hashes made with the same evaluate+resample config."""
    from pipeline.config import config_hash
    from pipeline.plan import stage_config

    missing = {a for u in units for a in plan.units[u]}  # assets not yet found (kept, or known to be retried)
    kept = KeptAssets()
    committed = set(committed_units(manifest, plan.hashes.evaluate, plan.hashes.resample))
    sources = [(manifest, plan.hashes.evaluate, plan.hashes.resample, [u for u in units if u in committed])]
    # other hashes: in the job folder, or set aside under OUT/superseded/ with the same layout
    for root in [manifest] + [Manifest(manifest.out / SUPERSEDED)] * (manifest.out / SUPERSEDED).is_dir():
        for folder in sorted((root.out / "markers" / "evaluate").glob("*")):
            if folder.name == plan.hashes.evaluate or not folder.is_dir():
                continue
            markers = root.markers("evaluate", folder.name)
            if markers and next(iter(markers.values())).get("config") == config_key:
                resample_hash = config_hash("resample", stage_config(job, "resample"), folder.name)
                sources.append((root, folder.name, resample_hash, committed_units(root, folder.name, resample_hash)))
    for root, evaluate_hash, resample_hash, found in sources:
        for unit in found:
            if not missing:
                return kept
            ids = read_table(root.partition("assets", evaluate_hash, unit), columns=["asset_id"])
            if missing.intersection(ids.column("asset_id").to_pylist()):
                take(read_unit(root, evaluate_hash, resample_hash, unit), missing, plan, policy, kept)
    return kept


def take(unit: CommittedUnit, missing: set[str], plan, policy: RetryPolicy, kept: KeptAssets) -> None:
    """Move the missing assets of one committed unit into `kept`: their results, or their tries so far when they
    are retried (found either way: removed from `missing`)."""
    from pipeline.tasks import AssetResult, AssetStats

    for asset_id, row in unit.stats.items():
        if asset_id not in missing:
            continue
        rows = unit.evaluate_errors.get(asset_id, []) + unit.resample_errors.get(asset_id, [])
        retried = [r["attempt"] for r in rows if policy.retries(r)]
        if retried:
            kept.earlier[asset_id] = max(retried)
            missing.discard(asset_id)
            continue
        if any(r["source"] != plan.assets[asset_id].source_text() for r in rows):
            continue  # its provenance changed since: the messages would differ, so it runs again
        evaluate_errors = unit.evaluate_errors.get(asset_id, [])
        result = AssetResult(asset_id, AssetStats(*(row[name] for name in (
            "animation_count", "evaluated_vertices", "evaluated_faces"))), evaluate_errors,
            unit.resample_errors.get(asset_id, []))
        if not evaluate_errors:
            import pyarrow.compute as pc

            mine = pc.equal(unit.clips.column("asset_id"), asset_id)  # clip_arrays is row for row with clips
            result.clips, result.arrays = unit.clips.filter(mine), unit.arrays.filter(mine)
            result.funnel = unit.funnel.get(asset_id)
        kept.results[asset_id] = result
        missing.discard(asset_id)


# ---- captions --------------------------------------------------------------------------------------------------------
@dataclass
class KeptCaptions:
    """A committed caption unit read back: the rows and error rows of clips not retried, and the retried clips'
    tries so far."""

    rows: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    earlier: dict[str, int] = field(default_factory=dict)

    @property
    def clips(self) -> set[str]:
        """Clips that need no new caption."""
        return {r["clip_id"] for r in self.rows} | {r["unit_id"] for r in self.errors}

    def only(self, clip_ids: list[str]) -> KeptCaptions:
        """What is kept for the clips the unit holds now."""
        wanted = set(clip_ids)
        return KeptCaptions([r for r in self.rows if r["clip_id"] in wanted],
                            [r for r in self.errors if r["unit_id"] in wanted], self.earlier)


def keep_captions(manifest: Manifest, caption_hash: str, unit: str, policy: RetryPolicy) -> KeptCaptions:
    """What a committed caption unit keeps on a rerun (nothing when it is not committed)."""
    if not manifest.is_done("caption", caption_hash, unit):
        return KeptCaptions()
    kept_errors, earlier = policy.split(read_table(manifest.errors("caption", caption_hash, unit)).to_pylist())
    rows = [r for r in read_table(manifest.partition("captions", caption_hash, unit)).to_pylist()
            if r["clip_id"] not in earlier]
    return KeptCaptions(rows, [r for group in kept_errors.values() for r in group], earlier)
