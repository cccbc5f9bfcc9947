"""FBX copies of glTF assets, made by Blender (the conversion path's test data and benchmark input; needs bpy).

The glTF importer adds display shapes for bones (an "Icosphere" mesh object); they are deleted before the FBX
export so the FBX holds the asset's own meshes only. Each Blender action becomes one FBX take (Blender's
exporter): right for assets animated through one object (an armature), but an animation that moves several
objects (BoxAnimated) comes out split into per-object takes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from stages.formats.blender import blender_python

SCRIPT = """
import sys, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
for source, target in zip(sys.argv[1::2], sys.argv[2::2]):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=source)
    shapes = {b.custom_shape for o in bpy.data.objects if o.type == "ARMATURE" for b in o.pose.bones}
    for shape in shapes - {None}:
        bpy.data.objects.remove(shape, do_unlink=True)
    for action in bpy.data.actions:  # bake from t = 0, so that a take whose first key is later keeps its timeline
        start, end = action.frame_range
        action.use_frame_range = True
        action.frame_start, action.frame_end = min(0.0, start), end
    bpy.ops.export_scene.fbx(filepath=target, bake_anim=True, add_leaf_bones=False)
    print("wrote", target, flush=True)
"""


def gltf_to_fbx(pairs: list[tuple[str | Path, str | Path]], timeout_s: float = 600.0) -> None:
    """Write each (glTF/GLB source, FBX target) with one Blender process; RuntimeError without Blender."""
    python = blender_python()
    if python is None:
        raise RuntimeError("Blender (bpy) is needed to make FBX files: pip install -e '.[blender]' or set "
                           "DYMESH_BLENDER_PYTHON")
    arguments = [str(p) for pair in pairs for p in pair]
    for target in arguments[1::2]:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([python, "-I", "-c", SCRIPT, *arguments], capture_output=True, text=True,
                            timeout=timeout_s)
    missing = [t for t in arguments[1::2] if not Path(t).is_file()]
    if result.returncode != 0 or missing:
        raise RuntimeError(f"Blender could not write {missing or 'the FBX files'}: {result.stdout[-500:]}"
                           f"{result.stderr[-500:]}")
