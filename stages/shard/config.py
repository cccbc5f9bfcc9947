"""Configuration of the shard stage."""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "val", "test")
CAPTION_BACKENDS = ("vllm", "transformers", "motion")


@dataclass(frozen=True)
class ShardConfig:
    """How clips become WebDataset shards.

    dtype: float32 | float16 for `<key>.vertices.npy` (faces are always int32).
    max_shard_bytes / max_shard_samples: a shard is closed before it would pass either target
        (a single sample larger than max_shard_bytes gets a shard of its own).
    split_fractions: train, val, test fractions (sum 1), assigned per asset by a salted hash.
    split_salt: change it to draw a different (still stable) split.
    caption_backends: preference order of caption backends for `<key>.txt`.
    """

    dtype: str = "float32"
    max_shard_bytes: int = 512 * 1024 * 1024
    max_shard_samples: int = 10_000
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)
    split_salt: str = "dymesh-split-v1"
    caption_backends: tuple[str, ...] = CAPTION_BACKENDS

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"ShardConfig.dtype must be 'float32' or 'float16', not {self.dtype!r}")
        if self.max_shard_bytes < 1 or self.max_shard_samples < 1:
            raise ValueError("ShardConfig.max_shard_bytes and max_shard_samples must be positive")
        fractions = tuple(float(f) for f in self.split_fractions)
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
            raise ValueError(f"ShardConfig.split_fractions must be three non-negative numbers summing to 1, not {fractions}")
        object.__setattr__(self, "split_fractions", fractions)
        object.__setattr__(self, "caption_backends", tuple(self.caption_backends))
