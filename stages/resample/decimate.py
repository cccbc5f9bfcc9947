"""Quadric decimation of a reference surface to at most a vertex budget, over the whole mesh at once.

fast_simplification's edge collapses go in the global order of geometric error, so a small part vanishes once
collapsing it costs less than detail elsewhere (the surface gates then measure what that cost). The collapse
history is replayed only as far as the budget needs, so the result lands on the budget unless one collapse
removes several vertices (a vanishing part). Positions are the quadric-optimal ones; `vertex_count` projects
them onto the source surface.

When the collapses stall above the budget (thin closed tubes refuse to collapse further), the library keeps
raising its threshold and wrecks the parts that can still collapse, so the mesh is then decimated part by part
instead: budgets by area, parts too small for a triangle's worth vanish, a part that stalls alone is clustered.
Every output vertex remembers one source vertex it came from (`origins`), so it is projected onto its own part.
"""

from __future__ import annotations

import numpy as np
from stages.resample.weld import clean_faces, drop_unreferenced, lowest_linked

ATTEMPTS = 5  # simplification runs with lower face targets while the result stays above the budget


class DecimationError(ValueError):
    """The surface cannot be brought to the vertex budget with at least one face left."""


def components(vertex_count: int, faces: np.ndarray) -> np.ndarray:
    """Connected-component label of every vertex (labels ordered by lowest vertex index)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    return np.unique(lowest_linked(vertex_count, edges), return_inverse=True)[1].ravel()


def decimate(points: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions [n, 3], faces [f, 3], origins [n]) of the surface decimated to n <= target vertices, every one
    used; origins[i] is a source vertex merged into vertex i (same connected part)."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) <= target:
        return points, np.asarray(faces, dtype=np.int64), np.arange(len(points))
    faces = np.asarray(faces, dtype=np.int64)
    center = 0.5 * (points.min(axis=0) + points.max(axis=0))
    scale = float(np.abs(points - center).max()) or 1.0
    unit = (points - center) / scale  # the library's collapse thresholds are absolute: work in a unit box
    history, reached = _history(unit, faces, target)
    if reached > target:
        new_points, new_faces, origins = _per_part(unit, faces, target, history)
    else:
        prefix = history[:_fewest_collapses(len(points), history, faces, target)]
        new_points, new_faces, origins = _replay(unit, faces, prefix)
    if not len(new_faces):
        raise DecimationError(f"no face is left at {target} vertices")
    return new_points * scale + center, new_faces, origins


def _history(points: np.ndarray, faces: np.ndarray, target: int, attempts: int = ATTEMPTS) -> tuple[np.ndarray, int]:
    """A collapse history reaching `target` live vertices if the library can (lowering its face target while
    the result stays above, up to `attempts` runs), and the live count it reaches."""
    face_target = int(target * len(faces) / len(points) * 0.9)
    history, reached = np.zeros((0, 2), dtype=np.int64), len(points)
    for _ in range(attempts):
        face_target = min(max(face_target, 1), len(faces) - 1)
        if face_target < 1:
            break
        candidate, faces_left = _collapses(points, faces, face_target)
        count = live_count(roots_after(len(points), candidate), faces)
        if count >= reached:
            break  # no progress: the collapses stalled (e.g. thin closed tubes)
        history, reached = candidate, count
        if count <= target or faces_left > face_target:
            break  # reached, or stalled above its own face target: a lower target cannot help
        face_target = int(face_target * target / count * 0.95)
    return history, reached


def _per_part(unit: np.ndarray, faces: np.ndarray, target: int,
              history: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each connected part brought to an area-proportional budget (stall fallback): its own collapses from the
    stalled global `history` (collapses never cross parts, so each part's sequence stands alone), kept only as
    far as its budget, which stops a part before the wreck; a part whose collapses stall above its budget is
    clustered alone."""
    labels = components(len(unit), faces)
    count = labels.max() + 1
    sizes = np.bincount(labels, minlength=count)
    face_label = labels[faces[:, 0]]
    cross = np.cross(unit[faces[:, 1]] - unit[faces[:, 0]], unit[faces[:, 2]] - unit[faces[:, 0]])
    areas = np.bincount(face_label, weights=np.linalg.norm(cross, axis=1), minlength=count)
    budgets = part_budgets(sizes, areas, target)
    needed = np.where(budgets >= 3, sizes - budgets, sizes)  # collapses each part needs (all: it vanishes)
    part = labels[history[:, 1]]
    order = np.argsort(part, kind="stable")
    rank = np.empty(len(part), dtype=np.int64)  # index of each collapse within its part's own sequence
    rank[order] = np.arange(len(part)) - np.repeat(np.cumsum(np.bincount(part, minlength=count)) -
                                                   np.bincount(part, minlength=count), np.bincount(part, minlength=count))
    available = np.bincount(part, minlength=count)
    stalled = (budgets >= 3) & (available < needed)
    kept = history[(rank < needed[part]) & ~stalled[part]]
    keep_faces = ~stalled[face_label] & (budgets[face_label] >= 3)
    pieces = [_replay(unit, faces[keep_faces], kept)] if keep_faces.any() else []
    for k in np.flatnonzero(stalled):
        ids = np.flatnonzero(labels == k)
        part_points, part_faces, origins = cluster_vertices(unit[ids], np.searchsorted(ids, faces[face_label == k]),
                                                            int(budgets[k]))
        pieces.append((part_points, part_faces, ids[origins]))
    if not pieces:
        return unit[:0], faces[:0], np.zeros(0, dtype=np.int64)
    offsets = np.cumsum([0] + [len(p[0]) for p in pieces[:-1]])
    return (np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] + o for p, o in zip(pieces, offsets)]),
            np.concatenate([p[2] for p in pieces]))


