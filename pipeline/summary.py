"""A job folder's summary: per-stage counts (merged completion markers) and where each output lives."""

from __future__ import annotations

from pipeline.accounting import merge
from pipeline.config import STAGES
from pipeline.manifest import Manifest
from schemas.job_record import StageHashes


def job_summary(manifest: Manifest, hashes: StageHashes, harvest_counts: list[dict | None]) -> dict:
    """{"stages": {stage: merged counts}, "paths": {output: folder relative to OUT}}."""
    stages = {"harvest": merge([c for c in harvest_counts if c])}
    for stage in STAGES[1:]:
        stages[stage] = merge(list(manifest.markers(stage, hashes.of(stage)).values()))
    return {
        "stages": stages,
        "paths": {
            "assets": f"assets/{hashes.evaluate}", "clips": f"clips/{hashes.resample}",
            "captions": f"captions/{hashes.caption}", "shards": f"shards/{hashes.shard}", "errors": "errors",
        },
    }
