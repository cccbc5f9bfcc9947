"""The shard output of a real job read as given with the tools users have: Ray Data `read_webdataset` on the tar
folder and `read_parquet` on the manifest folder, the `webdataset` library, HF `datasets` (webdataset builder and
parquet), pyarrow and pandas -- each with the right counts; `dymesh verify` passes it; a training spec's
`shards: <job folder>` resolves to its current shards; the shard bytes are the same on a rerun."""

from __future__ import annotations

import collections
import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from demo_job import JOB, demo_output
from paths import REPO

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def job(ray_session, tmp_path_factory):
    out, summary = demo_output(tmp_path_factory)
    shard_hash = summary["paths"]["shards"].split("/")[1]
    from stages.shard import read_manifest

    splits = collections.Counter(read_manifest(str(out)).column("split").to_pylist())
    assert sum(splits.values()) == summary["stages"]["shard"]["samples"] >= 6 and len(splits) >= 2
    return out, shard_hash, splits


def test_each_folder_holds_one_format(job):
    out, shard_hash, _ = job
    tars = out / "webdataset" / shard_hash
    assert {p.suffix for p in tars.rglob("*") if p.is_file()} == {".tar"}
    assert {p.parent.name for p in tars.rglob("*.tar")} <= {"train", "val", "test"}
    assert [p.name for p in (out / "shards" / shard_hash).iterdir()] == ["part-all.parquet"]


def test_ray_data_reads_the_tar_folder_and_the_manifest_folder(job):
    import ray.data

    out, shard_hash, splits = job
    total = sum(splits.values())
    assert ray.data.read_webdataset(str(out / "webdataset" / shard_hash)).count() == total
    assert ray.data.read_webdataset(str(out / "webdataset")).count() == total  # only current hashes are there
    assert ray.data.read_webdataset(str(out / "webdataset" / shard_hash / "train")).count() == splits["train"]
    first = ray.data.read_webdataset(str(out / "webdataset" / shard_hash)).take(1)[0]
    assert first["vertices.npy"].ndim == 3 and first["faces.npy"].shape[1] == 3
    assert ray.data.read_parquet(str(out / "shards")).count() == total
    assert ray.data.read_parquet(str(out / "shards" / shard_hash)).count() == total


def test_pyarrow_and_pandas_read_the_manifest_folder(job):
    import pandas
    import pyarrow.dataset as ds

    out, shard_hash, splits = job
    assert ds.dataset(out / "shards", format="parquet").count_rows() == sum(splits.values())
    frame = pandas.read_parquet(out / "shards" / shard_hash)
    assert collections.Counter(frame["split"]) == splits
    assert frame["sample_xxh3_128"].str.len().eq(32).all() and frame["sample_sha256"].str.len().eq(64).all()


def test_the_webdataset_library_reads_every_split(job):
    import webdataset as wds

    out, shard_hash, splits = job
    for split, count in splits.items():
        urls = sorted(str(p) for p in (out / "webdataset" / shard_hash / split).glob("*.tar"))
        samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode())
        assert len(samples) == count and all(s["vertices.npy"].ndim == 3 for s in samples)
        assert all(s["json"]["split"] == split for s in samples)


def test_hugging_face_datasets_reads_splits_from_the_tar_folder(job, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    out, shard_hash, splits = job
    data = load_dataset("webdataset", data_dir=str(out / "webdataset" / shard_hash), cache_dir=str(tmp_path / "hf"))
    names = {"train": "train", "val": "validation", "test": "test"}  # HF's own names for the split folders
    assert {name: data[names[name]].num_rows for name in splits} == dict(splits)
    index = load_dataset("parquet", data_dir=str(out / "shards" / shard_hash), split="train",
                         cache_dir=str(tmp_path / "hf2"))
    assert index.num_rows == sum(splits.values())


def test_verify_passes_the_job_and_readers_take_the_job_folder(job, capsys):
    from pipeline.cli import main
    from stages.shard import read_manifest, read_sample
    from stages.shard.reader import ShardDataset

    out, _, splits = job
    assert main(["verify", str(out)]) == 0
    assert f"{sum(splits.values())} samples" in capsys.readouterr().out
    key = read_manifest(str(out)).column("key")[0].as_py()
    assert read_sample(str(out), key)["vertices"].ndim == 3
    assert len(list(ShardDataset(str(out), split="train", rank=0, world_size=1))) == splits["train"]


def test_a_training_spec_resolves_a_job_output_folder(job, tmp_path, monkeypatch):
    from pipeline.config import check_training_shards, load_training_job
    from pipeline.errors import UserError
    from stages.shard import resolve_shards
    from stages.train.loop import open_dataset

    out, shard_hash, splits = job
    expected = str(out / "webdataset" / shard_hash)
    assert resolve_shards(str(out)) == expected
    assert resolve_shards(str(out / "shards" / shard_hash)) == expected == resolve_shards(expected)
    # jobs/train-vae.yaml says `shards: out/demo`: run where out/demo is this job's output folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "demo").symlink_to(out, target_is_directory=True)
    run = load_training_job(REPO / "jobs" / "train-vae.yaml")
    assert run.shards == "out/demo" and check_training_shards(run) == str(Path("out/demo/webdataset") / shard_hash)
    dataset = open_dataset(run.with_absolute_paths(), 8, 0, 1)
    assert dataset.total_samples == splits["train"]
    flow = load_training_job(REPO / "jobs" / "train-flow.yaml")
    assert check_training_shards(flow).endswith(shard_hash)
    with pytest.raises(UserError, match="no shards at"):
        check_training_shards(load_training_job(REPO / "jobs" / "train-vae.yaml", shards="out/nothing-here"))


def test_train_and_torchrun_entry_points_take_shards_flags(tmp_path, capsys):
    from pipeline.cli import main
    from pipeline.launch import main as launch

    for command in (lambda: main(["train", str(REPO / "jobs" / "train-vae.yaml"), "--shards", str(tmp_path / "no")]),
                    lambda: launch(["--config", str(REPO / "jobs" / "train-vae.yaml"), "--shards", str(tmp_path / "no"),
                                    "--name", "x", "--storage-path", str(tmp_path / "runs")])):
        assert command() == 2  # at once, before any training process or Ray starts
        assert f"no shards at {tmp_path / 'no'}" in capsys.readouterr().err


def test_the_shard_bytes_are_the_same_on_a_rerun_elsewhere(job, tmp_path):
    from pipeline.config import load_job
    from pipeline.runner import Runner

    out, shard_hash, _ = job
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(JOB))
    summary = Runner(load_job(tmp_path / "job.yaml"), tmp_path / "out", show_progress=False).run()
    assert summary["paths"]["webdataset"] == f"webdataset/{shard_hash}"

    def digests(root: Path) -> dict:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for folder in ("webdataset", "shards") for p in sorted((root / folder).rglob("*")) if p.is_file()}

    assert digests(tmp_path / "out") == digests(out) and len(digests(out)) >= 3
    shutil.rmtree(tmp_path / "out")
