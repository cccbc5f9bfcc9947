"""Unit tests of the resample steps on small synthetic meshes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from resample_scenes import ArrayScene, sphere, twist, two_parts

from stages.resample import ResampleConfig
from stages.resample.decimate import components, decimate, part_budgets
from stages.resample.fingerprint import content_hash
from stages.resample.funnel import Funnel
from stages.resample.motion import displacement, normalisation, pose_gap
from stages.resample.quality import SurfaceGate
from stages.resample.short import loop_measure, short_window
from stages.resample.subdivide import split_to_count
from stages.resample.surface_transfer import carry, closest_on_surface, closest_on_triangles
from stages.resample.timeline import (
    clip_id,
    frame_count,
    group_windows,
    looped_window,
    regular_windows,
    union_times,
    window_starts,
)
from stages.resample.vertex_count import surface_map
from stages.resample.weld import bbox_diagonal, clean_faces, weld


def animated(points, frames=5):
    return np.stack([twist(np.asarray(points, float), t) for t in np.linspace(0, 1, frames)]).astype(np.float32)


# --- config ---------------------------------------------------------------------------------------------


def test_config_defaults_validate_and_from_dict():
    assert ResampleConfig().validate().vertices == 4096
    config = ResampleConfig.from_dict({"vertices": "native", "frames": 32, "fps": 24})
    assert config.frames == [32] and config.vertices == "native"


@pytest.mark.parametrize(
    "values, field",
    [
        ({"vertices": 2}, "vertices"),
        ({"vertices": "many"}, "vertices"),
        ({"frames": []}, "frames"),
        ({"frames": [16, 16]}, "frames"),
        ({"fps": 0}, "fps"),
        ({"stride": 0}, "stride"),
        ({"max_vertex_error": -1}, "max_vertex_error"),
        ({"join_tolerance": -1}, "join_tolerance"),
        ({"content_quantum": 0}, "content_quantum"),
        ({"short": ["loop", "wrap"]}, "short"),
        ({"short": []}, "short"),
        ({"max_face_error": -0.1}, "max_face_error"),
        ({"quality_samples": 2}, "quality_samples"),
        ({"vertexes": 10}, "unknown option"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(values, field):
    with pytest.raises(ValueError, match=field):
        ResampleConfig.from_dict(values)


# --- timeline -------------------------------------------------------------------------------------------


def test_clip_id_is_zero_padded():
    assert clip_id("abc", 2, 0, 15) == "abc_a2_0000-0015"
    assert clip_id("abc", 0, 16, 31) == "abc_a0_0016-0031"


def test_window_boundaries():
    assert frame_count(1.5, 10) == 16 and frame_count(1.49999999, 10) == 16 and frame_count(1.49, 10) == 15
    assert window_starts(16, 16, None, None) == [0]  # exactly one window fits
    assert window_starts(15, 16, None, None) == []  # one frame short
    assert window_starts(47, 16, None, None) == [0, 16]  # the last partial window is not cut
    assert window_starts(48, 16, None, None) == [0, 16, 32]
    assert window_starts(20, 16, 2, None) == [0, 2, 4]
    assert window_starts(100, 4, 1, 3) == [0, 48, 96]  # evenly spaced pick keeps the first and the last


def test_window_times_are_exact_frame_times():
    windows = regular_windows(3.2, 10.0, 16, None, None)
    assert [(w.first, w.last) for w in windows] == [(0, 15), (16, 31)]
    np.testing.assert_array_equal(windows[1].times, np.arange(16, 32) / 10.0)
    assert windows[1].times[-1] <= 3.2
    loop = looped_window(1.0, 10.0, 16)
    assert loop.looped and loop.short_policy == "loop" and (loop.first, loop.last) == (0, 15)
    np.testing.assert_allclose(loop.times[:3], [0.0, 0.1, 0.2])
    np.testing.assert_allclose(loop.times[10:13], [0.0, 0.1, 0.2], atol=1e-12)


def test_groups_respect_the_byte_budget_and_rows_map_back():
    windows = regular_windows(6.3, 10.0, 16, 8, None)  # overlapping windows
    assert len(group_windows(windows, 1000, 1 << 30)) == 1
    groups = group_windows(windows, 1000, 20 * 1000 * 12)  # ~20 frames per group
    assert len(groups) == len(windows) and all(len(g) == 1 for g in groups)
    times, rows = union_times(windows)
    for window, row in zip(windows, rows):
        np.testing.assert_array_equal(times[row], window.times)


# --- weld -----------------------------------------------------------------------------------------------


def test_weld_merges_seams_and_keeps_original_values():
    points, faces = sphere(2, unmerged=True)
    trajectories = animated(points)
    welded = weld(trajectories, faces, 1e-6 * bbox_diagonal(trajectories[0]))
    reference = trimesh.creation.icosphere(2)
    assert welded.trajectories.shape == (5, len(reference.vertices), 3)
    assert welded.faces.shape == reference.faces.shape
    np.testing.assert_array_equal(welded.trajectories, trajectories[:, welded.source_index])
    mesh = trimesh.Trimesh(welded.trajectories[0], welded.faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent


def test_weld_keeps_vertices_apart_that_separate_later():
    points = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 1, 0]], float)
    faces = np.array([[0, 1, 2], [1, 4, 3]])
    trajectories = np.repeat(points[None], 3, axis=0).astype(np.float32)
    assert weld(trajectories, faces, 1e-6).trajectories.shape[1] == 4  # coincident all along: welded
    trajectories[2, 3] += [0, 0, 0.5]  # vertex 3 leaves vertex 2 in the last frame
    assert weld(trajectories, faces, 1e-6).trajectories.shape[1] == 5


def test_clean_faces_drops_degenerate_duplicate_and_unreferenced():
    faces = np.array([[0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 0, 3], [2, 1, 0], [0, 2, 3]])
    np.testing.assert_array_equal(clean_faces(faces), [[0, 1, 2], [0, 2, 3]])
    trajectories = np.zeros((1, 6, 3), np.float32)
    trajectories[0, :, 0] = np.arange(6)
    welded = weld(trajectories, np.array([[0, 1, 2], [1, 1, 5]]), 0.0)
    assert welded.trajectories.shape[1] == 3 and welded.source_index.tolist() == [0, 1, 2]


# --- surface transfer -----------------------------------------------------------------------------------


def test_closest_point_on_triangle_matches_dense_search():
    rng = np.random.default_rng(3)
    tri = rng.normal(size=(200, 3, 3))
    points = rng.normal(size=(200, 3)) * 2
    bary = closest_on_triangles(points, tri[:, 0], tri[:, 1], tri[:, 2])
    assert (bary >= -1e-12).all() and np.allclose(bary.sum(1), 1)
    found = np.linalg.norm(np.einsum("mk,mkd->md", bary, tri) - points, axis=1)
    u, v = np.meshgrid(np.linspace(0, 1, 121), np.linspace(0, 1, 121))
    grid = np.stack([1 - u - v, u, v], -1).reshape(-1, 3)
    grid = grid[(grid >= 0).all(1)]
    dense = np.linalg.norm(np.einsum("gk,mkd->mgd", grid, tri) - points[:, None], axis=2).min(1)
    assert (found <= dense + 1e-9).all()
    assert np.allclose(found, dense, atol=0.05 * np.abs(tri).max())


def test_surface_transfer_carries_points_on_the_source_surface():
    points, faces = sphere(3)
    trajectories = animated(points)
    rng = np.random.default_rng(0)
    f = rng.integers(0, len(faces), 300)
    w = rng.dirichlet([1, 1, 1], 300)
    on_surface = np.einsum("mk,mkd->md", w, points[faces[f]])
    face_index, bary, distance = closest_on_surface(on_surface, points, faces)
    assert distance.max() < 1e-9
    expected = carry(trajectories, faces, f, w)
    np.testing.assert_allclose(carry(trajectories, faces, face_index, bary), expected, atol=1e-5)


# --- subdivide / decimate -------------------------------------------------------------------------------


def test_split_reaches_exact_count_with_linear_trajectories_and_orientation():
    points, faces = sphere(1)
    trajectories = animated(points)
    mapping = surface_map(trajectories[0], faces, 1000)
    new, new_faces = mapping.apply(trajectories), mapping.faces
    assert mapping.method == "subdivide" and new.shape == (5, 1000, 3) and new_faces.dtype == np.int32
    assert np.array_equal(np.unique(new_faces), np.arange(1000))
    np.testing.assert_array_equal(new[:, : len(points)], trajectories)
    _, parents = split_to_count(trajectories[0], faces, 1000)
    np.testing.assert_allclose(new[:, len(points):len(points) + 10],
                               0.5 * (new[:, parents[:10, 0]] + new[:, parents[:10, 1]]), atol=1e-6)
    mesh = trimesh.Trimesh(new[0], new_faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    area = trimesh.Trimesh(points, faces).area
    assert abs(mesh.area - area) < 1e-4 * area  # splits stay inside the source triangles


def test_part_budgets_follow_area_and_let_the_smallest_parts_vanish():
    budgets = part_budgets(np.array([5000, 12, 3]), np.array([10.0, 0.01, 0.001]), 1000)
    assert budgets.sum() <= 1000 and budgets[0] >= 990 and budgets[2] == 0  # 3 vertices of share: vanishes
    budgets = part_budgets(np.full(100, 10), np.arange(1, 101, dtype=float), 300)
    assert budgets.sum() == 300 and (budgets[budgets > 0] >= 3).all() and budgets[0] == 0 and budgets[-1] >= 7
    assert (np.diff(budgets) >= 0).all()  # more area, more vertices


def test_decimation_lands_on_n_with_every_vertex_on_the_source_surface():
    points, faces = two_parts(big=4)
    trajectories = animated(points)
    mapping = surface_map(trajectories[0], faces, 700)
    new = mapping.apply(trajectories)
    assert mapping.method == "decimate" and new.shape == (5, 700, 3)
    assert np.array_equal(np.unique(mapping.faces), np.arange(700))
    rows = mapping.matrix
    assert np.allclose(rows.sum(axis=1), 1) and (rows.data >= -1e-12).all() and rows.getnnz(axis=1).max() <= 3
    for frame in (0, 4):  # barycentric points of source faces, in every frame
        _, _, distance = closest_on_surface(new[frame], trajectories[frame], faces)
        assert distance.max() < 1e-5
    labels = components(700, mapping.faces)
    assert labels.max() + 1 == 2 and 4 <= (new[0, :, 0] > 2.5).sum() < 100  # the tiny far part survived


def test_whole_mesh_decimation_lets_tiny_parts_vanish_first():
    big = trimesh.creation.icosphere(3)
    dust = [trimesh.creation.icosphere(1, radius=0.01).apply_translation([0, 0, 1.02 + 0.001 * i]) for i in range(40)]
    mesh = trimesh.util.concatenate([big, *dust])
    points, new_faces, origins = decimate(mesh.vertices, mesh.faces, 150)
    assert len(points) <= 150 and len(origins) == len(points)
    kept = np.unique(components(len(mesh.vertices), mesh.faces)[origins])
    assert 0 in kept and len(kept) < 41  # the sphere stays; dust specks went first
    np.testing.assert_allclose(np.linalg.norm(points[origins < len(big.vertices)], axis=1), 1, atol=0.05)


def test_surface_gate_bounds_and_exact_refinement():
    points, faces = sphere(4)
    trajectories = animated(points, frames=4)
    mapping = surface_map(trajectories[0], faces, 500)
    gate = SurfaceGate.build(mapping, trajectories[0], faces, 1024, 0)
    resampled = mapping.apply(trajectories)
    loose = {name: np.full(4, np.inf) for name in ("vertex", "face", "coverage")}
    bounds = gate.measure(trajectories, resampled, loose)
    diagonal = bbox_diagonal(trajectories[0])
    assert (bounds["vertex"] == 0).all() and 0 < bounds["face"].max() / diagonal < 0.01
    tight = {name: np.zeros(4) for name in ("vertex", "face", "coverage")}
    exact = gate.measure(trajectories, resampled, tight)  # every sample above 0 gets its exact distance
    for name in ("face", "coverage"):
        assert (exact[name] <= bounds[name] + 1e-12).all() and exact[name].max() > 0
        assert (exact[name] < bounds[name]).any()  # carried bounds are loose once the twist moves the surface


def test_surface_gate_grows_as_the_budget_shrinks():
    points, faces = sphere(3)
    trajectories = animated(points, frames=3)
    limits = {name: np.zeros(3) for name in ("vertex", "face", "coverage")}
    measured = []
    for budget in (300, 60, 12):
        mapping = surface_map(trajectories[0], faces, budget)
        gate = SurfaceGate.build(mapping, trajectories[0], faces, 512, 0)
        measured.append(gate.measure(trajectories, mapping.apply(trajectories), limits))
    for name in ("face", "coverage"):
        assert measured[0][name].max() < measured[1][name].max() < measured[2][name].max()
    assert measured[2]["face"].max() > 0.05  # an icosahedron-ish hull is far from the unit sphere


def test_short_window_policies_and_loop_measure():
    poses = np.stack([np.zeros((4, 3)), np.ones((4, 3)), np.full((4, 3), 0.05)])
    gap, motion = loop_measure(poses)
    assert gap == pytest.approx(np.sqrt(3) * 0.05) and motion == pytest.approx(np.sqrt(3))
    measure = lambda: (gap, motion)  # noqa: E731
    assert short_window(1.0, 16, 10.0, ("loop",), 0.1, measure).short_policy == "loop"
    assert "does not loop" in short_window(1.0, 16, 10.0, ("loop",), 0.01, measure)
    retimed = short_window(1.0, 16, 10.0, ("loop", "retime"), 0.01, measure)
    assert retimed.short_policy == "retime" and retimed.fps == pytest.approx(15.0) and retimed.times[-1] == 1.0
    held = short_window(1.0, 16, 10.0, ("hold",), 0.1, measure)
    assert held.fps is None and held.times[-1] == 1.0 and held.times[10] == 1.0
    assert "zero-length" in short_window(0.0, 16, 10.0, ("retime",), 0.1, measure)


def test_funnel_adds_up():
    funnel = Funnel()
    funnel.count([{"error_type": "static"}, {"error_type": "static"}, {"error_type": "no-animation"}])
    funnel.clips, funnel.windows = 3, funnel.windows + 3
    assert funnel.windows == 5 == funnel.clips + funnel.window_rejections()
    total = Funnel()
    total += funnel
    total += funnel
    assert total.to_dict()["rejected"] == {"no-animation": 2, "static": 4} and total.windows == 10


# --- quality / motion / hash ----------------------------------------------------------------------------


def test_motion_statistics():
    points, _ = sphere(1)
    center, scale = normalisation(points + 5)
    np.testing.assert_allclose(center, (5, 5, 5), atol=1e-9)
    assert abs(scale - 1) < 1e-9
    trajectories = np.stack([points, points + [0.1, 0, 0]]).astype(np.float32)
    max_move, mean_move = displacement(trajectories)
    diagonal = bbox_diagonal(points)
    assert abs(max_move - 0.1 / diagonal) < 1e-6 and abs(mean_move - 0.05 / diagonal) < 1e-6
    assert pose_gap(points, points) == 0 and pose_gap(points, points * np.nan) == float("inf")


def test_content_hash_ignores_tiny_noise_and_sees_real_change():
    points, faces = sphere(1)
    trajectories = animated(points)
    center, scale = normalisation(trajectories[0])
    base = content_hash(trajectories, faces, center, scale, 1e-3)
    assert content_hash(trajectories.copy(), faces, center, scale, 1e-3) == base
    moved = trajectories.copy()
    moved[2, 0] += 0.1
    assert content_hash(moved, faces, center, scale, 1e-3) != base
