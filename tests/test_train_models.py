"""DyMeshVAE, sparse adjacency, farthest-point sampling and the rectified-flow model on synthetic clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stages.train.adjacency import neighbour_lists
from stages.train.configs import PRESETS, FlowConfig, VAEConfig
from stages.train.flow import FlowModel, LatentScaling, sample_timesteps
from stages.train.fps_sampling import farthest_points
from stages.train.loader import collate_padded
from stages.train.synthetic_motion import synthetic_clip
from stages.train.objectives import random_yaw
from stages.train.vae import DyMeshVAE, blend_affine_motion, local_affine_motion, squared_distances, token_widths

TINY = VAEConfig(frames=8, width=32, heads=4, decoder_head_width=8, encoder_blocks=1, decoder_blocks=1, tokens=8,
                 fourier_frequencies=4, max_neighbours=8)


def test_neighbour_lists_are_the_one_ring_without_padding():
    faces = torch.tensor([[[0, 1, 2], [0, 2, 3], [-1, -1, -1]]])
    valid = torch.tensor([[True, True, True, True, False]])
    index, mask = neighbour_lists(faces, valid, max_neighbours=4)
    rings = [sorted(index[0, v][mask[0, v]].tolist()) for v in range(5)]
    assert rings == [[0, 1, 2, 3], [0, 1, 2], [0, 1, 2, 3], [0, 2, 3], [4]]


def test_neighbour_lists_scale_past_dense_limits():
    n = 60_000  # a dense N x N bool mask would be 3.6 GB
    rng = np.random.default_rng(0)
    faces = torch.from_numpy(rng.integers(0, n, size=(1, 2 * n, 3)))
    index, mask = neighbour_lists(faces, torch.ones(1, n, dtype=torch.bool), max_neighbours=8)
    assert index.shape == (1, n, 9) and mask[..., 0].all()
    assert (mask.sum(-1) > 1).float().mean() > 0.9


def test_farthest_points_respects_the_valid_mask():
    points = torch.randn(2, 50, 3)
    valid = torch.ones(2, 50, dtype=torch.bool)
    valid[1, 5:] = False
    index, token_valid = farthest_points(points, valid, 8)
    assert len(set(index[0].tolist())) == 8
    assert (index[1] < 5).all() and token_valid[1].tolist() == [True] * 5 + [False] * 3


def padded_batch(frames: int, sizes: list[int]) -> dict:
    samples = [synthetic_clip(i, seed=3, frames=frames) for i in range(len(sizes))]
    for sample, size in zip(samples, sizes):  # keep `size` vertices (faces among them)
        sample["vertices"] = sample["vertices"][:, :size]
        sample["faces"] = sample["faces"][(sample["faces"] < size).all(1)]
    return collate_padded(samples)


def test_heavy_padding_gives_finite_loss_and_gradients():
    torch.manual_seed(0)
    model = DyMeshVAE(TINY)
    batch = padded_batch(8, [3, 120, 1])
    extra = torch.zeros(3, 8, 400, 3)  # much more padding, filled with garbage that must not matter
    vertices = torch.cat([batch["vertices"], extra + 1e6], dim=2)
    valid = torch.cat([batch["valid_mask"], torch.zeros(3, 400, dtype=torch.bool)], dim=1)
    out = model(vertices, valid, batch["faces"])
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters outside the loss (DDP would refuse them): {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_padding_does_not_change_valid_outputs():
    torch.manual_seed(0)
    model = DyMeshVAE(TINY).eval()
    alone = padded_batch(8, [60])
    together = padded_batch(8, [60, 130])
    with torch.no_grad():
        a = model(alone["vertices"], alone["valid_mask"], alone["faces"])["prediction"][0]
        vertices = together["vertices"].clone()
        vertices[0, :, 60:] = 123.0  # garbage in the padding
        b = model(vertices, together["valid_mask"], together["faces"])["prediction"][0, :, :60]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_shape_latent_ignores_motion():
    torch.manual_seed(0)
    model = DyMeshVAE(TINY).eval()
    batch = padded_batch(8, [60])
    v0 = batch["vertices"][:, 0]
    with torch.no_grad():
        moving = model.encode(v0, torch.randn(1, 60, 21), batch["valid_mask"], batch["faces"]).z
        still = model.encode(v0, torch.zeros(1, 60, 21), batch["valid_mask"], batch["faces"]).z
    torch.testing.assert_close(moving[..., :32], still[..., :32])
    assert not torch.allclose(moving[..., 32:], still[..., 32:])


@pytest.mark.parametrize("method", ["cosine", "logit-normal", "uniform"])
def test_timesteps_lie_in_the_unit_interval(method):
    t = sample_timesteps(2000, method, torch.Generator().manual_seed(0), "cpu")
    assert (t >= 0).all() and (t <= 1).all() and 0.3 < float(t.mean()) < 0.7


def test_flow_loss_masks_tokens_and_sampler_keeps_shapes():
    torch.manual_seed(0)
    config = FlowConfig(width=32, layers=1, heads=4, sample_steps=4)
    flow = FlowModel(config, latent_channels=64, shape_channels=32, text_width=16)
    z = torch.randn(2, 6, 64)
    token_valid = torch.tensor([[True] * 6, [True, True] + [False] * 4])
    text = (torch.randn(2, 5, 16), torch.tensor([[True] * 5, [True, False, False, False, False]]), torch.randn(2, 16))
    loss = flow.loss(z, token_valid, text)
    loss.backward()
    assert torch.isfinite(loss)
    # garbage in padded tokens does not change the loss (same noise)
    z2 = z.clone()
    z2[1, 2:] = 1e4
    a = flow.loss(z, token_valid, text, generator=torch.Generator().manual_seed(1))
    b = flow.loss(z2, token_valid, text, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    sampled = flow.sample(z[..., :32], token_valid, text, text, generator=torch.Generator().manual_seed(0))
    assert sampled.shape == (2, 6, 32) and torch.isfinite(sampled).all()


def test_latent_scaling_round_trips():
    scaling = LatentScaling(32)
    z = torch.randn(3, 10, 64) * 4 + 2
    valid = torch.ones(3, 10, dtype=torch.bool)
    scaling.set_from_moments(scaling.moments(z, valid))
    scaled = scaling.scale(z)
    assert abs(float(scaled.std()) - 1) < 0.1
    torch.testing.assert_close(scaling.unscale(scaled), z, atol=1e-4, rtol=1e-4)


def test_presets_have_the_published_sizes():
    paper = PRESETS["paper"]
    assert (paper.vae.width, paper.vae.encoder_blocks, paper.vae.decoder_blocks, paper.vae.tokens) == (256, 8, 8, 512)
    assert (paper.flow.width, paper.flow.layers, paper.flow.heads) == (512, 12, 8)
    assert paper.vae.shape_channels == paper.vae.trajectory_channels == 32


@pytest.mark.parametrize("part, published", [("vae", 36.5e6), ("flow", 78e6)])
def test_paper_preset_parameter_counts_match_the_published_models(part, published):
    paper = PRESETS["paper"]
    with torch.device("meta"):  # shapes only: no memory, no time
        model = DyMeshVAE(paper.vae) if part == "vae" else FlowModel(paper.flow, 64, 32, text_width=768)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count / published - 1) < 0.05, f"{part}: {count / 1e6:.1f}M parameters, published {published / 1e6}M"


def test_every_flow_parameter_shapes_the_loss():
    """DDP refuses parameters with no gradient: the last block's text stream must not leave any behind."""
    torch.manual_seed(0)
    flow = FlowModel(FlowConfig(width=32, layers=2, heads=4), latent_channels=64, shape_channels=32, text_width=16)
    for layer in (flow.final_ada[1], flow.final, *(b.ada_latent.proj[1] for b in flow.blocks),
                  *(b.ada_text.proj[1] for b in flow.blocks)):
        torch.nn.init.normal_(layer.weight, std=0.1)  # zero-initialised gates would hide paths from the check
    z, valid = torch.randn(2, 6, 64), torch.ones(2, 6, dtype=torch.bool)
    flow.loss(z, valid, (torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool), torch.randn(2, 16))).backward()
    unused = [name for name, p in flow.named_parameters() if p.grad is None or not p.grad.any()]
    assert not unused, unused


