"""Configuration of the shard stage."""

from __future__ import annotations

from dataclasses import dataclass

from stages.caption.config import BACKENDS

DTYPES = ("float32", "float16")  # of `<key>.vertices.npy`


@dataclass(frozen=True)
class ShardConfig:
    """How clips become WebDataset shards (each clip's split is already in `clip.split`: see stages.splits).

    dtype: float32 | float16 for `<key>.vertices.npy` (faces are always int32).
    max_shard_bytes / max_shard_samples: a shard is closed before it would pass either target
        (a single sample larger than max_shard_bytes gets a shard of its own).
    caption_backends: preference order of caption backends for `<key>.txt`.
    """

    dtype: str = "float32"
    max_shard_bytes: int = 512 * 1024 * 1024
    max_shard_samples: int = 10_000
    caption_backends: tuple[str, ...] = BACKENDS

    def __post_init__(self) -> None:
        # a tuple, so that a config built in code hashes like the same one from a job spec
        object.__setattr__(self, "caption_backends", tuple(self.caption_backends))
        self.validate()

    def validate(self) -> ShardConfig:
        """Value checks (keys and types are the job parser's)."""
        if self.dtype not in DTYPES:
            raise ValueError(f"ShardConfig.dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.max_shard_bytes < 1 or self.max_shard_samples < 1:
            raise ValueError("ShardConfig.max_shard_bytes and max_shard_samples must be positive")
        return self
