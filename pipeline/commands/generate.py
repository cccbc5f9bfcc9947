"""`dymesh generate --count N --seed S --out DIR`: procedural animated GLB assets (demo and test data)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write procedural animated GLB assets (creatures, blobs, machines)",
        description="Write COUNT animated glTF 2.0 GLB files into OUT, cycling the kinds creature (skinned), "
                    "blob (morph targets) and machine (rigid node animation), with STEP, LINEAR and CUBICSPLINE "
                    "keys. The same --seed gives byte-identical files. Licence CC0-1.0.",
    )
    parser.add_argument("--count", type=int, default=12, help="number of assets (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole set (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--detail", type=float, default=1.0,
                        help="tessellation factor: vertex counts grow about linearly with it (default 1.0; "
                             "1.0 gives a few hundred to a few thousand vertices per asset)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import UserError
    from stages.generate import generate_assets

    if args.count < 1:
        raise UserError("--count must be at least 1")
    if args.seed < 0:
        raise UserError("--seed must be >= 0")
    if not 0.05 <= args.detail <= 64:
        raise UserError("--detail must be between 0.05 and 64")
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"{args.out} exists and is not a folder; give a folder for --out")
    start = time.perf_counter()
    paths = []
    step = max(1, args.count // 10)
    for index in range(0, args.count, step):
        # Generated in chunks so long runs show progress; names and bytes do not depend on chunking.
        paths += generate_assets(min(step, args.count - index), args.seed, args.out, detail=args.detail,
                                 first=index)
        done, elapsed = len(paths), time.perf_counter() - start
        if args.count >= 50:
            rate = done / max(elapsed, 1e-9)
            print(f"  {done}/{args.count} assets, {rate:.0f}/s, ETA {(args.count - done) / rate:.0f} s",
                  file=sys.stderr)
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} assets ({size / 1e6:.1f} MB) to {args.out} in {time.perf_counter() - start:.2f} s")
    return 0
