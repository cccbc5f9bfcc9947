"""Shard stage: clips + captions + assets to deterministic WebDataset tars with a Parquet manifest."""

from stages.shard.config import SPLITS, ShardConfig
from stages.shard.manifest import read_manifest, read_sample, verify_shards
from stages.shard.splits import assign_split
from stages.shard.writer import write_shards

__all__ = ["SPLITS", "ShardConfig", "assign_split", "read_manifest", "read_sample", "verify_shards", "write_shards"]
