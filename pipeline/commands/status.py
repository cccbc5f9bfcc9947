"""`dymesh status OUT`: per-stage counts, failures by type, and where the outputs of a job folder are."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import STAGES
from pipeline.errors import UserError



def register(subparsers) -> None:
    parser = subparsers.add_parser("status", help="counts per stage, failures by type, output locations",
                                   description="Summarise a job output folder written by `dymesh run`.")
    parser.add_argument("out", help="job output folder (the --out of dymesh run)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def load_summary(out: Path) -> dict:
    """The summary of the job last run into `out`, from job.json and the completion markers."""
    from pipeline.manifest import Manifest
    from pipeline.summary import job_summary
    from schemas.job_record import JobRecordError, parse_job_record

    manifest = Manifest(out)
    if not manifest.job_file().is_file():
        raise UserError(f"{out} has no job.json: not a dymesh job folder (run `dymesh run JOB.yaml --out {out}`)")
    try:
        record = parse_job_record(manifest.job_file().read_bytes(), where=str(manifest.job_file()))
    except JobRecordError as exc:
        raise UserError(str(exc)) from None
    harvest = [manifest.read_marker("harvest", h, "source") for h in record.hashes.harvest]
    summary = job_summary(manifest, record.hashes, harvest)
    summary["units"] = record.units
    summary["assets"] = record.assets
    summary["name"] = record.name
    return summary


def print_summary(out: Path, summary: dict) -> None:
    stages = summary["stages"]
    print(f"{'stage':<10}{'seen':>8}{'ok':>8}{'skipped':>9}{'failed':>8}  output")
    extras = {"resample": "clips", "caption": "captions", "shard": "samples"}
    for stage in STAGES:
        c = stages.get(stage, {})
        note = f"{c.get(extras[stage], 0)} {extras[stage]}" if stage in extras else ""
        if stage == "shard":
            note += f" in {c.get('shards', 0)} shards"
        print(f"{stage:<10}{c.get('seen', 0):>8}{c.get('ok', 0):>8}{c.get('skipped', 0):>9}{c.get('failed', 0):>8}  {note}")
    failures = []
    for stage in STAGES:
        for kind, n in stages.get(stage, {}).get("error_types", {}).items():
            failures.append((n, stage, kind))
    failed = sum(stages.get(s, {}).get("failed", 0) for s in STAGES)
    transient = sum(stages.get(s, {}).get("transient", 0) for s in STAGES)
    if failures:
        print("error rows by type (stage/type: rows):")
        for n, stage, kind in sorted(failures, key=lambda f: (-f[0], f[1], f[2]))[:12]:
            print(f"  {stage}/{kind}: {n}")
    if summary.get("top_errors"):
        print("most frequent failures (rows  stage/type  message):")
        for n, stage, kind, message in summary["top_errors"]:
            print(f"  {n:>5}  {stage}/{kind}  {message[:160]}")
    print(f"{failed} item(s) failed, {sum(stages.get(s, {}).get('skipped', 0) for s in STAGES)} skipped; "
          f"every one is a row in {out}/errors/")
    if transient:
        print(f"transient failures: {transient} (network, time limit, memory, a missing source, ...): re-running "
              "the same command retries them; --retry-failed retries every failure")
    print(f"outputs in {out}/:")
    for name, path in summary["paths"].items():
        print(f"  {name:<9}{out}/{path}")
    print(f"query them: dymesh stats {out}   (a DuckDB view per table: docs/tables.md)")


def run(args) -> int:
    out = Path(args.out)
    summary = load_summary(out)
    if args.json:
        print(json.dumps(summary, indent=1, sort_keys=True))
    else:
        print_summary(out, summary)
    return 0
