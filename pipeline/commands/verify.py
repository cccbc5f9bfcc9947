"""`dymesh verify OUT`: re-read every shard of a job's current output against its manifest; one line per bad sample."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="check every shard sample against its manifest digest (exit 1 listing each bad one)",
        description="Re-read every shard of the current output of a job folder (or a shard set: OUT/webdataset/"
        "<hash>, a standalone shard root) and compare each sample's sha256 with the manifest. Prints one line per "
        "bad sample (shard: key: what is wrong) and exits 1; prints a summary and exits 0 when all is intact.")
    parser.add_argument("out", help="job output folder (the --out of dymesh run) or a shard set")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import UserError
    from stages.shard import find_layout, read_manifest, verify_shards

    try:
        layout = find_layout(args.out)
        table = read_manifest(args.out, ["shard"])
        problems = verify_shards(args.out)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    for problem in problems:
        print(problem)
    shards = len(set(table.column("shard").to_pylist()))
    if problems:
        print(f"dymesh verify: {len(problems)} problems in {layout.tars} ({table.num_rows} samples, {shards} shards); "
              f"{rewrite_hint(layout)}")
        return 1
    print(f"dymesh verify: {table.num_rows} samples in {shards} shards intact ({layout.tars})")
    return 0


def rewrite_hint(layout) -> str:
    """What rewrites a damaged shard set: the job's shard marker removed and a rerun, where it is a job's."""
    from pathlib import Path

    tars = Path(layout.tars)
    root, stage_hash = tars.parent.parent, tars.name
    if (root / "job.json").is_file() and (root / "markers" / "shard" / stage_hash).is_dir():
        return f"to rewrite them, remove {root / 'markers' / 'shard' / stage_hash} and rerun the job (dymesh run)"
    return "rewrite them from their sources"
