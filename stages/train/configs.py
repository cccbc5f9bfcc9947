"""Model and run configurations: the `tiny` (CPU, minutes) and `paper` (published sizes) presets and job specs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class VAEConfig:
    """DyMeshVAE sizes. `frames` is T of the clips it encodes (trajectory channels are 3 x (T - 1))."""

    frames: int = 16
    width: int = 256
    heads: int = 8
    decoder_head_width: int = 64  # decoder attention width = heads x this (published: 8 x 64 = 512 at width 256)
    encoder_blocks: int = 8
    decoder_blocks: int = 8
    tokens: int = 512
    shape_channels: int = 32
    trajectory_channels: int = 32
    fourier_frequencies: int = 8
    max_neighbours: int = 16  # 1-ring neighbours kept per vertex (plus the vertex itself)
    kl_weight: float = 1e-6
    augment: str = "yaw"  # training clips turned by a random angle about the up (+Y) axis | "none"

    @property
    def latent_channels(self) -> int:
        return self.shape_channels + self.trajectory_channels


@dataclass(frozen=True)
class TextConfig:
    """Text encoder: a Hugging Face model id, or "tiny-random" (offline, randomly initialised; tests and CPU demos)."""

    model: str = "openai/clip-vit-large-patch14"
    max_length: int = 77


@dataclass(frozen=True)
class FlowConfig:
    """MM-DiT rectified-flow sizes and recipe."""

    width: int = 512
    layers: int = 12
    heads: int = 8
    mlp_ratio: float = 4.0
    timestep_sampling: str = "cosine"  # cosine (SD3 CosMap) | logit-normal | uniform
    text_dropout: float = 0.1
    sample_steps: int = 64
    guidance: float = 3.0
    stats_batches: int = 16  # batches the VAE encoder sees to measure the latent scaling statistics


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 1000
    grad_clip: float = 1.0


@dataclass(frozen=True)
class ModelPreset:
    vae: VAEConfig
    flow: FlowConfig
    text: TextConfig
    optim: OptimConfig
    batch_size: int


PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(
        vae=VAEConfig(
            width=64, heads=4, decoder_head_width=16, encoder_blocks=2, decoder_blocks=2, tokens=32,
            fourier_frequencies=6,
            max_neighbours=12,
        ),
        flow=FlowConfig(width=64, layers=2, heads=4, sample_steps=16, stats_batches=4),
        text=TextConfig(model="tiny-random", max_length=32),
        optim=OptimConfig(lr=2e-3, warmup_steps=20),
        batch_size=8,
    ),
    "paper": ModelPreset(
        vae=VAEConfig(),
        flow=FlowConfig(),
        text=TextConfig(),
        optim=OptimConfig(),
        batch_size=64,
    ),
}


@dataclass(frozen=True)
class RunConfig:
    """One training run (what a job spec `train-*.yaml` holds once validated)."""

    model: str = "vae"  # vae | flow
    preset: str = "tiny"
    name: str = "dymesh-vae"
    storage_path: str = "out/train"  # local folder or s3://bucket/prefix
    log_dir: str = ""  # CSV + TensorBoard; default <storage_path>/<name>/logs when storage is local
    shards: str = ""  # job output folder (its current shards), shard folder (local or s3://) or "synthetic:<clips>"
    split: str = "train"
    steps: int = 1000
    batch_size: int = 0  # per worker; 0 = the preset's
    loader_workers: int = 2
    checkpoint_every: int = 200
    log_every: int = 10
    keep_checkpoints: int = 3
    seed: int = 0
    num_workers: int = 1  # Ray Train workers (processes); torchrun sets its own
    use_gpu: bool = False
    vae_checkpoint: str = ""  # flow only: the trained VAE checkpoint (folder or run folder)
    fail_at_step: int = -1  # testing: raise after this step to simulate a kill
    overrides: dict = field(default_factory=dict)  # {"vae": {...}, "flow": {...}, "text": {...}, "optim": {...}}

    def preset_config(self) -> ModelPreset:
        """The preset with this run's overrides applied."""
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; use one of {sorted(PRESETS)}")
        base = PRESETS[self.preset]
        parts: dict[str, Any] = {}
        for part in ("vae", "flow", "text", "optim"):
            value = getattr(base, part)
            extra = dict(self.overrides.get(part, {}))
            known = {f.name for f in fields(value)}
            unknown = sorted(set(extra) - known)
            if unknown:
                raise ValueError(f"unknown {part} options {unknown}; known: {sorted(known)}")
            if "betas" in extra:
                extra["betas"] = tuple(extra["betas"])
            parts[part] = replace(value, **extra)
        return ModelPreset(batch_size=self.batch_size or base.batch_size, **parts)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_absolute_paths(self) -> "RunConfig":
        """Local paths made absolute (Ray workers may run in another working directory)."""
        import os

        def absolute(value: str) -> str:
            if not value or "://" in value or value.startswith("synthetic:"):
                return value
            return os.path.abspath(value)

        return replace(self, storage_path=absolute(self.storage_path), log_dir=absolute(self.log_dir),
                       shards=absolute(self.shards), vae_checkpoint=absolute(self.vae_checkpoint))

    def validate(self) -> "RunConfig":
        """Value checks (pipeline.config's job parser checks keys and types first, then calls this)."""
        if self.model not in ("vae", "flow"):
            raise ValueError(f"model must be 'vae' or 'flow', not {self.model!r}")
        if self.model == "flow" and not self.vae_checkpoint:
            raise ValueError("a flow run needs vae_checkpoint: the checkpoint folder of a trained VAE run")
        self.preset_config()  # validates preset and overrides
        return self
