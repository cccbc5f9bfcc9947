"""Configuration of the shard stage."""

from __future__ import annotations

from dataclasses import dataclass

from stages.caption.config import BACKENDS

SPLITS = ("train", "val", "test")
DTYPES = ("float32", "float16")  # of `<key>.vertices.npy`


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
    caption_backends: tuple[str, ...] = BACKENDS

    def __post_init__(self) -> None:
        # fractions as floats and tuples, so that a config built in code hashes like the same one from a job spec
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))
        object.__setattr__(self, "caption_backends", tuple(self.caption_backends))
        self.validate()

    def validate(self) -> ShardConfig:
        """Value checks (keys and types are the job parser's)."""
        if self.dtype not in DTYPES:
            raise ValueError(f"ShardConfig.dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.max_shard_bytes < 1 or self.max_shard_samples < 1:
            raise ValueError("ShardConfig.max_shard_bytes and max_shard_samples must be positive")
        fractions = self.split_fractions
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
            raise ValueError(f"ShardConfig.split_fractions must be three non-negative numbers summing to 1, not {fractions}")
        return self
