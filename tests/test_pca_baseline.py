"""The PCA baselines the VAE is judged against: exact on data inside their subspace, worse with fewer components."""

import numpy as np
import pytest

from stages.train.pca_baseline import HeldOutClips, clip_pca_error, mean_vertex_error, vertex_pca_error


def low_rank_clips(count: int, rank: int, seed: int, vertices: int = 12, frames: int = 5) -> HeldOutClips:
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(rank, vertices * frames * 3))
    motion = (rng.normal(size=(count, rank)) @ basis).reshape(count, vertices, frames, 3)
    return HeldOutClips(motion, np.ones((count, vertices), dtype=bool))


def test_mean_vertex_error_ignores_invalid_vertices():
    target = np.zeros((1, 3, 2, 3))
    prediction = target.copy()
    prediction[0, 2] = 5.0  # wrong, but padding
    valid = np.array([[True, True, False]])
    assert mean_vertex_error(prediction, target, valid) == 0.0
    prediction[0, 0, :, 0] = 3.0
    assert mean_vertex_error(prediction, target, valid) == pytest.approx(1.5)


def test_clip_pca_is_exact_inside_its_subspace_and_worse_below_it():
    train, test = low_rank_clips(40, 6, seed=0), low_rank_clips(10, 6, seed=1)
    exact, k = clip_pca_error(train, test, budget=6)
    assert k == 6 and exact < 1e-9
    truncated, k = clip_pca_error(train, test, budget=3)
    assert k == 3 and truncated > 0.1


def test_clip_pca_components_are_capped_by_training_clips():
    train, test = low_rank_clips(5, 8, seed=0), low_rank_clips(4, 8, seed=1)
    _, k = clip_pca_error(train, test, budget=1024)
    assert k == 5


def test_vertex_pca_budget_is_split_over_vertices():
    train, test = low_rank_clips(30, 2, seed=0), low_rank_clips(6, 2, seed=1)
    _, k = vertex_pca_error(train, test, budget=12 * 4)
    assert k == 4
    error_small, _ = vertex_pca_error(train, test, budget=12)
    error_large, _ = vertex_pca_error(train, test, budget=12 * 20)
    assert error_large < error_small
