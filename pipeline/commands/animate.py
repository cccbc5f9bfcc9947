"""`dymesh animate MESH.glb "a prompt" --out anim.glb`: text-driven animation of a static mesh."""

from __future__ import annotations

import argparse
import json

from pipeline.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "animate",
        help="animate a mesh from a text prompt with a trained flow checkpoint (writes a morph-target GLB)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("mesh", help="input .glb or .gltf (its rest pose is animated)")
    parser.add_argument("prompt", help='the motion, e.g. "the object spins"')
    parser.add_argument("--out", required=True, help="output .glb (required)")
    parser.add_argument("--checkpoint", default="out/train/dymesh-flow",
                        help="flow checkpoint folder, or a flow run folder (its latest checkpoint)")
    parser.add_argument("--fps", type=float, default=10.0, help="playback rate of the frames")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (same seed, same animation)")
    parser.add_argument("--steps", type=int, help="ODE steps; unset = the checkpoint's sample_steps")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance; unset = the checkpoint's")
    parser.add_argument("--max-vertices", type=int, default=50_000, help="refuse larger meshes")
    parser.set_defaults(func=run)


def run(args) -> int:
    from stages.evaluate import AssetError
    from stages.train.animate import animate_file

    if args.fps <= 0:
        raise UserError("--fps must be positive")
    try:
        summary = animate_file(args.mesh, args.prompt, args.checkpoint, args.out, fps=args.fps, seed=args.seed,
                               steps=args.steps, guidance=args.guidance, max_vertices=args.max_vertices)
    except FileNotFoundError as exc:
        raise UserError(f"{exc}; train one with `dymesh train jobs/train-flow.yaml` or pass --checkpoint") from exc
    except AssetError as exc:
        raise UserError(f"cannot read {args.mesh}: {exc}") from exc
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    print(json.dumps(summary, indent=1))
    return 0
