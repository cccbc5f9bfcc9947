"""`dymesh preview CLIP|ASSET --out x.gif|x.mp4` or `dymesh preview --shards DIR KEY --out x.gif`: look at a clip."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="render a clip (a 2x2 grid of shaded views per frame) to a GIF or MP4",
        description="Render a clip headlessly (EGL via moderngl when it works, else the NumPy rasteriser) as a "
        "grid of fixed views per frame, camera framed on frame 0. CLIP is a .npz written by `dymesh resample` or "
        "`dymesh evaluate` (vertices, faces), or a .glb/.gltf asset (e.g. what `dymesh animate` writes): its "
        "animations are evaluated at --fps, one after another; with --shards DIR, CLIP is a sample key in the "
        "WebDataset shards under DIR.",
    )
    parser.add_argument("clip", help="clip .npz, .glb or .gltf file, or a sample key with --shards")
    parser.add_argument("--shards", default=None, metavar="DIR", help="read CLIP as a sample key from shards in DIR")
    parser.add_argument("--out", type=Path, required=True, help="output .gif or .mp4 (.mp4 needs imageio-ffmpeg)")
    parser.add_argument("--fps", type=float, default=None,
                        help="playback frame rate, and the sampling rate of a glTF asset (default: the clip's, else 10)")
    parser.add_argument("--animation", type=int, default=None, metavar="K",
                        help="glTF assets: only animation K (default: all, one after another)")
    parser.add_argument("--max-frames", type=int, default=64,
                        help="glTF assets: frames per animation at most (default 64)")
    parser.add_argument("--size", type=int, default=512, help="side of each frame in pixels (default 512)")
    parser.add_argument("--views", type=int, default=4, choices=(1, 2, 3, 4), help="views per frame (default 4)")
    parser.add_argument("--renderer", default="auto", choices=("auto", "numpy", "egl"),
                        help="auto: EGL when available, else numpy (default auto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import UserError
    from stages.render import render_clip, renderer_label, write_frames

    if args.out.suffix.lower() not in (".gif", ".mp4"):
        raise UserError(f"--out must end in .gif or .mp4, not {args.out.name!r}")
    if (args.fps is not None and args.fps <= 0) or args.max_frames < 1:
        raise UserError("--fps must be > 0 and --max-frames >= 1")
    vertices, faces, fps = _load(args)
    fps = args.fps or fps or 10.0
    try:
        label = renderer_label(args.renderer)
        start = time.perf_counter()
        frames = render_clip(vertices, faces, size=args.size, views=args.views, renderer=args.renderer)
        seconds = time.perf_counter() - start
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_frames(frames, args.out, fps)
    except (ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from exc
    print(f"{args.out}: {len(frames)} frames {frames.shape[2]}x{frames.shape[1]} at {fps:g} fps, renderer {label}, "
          f"{seconds / len(frames) * 1000:.1f} ms/frame", file=sys.stderr)
    return 0


def _load(args: argparse.Namespace):
    from pipeline.errors import UserError

    if args.shards:
        from stages.shard import CorruptSampleError, read_sample

        try:
            sample = read_sample(args.shards, args.clip)
        except CorruptSampleError as exc:
            raise UserError(str(exc)) from None
        except (KeyError, FileNotFoundError, OSError) as exc:
            raise UserError(f"{exc}; list keys with `dymesh stats` or check --shards") from exc
        meta = sample.get("json") or {}
        return sample["vertices"], sample["faces"], float(meta.get("fps") or 0) or None
    from stages.evaluate import AssetError
    from stages.render.asset_frames import FORMATS, load_frames

    path = Path(args.clip)
    if not path.is_file():
        raise UserError(f"{path}: no such file; give {FORMATS}, or --shards DIR KEY")
    try:
        frames = load_frames(path, fps=args.fps or 10.0, max_frames=args.max_frames, animation=args.animation)
    except (ValueError, AssetError) as exc:
        raise UserError(str(exc)) from exc
    print(f"{path.name}: {frames.description}", file=sys.stderr)
    return frames.vertices, frames.faces, frames.fps
