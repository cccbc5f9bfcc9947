"""The flow evaluation's measures: Fréchet distance, jerk, motion features and captioner-label retrieval."""

from __future__ import annotations

import numpy as np
import pytest

from stages.train.flow_metrics import (
    frechet_distance, label_agreement, mean_jerk, motion_features, motion_label, retrieval_accuracy,
)


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    a = np.random.default_rng(0).normal(size=(200, 5))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 2.0) == pytest.approx(5 * 4.0, rel=1e-6)  # |mean shift|^2, same covariance
    assert frechet_distance(a, 3 * a) > frechet_distance(a, 1.5 * a) > 0.1


def test_jerk_is_zero_for_constant_acceleration_and_not_for_a_shake():
    t = np.arange(16, dtype=np.float64)[:, None, None]
    rest = np.random.default_rng(1).normal(size=(1, 30, 3))
    assert mean_jerk(rest + 0.01 * t**2) == pytest.approx(0.0, abs=1e-9)
    shake = rest + 0.1 * (-1.0) ** t
    assert mean_jerk(shake) == pytest.approx(0.8 * np.sqrt(3), rel=1e-6)  # |3rd difference of ±0.1| = 0.8 per axis


def test_motion_features_see_size_and_axis_of_motion():
    rest = np.random.default_rng(2).normal(size=(1, 40, 3))
    t = np.linspace(0, 1, 16)[:, None, None]
    along_x = rest + t * np.array([1.0, 0.0, 0.0])
    features = motion_features(along_x)
    assert features.shape == (15 + 15 + 2 + 3,)
    np.testing.assert_allclose(features[-3:], [1.0, 0.0, 0.0], atol=1e-9)
    assert features[14] == pytest.approx(1.0)  # RMS displacement at the last frame
    assert motion_features(rest + 2 * (along_x - rest))[14] == pytest.approx(2.0)


def test_motion_label_tells_a_spin_from_a_slide():
    from stages.train.synthetic_motion import uv_sphere

    rest, faces = uv_sphere(8, 12)
    rest = rest * np.array([1.0, 0.3, 0.6], dtype=np.float32)
    angles = np.linspace(0, np.pi, 16)
    spin = np.stack([rest @ np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]).T
                     for a in angles]).astype(np.float32)
    slide = np.stack([rest + np.array([0, 0.1 * k, 0], dtype=np.float32) for k in range(16)])
    spin_label, slide_label = motion_label(spin, faces, 10.0), motion_label(slide, faces, 10.0)
    assert spin_label["kind"] == slide_label["kind"] == "rigid"
    assert spin_label["rotation_axis"] == "vertical" and slide_label["direction"] == "up"
    assert label_agreement(spin_label, spin_label) == 1.0 and label_agreement(spin_label, slide_label) < 1.0


def test_retrieval_finds_own_labels_and_is_at_chance_for_constant_ones():
    labels = [{"kind": k, "pattern": p, "speed": "slow", "direction": "", "rotation_axis": ""}
              for k in ("rigid", "deforming", "pulsing", "scaling") for p in ("periodic", "one-way", "none")]
    assert retrieval_accuracy(labels, labels, distractors=5) == 1.0
    constant = [labels[0]] * len(labels)
    assert retrieval_accuracy(constant, labels, distractors=5) < 0.5
    assert retrieval_accuracy(labels, labels[::-1], distractors=5) < 0.5
