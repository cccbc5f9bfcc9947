"""Silent corruption: one flipped byte anywhere in a published sample (vertices.npy, faces.npy, json, caption, a tar
header) is caught by `dymesh verify`, and the loader, `read_sample` and `dymesh aam export` refuse to hand it out,
naming shard and key (or, asked to, skip it and count it)."""

from __future__ import annotations

import shutil
import tarfile

import numpy as np
import pytest
from torch.utils.data import DataLoader

from pipeline.cli import main
from schemas.job_record import JobRecord, StageHashes, job_record_bytes
from shard_clips import synthetic_dataset
from stages.shard import CorruptSampleError, ShardConfig, layout_of, read_manifest, read_sample, write_shards
from stages.shard.reader import ShardDataset
from stages.train.loader import collate_padded

pytestmark = pytest.mark.timeout(120)
SHARD_HASH = "5a17c0ffee"
MEMBERS = ("vertices.npy", "faces.npy", "json", "txt", "header")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A job folder as `dymesh run` leaves it (job.json, shard marker, OUT/webdataset/<h>/, OUT/shards/<h>/)."""
    out = tmp_path_factory.mktemp("job")
    clips, captions, assets = synthetic_dataset(assets=6, clips_per_asset=2)
    write_shards(clips, captions, assets, layout_of(str(out), SHARD_HASH), ShardConfig(max_shard_samples=4))
    record = JobRecord(name="t", sources=[], config={}, run={}, units=1, assets=6,
                       hashes=StageHashes(("0h",), "0e", "0r", "0c", SHARD_HASH))
    (out / "job.json").write_bytes(job_record_bytes(record))
    (out / "markers" / "shard" / SHARD_HASH).mkdir(parents=True)
    (out / "markers" / "shard" / SHARD_HASH / "all.json").write_text("{}")
    return out


@pytest.fixture
def job(pristine, tmp_path):
    copy = tmp_path / "job"
    shutil.copytree(pristine, copy)
    return copy


def flip(out, member: str, sample: int = 5) -> tuple[str, str]:
    """Flip one byte in the middle of one member of the `sample`-th manifest row; (shard path, key)."""
    row = read_manifest(str(out)).to_pylist()[sample]
    path = out / "webdataset" / SHARD_HASH / row["shard"]
    with tarfile.open(path) as tar:
        infos = {i.name: i for i in tar.getmembers()}
    if member == "header":
        position = infos[f"{row['key']}.json"].offset + 10  # inside the member name of a tar header
    else:
        info = infos[f"{row['key']}.{member}"]
        assert info.size > 0
        position = info.offset_data + info.size // 2
    assert row["offset"] <= position < row["offset"] + row["size"]
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    return row["shard"], row["key"]


def test_verify_passes_an_intact_job(job, capsys):
    assert main(["verify", str(job)]) == 0
    assert "12 samples in 4 shards intact" in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.parametrize("member", MEMBERS)
def test_one_flipped_byte_is_caught_by_verify_and_refused_by_every_reader(job, member, capsys, tmp_path):
    shard, key = flip(job, member)
    assert main(["verify", str(job)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith(f"{shard}: {key}: sha256 differs from the manifest's")
    assert f"markers/shard/{SHARD_HASH}" in lines[1]  # says how to rewrite them

    with pytest.raises(CorruptSampleError, match=key) as caught:
        read_sample(str(job), key)
    assert caught.value.key == key and caught.value.shard.endswith(shard)

    with pytest.raises(CorruptSampleError, match=key):
        list(ShardDataset(str(job), rank=0, world_size=1))
    # in DataLoader worker processes the error reaches the training process with its message
    loader = DataLoader(ShardDataset(str(job), rank=0, world_size=1), batch_size=4, num_workers=2,
                        collate_fn=collate_padded)
    with pytest.raises(CorruptSampleError, match=f"{key}.*{shard}"):
        list(loader)

    assert main(["aam", "export", str(job), str(tmp_path / "bins")]) == 2
    assert key in capsys.readouterr().err and not (tmp_path / "bins" / f"{key}.bin").exists()


def test_skip_and_count_is_explicit(job, tmp_path, capsys):
    _, key = flip(job, "vertices.npy", sample=7)
    dataset = ShardDataset(str(job), rank=0, world_size=1, on_corrupt="skip", shuffle=False)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate_padded)
    seen = []
    for batch in loader:
        dataset.record(batch)
        seen += batch["key"]
    assert len(seen) == 11 and key not in seen and dataset.corrupt_skipped == 1
    assert main(["aam", "export", str(job), str(tmp_path / "bins"), "--skip-corrupt"]) == 1
    out = capsys.readouterr().out
    assert f"skipped: corrupt sample {key!r}" in out and "wrote 11 .bin files" in out
    with pytest.raises(ValueError, match="on_corrupt"):
        ShardDataset(str(job), on_corrupt="ignore")


def test_any_flipped_byte_of_any_sample(job, pristine):
    """Random positions over every sample's byte range: verify names exactly that sample, read_sample refuses it."""
    rows = read_manifest(str(job)).to_pylist()
    rng = np.random.default_rng(0)
    from stages.shard import verify_shards

    for row in [rows[i] for i in rng.choice(len(rows), 8, replace=False)]:
        path = job / "webdataset" / SHARD_HASH / row["shard"]
        pristine_bytes = (pristine / "webdataset" / SHARD_HASH / row["shard"]).read_bytes()
        data = bytearray(pristine_bytes)
        data[row["offset"] + int(rng.integers(row["size"]))] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(data))
        problems = verify_shards(str(job))
        assert len(problems) == 1 and f": {row['key']}: " in problems[0]
        with pytest.raises(CorruptSampleError):
            read_sample(str(job), row["key"])
        path.write_bytes(pristine_bytes)
    assert verify_shards(str(job)) == []


def test_a_missing_or_truncated_shard_lists_its_samples(job, capsys):
    rows = read_manifest(str(job)).to_pylist()
    first = rows[0]["shard"]
    (job / "webdataset" / SHARD_HASH / first).unlink()
    assert main(["verify", str(job)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + sum(r["shard"] == first for r in rows) and all("missing" in line for line in lines[:-1])
    with pytest.raises(FileNotFoundError):
        read_sample(str(job), rows[0]["key"])


def test_a_truncated_shard_is_refused_whatever_on_corrupt_says(job, capsys):
    rows = read_manifest(str(job)).to_pylist()
    last = rows[-1]
    path = job / "webdataset" / SHARD_HASH / last["shard"]
    path.write_bytes(path.read_bytes()[: last["offset"] + 100])  # cut inside its last sample
    assert main(["verify", str(job)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith(f"{last['key']}: missing ({last['offset'] + 100} bytes in the "
                                                 f"shard, the sample ends at {last['offset'] + last['size']})")
    for policy in ("raise", "skip"):
        with pytest.raises(CorruptSampleError, match=last["key"]):
            list(ShardDataset(str(job), rank=0, world_size=1, shuffle=False, on_corrupt=policy))


def test_a_byte_in_the_end_of_archive_padding_is_found(job, capsys):
    rows = read_manifest(str(job)).to_pylist()
    last = rows[-1]
    path = job / "webdataset" / SHARD_HASH / last["shard"]
    data = bytearray(path.read_bytes())
    data[last["offset"] + last["size"] + 7] = 1  # after the last sample: the end-of-archive blocks
    path.write_bytes(bytes(data))
    assert main(["verify", str(job)]) == 1
    assert capsys.readouterr().out.splitlines()[0].endswith("bytes outside its samples are not the end-of-archive zeros")
