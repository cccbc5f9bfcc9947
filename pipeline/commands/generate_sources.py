"""`dymesh generate-sources --out DIR`: the inputs of jobs/mixed-sources.yaml (every source kind, all synthetic)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate-sources",
        help="write synthetic inputs of every source kind (glTF, DT4D, AMASS + body model, FBX)",
        description="Write the inputs jobs/mixed-sources.yaml names into OUT: generated GLBs (gltf/), "
                    "DeformingThings4D .anime files (dt4d/), AMASS-layout motions (amass/) with a synthetic "
                    "SMPL-H-layout body model (body_models/; not the licensed SMPL-H), and FBX copies of generated "
                    "creatures (fbx/, made by Blender: needs the blender extra). The same --seed gives the same files.",
    )
    parser.add_argument("--out", type=Path, default=Path("mixed-inputs"), help="output folder (default mixed-inputs)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--no-fbx", action="store_true", help="skip the FBX files (no Blender needed)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import UserError
    from stages.formats.blender import ENABLE, blender_python
    from stages.generate.sources import write_mixed_inputs

    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"{args.out} exists and is not a folder; give a folder for --out")
    if not args.no_fbx and blender_python() is None:
        raise UserError(f"the FBX inputs are made by Blender, which is not installed: {ENABLE}; or pass --no-fbx")
    start = time.perf_counter()
    try:
        written = write_mixed_inputs(args.out, args.seed, fbx=not args.no_fbx)
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    counts = ", ".join(f"{len(paths)} {kind}" for kind, paths in written.items())
    print(f"wrote {counts} to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0
