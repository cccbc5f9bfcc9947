"""Nodes: rest TRS / matrix, the parent forest (cycle-checked), default-scene order and batched world matrices.

Spec: glTF 2.0 sections 3.5.2 (scenes), 3.5.3 (node hierarchy), 3.5.3 (transformations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import LimitExceeded, MalformedAsset, UnsupportedAsset
from .gltf_container import Document


@dataclass
class NodeGraph:
    """Every node's parent, rest transform and depth level (parents are always in an earlier level)."""

    parent: np.ndarray  # [N] int64, -1 for roots
    translation: np.ndarray  # [N, 3]
    rotation: np.ndarray  # [N, 4] quaternion x, y, z, w
    scale: np.ndarray  # [N, 3]
    rest_local: np.ndarray  # [N, 4, 4]
    has_matrix: np.ndarray  # [N] bool: transform given as `matrix`
    levels: list[np.ndarray]  # node indices by depth; levels[0] are roots
    rest_world: np.ndarray  # [N, 4, 4] world matrices of the rest pose

    @property
    def count(self) -> int:
        return len(self.parent)


def read_nodes(doc: Document) -> NodeGraph:
    """Parse every node; refuse bad child indices, nodes with two parents and cycles (iteratively)."""
    nodes = doc.array("nodes")
    n = len(nodes)
    if n > doc.limits.max_nodes:
        raise doc.fail(LimitExceeded, f"{n} nodes, over the {doc.limits.max_nodes} cap")
    parent = np.full(n, -1, dtype=np.int64)
    translation = np.zeros((n, 3))
    rotation = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    scale = np.ones((n, 3))
    rest_local = np.tile(np.eye(4), (n, 1, 1))
    has_matrix = np.zeros(n, dtype=bool)
    children: list[list[int]] = []
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        kids = doc.int_list(node, "children", where)
        for c in kids:
            if not 0 <= c < n:
                raise doc.fail(MalformedAsset, f"{where}.children lists node {c} ({n} nodes exist)")
            if c == i:
                raise doc.fail(MalformedAsset, f"{where} lists itself as a child (node hierarchy cycle)")
            if parent[c] >= 0:
                raise doc.fail(MalformedAsset, f"nodes[{c}] has two parents (nodes {parent[c]} and {i})")
            parent[c] = i
        children.append(kids)
        matrix = doc.numbers(node, "matrix", where, 16)
        if matrix is not None:
            has_matrix[i] = True
            rest_local[i] = np.asarray(matrix).reshape(4, 4).T
            translation[i], rotation[i], scale[i] = decompose(rest_local[i])
        else:
            translation[i] = doc.numbers(node, "translation", where, 3) or [0.0, 0.0, 0.0]
            rotation[i] = doc.numbers(node, "rotation", where, 4) or [0.0, 0.0, 0.0, 1.0]
            scale[i] = doc.numbers(node, "scale", where, 3) or [1.0, 1.0, 1.0]
    if n:
        rest_local[~has_matrix] = compose(translation[~has_matrix], rotation[~has_matrix], scale[~has_matrix])
    levels = _levels(doc, parent, children)
    rest_world = rest_local.copy()
    for level in levels[1:]:
        rest_world[level] = np.matmul(rest_world[parent[level]], rest_local[level])
    return NodeGraph(parent, translation, rotation, scale, rest_local, has_matrix, levels, rest_world)


def _levels(doc: Document, parent: np.ndarray, children: list[list[int]]) -> list[np.ndarray]:
    """Breadth-first levels from the roots; a node never reached sits on a cycle."""
    level = [i for i in range(len(parent)) if parent[i] < 0]
    levels, reached = [], 0
    while level:
        levels.append(np.asarray(level, dtype=np.int64))
        reached += len(level)
        level = [c for p in level for c in children[p]]
    if reached != len(parent):
        on_cycle = sorted(set(range(len(parent))) - {int(i) for lv in levels for i in lv})
        raise doc.fail(MalformedAsset, f"node hierarchy cycle through nodes {on_cycle[:8]}")
    return levels


