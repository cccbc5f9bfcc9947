"""Bigger animated test assets built from real ones, for the resample gates and benchmarks/resample.py:

  crowd_glb   K copies of a real GLB's scene on a grid (skins, morph weights and node animations duplicated per
              copy, meshes and key data shared): many parts and many vertices from real geometry and motion
  mosaic_glb  a closed surface cut into many small tiles with thin gaps (a many-part sculpture), turning and
              breathing (node rotation + a morph target)
"""

from __future__ import annotations

import copy

import numpy as np
import trimesh

from glb import pack_glb, split_glb
from stages.generate.glb import ARRAY_BUFFER, GltfDocument


def crowd_glb(data: bytes, copies: int, spacing: float) -> bytes:
    """`copies` instances of the default scene of GLB `data`, `spacing` apart on a square grid."""
    document, binary = split_glb(data)
    document = copy.deepcopy(document)
    nodes, skins = document.get("nodes", []), document.get("skins", [])
    scene = document["scenes"][document.get("scene", 0)]
    roots = list(scene["nodes"])
    node_count, skin_count = len(nodes), len(skins)
    side = int(np.ceil(np.sqrt(copies)))
    new_nodes, new_skins, new_roots = [], [], []
    for k in range(copies):
        offset = k * node_count
        for node in nodes:
            node = copy.deepcopy(node)
            if "children" in node:
                node["children"] = [c + offset for c in node["children"]]
            if "skin" in node:
                node["skin"] += k * skin_count
            new_nodes.append(node)
        for skin in skins:
            skin = copy.deepcopy(skin)
            skin["joints"] = [j + offset for j in skin["joints"]]
            if "skeleton" in skin:
                skin["skeleton"] += offset
            new_skins.append(skin)
    for k in range(copies):
        new_roots.append(len(new_nodes))
        new_nodes.append({"children": [r + k * node_count for r in roots],
                          "translation": [spacing * (k % side), 0.0, spacing * (k // side)]})
    for animation in document.get("animations", []):
        channels = []
        for k in range(copies):
            for channel in animation["channels"]:
                channel = copy.deepcopy(channel)
                if "node" in channel["target"]:
                    channel["target"]["node"] += k * node_count
                channels.append(channel)
        animation["channels"] = channels
    document["nodes"] = new_nodes
    if skins:
        document["skins"] = new_skins
    scene["nodes"] = new_roots
    return pack_glb(document, binary)


def mosaic_glb(subdivisions: int = 3, tile_levels: int = 1, gap: float = 0.08, duration: float = 1.5) -> bytes:
    """A unit sphere of icosphere(`subdivisions`) faces, each a separate tile subdivided `tile_levels` times and
    shrunk by `gap` toward its centre; the root turns and a morph target makes the sphere breathe."""
    sphere = trimesh.creation.icosphere(subdivisions)
    tile_points, tile_faces = [], []
    for corners in sphere.vertices[sphere.faces]:
        tile = trimesh.Trimesh(corners, [[0, 1, 2]], process=False)
        for _ in range(tile_levels):
            tile = tile.subdivide()
        points = np.asarray(tile.vertices)
        points = points / np.linalg.norm(points, axis=1, keepdims=True)  # on the sphere
        centre = points.mean(axis=0)
        tile_faces.append(np.asarray(tile.faces) + sum(len(p) for p in tile_points))
        tile_points.append(centre + (points - centre) * (1 - gap))
    points = np.concatenate(tile_points).astype(np.float32)
    faces = np.concatenate(tile_faces)
    breathe = (0.15 * np.sin(3 * np.arctan2(points[:, 2], points[:, 0]))[:, None] * points).astype(np.float32)
    doc = GltfDocument("dymesh tests mosaic", extras={})
    normals = points / np.linalg.norm(points, axis=1, keepdims=True)
    primitive = doc.triangles(points, faces, normals)
    primitive["targets"] = [{"POSITION": doc.accessor(breathe, ARRAY_BUFFER, bounds=True)}]
    mesh = doc.add("meshes", {"primitives": [primitive], "weights": [0.0]})
    node = doc.node(mesh=mesh)
    doc.add("scenes", {"nodes": [node]})
    doc.json["scene"] = 0
    times = np.linspace(0, duration, 7).astype(np.float32)
    angles = np.linspace(0, np.pi / 2, len(times))
    rotation = np.stack([np.zeros_like(angles), np.sin(angles / 2), np.zeros_like(angles), np.cos(angles / 2)], 1)
    weights = np.sin(np.linspace(0, np.pi, len(times)))
    key = doc.accessor(times, bounds=True)
    samplers = [{"input": key, "output": doc.accessor(rotation.astype(np.float32)), "interpolation": "LINEAR"},
                {"input": key, "output": doc.accessor(weights.astype(np.float32)), "interpolation": "LINEAR"}]
    doc.add("animations", {"name": "turn", "samplers": samplers,
                           "channels": [{"sampler": 0, "target": {"node": node, "path": "rotation"}},
                                        {"sampler": 1, "target": {"node": node, "path": "weights"}}]})
    return doc.to_glb()
