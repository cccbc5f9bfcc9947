"""`dymesh resample ASSET --vertices 2048 --frames 16 --out DIR [--preview]`: one asset -> clips on disk."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

from pipeline.cli_options import ConfigDefaultsFormatter, config_option, given_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "resample", formatter_class=ConfigDefaultsFormatter,
        help="cut an asset's animations into clips of exactly N vertices and T frames",
        description="Evaluate ASSET at the target fps, weld, bring every clip to exactly N vertices with one "
        "topology (decimate or subdivide), measure the surface error, filter, and write OUT/<clip_id>.npz "
        "(vertices [T,N,3] float32, faces [F,3] int32), OUT/clips.jsonl (one metadata line per clip), "
        "OUT/errors.jsonl (one line per window not kept) and, with --preview, OUT/<clip_id>.gif.",
    )
    parser.add_argument("asset", type=Path, help=".glb, or .gltf with its side files in its folder")
    resample = "stages.resample.config", "ResampleConfig"
    fields = [
        config_option(parser, "--vertices", (*resample, "vertices"),
                      help="vertices per clip N, or 'native' (default %(default)s)"),
        config_option(parser, "--frames", (*resample, "frames"), type=int, nargs="+",
                      help="window length(s) T (default %(default)s)"),
        config_option(parser, "--fps", (*resample, "fps"), type=float, help="target frame rate (default %(default)s)"),
        config_option(parser, "--stride", (*resample, "stride"), type=int,
                      help="window start step in frames (default: T)"),
        config_option(parser, "--max-clips", (*resample, "max_clips_per_animation"), type=int, metavar="N",
                      help="at most this many clips per animation and T (default: all)"),
        config_option(parser, "--short", (*resample, "short"), nargs="+", choices=["skip", "loop", "retime", "hold"],
                      help="animations shorter than T: policies tried in order (default %(default)s)"),
    ]
    parser.add_argument("--asset-id", default=None, help="clip id prefix (default: the file name's stem)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--preview", action="store_true", help="also write a GIF per clip (fixed camera, 4 views)")
    parser.set_defaults(func=run, config_fields=tuple(action.dest for action in fields))


def run(args: argparse.Namespace) -> int:
    from pipeline.config import build
    from pipeline.errors import UserError
    from schemas.clip_file import write_clip_files
    from stages.evaluate import AssetError
    from stages.formats import load_scene
    from stages.resample import Funnel, ResampleConfig, clips_from_scene

    if not args.asset.is_file():
        raise UserError(f"{args.asset}: no such file; give a .glb or .gltf path")
    options = given_options(args)
    if "vertices" in options:
        options["vertices"] = _vertices(options["vertices"])
    config = build(ResampleConfig, options, "dymesh resample")
    asset_id = args.asset_id or re.sub(r"[^A-Za-z0-9-]+", "-", args.asset.stem).strip("-") or "asset"
    start = time.perf_counter()
    try:
        scene = load_scene(args.asset)
    except AssetError as exc:
        print(f"dymesh resample: error: {exc}", file=sys.stderr)
        return 2
    funnel = Funnel()
    clips, errors = clips_from_scene(scene, asset_id, config, funnel=funnel)
    seconds = time.perf_counter() - start
    if args.preview:
        try:
            from stages.render import write_preview
        except ImportError as exc:
            raise UserError(f"--preview needs stages.render ({exc}); run without --preview") from exc

    write_clip_files(args.out, clips, errors)
    if args.preview:
        for done, clip in enumerate(clips, 1):
            write_preview(clip.vertices, clip.faces, args.out / f"{clip.clip_id}.gif", fps=clip.fps)
            print(f"\rpreview {done}/{len(clips)}", end="", file=sys.stderr, flush=True)
        if clips:
            print(file=sys.stderr)

    kinds = Counter(f"{row['status']}:{row['error_type']}" for row in errors)
    shape = f"T={'/'.join(map(str, config.frames))}, N={config.vertices}"
    print(f"{args.asset.name}: {len(scene.animations)} animation(s) -> {len(clips)} clip(s) ({shape}), "
          f"{len(errors)} not kept, {seconds * 1000:.0f} ms evaluate+resample -> {args.out}")
    for clip in clips:
        print(f"  {clip.clip_id}  {clip.frames}x{clip.num_vertices}  faces {clip.num_faces}  "
              f"{clip.extra['method']}  error {clip.resample_error:.2e}  max move {clip.max_displacement:.3f}")
    print(f"  funnel: {funnel.animations} animation(s) -> {funnel.windows} window(s) -> {funnel.clips} clip(s)")
    for kind, count in sorted(kinds.items()):
        print(f"  {count} {kind}")
    for row in errors:
        print(f"  {row['unit_id']}: {row['error_type']}: {row['message']}")
    return 0


def _vertices(text: str) -> int | str:
    """--vertices: an integer or 'native'."""
    from pipeline.errors import UserError

    if text == "native":
        return text
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--vertices must be an integer or 'native', not {text!r}") from None