def default_scene_nodes(doc: Document) -> tuple[int, list[int]]:
    """(scene index, nodes of the default scene in depth-first pre-order; children in array order)."""
    scenes = doc.array("scenes")
    if not scenes:
        raise doc.fail(UnsupportedAsset, "the document has no scene to evaluate")
    scene = doc.index(doc.gltf, "scene", "scenes", "document", required=False) or 0
    nodes = doc.array("nodes")
    roots = doc.int_list(scenes[scene], "nodes", f"scenes[{scene}]")
    for r in roots:
        if not 0 <= r < len(nodes):
            raise doc.fail(MalformedAsset, f"scenes[{scene}].nodes lists node {r} ({len(nodes)} nodes exist)")
    order, seen = [], set()
    stack = list(reversed(roots))
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        order.append(i)
        stack.extend(reversed(nodes[i].get("children", [])))
    return scene, order


def compose(t: np.ndarray, q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """[..., 4, 4] matrices T * R * S from translations [..., 3], quaternions xyzw [..., 4], scales [..., 3]."""
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.zeros(t.shape[:-1] + (4, 4))
    m[..., 0, 0] = (1 - 2 * (y * y + z * z)) * s[..., 0]
    m[..., 1, 0] = (2 * (x * y + z * w)) * s[..., 0]
    m[..., 2, 0] = (2 * (x * z - y * w)) * s[..., 0]
    m[..., 0, 1] = (2 * (x * y - z * w)) * s[..., 1]
    m[..., 1, 1] = (1 - 2 * (x * x + z * z)) * s[..., 1]
    m[..., 2, 1] = (2 * (y * z + x * w)) * s[..., 1]
    m[..., 0, 2] = (2 * (x * z + y * w)) * s[..., 2]
    m[..., 1, 2] = (2 * (y * z - x * w)) * s[..., 2]
    m[..., 2, 2] = (1 - 2 * (x * x + y * y)) * s[..., 2]
    m[..., :3, 3] = t
    m[..., 3, 3] = 1.0
    return m


def decompose(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Translation, quaternion (xyzw) and scale of one affine 4x4 matrix (as three.js Matrix4.decompose)."""
    sx, sy, sz = np.linalg.norm(m[:3, :3], axis=0)
    if np.linalg.det(m[:3, :3]) < 0:
        sx = -sx
    r = m[:3, :3] / np.where(np.array([sx, sy, sz]) == 0, 1.0, [sx, sy, sz])
    return m[:3, 3].copy(), _quaternion_from_rotation(r), np.array([sx, sy, sz])


def _quaternion_from_rotation(r: np.ndarray) -> np.ndarray:
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = 0.5 / np.sqrt(trace + 1.0)
        q = [(r[2, 1] - r[1, 2]) * s, (r[0, 2] - r[2, 0]) * s, (r[1, 0] - r[0, 1]) * s, 0.25 / s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s]
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = [(r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = [(r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s, (r[1, 0] - r[0, 1]) / s]
    return np.asarray(q)


def dynamic_levels(graph: NodeGraph, nodes: np.ndarray) -> list[np.ndarray]:
    """Per depth level, the nodes whose world matrix changes when `nodes` move: they and their descendants."""
    dynamic = np.zeros(graph.count, dtype=bool)
    dynamic[nodes] = True
    levels = []
    for depth, level in enumerate(graph.levels):
        if depth:
            dynamic[level] |= dynamic[graph.parent[level]]
        levels.append(level[dynamic[level]])
    return levels


def world_matrices(graph: NodeGraph, nodes: np.ndarray, local: np.ndarray,
                   levels: list[np.ndarray] | None = None) -> np.ndarray:
    """World matrices [T, N, 4, 4] (or [1, N, 4, 4] when nothing moves) from the local matrices [T, m, 4, 4] of
    the moving `nodes` [m]; only their dynamic_levels (given, or computed here) are recomposed, level by level."""
    if not len(nodes):
        return graph.rest_world[None]
    levels = dynamic_levels(graph, nodes) if levels is None else levels
    all_local = np.empty((local.shape[0],) + graph.rest_local.shape)
    all_local[:] = graph.rest_local
    all_local[:, nodes] = local
    world = np.empty_like(all_local)
    world[:] = graph.rest_world
    for depth, level in enumerate(levels):
        if len(level):
            own = np.take(all_local, level, axis=1)
            world[:, level] = np.matmul(np.take(world, graph.parent[level], axis=1), own) if depth else own
    return world