def part_budgets(sizes: np.ndarray, areas: np.ndarray, total: int) -> np.ndarray:
    """Vertices per part, proportional to area, at most the part's size, summing to at most `total` (water
    filling); parts whose share is under 3 vertices get 0 (they vanish), the budget goes to the others."""
    share = areas / areas.sum() if areas.sum() > 0 else np.full(len(sizes), 1 / len(sizes))
    budget = np.zeros(len(sizes), dtype=np.int64)
    alive = np.ones(len(sizes), dtype=bool)
    for _ in range(len(sizes)):
        low, high = 0.0, float(total) / max(share[alive].min(), 1e-300)
        for _ in range(60):  # the level where the capped shares of the living parts fill the total
            middle = 0.5 * (low + high)
            filled = np.where(alive, np.minimum(middle * share, sizes), 0).sum()
            low, high = (middle, high) if filled <= total else (low, middle)
        budget = np.where(alive, np.minimum(np.floor(low * share), sizes), 0).astype(np.int64)
        starving = alive & (budget < 3)
        if not starving.any():
            break
        smallest = np.flatnonzero(starving)[np.argmin(areas[starving])]
        alive[smallest] = False  # the smallest starving part vanishes; its share goes to the others
    room = np.flatnonzero(alive & (budget < sizes))  # what flooring left over: largest fractions first
    fraction = low * share[room] - np.floor(low * share[room])
    order = room[np.argsort(-fraction, kind="stable")]
    budget[order[: max(total - int(budget.sum()), 0)]] += 1
    return budget


def roots_after(count: int, collapses: np.ndarray) -> np.ndarray:
    """Survivor of every vertex after the collapses [(survivor, removed), ...] in order (pointer jumping)."""
    parent = np.arange(count)
    if len(collapses):
        parent[collapses[:, 1]] = collapses[:, 0]
    while True:
        jumped = parent[parent]
        if np.array_equal(jumped, parent):
            return parent
        parent = jumped


def live_count(roots: np.ndarray, faces: np.ndarray) -> int:
    """Vertices still used by a non-degenerate face once every vertex is replaced by its root."""
    mapped = roots[faces]
    alive = (mapped[:, 0] != mapped[:, 1]) & (mapped[:, 1] != mapped[:, 2]) & (mapped[:, 0] != mapped[:, 2])
    used = np.zeros(len(roots), dtype=bool)
    used[mapped[alive].ravel()] = True
    return int(used.sum())


