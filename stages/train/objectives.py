"""What one training step optimises: the VAE reconstruction objective or the rectified-flow objective.

Each objective owns the trainable module (the thing DDP wraps: its forward returns the loss terms), any frozen
parts (the flow's VAE and text encoder), the extra state a checkpoint needs, and its meta for `meta.json`.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from stages.train.configs import ModelPreset, VAEConfig
from stages.train.flow import FlowModel, LatentScaling, drop_captions
from stages.train.text_encoder import TextEncoder
from stages.train.vae import DyMeshVAE, normalise_frames, shape_and_motion, vae_from_state


def clip_frames(vertices: torch.Tensor, frames: int) -> torch.Tensor:
    """The first `frames` frames of [B, T, N, 3]; shorter clips are a configuration error."""
    if vertices.shape[1] < frames:
        raise ValueError(
            f"clips have {vertices.shape[1]} frames but the model needs {frames}: "
            "set overrides.vae.frames to the shards' frame count"
        )
    return vertices[:, :frames]


def random_yaw(vertices: torch.Tensor) -> torch.Tensor:
    """Each clip of [B, T, N, 3] turned about the up (+Y, glTF's) axis by its own uniform random angle.

    Motion directions in a few thousand clips are few; a vehicle driving a new way must not be new to the VAE.
    Draws from the global torch RNG, which checkpoints save and restore.
    """
    angle = torch.rand(vertices.shape[0], device=vertices.device) * (2 * torch.pi)
    cos, sin, zero, one = angle.cos(), angle.sin(), torch.zeros_like(angle), torch.ones_like(angle)
    rotation = torch.stack([cos, zero, sin, zero, one, zero, -sin, zero, cos], dim=-1).view(-1, 1, 3, 3)
    return vertices @ rotation.transpose(-1, -2).to(vertices.dtype)


class VAEObjective:
    kind = "vae"

    def __init__(self, preset: ModelPreset, device: torch.device):
        self.preset = preset
        self.module = DyMeshVAE(preset.vae).to(device)
        self.device = device

    def forward(self, module: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        vertices = clip_frames(batch["vertices"], self.preset.vae.frames).to(self.device, non_blocking=True)
        if self.preset.vae.augment == "yaw":
            vertices = random_yaw(vertices)
        out = module(vertices, batch["valid_mask"].to(self.device), batch["faces"].to(self.device))
        return out["loss"], {"recon": out["recon"].detach(), "kl": out["kl"].detach()}

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def meta(self) -> dict:
        return {"kind": "vae", "vae_config": asdict(self.preset.vae)}


class FlowTrainable(nn.Module):
    """The flow model plus its latent scaling statistics; forward returns the rectified-flow loss."""

    def __init__(self, flow: FlowModel, scaling: LatentScaling):
        super().__init__()
        self.flow = flow
        self.scaling = scaling

    def forward(self, latents, token_valid, text_tokens, text_valid, text_pooled):
        return self.flow.loss(self.scaling.scale(latents), token_valid, (text_tokens, text_valid, text_pooled))


class FlowObjective:
    kind = "flow"

    def __init__(self, preset: ModelPreset, device: torch.device, vae_state: dict):
        vae_config = VAEConfig(**vae_state["config"])
        self.preset = preset
        self.device = device
        self.vae_state = vae_state
        self.vae = vae_from_state(vae_state).to(device).eval().requires_grad_(False)
        self.text = TextEncoder(preset.text.model, preset.text.max_length).to(device)
        flow = FlowModel(preset.flow, vae_config.latent_channels, vae_config.shape_channels, self.text.width)
        self.module = FlowTrainable(flow, LatentScaling(vae_config.shape_channels)).to(device)

    @torch.no_grad()
    def encode(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Unscaled latents [B, M, 64] (trajectory posterior means) and the token mask."""
        config = self.vae.config
        vertices = clip_frames(batch["vertices"], config.frames).to(self.device, non_blocking=True)
        valid = batch["valid_mask"].to(self.device).bool()
        v0, motion = shape_and_motion(normalise_frames(vertices, valid)[0])
        latent = self.vae.encode(v0, motion, valid, batch["faces"].to(self.device), tokens=config.tokens)
        return latent.z.float(), latent.token_valid

    def measure_scaling(self, batches, all_reduce) -> None:
        """Latent scaling statistics from a pass of the VAE encoder over `batches` (summed over ranks)."""
        scaling = self.module.scaling
        total = torch.zeros(6, dtype=torch.float64)
        for batch in batches:
            z, token_valid = self.encode(batch)
            total += scaling.moments(z.cpu(), token_valid.cpu())
        scaling.set_from_moments(all_reduce(total))

    def forward(self, module: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        z, token_valid = self.encode(batch)
        captions = drop_captions(batch["caption"], self.preset.flow.text_dropout, None)
        text_tokens, text_valid, pooled = self.text(captions)
        loss = module(z, token_valid, text_tokens, text_valid, pooled)
        return loss, {}

    def extra_state(self) -> dict:
        return {"vae": self.vae_state["model"], "vae_config": self.vae_state["config"]}

    def load_extra_state(self, state: dict) -> None:
        pass  # the VAE is fixed by the run's vae_checkpoint; the scaling lives in the module's buffers

    def meta(self) -> dict:
        return {
            "kind": "flow",
            "vae_config": dict(self.vae_state["config"]),
            "flow_config": asdict(self.preset.flow),
            "text_config": asdict(self.preset.text),
        }
