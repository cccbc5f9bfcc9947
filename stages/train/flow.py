"""Rectified flow over DyMeshVAE latents: an MM-DiT (joint attention over latent and text tokens, AdaLN per stream).

As published: one set of attention and MLP weights per block serves both streams; each stream has its own
AdaLN-Zero; the last block uses the text tokens only as keys and values (SD3), so every parameter shapes the loss
(DDP needs no find_unused_parameters).

Convention: x_t = t x + (1 - t) eps, t = 1 is data; the network predicts the velocity x - eps. The 32 shape
channels are always clean (they condition the motion); the loss is MSE on the 32 trajectory channels of valid
tokens. Sampling integrates t: 0 -> 1 with the midpoint rule and classifier-free guidance (empty caption).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stages.train.configs import FlowConfig


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1] (scaled by 1000 as in DiT)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def sample_timesteps(batch: int, method: str, generator: torch.Generator | None, device) -> torch.Tensor:
    """SD3 timestep sampling: "cosine" (CosMap of u ~ U(0,1)), "logit-normal" (sigmoid of N(0,1)), "uniform"."""
    if method == "logit-normal":
        return torch.sigmoid(torch.randn(batch, generator=generator, device=device))
    u = torch.rand(batch, generator=generator, device=device)
    if method == "uniform":
        return u
    if method == "cosine":
        return 1.0 - 1.0 / (torch.tan(math.pi / 2 * u.clamp(max=1 - 1e-6)) + 1.0)
    raise ValueError(f"unknown timestep sampling {method!r}; use cosine, logit-normal or uniform")


class StreamAdaLN(nn.Module):
    """AdaLN-Zero of one stream: shift/scale/gate for attention and MLP (6 x width), or only the attention
    input's shift/scale (2 x width) for a stream that is attention context only."""

    def __init__(self, width: int, parts: int = 6):
        super().__init__()
        self.proj = nn.Sequential(nn.SiLU(), nn.Linear(width, parts * width))
        self.parts = parts
        nn.init.zeros_(self.proj[1].weight)
        nn.init.zeros_(self.proj[1].bias)

    def forward(self, cond: torch.Tensor) -> list[torch.Tensor]:
        return [x[:, None] for x in self.proj(cond).chunk(self.parts, dim=-1)]


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class MMDiTBlock(nn.Module):
    """Joint attention over latent and text tokens with one set of attention and MLP weights for both streams and
    a separate AdaLN-Zero per stream (the published model's block). With `text_output=False` (the last block) the
    text tokens are attention keys and values only: no text AdaLN gates, no text MLP, no text output (SD3)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, text_output: bool = True):
        super().__init__()
        self.heads = heads
        self.text_output = text_output
        self.ada_latent = StreamAdaLN(width)
        self.ada_text = StreamAdaLN(width, 6 if text_output else 2)
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.norm_q = nn.LayerNorm(width // heads, eps=1e-6)
        self.norm_k = nn.LayerNorm(width // heads, eps=1e-6)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))

    def forward(self, x, c, cond, x_valid, c_valid):
        """Latent tokens x [B, M, W], text tokens c [B, L, W] -> (x, c), c None after a context-only block."""
        latent_mod, text_mod = self.ada_latent(cond), self.ada_text(cond)
        h = torch.cat([modulate(self.norm1(x), *latent_mod[:2]), modulate(self.norm1(c), *text_mod[:2])], dim=1)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        b, length, width = q.shape
        q, k, v = (t.view(b, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        split = x.shape[1]
        if not self.text_output:
            q = q[:, :, :split]  # text queries would produce outputs nobody reads
        key_valid = torch.cat([x_valid, c_valid], dim=1)
        joint = F.scaled_dot_product_attention(
            self.norm_q(q), self.norm_k(k), v, attn_mask=key_valid[:, None, None, :]
        )
        joint = self.out(joint.transpose(1, 2).flatten(2))
        outputs = []
        for h, part, mod in ((x, joint[:, :split], latent_mod), (c, joint[:, split:], text_mod)):
            if len(mod) == 2:
                outputs.append(None)
                continue
            _, _, gate1, shift2, scale2, gate2 = mod
            h = h + gate1 * part
            h = h + gate2 * self.mlp(modulate(self.norm2(h), shift2, scale2))
            outputs.append(h)
        return outputs[0], outputs[1]


class FlowModel(nn.Module):
    """MM-DiT velocity model v(x_t, t, text) for latents [B, M, shape + trajectory channels]."""

    def __init__(self, config: FlowConfig, latent_channels: int, shape_channels: int, text_width: int):
        super().__init__()
        if config.width % config.heads:
            raise ValueError("flow width must be a multiple of heads")
        self.config = config
        self.shape_channels = shape_channels
        self.trajectory_channels = latent_channels - shape_channels
        width = config.width
        self.embed_latent = nn.Linear(latent_channels, width)
        self.embed_text = nn.Linear(text_width, width)
        self.embed_time = nn.Sequential(nn.Linear(256, width), nn.SiLU(), nn.Linear(width, width))
        self.embed_pooled = nn.Sequential(nn.Linear(text_width, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(
            MMDiTBlock(width, config.heads, config.mlp_ratio, text_output=i < config.layers - 1)
            for i in range(config.layers)
        )
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final = nn.Linear(width, self.trajectory_channels)
        for layer in (self.final_ada[1], self.final):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x_t, t, token_valid, text_tokens, text_valid, text_pooled):
        """Velocity of the trajectory channels, [B, M, trajectory_channels]."""
        cond = self.embed_time(timestep_embedding(t, 256)) + self.embed_pooled(text_pooled)
        x = self.embed_latent(x_t)
        c = self.embed_text(text_tokens)
        x_valid = token_valid.bool()
        c_valid = text_valid.bool()
        for block in self.blocks:
            x, c = block(x, c, cond, x_valid, c_valid)
        shift, scale = self.final_ada(cond).chunk(2, dim=-1)
        return self.final(modulate(self.final_norm(x), shift[:, None], scale[:, None]))

    def loss(self, latents, token_valid, text, generator: torch.Generator | None = None) -> torch.Tensor:
        """Rectified-flow loss: latents [B, M, C] (already scaled), text = (tokens, mask, pooled)."""
        shape = latents[..., : self.shape_channels]
        x = latents[..., self.shape_channels :]
        batch = x.shape[0]
        t = sample_timesteps(batch, self.config.timestep_sampling, generator, x.device)
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_t = t[:, None, None] * x + (1 - t[:, None, None]) * eps
        velocity = self.forward(torch.cat([shape, x_t], dim=-1), t, token_valid, *text)
        error = ((velocity.float() - (x - eps).float()) ** 2).mean(-1)
        weights = token_valid.float()
        return (error * weights).sum() / weights.sum().clamp(min=1.0)

    @torch.no_grad()
    def sample(
        self,
        shape,
        token_valid,
        text,
        empty_text,
        steps: int | None = None,
        guidance: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Trajectory channels [B, M, 32] for the (scaled) shape channels, midpoint ODE with guidance."""
        steps = steps or self.config.sample_steps
        guidance = self.config.guidance if guidance is None else guidance
        batch, tokens, _ = shape.shape
        x = torch.randn(batch, tokens, self.trajectory_channels, generator=generator, device=shape.device)

        def velocity(x_now, t_now):
            t = torch.full((batch,), t_now, device=shape.device)
            cond = self.forward(torch.cat([shape, x_now], -1), t, token_valid, *text)
            if guidance == 1.0:
                return cond
            uncond = self.forward(torch.cat([shape, x_now], -1), t, token_valid, *empty_text)
            return uncond + guidance * (cond - uncond)

        h = 1.0 / steps
        for i in range(steps):
            t0 = i * h
            x_mid = x + 0.5 * h * velocity(x, t0)
            x = x + h * velocity(x_mid, t0 + 0.5 * h)
        return x