def _fewest_collapses(count: int, history: np.ndarray, faces: np.ndarray, target: int) -> int:
    """Shortest prefix of the history leaving at most `target` live vertices (binary search: counts only fall)."""
    low, high = 0, len(history)
    while low < high:
        middle = (low + high) // 2
        if live_count(roots_after(count, history[:middle]), faces) <= target:
            high = middle
        else:
            low = middle + 1
    return low


def _collapses(points: np.ndarray, faces: np.ndarray, face_target: int) -> tuple[np.ndarray, int]:
    """Collapse history [(survivor, removed)] of one fast_simplification run down to `face_target` faces, and
    the faces it left."""
    import fast_simplification

    _, left, history = fast_simplification.simplify(points, faces.astype(np.int32), target_count=face_target,
                                                    return_collapses=True)
    return np.asarray(history, dtype=np.int64).reshape(-1, 2), len(left)


def _replay(points: np.ndarray, faces: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mesh after the collapses (quadric-optimal positions), cleaned, every vertex used, with origins."""
    import fast_simplification

    if not len(history):
        new_points, new_faces, mapping = points, faces, np.arange(len(points))
    else:
        new_points, new_faces, mapping = fast_simplification.replay_simplification(
            points, faces.astype(np.int32), history.astype(np.int32))
    new_points, new_faces, used = drop_unreferenced(np.asarray(new_points, dtype=np.float64)[None],
                                                    clean_faces(np.asarray(new_faces, dtype=np.int64)))
    return new_points[0], new_faces.astype(np.int64), _origins(roots_after(len(points), history), faces,
                                                               np.asarray(mapping), used)


def _origins(roots: np.ndarray, faces: np.ndarray, mapping: np.ndarray, used: np.ndarray) -> np.ndarray:
    """For each kept output vertex (replay output index used[i]), the surviving source vertex it is.

    The replay's mapping also sends the vertices of vanished parts somewhere, so only survivors that a live
    face still uses are trusted."""
    mapped = roots[faces]
    alive = (mapped[:, 0] != mapped[:, 1]) & (mapped[:, 1] != mapped[:, 2]) & (mapped[:, 0] != mapped[:, 2])
    survivors = np.unique(mapped[alive])
    origin = np.full(int(mapping.max()) + 1 if len(mapping) else 0, -1, dtype=np.int64)
    origin[mapping[survivors]] = survivors
    return origin[used]


def cluster_vertices(points: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertex clustering on the finest regular grid giving at most `target` vertices (cluster mean positions),
    with the origin of each (its member nearest the mean)."""
    low, extent = points.min(axis=0), float(np.ptp(points, axis=0).max()) or 1.0
    best = (points[:0], faces[:0], np.zeros(0, dtype=np.int64))
    lo, hi = 1, 2
    while _cluster(points, faces, low, extent, hi)[0].shape[0] <= target and hi < 1 << 20:
        lo, hi = hi, hi * 2
    while lo <= hi:  # largest resolution whose clustered mesh fits
        middle = (lo + hi) // 2
        clustered = _cluster(points, faces, low, extent, middle)
        if len(clustered[0]) <= target:
            if len(clustered[1]):
                best = clustered
            lo = middle + 1
        else:
            hi = middle - 1
    return best


def _cluster(points, faces, low, extent, resolution) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cells = np.minimum((points - low) / extent * resolution, resolution - 1).astype(np.int64)
    _, label = np.unique((cells[:, 0] * resolution + cells[:, 1]) * resolution + cells[:, 2], return_inverse=True)
    label = label.ravel()
    sums = np.zeros((label.max() + 1, 3))
    np.add.at(sums, label, points)
    means = sums / np.bincount(label)[:, None]
    distance = np.linalg.norm(points - means[label], axis=1)
    order = np.lexsort((np.arange(len(points)), distance, label))  # per cluster: the member nearest its mean
    nearest = order[np.searchsorted(label[order], np.arange(label.max() + 1))]
    new_points, new_faces, used = drop_unreferenced(means[None], clean_faces(label[faces]))
    return new_points[0], new_faces.astype(np.int64), nearest[used]
