"""Train/val/test assignment by asset: a salted hash of the asset id, stable when data is added."""

from __future__ import annotations

import hashlib

from stages.shard.config import SPLITS, ShardConfig


def split_point(asset_id: str, salt: str) -> float:
    """A uniform number in [0, 1) drawn from sha256(salt + asset id)."""
    digest = hashlib.sha256(f"{salt}\0{asset_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(asset_id: str, config: ShardConfig | None = None) -> str:
    """The split of every clip of `asset_id`: "train", "val" or "test"."""
    config = config or ShardConfig()
    point = split_point(asset_id, config.split_salt)
    cumulative = 0.0
    for split, fraction in zip(SPLITS, config.split_fractions):
        cumulative += fraction
        if point < cumulative:
            return split
    return next(s for s, f in zip(reversed(SPLITS), reversed(config.split_fractions)) if f > 0)