def drop_captions(captions: list[str], rate: float, generator: torch.Generator | None) -> list[str]:
    """Replace each caption with "" with probability `rate` (classifier-free guidance training)."""
    if rate <= 0:
        return list(captions)
    keep = torch.rand(len(captions), generator=generator) >= rate
    return [c if k else "" for c, k in zip(captions, keep.tolist())]


class LatentScaling(nn.Module):
    """Four global scalars (mean/std of shape and trajectory channels) that bring latents to unit scale."""

    def __init__(self, shape_channels: int):
        super().__init__()
        self.shape_channels = shape_channels
        self.register_buffer("stats", torch.tensor([0.0, 1.0, 0.0, 1.0]))

    def moments(self, z: torch.Tensor, token_valid: torch.Tensor) -> torch.Tensor:
        """[count, sum, sum of squares] of shape and trajectory channels over valid tokens (float64, summable)."""
        z = z[token_valid.bool()].double()
        shape, motion = z[:, : self.shape_channels], z[:, self.shape_channels :]
        return torch.stack(
            [torch.tensor(float(shape.numel()), dtype=torch.float64), shape.sum(), (shape**2).sum(),
             torch.tensor(float(motion.numel()), dtype=torch.float64), motion.sum(), (motion**2).sum()]
        )

    @torch.no_grad()
    def set_from_moments(self, moments: torch.Tensor) -> None:
        """Statistics from summed `moments` (e.g. all-reduced over ranks)."""
        values = []
        for count, total, squares in (moments[:3].tolist(), moments[3:].tolist()):
            count = max(count, 1.0)
            mean = total / count
            values += [mean, max(squares / count - mean * mean, 1e-12) ** 0.5]
        self.stats.copy_(torch.tensor(values, dtype=torch.float32))

    def scale(self, z: torch.Tensor) -> torch.Tensor:
        s = self.shape_channels
        m0, s0, m1, s1 = self.stats.tolist()
        return torch.cat([(z[..., :s] - m0) / s0, (z[..., s:] - m1) / s1], -1)

    def unscale(self, z: torch.Tensor) -> torch.Tensor:
        s = self.shape_channels
        m0, s0, m1, s1 = self.stats.tolist()
        return torch.cat([z[..., :s] * s0 + m0, z[..., s:] * s1 + m1], -1)