def test_tiny_text_encoder_is_offline_and_deterministic():
    from stages.train.text_encoder import TextEncoder

    a = TextEncoder("tiny-random", 16)
    b = TextEncoder("tiny-random", 16)
    tokens, mask, pooled = a(["the object spins", ""])
    assert tokens.shape == (2, 16, a.width) and mask[1].sum() == 2
    torch.testing.assert_close(pooled, b(["the object spins", ""])[2])


def test_local_affine_motion_recovers_a_rigid_motion():
    torch.manual_seed(0)
    v0 = torch.rand(2, 200, 3) * 2 - 1
    angles = torch.linspace(0.1, 1.0, 4)
    cos, sin, zero, one = angles.cos(), angles.sin(), torch.zeros(4), torch.ones(4)
    rotation = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], -1).view(4, 3, 3)
    moved = torch.einsum("tij,bnj->btni", rotation, v0) + torch.tensor([0.5, 2.0, -1.0])
    motion = (moved - v0[:, None]).permute(0, 2, 1, 3).reshape(2, 200, 12)
    tokens = v0[:, :16]
    width = token_widths(tokens, torch.ones(2, 16, dtype=torch.bool))
    fit = local_affine_motion(v0, motion, torch.ones(2, 200, dtype=torch.bool), tokens,
                              squared_distances(tokens, v0), width)
    assert fit.shape == (2, 16, 4, 4, 3)
    torch.testing.assert_close(fit[..., :3, :], (rotation - torch.eye(3)).expand_as(fit[..., :3, :]),
                               atol=0.03, rtol=0)  # ridge-regularised least squares: a small shrinkage
    token_displacement = moved[:, :, :16].permute(0, 2, 1, 3) - tokens[:, :, None]
    torch.testing.assert_close(fit[..., 3, :], token_displacement, atol=0.01, rtol=0)


