"""`dymesh inspect ASSET [--json]`: meshes, skins, morph targets, animations and warnings of a glTF/GLB asset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="describe a glTF/GLB asset: meshes, skins, morph targets, animations, warnings",
        description="Load ASSET safely and print what the evaluator sees in its default scene.",
    )
    parser.add_argument("asset", type=Path, help=".glb, or .gltf with its side files in its folder")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import UserError
    from stages.evaluate import AssetError
    from stages.formats import load_scene

    if not args.asset.is_file():
        raise UserError(f"{args.asset}: no such file; give a .glb or .gltf path")
    try:
        summary = load_scene(args.asset).summary()
    except AssetError as exc:
        print(f"dymesh inspect: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
    return 0


def format_summary(s: dict) -> str:
    """Human-readable lines of a Scene.summary()."""
    lines = [
        f"{s['file']}: scene {s['scene']}, {s['nodes']} nodes, {s['meshes']} meshes, "
        f"{len(s['primitives'])} primitives, {s['vertices']} vertices, {s['faces']} faces",
    ]
    for p in s["primitives"]:
        extra = (f", skin {p['skin']}" if p["skin"] is not None else "") + (
            f", {p['morph_targets']} morph targets" if p["morph_targets"] else "")
        lines.append(f"  node {p['node']} mesh {p['mesh']}.{p['primitive']} {p['mode']}: "
                     f"{p['vertices']} vertices, {p['faces']} faces{extra}")
    for skin in s["skins"]:
        lines.append(f"  skin {skin['index']}: {skin['joints']} joints")
    if s["morph_targets"]:
        lines.append(f"  morph targets: {s['morph_targets']}")
    lines.append(f"  animations: {len(s['animations'])}")
    for a in s["animations"]:
        lines.append(f"    [{a['index']}] {a['name']}: {a['duration']:.3f} s, {a['channels']} channels, "
                     f"{'/'.join(a['interpolations']) or '-'}")
    lines.extend(f"  warning: {w}" for w in s["warnings"])
    return "\n".join(lines)
