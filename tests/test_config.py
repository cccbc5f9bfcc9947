"""Job spec validation: every job in jobs/ parses, unknown keys and wrong types name the key, hashes chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import config_hash, load_job, parse_job
from pipeline.sources import GeneratedSource, LocalSource, ObjaverseSource
from pipeline.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def yaml_of(name: str) -> dict:
    import yaml

    return yaml.safe_load((REPO / "jobs" / name).read_text())


def job(**extra) -> dict:
    return {"name": "t", "sources": [{"kind": "generated", "count": 2}], **extra}


PIPELINE_JOBS = ("demo.yaml", "shared-assets.yaml", "objaverse-animated.yaml")  # jobs/train-*.yaml are `dymesh train`'s


@pytest.mark.parametrize("path", [REPO / "jobs" / name for name in PIPELINE_JOBS], ids=lambda p: p.name)
def test_every_shipped_job_parses(path):
    spec = load_job(path)
    assert spec.sources and spec.name
    assert Path(spec.base_dir) == path.parent


def test_stage_sections_become_the_stages_own_dataclasses():
    from stages.caption import CaptionConfig
    from stages.evaluate import Limits
    from stages.resample import ResampleConfig
    from stages.shard import ShardConfig
    from stages.splits import SplitConfig

    spec = parse_job(job(resample={"vertices": 256, "frames": [16, 32]}, evaluate={"max_vertices": 1000},
                         caption={"backend": "motion", "filters": {"min_chars": 3}},
                         split={"fractions": [0.8, 0.1, 0.1]}, run={"unit_size": 3}))
    assert isinstance(spec.resample, ResampleConfig) and spec.resample.frames == [16, 32]
    assert isinstance(spec.evaluate, Limits) and spec.evaluate.max_vertices == 1000
    assert isinstance(spec.caption, CaptionConfig) and spec.caption.filters.min_chars == 3
    assert isinstance(spec.shard, ShardConfig) and spec.split == SplitConfig(fractions=(0.8, 0.1, 0.1))
    assert spec.run.unit_size == 3
    assert spec.sources == [GeneratedSource(count=2)]


@pytest.mark.parametrize(
    "data, message",
    [
        (job(resampel={}), "unknown key 'resampel'"),
        (job(resample={"vertexes": 3}), "resample: unknown key 'vertexes'"),
        (job(resample={"fps": "fast"}), "resample.fps: expected float"),
        (job(run={"unit_size": 2.5}), "run.unit_size: expected int"),
        (job(run={"record_timings": "yes"}), "run.record_timings: expected bool"),
        (job(resample={"frames": [16, "x"]}), "resample.frames[1]: expected int"),
        (job(resample={"vertices": 2}), "resample.vertices: 2 is out of range; it must be >= 3"),
        (job(shard={"split_fractions": [1, 0, 0]}), "shard: unknown key 'split_fractions'"),  # moved to split:
        (job(split={"fractions": [0.5, 0.5, 0.5]}), "split: split.fractions must be three non-negative numbers"),
        (job(caption={"filters": {"min_chars": "8"}}), "caption.filters.min_chars: expected int"),
        ({"name": "t", "sources": [{"kind": "ftp", "uri": "x"}]}, "sources[0]: kind: unknown source kind 'ftp'"),
        ({"name": "t", "sources": [{"kind": "local"}]}, "sources[0]: missing required key 'paths'"),
        ({"name": "t", "sources": [{"kind": "objaverse", "limit": "10"}]}, "sources[0].limit: expected int or null"),
        ({"name": "t", "sources": []}, "sources: expected a non-empty list"),
        (["not", "a", "mapping"], "must be a mapping"),
    ],
)
def test_bad_specs_name_the_key(data, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_job(data)


def test_sources_of_every_kind_in_one_spec():
    spec = parse_job({"name": "mix", "sources": [
        {"kind": "local", "paths": ["a/*.glb", "b"]},
        {"kind": "url-list", "path": "urls.txt"},
        {"kind": "objectstore", "uri": "s3://bucket/prefix", "endpoint": "http://127.0.0.1:9000"},
        {"kind": "objaverse", "uids": ["u1"], "licenses": ["by", "cc0"], "limit": 5},
        {"kind": "generated", "count": 3, "seed": 7},
    ]})
    assert [s.kind for s in spec.sources] == ["local", "url-list", "objectstore", "objaverse", "generated"]
    assert spec.sources[0] == LocalSource(paths=["a/*.glb", "b"])
    assert spec.sources[3] == ObjaverseSource(uids=["u1"], licenses=["by", "cc0"], limit=5)


def test_demo_stage_hashes_are_pinned():
    """The stage hashes name every output partition: a silent change re-does every user's finished jobs. If a
    change here is meant (a config field that changes outputs, a table version bump), say so in the commit and
    update the literals. Last change: SHARDS_VERSION 3 (per-sample digests, the webdataset/ + shards/ layout) in the
    shard hash (shards helper); before it, the Blender CONVERSION_VERSION in evaluate's hash; before it,
    ERRORS_VERSION 2 (the `transient` column, runner helper) in every stage's
    hash; before it, table versions in every hash and the split settings in resample's (tables helper)."""
    from pipeline.plan import chain_hashes, harvest_hash

    demo = load_job(REPO / "jobs" / "demo.yaml")
    assert harvest_hash(demo, demo.sources[0]) == "7445e4a37584"
    chain = list(chain_hashes(demo, "demo-upstream").values())
    assert chain == ["22543abd0d0a", "8ce5e4437945", "2530384c11e8", "f4718a556525"]
    resplit = parse_job({**yaml_of("demo.yaml"), "split": {"salt": "another"}})
    changed = chain_hashes(resplit, "demo-upstream")
    assert changed["evaluate"] == chain[0] and changed["resample"] != chain[1]  # the split feeds resample on


def test_config_hash_changes_with_config_and_upstream():
    a = parse_job(job(resample={"vertices": 256}))
    b = parse_job(job(resample={"vertices": 512}))
    assert config_hash("resample", a.resample, "u") == "ff7cbbc632dc"
    assert config_hash("resample", a.resample, "u") != config_hash("resample", b.resample, "u")
    assert config_hash("caption", a.caption, "x") != config_hash("caption", a.caption, "y")
    assert len(config_hash("shard", a.shard)) == 12


def test_missing_job_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_job(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_job(bad)
