"""Baseline evaluator run INSIDE Blender's Python (`bpy`), the way Blender-based dataset pipelines do it.

Run with the Blender venv made by `make bench-baseline`, not the project's venv:

    .venv-blender/bin/python benchmarks/blender_eval.py --fps 10 --max-frames 64 [--out DIR] ASSET [ASSET ...]

For each asset: reset to an empty scene, set the scene to `fps`, import with
`bpy.ops.import_scene.gltf`, then for each glTF animation k make its actions active (the importer
stashes animation k in NLA tracks named after it), step `scene.frame_set(f)` for
f = 0 .. T-1 (keys are imported at frame = seconds * fps, so frame f is t = f / fps;
T = min(max_frames, floor(duration * fps + 1e-6) + 1) as in stages.evaluate.sample_times) and read
every mesh object's evaluated vertices (depsgraph `evaluated_get` + `to_mesh`, times the object's
world matrix), converted from Blender's Z-up back to glTF's Y-up. Blender's vertex order and count
differ from the glTF accessor order, so results are point sets per frame.

With --warmup the first asset is evaluated once, unreported, before the timed runs (the warm
process of a long-running worker). Prints one JSON line per asset: timings (import, evaluate, save) and sizes; with --out also writes
DIR/<index>/clip<k>.npz (times, vertices) for the comparison in benchmarks/evaluate.py.
This file must not import project code: the Blender venv does not have it.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import time
from pathlib import Path

import numpy as np

# Blender's importer converts glTF (Y up) to Blender (Z up): (x, y, z) -> (x, -z, y).
BLENDER_TO_GLTF = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


def gltf_json(path: Path) -> dict:
    data = path.read_bytes()
    if data[:4] == b"glTF":
        (length,) = struct.unpack_from("<I", data, 12)
        return json.loads(data[20:20 + length])
    return json.loads(data)


def clip_plan(document: dict, fps: float, max_frames: int) -> list[tuple[int, str, float, int]]:
    """(index, Blender track name, duration, frames) per glTF animation, named as the importer names
    its NLA tracks: the animation name or "Anim_<k>", made unique with .001, .002, ..."""
    plan, used = [], set()
    for k, animation in enumerate(document.get("animations", [])):
        desired = (animation.get("name") or f"Anim_{k}")[:63]
        name, counter = desired, 1
        while name in used:
            name, counter = f"{desired}.{counter:03d}", counter + 1
        used.add(name)
        duration = max(document["accessors"][s["input"]]["max"][0] for s in animation["samplers"])
        frames = min(max_frames, int(math.floor(duration * fps + 1e-6)) + 1)
        plan.append((k, name, float(duration), frames))
    return plan


class KeepRestPose:
    """glTF importer hook: do not activate the first animation on import. Otherwise Blender evaluates it
    at frame 1 right after import and writes those values over the rest pose, so properties a later
    clip does not animate would keep clip 0's pose instead of the rest pose the spec asks for."""

    def gather_import_animations(self, animations, options, gltf) -> None:
        options.restore_first_anim = False


def install_import_hook(bpy) -> None:
    """The importer collects hooks from enabled add-on modules' `glTF2ImportUserExtension`."""
    for name in bpy.context.preferences.addons.keys():
        if name.endswith("io_scene_gltf2"):
            sys.modules[name].glTF2ImportUserExtension = KeepRestPose
            return
    raise RuntimeError("the glTF importer add-on (io_scene_gltf2) is not enabled in this Blender")


def animated_blocks(bpy) -> list:
    """Everything the importer may animate: objects and their shape-key blocks."""
    blocks = []
    for obj in bpy.data.objects:
        blocks.append(obj)
        shape_keys = getattr(obj.data, "shape_keys", None) if obj.data is not None else None
        if shape_keys is not None:
            blocks.append(shape_keys)
    return blocks


def snapshot(bpy) -> list:
    """Rest values of every property an animation can touch, to restore before each clip."""
    state = []
    for obj in bpy.data.objects:
        state.append((obj, "location", tuple(obj.location)))
        state.append((obj, "rotation_quaternion", tuple(obj.rotation_quaternion)))
        state.append((obj, "rotation_euler", tuple(obj.rotation_euler)))
        state.append((obj, "scale", tuple(obj.scale)))
        if obj.pose is not None:
            for bone in obj.pose.bones:
                for prop in ("location", "rotation_quaternion", "rotation_euler", "scale"):
                    state.append((bone, prop, tuple(getattr(bone, prop))))
        shape_keys = getattr(obj.data, "shape_keys", None) if obj.data is not None else None
        if shape_keys is not None:
            for block in shape_keys.key_blocks:
                state.append((block, "value", block.value))
    return state


