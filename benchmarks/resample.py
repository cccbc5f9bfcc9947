"""Resample benchmark: `dymesh resample` against a cold Blender import+evaluate of the same file, side by side,
and the yield of each short-animation policy. Prints three tables.

    python benchmarks/resample.py [--vertices 2048] [--frames 16] [--repeats 3] [--blender-python PATH]
                                  [--gltfpack PATH] [--quick] [--cost-only | --skip-cost]

Cost: per asset, the wall time of one whole `dymesh resample ASSET --vertices N --frames T --out DIR` process
(Python start, imports, load, evaluate, resample, write) against one whole `python benchmarks/blender_eval.py
ASSET` process in the Blender venv (Python start, import bpy, glTF import, every frame of every animation
evaluated at 10 fps): wall and CPU (user + system) time, each the median of --repeats runs, run alternately (the
tree's bytecode is compiled first, as an install does). Ratio = Blender / dymesh; target: geometric mean of the
wall ratios >= 1 (resampling costs no more than Blender's import). Without the Blender venv (`make
bench-baseline`, or DYMESH_BLENDER_PYTHON) the Blender columns are empty.

Assets: the shared animated assets; bigger ones built from them (tests/resample_assets.py: crowds of 9-100 copies,
a 1280-tile mosaic) and generated at high detail; gltfpack-quantised copies of some when gltfpack runs (the npm
package: `npm install gltfpack`, then --gltfpack node_modules/.bin/gltfpack).

Yield (in-process): clips and rejection rows per reason at N, T for each short policy; and the CPU time per step
of the default configuration.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from process_time import compile_bytecode, timed_run  # noqa: E402
from resample_assets import crowd_glb, mosaic_glb  # noqa: E402

from stages.evaluate import load_asset  # noqa: E402
from stages.generate import generate_asset  # noqa: E402
from stages.resample import Funnel, ResampleConfig, StepClock, clips_from_scene  # noqa: E402

ASSETS = REPO.parent / "shared" / "assets"
SHARED = ["SimpleSkin/SimpleSkin.gltf", "RiggedSimple.glb", "RiggedFigure.glb", "CesiumMan.glb", "Fox.glb",
          "RecursiveSkeletons.glb", "RobotExpressive.glb", "SimpleMorph/SimpleMorph.gltf", "AnimatedMorphCube.glb",
          "AnimatedMorphSphere.glb", "MorphStressTest.glb", "AnimatedTriangle/AnimatedTriangle.gltf",
          "AnimatedCube/AnimatedCube.gltf", "BoxAnimated.glb", "CesiumMilkTruck.glb", "InterpolationTest.glb"]
PACKED = ["CesiumMan.glb", "Fox.glb", "RobotExpressive.glb", "RecursiveSkeletons.glb", "MorphStressTest.glb",
          "CesiumMilkTruck.glb"]
CROWDS = [("Fox.glb", 12, 150.0), ("CesiumMan.glb", 9, 1.5), ("RobotExpressive.glb", 3, 6.0),
          ("AnimatedMorphSphere.glb", 12, 2.5), ("CesiumMilkTruck.glb", 16, 7.0), ("BoxAnimated.glb", 100, 4.0),
          ("RecursiveSkeletons.glb", 4, 30.0)]
POLICIES = [["skip"], ["loop"], ["retime"], ["hold"], ["loop", "retime"], ["loop", "hold"]]
STEPS = ["evaluate", "weld", "decimate", "subdivide", "transfer", "quality", "filters"]


def build_assets(folder: Path, gltfpack: str | None, quick: bool) -> list[Path]:
    """The benchmark's asset set, written into `folder` where built."""
    paths = [ASSETS / name for name in SHARED if (ASSETS / name).exists()]
    if quick:
        return paths[:6]
    for name, copies, spacing in CROWDS:
        if (ASSETS / name).exists():
            target = folder / f"{Path(name).stem}-x{copies}.glb"
            target.write_bytes(crowd_glb((ASSETS / name).read_bytes(), copies, spacing))
            paths.append(target)
    (folder / "mosaic-1280.glb").write_bytes(mosaic_glb(3, 1, 0.08))
    paths.append(folder / "mosaic-1280.glb")
    for kind, detail in (("creature", 40.0), ("blob", 8.0), ("machine", 40.0)):
        paths.append(generate_asset(kind, 7, folder / f"{kind}-d{detail:g}.glb", detail=detail))
    if gltfpack:
        for name in PACKED:
            target = folder / f"{Path(name).stem}-gltfpack.glb"
            result = subprocess.run([gltfpack, "-i", str(ASSETS / name), "-o", str(target)], capture_output=True)
            if result.returncode == 0 and target.exists():
                paths.append(target)
            else:
                print(f"(gltfpack failed on {name}: {result.stderr.decode()[-200:]})")
    return paths


