"""Runs INSIDE Blender's Python (the `bpy` module) in a subprocess: import one file, export it as GLB.

    python -I -B blender_convert.py INPUT OUTPUT MEMORY_BYTES CPU_SECONDS MAX_OUTPUT_BYTES

Standard library and bpy only (it is not imported by DyMesh). Before Blender loads, the process caps its own
address space, CPU time and file sizes, and installs an audit hook that refuses sockets, subprocesses and writes
outside the input's folder. Blender starts from factory settings with script auto-execution off and only the
glTF and FBX add-ons enabled; .blend files open without running their scripts and may not link other files.
The last stdout line is `DYMESH-RESULT <json>`; the exit code is 0 only when OUTPUT was written.
"""

import json
import os
import resource
import sys

BLOCKED_EVENTS = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                  "os.forkpty", "urllib.", "http.", "ftplib.", "smtplib.", "webbrowser.")
KEPT_ADDONS = ("io_scene_gltf2", "io_scene_fbx")


def report(**fields):
    print("DYMESH-RESULT " + json.dumps(fields, sort_keys=True), flush=True)


def limit_self(memory: int, cpu: int, output: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def guard(folder: str) -> None:
    """Refuse network, processes and writes outside `folder` for the rest of this process."""
    root = os.path.realpath(folder) + os.sep

    def hook(event, args):
        if event.startswith(BLOCKED_EVENTS):
            raise RuntimeError(f"blocked in the DyMesh converter: {event}")
        if event == "open" and len(args) > 1 and isinstance(args[0], (str, bytes)):
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            path = os.fsdecode(args[0])
            if writing and not os.path.realpath(path).startswith(root):
                raise PermissionError(f"blocked in the DyMesh converter: writing {path}")  # an OSError: callers cope

    sys.addaudithook(hook)


def start_blender():
    import bpy  # first: it puts Blender's own modules (addon_utils) on sys.path

    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.use_scripts_auto_execute = False
    for module in addon_utils.modules():
        name = module.__name__
        if addon_utils.check(name)[1] and name not in KEPT_ADDONS:
            addon_utils.disable(name, default_set=True)
    return bpy


def import_file(bpy, path: str) -> None:
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".blend":
        bpy.ops.wm.open_mainfile(filepath=path, load_ui=False, use_scripts=False)
        if len(bpy.data.libraries):
            raise ValueError(f"the .blend links {len(bpy.data.libraries)} other file(s); linked files are refused")
        return
    importers = {
        ".fbx": lambda: bpy.ops.import_scene.fbx(filepath=path, anim_offset=0.0),  # FBX time t at frame t*fps
        ".dae": lambda: bpy.ops.wm.collada_import(filepath=path),
        ".abc": lambda: bpy.ops.wm.alembic_import(filepath=path, as_background_job=False),
        ".obj": lambda: bpy.ops.wm.obj_import(filepath=path),
        ".ply": lambda: bpy.ops.wm.ply_import(filepath=path),
        ".stl": lambda: bpy.ops.wm.stl_import(filepath=path),
        ".glb": lambda: bpy.ops.import_scene.gltf(filepath=path),
        ".gltf": lambda: bpy.ops.import_scene.gltf(filepath=path),
    }
    for usd in (".usd", ".usda", ".usdc", ".usdz"):
        importers[usd] = lambda: bpy.ops.wm.usd_import(filepath=path)
    if suffix not in importers:
        raise ValueError(f"no Blender importer for {suffix}")
    result = importers[suffix]()
    if "FINISHED" not in result:
        raise ValueError(f"the {suffix} importer returned {sorted(result)}")


def takes_to_nla(bpy) -> int:
    """FBX: one NLA track per take on every datablock the take animates, so each take exports as ONE glTF
    animation moving all its objects together (the importer names actions "<datablock>|<take>[|<layer>]" and
    assigns only the first take). Returns the number of takes."""
    owners = [o for o in bpy.data.objects] + [k for k in bpy.data.shape_keys] + [m for m in bpy.data.materials]
    owners.sort(key=lambda o: -len(o.name))  # longest name first: "Arm" must not claim "Armature|Take"
    takes = set()
    for action in sorted(bpy.data.actions, key=lambda a: a.name):
        owner = next((o for o in owners if action.name.startswith(o.name + "|")), None)
        if owner is None:
            continue
        take = action.name[len(owner.name) + 1:]
        takes.add(take)
        data = owner.animation_data or owner.animation_data_create()
        track = data.nla_tracks.new()
        track.name = take
        track.strips.new(take, int(action.frame_range[0]), action)
    for owner in owners:
        if owner.animation_data is not None:
            owner.animation_data.action = None
    return len(takes)


def export_glb(bpy, path: str, fbx: bool) -> dict:
    scene = bpy.context.scene
    meshes = [o for o in scene.objects if o.type == "MESH"]
    if not meshes:
        raise ValueError("the file has no mesh objects")
    takes = takes_to_nla(bpy) if fbx else 0
    bpy.ops.export_scene.gltf(filepath=path, export_format="GLB", export_animations=True, export_materials="NONE",
                              export_animation_mode="NLA_TRACKS" if fbx else "ACTIONS",
                              export_cameras=False, export_lights=False, export_extras=False, export_yup=True,
                              export_apply=False, export_skins=True, export_morph=True, export_texcoords=False,
                              export_normals=False, use_visible=False, use_renderable=False, use_selection=False)
    return {"objects": len(scene.objects), "meshes": len(meshes), "actions": len(bpy.data.actions), "takes": takes,
            "armatures": sum(o.type == "ARMATURE" for o in scene.objects), "fps": scene.render.fps}


def main(argv: list[str]) -> int:
    source, target, memory, cpu, output = argv[1], argv[2], int(argv[3]), int(argv[4]), int(argv[5])
    limit_self(memory, cpu, output)
    guard(os.path.dirname(os.path.abspath(target)))
    try:
        bpy = start_blender()
        import_file(bpy, source)
        summary = export_glb(bpy, target, source.lower().endswith(".fbx"))
    except MemoryError:
        report(ok=False, error="memory", message="ran out of its memory cap")
        return 3
    except Exception as exc:  # noqa: BLE001 - every failure is reported as one line to the parent
        report(ok=False, error=type(exc).__name__, message=" ".join(str(exc).split())[:400])
        return 2
    if not os.path.isfile(target):
        report(ok=False, error="no-output", message="Blender's glTF exporter wrote nothing")
        return 2
    report(ok=True, **summary)
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)  # skip Blender's teardown: the output is written and nothing else is worth the time
