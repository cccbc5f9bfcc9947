"""`dymesh evaluate ASSET --fps 10 --max-frames 64 --out DIR`: one DIR/clip<k>.npz per animation.

Start-up is part of the cost of a one-asset command: this module imports nothing heavy until the command runs,
and writes uncompressed .npz by default (deflate took 80-95% of the time on large assets; --compress opts in).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate every animation of a glTF/GLB asset into vertex trajectories",
        description="Evaluate every animation of ASSET at times min(f/fps, duration) and write OUT/clip<k>.npz "
                    "(times [T] float64, vertices [T,V,3] float32 world space, faces [F,3] int32). An asset "
                    "without animations gives clip0 with the rest pose at t=0.",
    )
    parser.add_argument("asset", type=Path, help=".glb, or .gltf with its side files in its folder")
    parser.add_argument("--fps", type=float, default=10.0, help="sampling rate in frames per second (default 10)")
    parser.add_argument("--max-frames", type=int, default=64, help="frames per clip at most (default 64)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--influences", choices=["all", "first4"], default="all",
                        help="skin influences per vertex: all = JOINTS_0/1 + WEIGHTS_0/1 (glTF spec, default); "
                             "first4 = JOINTS_0/WEIGHTS_0 only (three.js, as ../shared/reference)")
    parser.add_argument("--compress", action="store_true",
                        help="deflate the .npz files (np.savez_compressed): ~2-4x smaller, several times slower "
                             "to write (default: uncompressed)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # One thread for BLAS: the evaluator's products are thin (3x3, 4x4 per vertex), and on a busy machine idle
    # BLAS threads spin and cost a one-asset process more CPU than the work (set before numpy's first import).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    collecting = gc.isenabled()
    gc.disable()  # imports allocate much and free nothing: no collections meanwhile (~5% of a small asset's run)
    try:
        import numpy as np

        from pipeline.errors import UserError
        from stages.evaluate import AssetError, Limits, sample_times
        from stages.formats import load_scene
    finally:
        if collecting:
            gc.enable()

    if args.fps <= 0 or args.max_frames < 1:
        raise UserError("--fps must be > 0 and --max-frames >= 1")
    if not args.asset.is_file():
        raise UserError(f"{args.asset}: no such file; give a .glb or .gltf path")
    start = time.perf_counter()
    try:
        scene = load_scene(args.asset, limits=Limits(influences=args.influences))
        clips = [(a.index, a.duration) for a in scene.animations] or [(None, 0.0)]
        results = []
        for index, duration in clips:
            times = sample_times(duration, args.fps, args.max_frames)
            results.append((0 if index is None else index, times, scene.evaluate(index, times)))
    except AssetError as exc:
        print(f"dymesh evaluate: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    frames = 0
    save = np.savez_compressed if args.compress else np.savez
    for k, times, vertices in results:
        save(args.out / f"clip{k}.npz", times=times, vertices=vertices, faces=scene.faces)
        frames += len(times)
    seconds = time.perf_counter() - start
    print(f"{args.asset.name}: {len(results)} clip(s), {frames} frames, {scene.num_vertices} vertices, "
          f"{len(scene.faces)} faces -> {args.out} ({seconds * 1000:.0f} ms)")
    for warning in scene.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
