"""A job folder's summary: per-stage counts (merged completion markers), where each output lives, the most frequent
error messages, and the verdict of a run (what makes it a failure: a whole source failed, or no clips)."""

from __future__ import annotations

from pipeline.accounting import merge
from pipeline.config import STAGES
from pipeline.manifest import Manifest
from schemas.job_record import StageHashes


def job_summary(manifest: Manifest, hashes: StageHashes, harvest_counts: list[dict | None]) -> dict:
    """{"stages": {stage: merged counts}, "sources": [harvest counts of each source], "top_errors": [[rows, stage,
    error type, message]] (the most frequent failures), "paths": {output: folder relative to OUT}}."""
    stages = {"harvest": merge([c for c in harvest_counts if c])}
    for stage in STAGES[1:]:
        stages[stage] = merge(list(manifest.markers(stage, hashes.of(stage)).values()))
    return {
        "stages": stages,
        "sources": [dict(c or {}) for c in harvest_counts],
        "top_errors": [list(t) for t in top_errors(stages)],
        "paths": {
            "assets": f"assets/{hashes.evaluate}", "clips": f"clips/{hashes.resample}",
            "captions": f"captions/{hashes.caption}", "shards": f"shards/{hashes.shard}",
            "webdataset": f"webdataset/{hashes.shard}", "errors": "errors",
        },
    }


def top_errors(stages: dict, limit: int = 5) -> list[tuple]:
    """The most frequent failure messages over every stage: [(rows, stage, error type, message)]."""
    found = [(n, stage, kind, message) for stage, counts in stages.items() for n, kind, message in
             counts.get("messages", [])]
    return sorted(found, key=lambda t: (-t[0], t[1], t[2], t[3]))[:limit]


def source_text(source) -> str:
    """A source as the user wrote it, for messages."""
    where = getattr(source, "paths", None) or getattr(source, "path", None) or getattr(source, "uri", None)
    if isinstance(where, list):
        where = ", ".join(map(str, where[:3])) + (" ..." if len(where) > 3 else "")
    return f"{source.kind}{' ' + str(where) if where else ''}"


def failures(summary: dict, sources: list) -> list[str]:
    """Why a finished run is a failure (exit code 1): each source that gave nothing, and a job with no clips."""
    problems = []
    for index, (source, counts) in enumerate(zip(sources, summary.get("sources", []))):
        if counts.get("ok", 0) > 0:
            continue
        what = f"source {index} ({source_text(source)})"
        if not counts.get("seen"):
            problems.append(f"{what} gave no inputs (no files it reads were found, or none passed its filters)")
            continue
        top = counts.get("messages") or []
        cause = f": {top[0][2][:300]} ({top[0][1]})" if top else ""
        retry = " (transient: re-run to retry)" if counts.get("transient") else ""
        problems.append(f"{what} failed: none of its {counts['seen']} input(s) could be harvested{cause}{retry}")
    if not problems and summary["stages"]["resample"].get("clips", 0) == 0:
        evaluate = summary["stages"]["evaluate"]
        problems.append(f"the job produced no clips ({evaluate['ok']} of {evaluate['seen']} assets evaluated; "
                        "see the most frequent errors above, or dymesh stats OUT)")
    return problems
