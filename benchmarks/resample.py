"""Resample benchmark: clips per second per core (evaluate + resample, split by step) on real and generated
assets, and decimation quality versus time for the decimators compared. Prints two tables.

    python benchmarks/resample.py [--vertices 1024] [--frames 16] [--repeats 3]

One process, one core.
Times are this process's CPU time (what a core costs; wall time on a shared machine also counts waiting), the
median of --repeats runs. Ratios: `x eval` = total evaluate+resample CPU time / evaluate (load + evaluate) alone;
in the decimation table, time and error ratios are against fast_simplification applied per connected part (what
the stage uses).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stages.evaluate import load_asset  # noqa: E402
from stages.generate import ASSET_KINDS, generate_asset  # noqa: E402
from stages.resample import ResampleConfig, StepClock, clips_from_scene  # noqa: E402
from stages.resample.decimate import cluster_vertices, decimate  # noqa: E402
from stages.resample.quality import surface_error  # noqa: E402
from stages.resample.timeline import frame_times  # noqa: E402
from stages.resample.weld import bbox_diagonal, clean_faces, drop_unreferenced, weld  # noqa: E402

ASSETS = REPO.parent / "shared" / "assets"
REAL = ["Fox.glb", "CesiumMan.glb", "AnimatedMorphSphere.glb", "RiggedSimple.glb", "BoxAnimated.glb",
        "RobotExpressive.glb", "MorphStressTest.glb", "RiggedFigure.glb"]
STEPS = ["evaluate", "weld", "decimate", "transfer", "subdivide", "quality", "filters"]


def throughput(paths: list[Path], config: ResampleConfig, repeats: int) -> None:
    print(f"\n## evaluate + resample, N={config.vertices}, T={config.frames}, fps={config.fps:g}: CPU ms per step\n")
    header = ["asset", "V", "welded", "clips", "skipped", "method"] + [f"{s}" for s in STEPS]
    print("| " + " | ".join(header + ["total CPU ms", "wall ms", "clips/s/core", "x eval"]) + " |")
    print("|" + "---|" * (len(header) + 4))
    all_clips, all_cpu = 0, 0.0
    for path in paths:
        runs = []
        for _ in range(repeats):
            clock = StepClock()
            wall, cpu = time.perf_counter(), time.process_time()
            with clock.step("evaluate"):
                scene = load_asset(path)
            clips, errors = clips_from_scene(scene, path.stem, config, clock)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            runs.append((cpu, wall, clock.cpu_seconds, clips, errors, scene))
        total = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        _, _, _, clips, errors, scene = runs[0]
        steps = {s: statistics.median(r[2].get(s, 0.0) for r in runs) for s in STEPS}
        methods = sorted({c.extra["method"] for c in clips}) or ["-"]
        welded = max((c.source_vertices for c in clips), default=0)
        rate = len(clips) / total if total else 0.0
        all_clips += len(clips)
        all_cpu += total
        cells = [path.name, scene.num_vertices, welded, len(clips), len(errors), "+".join(methods)]
        cells += [f"{steps[s] * 1000:.0f}" for s in STEPS]
        ratio = total / max(steps["evaluate"], 1e-9)
        cells += [f"{total * 1000:.0f}", f"{wall * 1000:.0f}", f"{rate:.1f}", f"{ratio:.1f}"]
        print("| " + " | ".join(map(str, cells)) + " |")
    print(f"\nall: {all_clips} clips in {all_cpu:.2f} CPU s = {all_clips / all_cpu:.1f} clips/s/core")


def decimators() -> dict:
    """name -> function(points, faces, target vertices) -> (points, faces)."""
    import fast_simplification
    import trimesh

    def face_target(points, faces, target):
        return max(4, int(target * len(faces) / len(points)))

    def fast_whole(points, faces, target):
        count = face_target(points, faces, target)
        return fast_simplification.simplify(points, faces.astype(np.int32), target_count=count)

    def per_part(points, faces, target):
        parts = decimate(points, faces, target, 8)
        offsets = np.cumsum([0] + [len(p.points) for p in parts])
        return (np.concatenate([p.points for p in parts]),
                np.concatenate([p.faces + o for p, o in zip(parts, offsets)]))

    def trimesh_quadric(points, faces, target):
        mesh = trimesh.Trimesh(points, faces, process=False)
        out = mesh.simplify_quadric_decimation(face_count=face_target(points, faces, target))
        return np.asarray(out.vertices), np.asarray(out.faces)

    def clustering(points, faces, target):
        return cluster_vertices(points, faces, target)

    table = {
        "fast_simplification per part (stage)": per_part,
        "fast_simplification whole mesh": fast_whole,
        "trimesh.simplify_quadric_decimation": trimesh_quadric,
        "vertex clustering (numpy)": clustering,
    }
    try:
        import pyfqmr

        def fqmr(points, faces, target):
            simplifier = pyfqmr.Simplify()
            simplifier.setMesh(points, faces.astype(np.int32))
            simplifier.simplify_mesh(target_count=face_target(points, faces, target), aggressiveness=7, verbose=False)
            p, f, _ = simplifier.getMesh()
            return p, f

        table["pyfqmr"] = fqmr
    except ImportError:
        print("(pyfqmr not installed: pip install pyfqmr==0.5.0 to compare it)")
    return table


def decimation_quality(meshes: list[tuple[str, np.ndarray, np.ndarray, int]], repeats: int) -> None:
    print("\n## decimation of the frame-0 surface: quality vs CPU time (errors / bbox diagonal)\n")
    print("| mesh | V -> N | decimator | ms | vertices | Hausdorff | Chamfer | time ratio | Hausdorff ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, points, faces, target in meshes:
        diagonal = bbox_diagonal(points)
        base = None
        for label, function in decimators().items():
            times = []
            for _ in range(repeats):
                start = time.process_time()
                new_points, new_faces = function(points, faces, target)
                times.append(time.process_time() - start)
            new_faces = clean_faces(np.asarray(new_faces, dtype=np.int64))
            kept, new_faces, _ = drop_unreferenced(np.asarray(new_points, dtype=np.float64)[None], new_faces)
            hausdorff, chamfer = surface_error(kept, new_faces, points[None], faces, 2048, 0)
            seconds, error = statistics.median(times), hausdorff[0] / diagonal
            base = base or (seconds, error)
            print(f"| {name} | {len(points)} -> {target} | {label} | {seconds * 1000:.1f} | {kept.shape[1]} | "
                  f"{error:.4f} | {chamfer[0] / diagonal:.5f} | {seconds / base[0]:.2f} | {error / base[1]:.2f} |")


def frame0_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    scene = load_asset(path)
    animation = scene.animations[0].index if scene.animations else None
    times = frame_times(np.arange(1), 0.0, 10.0)
    trajectories = scene.evaluate(animation, times)
    welded = weld(trajectories, scene.faces, 1e-6 * bbox_diagonal(trajectories[0]))
    return welded.trajectories[0].astype(np.float64), welded.faces


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        generated = [generate_asset(kind, seed, Path(folder) / f"{kind}-{seed}.glb")
                     for seed in range(2) for kind in ASSET_KINDS]
        real = [ASSETS / name for name in REAL if (ASSETS / name).exists()]
        config = ResampleConfig(vertices=args.vertices, frames=[args.frames])
        throughput(real + generated, config, args.repeats)
        meshes = []
        for path, targets in [(ASSETS / "CesiumMan.glb", (1024, 512)), (ASSETS / "RiggedFigure.glb", (128,)),
                              (generated[0], (512,)), (generated[2], (256,))]:
            if path.exists():
                points, faces = frame0_mesh(path)
                meshes += [(path.stem, points, faces, t) for t in targets if t < len(points)]
        import trimesh

        sphere = trimesh.creation.icosphere(5)
        noisy = sphere.vertices * (1 + 0.05 * np.sin(5 * sphere.vertices[:, :1]) * np.cos(3 * sphere.vertices[:, 1:2]))
        meshes.append(("bumpy sphere", np.asarray(noisy), np.asarray(sphere.faces), 2048))
        decimation_quality(meshes, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
