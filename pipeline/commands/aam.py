"""`dymesh aam import|export`: AnimateAnyMesh's one-pickle-per-clip format to and from DyMesh shards."""

from __future__ import annotations

import argparse

from pipeline.cli_options import ConfigDefaultsFormatter, config_option, given_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "aam",
        help="import or export AnimateAnyMesh .bin clips",
        description="Import AnimateAnyMesh .bin pickles (through a restricted unpickler) into DyMesh shards, "
        "or export DyMesh shards as .bin files their training scripts read.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = actions.add_parser("import", help="shard a folder of .bin files", formatter_class=ConfigDefaultsFormatter)
    imp.add_argument("source", help="folder with *.bin files (searched recursively)")
    imp.add_argument("out", help="shard root to write: OUT/webdataset/ and OUT/shards/ (local path or s3://bucket/prefix)")
    fields = [config_option(imp, "--dtype", ("stages.shard.config", "ShardConfig", "dtype"),
                            help="vertex dtype in shards: float32 or float16 (default: %(default)s)").dest]
    imp.add_argument("--max-file-mb", type=float, default=1024, help="refuse .bin files larger than this (default: 1024)")
    imp.set_defaults(func=run, config_fields=tuple(fields))
    exp = actions.add_parser("export", help="write one .bin per shard sample")
    exp.add_argument("shards", help="job output folder (its current shards), shard root or OUT/webdataset/<hash> "
                     "(local path or s3://)")
    exp.add_argument("out", help="folder for the .bin files")
    exp.add_argument("--split", choices=("train", "val", "test"), help="export one split only (default: all)")
    exp.add_argument("--skip-corrupt", action="store_true",
                     help="leave out samples whose bytes differ from the manifest (listed, exit 1) instead of stopping")
    exp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.config import build
    from pipeline.errors import UserError
    from stages.shard import ShardConfig
    from stages.shard.aam import export_aam, import_aam

    if args.action == "import":
        if not Path(args.source).is_dir():
            raise UserError(f"{args.source} is not a folder; pass the folder holding the .bin files")
        rows, errors, seen = import_aam(args.source, args.out, build(ShardConfig, given_options(args), "dymesh aam import"), int(args.max_file_mb * 1024 * 1024))
        skipped = sum(e["status"] == "skipped" for e in errors)
        for error in errors:
            print(f"{error['status']}: {error['message']}")
        print(f"seen {seen} = ok {len(rows)} + skipped {skipped} + failed {len(errors) - skipped}; shards in {args.out}")
        return 1 if seen and not rows else 0
    from stages.shard import CorruptSampleError

    skipped: list = []
    try:
        count = export_aam(args.shards, args.out, args.split, "skip" if args.skip_corrupt else "raise", skipped)
    except (FileNotFoundError, CorruptSampleError) as exc:
        raise UserError(str(exc)) from None
    for error in skipped:
        print(f"skipped: {error}")
    print(f"wrote {count} .bin files to {args.out}" + (f"; skipped {len(skipped)} corrupt samples" if skipped else ""))
    return 1 if skipped else 0
