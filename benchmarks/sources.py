"""Benchmark: per-asset cost of the Blender conversion path (.fbx -> Blender subprocess -> GLB -> evaluator) against
the native glTF path (GLB -> evaluator), side by side on the same animations.

    python benchmarks/sources.py [--repeats 3] [--fps 10] [--generated 2]

Assets: the shared glTF samples animated through one armature (CesiumMan, RiggedFigure, RiggedSimple, Fox) and
`--generated` skinned creatures from stages.generate; their FBX copies are made by Blender first (not timed).
Per asset, both paths load the file and evaluate every animation at `--fps` (best of --repeats each: the machine
may be shared). The Blender column is `stages.formats.load_scene_bytes(fbx)`: a fresh, isolated Blender process
per asset (start, import FBX, export GLB) and then the same evaluator; "convert" is that subprocess alone.
Needs Blender (DYMESH_BLENDER_PYTHON or the blender extra; `make bench-baseline` builds .venv-blender).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("DYMESH_SHARED", REPO.parent / "shared")).resolve()
SHARED_ASSETS = ("CesiumMan", "RiggedFigure", "RiggedSimple", "Fox")


def best_of(repeats: int, action) -> tuple[float, object]:
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - start)
    return best, result


def evaluate_all(scene, fps: float) -> int:
    from stages.evaluate import sample_times

    frames = 0
    for animation in scene.animations:
        frames += len(scene.evaluate(animation.index, sample_times(animation.duration, fps, 100_000)))
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--generated", type=int, default=2, help="generated skinned creatures to add")
    args = parser.parse_args()

    from stages.evaluate import load_asset_bytes
    from stages.formats import load_scene_bytes
    from stages.formats.blender import blender_python, convert_to_glb
    from stages.generate import generate_assets
    from stages.generate.fbx import gltf_to_fbx

    if blender_python() is None:
        print("Blender is not installed: make bench-baseline (then DYMESH_BLENDER_PYTHON=.venv-blender/bin/python) "
              "or pip install -e '.[blender]'")
        return 1
    with tempfile.TemporaryDirectory(prefix="dymesh-bench-sources-") as folder:
        glbs = [SHARED / "assets" / f"{name}.glb" for name in SHARED_ASSETS if (SHARED / "assets" / f"{name}.glb").is_file()]
        glbs += generate_assets(3 * args.generated, 0, Path(folder) / "generated")[::3]  # creatures
        pairs = [(glb, Path(folder) / "fbx" / f"{glb.stem}.fbx") for glb in glbs]
        print(f"making {len(pairs)} FBX files with Blender ...", flush=True)
        gltf_to_fbx(pairs)
        rows = []
        for glb, fbx in pairs:
            glb_data, fbx_data = glb.read_bytes(), fbx.read_bytes()
            native_s, frames = best_of(args.repeats, lambda: evaluate_all(load_asset_bytes(glb_data, glb.name), args.fps))
            convert_s, _ = best_of(args.repeats, lambda: convert_to_glb(fbx_data, ".fbx", fbx.name))
            blender_s, blender_frames = best_of(
                args.repeats, lambda: evaluate_all(load_scene_bytes(fbx_data, "fbx", fbx.name), args.fps))
            vertices = load_asset_bytes(glb_data, glb.name).num_vertices
            rows.append((glb.stem, vertices, frames, blender_frames, native_s, convert_s, blender_s))
            print(f"  {glb.stem}: native {native_s * 1000:.1f} ms, Blender path {blender_s:.2f} s", flush=True)
    header = (f"{'asset':26s} {'verts':>6s} {'frames':>6s} {'fbx fr':>6s} {'native s':>9s} {'convert s':>9s} "
              f"{'blender s':>9s} {'ratio':>7s}")
    print("\n" + header + "\n" + "-" * len(header))
    for name, vertices, frames, blender_frames, native_s, convert_s, blender_s in rows:
        print(f"{name[:26]:26s} {vertices:6d} {frames:6d} {blender_frames:6d} {native_s:9.4f} {convert_s:9.3f} "
              f"{blender_s:9.3f} {blender_s / native_s:6.0f}x")
    ratios = [r[6] / r[4] for r in rows]
    mean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    convert = sum(r[5] for r in rows) / len(rows)
    print(f"\ngeometric mean: the Blender conversion path costs {mean:.0f}x the native glTF path per asset; the "
          f"conversion subprocess alone averages {convert:.2f} s (Blender start-up, import, export), evaluation "
          f"is the same on both paths (best of {args.repeats}, {args.fps:g} fps, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
