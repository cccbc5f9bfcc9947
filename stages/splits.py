"""Train/val/test assignment by asset: a salted hash of the asset id, stable when data is added.

The job spec's `split:` section (SplitConfig) feeds the resample stage's config hash, because every `clips` row
carries its split; the shard stage only reads `clip.split`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitConfig:
    """How assets are drawn into splits (the job spec's `split:` section).

    fractions: train, val, test fractions of assets (sum 1), drawn per asset by a salted hash of its id.
    salt: change it to draw a different (still stable) split.
    """

    fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)
    salt: str = "dymesh-split-v1"

    def __post_init__(self) -> None:
        # floats in a tuple, so that a config built in code hashes like the same one from a job spec
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        self.validate()

    def validate(self) -> SplitConfig:
        """Value checks (keys and types are the job parser's)."""
        fractions = self.fractions
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
            raise ValueError(f"split.fractions must be three non-negative numbers summing to 1, not {list(fractions)}")
        return self


def split_point(asset_id: str, salt: str) -> float:
    """A uniform number in [0, 1) drawn from sha256(salt + asset id)."""
    digest = hashlib.sha256(f"{salt}\0{asset_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(asset_id: str, config: SplitConfig | None = None) -> str:
    """The split of every clip of `asset_id`: "train", "val" or "test"."""
    config = config or SplitConfig()
    point = split_point(asset_id, config.salt)
    cumulative = 0.0
    for split, fraction in zip(SPLITS, config.fractions):
        cumulative += fraction
        if point < cumulative:
            return split
    return next(s for s, f in zip(reversed(SPLITS), reversed(config.fractions)) if f > 0)