def test_vae_is_scale_equivariant_in_motion():
    torch.manual_seed(0)
    model = DyMeshVAE(TINY).eval()
    for head in (model.to_offsets, model.to_token_motion):  # zero-initialised ("no motion"): give them weights
        torch.nn.init.normal_(head.weight, std=0.1)
    batch = padded_batch(8, [60])
    v0, valid, faces = batch["vertices"][:, 0], batch["valid_mask"], batch["faces"]
    motion = torch.randn(1, 60, 21)

    def reconstruct(scale: float) -> torch.Tensor:
        latent = model.encode(v0, scale * motion, valid, faces)
        unit_scale_std = torch.exp(0.5 * latent.logvar) / (scale * motion.pow(2).mean().sqrt())
        assert (unit_scale_std <= 1 + 1e-4).all()  # posterior std never above the prior's
        return model.decode(latent.z, latent.token_valid, v0, latent.token_index)

    with torch.no_grad():
        unit, large = reconstruct(1.0), reconstruct(40.0)
    assert unit.abs().max() > 0.01
    torch.testing.assert_close(large, 40.0 * unit, atol=1e-4, rtol=1e-4)


def test_blended_affine_motion_is_exact_for_one_rigid_motion_whatever_the_weights():
    torch.manual_seed(0)
    v0, tokens = torch.randn(1, 50, 3), torch.randn(1, 6, 3)
    rotation = torch.linalg.qr(torch.randn(3, 3))[0]
    rotation = rotation * torch.linalg.det(rotation)  # a proper rotation
    translation = torch.tensor([0.3, -2.0, 5.0])
    at_token = tokens @ rotation.T + translation - tokens  # each token's own displacement
    token_motion = torch.cat([(rotation - torch.eye(3)).expand(1, 6, 1, 3, 3), at_token[:, :, None, None]], dim=-2)
    weights = torch.rand(1, 50, 6).softmax(-1)
    offsets = blend_affine_motion(weights, token_motion, tokens, v0)
    torch.testing.assert_close(offsets[:, :, 0], v0 @ rotation.T + translation - v0, atol=1e-5, rtol=1e-5)


def test_random_yaw_turns_clips_about_the_up_axis_only():
    torch.manual_seed(0)
    vertices = torch.randn(4, 3, 20, 3)
    turned = random_yaw(vertices)
    torch.testing.assert_close(turned[..., 1], vertices[..., 1])  # heights kept
    torch.testing.assert_close(turned[..., [0, 2]].norm(dim=-1), vertices[..., [0, 2]].norm(dim=-1))
    assert not torch.allclose(turned, vertices)
    angles = torch.atan2(turned[..., 2], turned[..., 0]) - torch.atan2(vertices[..., 2], vertices[..., 0])
    per_clip = torch.remainder(angles, 2 * torch.pi).flatten(1)
    assert torch.allclose(per_clip, per_clip[:, :1].expand_as(per_clip), atol=1e-4)  # one rigid turn per clip


def test_chunked_attention_gives_the_same_latent_and_offsets():
    torch.manual_seed(0)
    model = DyMeshVAE(TINY).eval()
    for head in (model.to_offsets, model.to_token_motion):
        torch.nn.init.normal_(head.weight, std=0.1)
    batch = padded_batch(8, [60, 45])
    v0, valid, faces = batch["vertices"][:, 0], batch["valid_mask"], batch["faces"]
    motion = torch.randn(2, 60, 21)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            latent = model.encode(v0, motion, valid, faces, tokens=20)
            return latent.z, model.decode(latent.z, latent.token_valid, v0, latent.token_index)

    whole_z, whole_offsets = run()
    model.attention_elements = 7 * 60 * TINY.heads  # 7 tokens, then 7 vertices... per chunk
    assert len(model.row_chunks(20, 60)) == 3
    chunked_z, chunked_offsets = run()
    torch.testing.assert_close(chunked_z, whole_z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(chunked_offsets, whole_offsets, atol=1e-5, rtol=1e-5)
