"""Shard stage: clips + captions + assets to deterministic WebDataset tars with a Parquet manifest."""

from stages.shard.config import ShardConfig
from stages.shard.manifest import read_manifest, read_sample, verify_shards
from stages.shard.writer import write_shards

__all__ = ["ShardConfig", "read_manifest", "read_sample", "verify_shards", "write_shards"]
