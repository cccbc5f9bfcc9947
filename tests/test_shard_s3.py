"""Shards, manifest, loader and stats through s3:// against a local moto S3 server on 127.0.0.1."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from s3_server import local_s3
from shard_clips import synthetic_dataset


@pytest.fixture(scope="module")
def s3_endpoint():
    with local_s3("dymesh", AWS_ENDPOINT_URL="{endpoint}") as endpoint:
        yield endpoint


def test_s3_round_trip(s3_endpoint, tmp_path):
    from pipeline.stats import connect
    from stages.shard import ShardConfig, read_sample, verify_shards, write_shards
    from stages.shard.reader import ShardDataset

    clips, captions, assets = synthetic_dataset(assets=6, clips_per_asset=2)
    url = "s3://dymesh/job/shards"
    rows, errors = write_shards(clips, captions, assets, url, ShardConfig(max_shard_samples=3))
    assert not errors and len(rows) == len(clips)
    write_shards(clips, captions, assets, str(tmp_path), ShardConfig(max_shard_samples=3))
    local = {(r["shard"], r["key"]): r["sample_sha256"] for r in rows}
    from stages.shard import read_manifest

    columns = (read_manifest(str(tmp_path)).column(c).to_pylist() for c in ("shard", "key", "sample_sha256"))
    assert local == {(shard, key): sha for shard, key, sha in zip(*columns)}  # the same bytes on S3 and on disk
    assert verify_shards(url) == []
    sample = read_sample(url, clips[4].clip_id)
    np.testing.assert_array_equal(sample["vertices"], clips[4].vertices)
    keys = [s["key"] for rank in range(2) for s in ShardDataset(url, rank=rank, world_size=2, seed=1)]
    assert collections.Counter(keys) == collections.Counter(c.clip_id for c in clips)
    con = connect("s3://dymesh/job")
    assert con.execute("SELECT count(*) FROM shards").fetchone()[0] == len(clips)
    assert con.execute("SELECT count(*) FROM clips").fetchone()[0] == 0