def use_animation(bpy, track: str | None, rest: list) -> None:
    """Make animation `track` active on every block (None: no animation) and restore rest values."""
    for block in animated_blocks(bpy):
        data = block.animation_data
        if data is None:
            continue
        chosen = None
        for nla_track in data.nla_tracks:
            if nla_track.name == track and nla_track.strips:
                chosen = nla_track.strips[0].action
                break
        data.action = chosen
    for owner, prop, value in rest:
        setattr(owner, prop, value)


def world_vertices(bpy) -> np.ndarray:
    """Evaluated vertices of every mesh object, world space, glTF axes: [V, 3] float32."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    parts = []
    for obj in bpy.context.scene.objects:
        if obj.type != "MESH" or not obj.visible_get():
            continue  # the importer's hidden helpers (the "Icosphere" bone shape) are not asset geometry
        evaluated = obj.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        coords = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", coords)
        matrix = np.array(evaluated.matrix_world, dtype=np.float64)
        evaluated.to_mesh_clear()
        world = coords.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
        parts.append(world @ BLENDER_TO_GLTF.T)
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 3), np.float32)


def evaluate_asset(bpy, path: Path, fps: float, max_frames: int, bone_heuristic: str) -> tuple[dict, list]:
    start = time.perf_counter()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    install_import_hook(bpy)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = int(fps), 1.0 if float(fps).is_integer() else int(fps) / fps
    bpy.ops.import_scene.gltf(filepath=str(path), bone_heuristic=bone_heuristic)
    imported = time.perf_counter()
    plan = clip_plan(gltf_json(path), fps, max_frames)
    rest = snapshot(bpy)
    clips, frames, vertices = [], 0, 0
    for index, track, duration, count in plan:
        use_animation(bpy, track, rest)
        trajectory = []
        for f in range(count):
            scene.frame_set(f)
            trajectory.append(world_vertices(bpy))
        times = np.minimum(np.arange(count) / fps, duration)
        clips.append((index, times, np.stack(trajectory)))
        frames += count
        vertices = trajectory[0].shape[0]
    done = time.perf_counter()
    return ({"asset": str(path), "import_s": imported - start, "evaluate_s": done - imported,
             "total_s": done - start, "clips": len(plan), "frames": frames, "vertices": vertices}, clips)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assets", nargs="+", type=Path)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--max-frames", type=int, default=64)
    parser.add_argument("--out", type=Path, help="write <out>/<i>/clip<k>.npz for asset i")
    parser.add_argument("--bone-heuristic", default="BLENDER", choices=["BLENDER", "TEMPERANCE", "FORTUNE"],
                        help="the importer's bone orientation option (default BLENDER, the importer's default)")
    parser.add_argument("--warmup", action="store_true",
                        help="evaluate the first asset once, unreported, before timing (a warm process)")
    args = parser.parse_args()
    import_start = time.perf_counter()
    import bpy  # noqa: PLC0415 - timed: part of what a fresh Blender process pays

    bpy_import_s = time.perf_counter() - import_start
    if args.warmup:
        try:
            evaluate_asset(bpy, args.assets[0], args.fps, args.max_frames, args.bone_heuristic)
        except Exception:  # reported below when the same asset is evaluated for real
            pass
    for i, path in enumerate(args.assets):
        try:
            record, clips = evaluate_asset(bpy, path, args.fps, args.max_frames, args.bone_heuristic)
        except Exception as exc:  # one bad asset must not stop the baseline run
            print(json.dumps({"asset": str(path), "error": f"{type(exc).__name__}: {exc}"[:300]}), flush=True)
            continue
        save_start = time.perf_counter()
        if args.out is not None:
            folder = args.out / str(i)
            folder.mkdir(parents=True, exist_ok=True)
            for index, times, vertices in clips:
                np.savez(folder / f"clip{index}.npz", times=times, vertices=vertices)
        record["save_s"] = time.perf_counter() - save_start
        record["bpy_import_s"] = bpy_import_s
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
