"""`dymesh gc OUT [--dry-run]`: delete superseded partitions and unused blobs of a job folder."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gc", help="delete superseded partitions and unused blobs of a job folder",
        description="A run with a new config moves the partitions of the old config hashes to OUT/superseded/ (a "
        "later run whose config matches them again moves them back at no cost). gc deletes them, and the "
        "harvested blobs no current provenance row names. --dry-run lists what would go, with sizes.")
    parser.add_argument("out", help="job output folder (the --out of dymesh run)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    parser.set_defaults(func=run)


def megabytes(size: int) -> str:
    return f"{size / 1e6:10.2f} MB"


def run(args: argparse.Namespace) -> int:
    import contextlib
    import sys
    from pathlib import Path

    from pipeline.errors import UserError
    from pipeline.lock import FolderLock

    out = Path(args.out)
    if not (out / "job.json").is_file():
        raise UserError(f"{out} has no job.json: not a dymesh job folder (gc deletes only inside job folders)")
    # deleting holds the job's lock (pipeline.lock): a run moves superseded folders back at plan time
    with contextlib.nullcontext() if args.dry_run else FolderLock(out, "dymesh gc", stream=sys.stderr):
        return collect_garbage(out, args.dry_run)


def collect_garbage(out, dry_run: bool) -> int:
    from pipeline.gc import collect, find_garbage

    garbage = find_garbage(out)
    for relative, size in garbage.folders:
        print(f"{megabytes(size)}  {relative}/")
    if garbage.blobs:
        print(f"{megabytes(sum(s for _, s in garbage.blobs))}  {len(garbage.blobs)} unused blob(s) in {out}/blobs/")
    if garbage.note:
        print(garbage.note)
    verb = "would free" if dry_run else "freed"
    if not dry_run:
        collect(out, garbage)
    print(f"{verb} {garbage.total_bytes / 1e6:.2f} MB in {out}")
    return 0