def timed(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall s, CPU s, error text or '') of one whole process."""
    result, wall, cpu = timed_run(command, env=env)
    return wall, cpu, "" if result.returncode == 0 else (result.stderr or result.stdout).strip()[-200:]


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def cost(paths: list[Path], args, blender: Path | None, folder: Path) -> None:
    print(f"\n## Resample: whole process vs Blender: `dymesh resample --vertices {args.vertices} --frames "
          f"{args.frames}` vs a cold Blender import+evaluate (median of {args.repeats}, run alternately)\n")
    print("| asset | vertices | Blender wall s | dymesh wall s | x wall | Blender CPU s | dymesh CPU s | x CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    compile_bytecode()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    dymesh = [sys.executable, "-m", "pipeline.cli"]
    walls, cpus = [], []
    for path in paths:
        ours, ours_cpu, theirs, theirs_cpu, problem = [], [], [], [], ""
        for _ in range(args.repeats):
            if blender:
                wall, cpu, error = timed([str(blender), str(REPO / "benchmarks" / "blender_eval.py"), "--fps", "10",
                                          "--max-frames", "100000", str(path)])
                theirs.append(wall)
                theirs_cpu.append(cpu)
                problem = problem or error
            wall, cpu, error = timed(dymesh + ["resample", str(path), "--vertices", str(args.vertices), "--frames",
                                               str(args.frames), "--out", str(folder / "out")], env)
            ours.append(wall)
            ours_cpu.append(cpu)
            problem = problem or error
        mine, mine_cpu = statistics.median(ours), statistics.median(ours_cpu)
        other = statistics.median(theirs) if theirs else float("nan")
        other_cpu = statistics.median(theirs_cpu) if theirs else float("nan")
        if theirs:
            walls.append(other / mine)
            cpus.append(other_cpu / mine_cpu)
        vertices = load_asset(path).num_vertices
        note = f" ({problem})" if problem else ""
        print(f"| {path.name}{note} | {vertices} | {other:.2f} | {mine:.2f} | {other / mine:.2f} | {other_cpu:.2f} | "
              f"{mine_cpu:.2f} | {other_cpu / mine_cpu:.2f} |", flush=True)
    if walls:
        wall, cpu = geometric_mean(walls), geometric_mean(cpus)
        print(f"| geometric mean, {len(walls)} assets | | | | **{wall:.2f}x** | | | **{cpu:.2f}x** |")
        verdict = "met" if wall >= 1 else "NOT met"
        print(f"\ngeometric mean Blender / dymesh over {len(walls)} assets: {wall:.2f}x wall, {cpu:.2f}x CPU "
              f"(target >= 1x wall: {verdict})")
    else:
        print("\n(no Blender baseline: run `make bench-baseline`, or pass --blender-python)")


def yields(paths: list[Path], args) -> None:
    print(f"\n## yield per short policy at N={args.vertices}, T={args.frames} (clips; rejection rows by reason)\n")
    print("| policy | assets with a clip | windows | clips | rejected |")
    print("|---|---|---|---|---|")
    scenes = [(path, load_asset(path)) for path in paths]
    for policy in POLICIES:
        total, with_clip = Funnel(), 0
        for path, scene in scenes:
            funnel = Funnel()
            config = ResampleConfig(vertices=args.vertices, frames=[args.frames], short=policy)
            clips, _ = clips_from_scene(scene, path.stem, config, funnel=funnel)
            with_clip += bool(clips)
            total += funnel
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(total.rejected.items())) or "-"
        print(f"| {'+'.join(policy)} | {with_clip}/{len(scenes)} | {total.windows} | {total.clips} | {rejected} |",
              flush=True)


def steps(paths: list[Path], args) -> None:
    print(f"\n## in-process CPU ms per step, default config (N={args.vertices}, T={args.frames})\n")
    print("| asset | clips | " + " | ".join(STEPS) + " | total |")
    print("|---|---|" + "---|" * (len(STEPS) + 1))
    for path in paths:
        clock = StepClock()
        start = time.process_time()
        with clock.step("evaluate"):
            scene = load_asset(path)
        clips, errors = clips_from_scene(scene, path.stem,
                                         ResampleConfig(vertices=args.vertices, frames=[args.frames]), clock)
        total = time.process_time() - start
        kinds = Counter(e["error_type"] for e in errors)
        label = f"{len(clips)}" + (f" ({', '.join(f'{k} {v}' for k, v in kinds.items())})" if kinds else "")
        cells = [f"{clock.cpu_seconds.get(s, 0.0) * 1000:.0f}" for s in STEPS]
        print(f"| {path.name} | {label} | " + " | ".join(cells) + f" | {total * 1000:.0f} |", flush=True)


def blender_python(given: str | None) -> Path | None:
    given = given or os.environ.get("DYMESH_BLENDER_PYTHON")
    candidates = [Path(given)] if given else [REPO / ".venv-blender" / "bin" / "python"]
    for python in candidates:
        if python.exists() and subprocess.run([str(python), "-c", "import bpy"], capture_output=True).returncode == 0:
            return python
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=2048)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--blender-python", help="python of a venv with bpy (default .venv-blender/bin/python)")
    parser.add_argument("--gltfpack", default=shutil.which("gltfpack"), help="gltfpack executable (npm package)")
    parser.add_argument("--quick", action="store_true", help="six small shared assets only")
    parser.add_argument("--skip-cost", action="store_true", help="only the in-process tables")
    parser.add_argument("--cost-only", action="store_true", help="only the whole-process cost table")
    args = parser.parse_args()
    blender = blender_python(args.blender_python)
    print(f"Blender baseline: {blender or 'not found'}; gltfpack: {args.gltfpack or 'not found (no quantised assets)'}")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        paths = build_assets(folder, args.gltfpack, args.quick)
        if not args.skip_cost:
            cost(paths, args, blender, folder)
        if not args.cost_only:
            yields(paths, args)
            steps(paths, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
