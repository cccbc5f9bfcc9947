"""Shard stage: clips + captions + assets to deterministic WebDataset tars with a Parquet manifest."""

from stages.shard.config import ShardConfig
from stages.shard.integrity import CorruptSampleError
from stages.shard.layout import ShardLayout, find_layout, layout_of, resolve_shards
from stages.shard.manifest import read_manifest, read_sample, verify_shards
from stages.shard.writer import write_shards

__all__ = ["CorruptSampleError", "ShardConfig", "ShardLayout", "find_layout", "layout_of", "read_manifest",
           "read_sample", "resolve_shards", "verify_shards", "write_shards"]
