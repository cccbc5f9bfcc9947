"""Shard writer: determinism, boundaries, manifest random access, corruption, dedup, splits."""

from __future__ import annotations

import dataclasses
import hashlib
import tarfile

import numpy as np
import pytest

from shard_clips import synthetic_clip, synthetic_dataset
from stages.shard import ShardConfig, read_manifest, read_sample, verify_shards, write_shards
from stages.splits import SplitConfig, assign_split, split_point


def _digests(folder):
    """sha256 of every file under a shard root, by relative path (tars and manifest alike)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(assets=12, clips_per_asset=3)


def test_two_runs_give_identical_bytes(tmp_path, dataset):
    config = ShardConfig(max_shard_samples=4)
    write_shards(*dataset, str(tmp_path / "a"), config)
    write_shards(*dataset, str(tmp_path / "b"), config)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a == b and len(a) > 3
    assert not any(part.startswith(".") for name in a for part in name.split("/"))  # no temporaries left
    # each folder holds one format: tars per split under webdataset/, the manifest table under shards/
    assert {name.rsplit("/", 1)[0] for name in a} == {"webdataset/train", "webdataset/val", "webdataset/test", "shards"}
    assert [name for name in a if name.startswith("shards/")] == ["shards/part-all.parquet"]


def test_durable_writes_same_bytes_and_a_failed_fsync_publishes_nothing(tmp_path, dataset, monkeypatch):
    import os

    import stages.shard.writer as writer

    config = ShardConfig(max_shard_samples=4)
    monkeypatch.setattr(writer, "WRITEBACK_BYTES", 1)  # exercise the early writeback on every sample
    durable_rows, _ = write_shards(*dataset, str(tmp_path / "durable"), config, durable=True)
    cached_rows, _ = write_shards(*dataset, str(tmp_path / "cached"), config, durable=False)
    assert durable_rows == cached_rows and _digests(tmp_path / "durable") == _digests(tmp_path / "cached")

    def failing_fsync(fd):
        raise OSError(5, "Input/output error (simulated disk failure)")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="simulated disk failure"):
        write_shards(*dataset, str(tmp_path / "broken"), config, durable=True)
    assert [p for p in (tmp_path / "broken").rglob("*") if p.is_file()] == []  # no shard, temporary or manifest


def test_tar_members_are_normalised_and_sorted(tmp_path, dataset):
    write_shards(*dataset, str(tmp_path), ShardConfig())
    with tarfile.open(tmp_path / "webdataset" / "train" / "000000.tar") as tar:
        infos = tar.getmembers()
    assert all(i.mtime == 0 and i.uid == 0 and i.gid == 0 and i.uname == "" and i.mode == 0o644 for i in infos)
    names = [i.name for i in infos]
    keys = [n.split(".", 1)[0] for n in names]
    assert keys == sorted(keys)
    assert names[:4] == sorted(names[:4]) and names[0].endswith(".faces.npy")


def test_shard_boundaries_by_count_and_size(tmp_path, dataset):
    rows, _ = write_shards(*dataset, str(tmp_path / "count"), ShardConfig(max_shard_samples=5))
    per_shard = {}
    for r in rows:
        per_shard[r["shard"]] = per_shard.get(r["shard"], 0) + 1
    assert max(per_shard.values()) == 5 and sum(per_shard.values()) == len(dataset[0])
    rows, _ = write_shards(*dataset, str(tmp_path / "size"), ShardConfig(max_shard_bytes=150_000))
    sizes = {r["shard"]: r["shard_bytes"] for r in rows}
    single = {r["shard"] for r in rows if r["size"] > 150_000 - 10240}
    assert all(size <= 150_000 for name, size in sizes.items() if name not in single)
    assert all((tmp_path / "size" / "webdataset" / name).stat().st_size == size for name, size in sizes.items())


def test_read_sample_by_key_matches_clip(tmp_path, dataset):
    clips, captions, assets = dataset
    write_shards(clips, captions, assets, str(tmp_path), ShardConfig(max_shard_samples=7))
    for clip in clips[::5]:
        sample = read_sample(str(tmp_path), clip.clip_id)
        np.testing.assert_array_equal(sample["vertices"], clip.vertices)
        np.testing.assert_array_equal(sample["faces"], clip.faces)
        meta = sample["json"]
        assert meta["clip_id"] == clip.clip_id and meta["num_vertices"] == clip.num_vertices
        assert meta["license"] == assets[clip.asset_id]["license"] and meta["attribution"] == "dymesh"
        assert {c["backend"] for c in meta["captions"]} == {"motion", "transformers"}
        assert sample["txt"] == meta["caption"] and sample["txt"].startswith("the object")  # transformers before motion
        assert meta["split"] == clip.split == assign_split(clip.asset_id)
    with pytest.raises(KeyError):
        read_sample(str(tmp_path), "no-such-key")


def test_float16_shards(tmp_path, dataset):
    clips, captions, assets = dataset
    write_shards(clips[:3], captions, assets, str(tmp_path), ShardConfig(dtype="float16"))
    sample = read_sample(str(tmp_path), clips[0].clip_id)
    assert sample["vertices"].dtype == np.float16 and sample["json"]["vertices_dtype"] == "float16"
    np.testing.assert_allclose(sample["vertices"], clips[0].vertices, atol=1e-2)


def test_verify_detects_corruption(tmp_path, dataset):
    rows, _ = write_shards(*dataset, str(tmp_path), ShardConfig(max_shard_samples=10))
    assert verify_shards(str(tmp_path)) == []
    shard = tmp_path / "webdataset" / "train" / "000001.tar"
    data = bytearray(shard.read_bytes())
    data[3000] ^= 0xFF
    shard.write_bytes(bytes(data))
    (tmp_path / "webdataset" / "val" / "000000.tar").unlink()
    problems = verify_shards(str(tmp_path))
    hit = next(r["key"] for r in rows if r["shard"] == "train/000001.tar" and r["offset"] <= 3000 < r["offset"] + r["size"])
    assert any(p.endswith(f"train/000001.tar: {hit}: sha256 differs from the manifest's") for p in problems)
    missing = [r["key"] for r in rows if r["shard"] == "val/000000.tar"]
    assert sum("val/000000.tar" in p and "missing" in p for p in problems) == len(missing) > 0
    assert len(problems) == 1 + len(missing)  # the flipped sample, each missing sample


def test_duplicates_and_bad_clips_become_error_rows(tmp_path, dataset):
    clips, captions, assets = dataset
    twin = dataclasses.replace(clips[0], clip_id=clips[0].clip_id + "z")  # same content hash, later id
    broken = dataclasses.replace(clips[1], clip_id=clips[1].clip_id + "y", content_hash="other",
                                 vertices=np.full_like(clips[1].vertices, np.nan))
    inputs = sorted([*clips[:3], twin, broken], key=lambda c: c.clip_id)
    rows, errors = write_shards(inputs, captions, assets, str(tmp_path), ShardConfig())
    assert len(rows) == 3 and len(rows) + len(errors) == len(inputs)
    by_type = {e["error_type"]: e for e in errors}
    assert by_type["duplicate"]["status"] == "skipped" and clips[0].clip_id in by_type["duplicate"]["message"]
    assert by_type["bad-data"]["status"] == "failed" and "NaN" in by_type["bad-data"]["message"]
    with pytest.raises(ValueError, match="sorted"):
        write_shards(list(reversed(clips[:3])), captions, assets, str(tmp_path / "x"), ShardConfig())


def test_splits_by_asset_stable_and_proportional(tmp_path, dataset):
    config = SplitConfig(fractions=(0.8, 0.1, 0.1))
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4000)]
    splits = [assign_split(a, config) for a in ids]
    counts = {s: splits.count(s) for s in ("train", "val", "test")}
    assert 3000 < counts["train"] < 3400 and 300 < counts["val"] < 500 and 300 < counts["test"] < 500
    # adding data never moves an old asset; another salt draws another split
    assert [assign_split(a, config) for a in ids[:100]] == splits[:100]
    assert [assign_split(a, SplitConfig(salt="other")) for a in ids[:200]] != [assign_split(a) for a in ids[:200]]
    assert all(0 <= split_point(a, "s") < 1 for a in ids[:50])
    assert {assign_split(a, SplitConfig(fractions=(0, 0, 1))) for a in ids[:50]} == {"test"}
    with pytest.raises(ValueError, match="split.fractions"):
        SplitConfig(fractions=(0.5, 0.5, 0.5))
    # the writer keeps each clip's own split: no asset in two splits in the written manifest
    clips = sorted((synthetic_clip(a, animation=k, seed=k, split=config) for a in range(30) for k in range(2)),
                   key=lambda c: c.clip_id)
    rows, _ = write_shards(clips, {}, {}, str(tmp_path), ShardConfig())
    by_clip = {c.clip_id: c for c in clips}
    assert all(row["split"] == by_clip[row["clip_id"]].split for row in rows)
    split_of_asset = {}
    for row in rows:
        assert split_of_asset.setdefault(by_clip[row["clip_id"]].asset_id, row["split"]) == row["split"]
    assert len(set(split_of_asset.values())) >= 2
    assert read_manifest(str(tmp_path)).num_rows == len(clips)


def test_webdataset_reads_the_shards(tmp_path, dataset):
    import webdataset as wds

    write_shards(*dataset, str(tmp_path), ShardConfig(max_shard_samples=100))
    urls = sorted(str(p) for p in (tmp_path / "webdataset").rglob("*.tar"))
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode())
    assert len(samples) == len(dataset[0])
    assert samples[0]["vertices.npy"].ndim == 3 and isinstance(samples[0]["json"], dict)


def _tarfile_archive(name: str, data: bytes) -> bytes:
    """One member written by Python's tarfile (PAX, our fixed fields), no end-of-archive blocks."""
    import io
    import tarfile

    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
    buffer = io.BytesIO()
    archive = tarfile.TarFile(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT)
    archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_tar_headers_match_pythons_tarfile_and_parse_back():
    import io
    import shutil
    import subprocess

    from stages.shard.tarformat import end_of_archive, member_header, padding, parse_members

    names = ["a" * 64 + "_a0_0000-0015.vertices.npy", "x.txt", "b" * 99, "e" * 100, "c" * 150 + ".json", "é.txt",
             "d" * 40 + "/" + "ü" * 80 + ".npy"]
    for name in names:
        for size in (0, 5, 512, 393_344):
            data = bytes([size % 251]) * size
            ours = member_header(name, size) + data + padding(size)
            assert ours == _tarfile_archive(name, data), (name, size)  # byte-identical to another writer
    archive = io.BytesIO()
    for i, name in enumerate(names):
        data = bytes([i]) * (100 + i)
        archive.write(member_header(name, len(data)) + data + padding(len(data)))
    archive.write(end_of_archive(archive.tell()))
    parsed = parse_members(archive.getvalue())  # long/non-ASCII names take tarfile's PAX path
    assert [n for n, _ in parsed] == names and [bytes(d) for _, d in parsed][2] == bytes([2]) * 102
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive.getvalue())) as reader:  # an independent reader agrees
        members = reader.getmembers()
        assert [m.name for m in members] == names and [m.size for m in members] == [100 + i for i in range(len(names))]
        assert {(m.mtime, m.mode, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0o644, 0, 0, "", "")}
    if shutil.which("tar"):  # and GNU tar, a third implementation, lists the same names
        listing = subprocess.run(["tar", "-tf", "-", "--quoting-style=literal"], input=archive.getvalue(),
                                 capture_output=True, check=True, env={"LC_ALL": "C.UTF-8"}).stdout
        assert listing.decode("utf-8").splitlines() == names
    plain = b"".join(member_header(n, 3) + b"abc" + padding(3) for n in names[:2])
    assert [(n, bytes(d)) for n, d in parse_members(plain)] == [(names[0], b"abc"), (names[1], b"abc")]
    broken = bytearray(plain)
    broken[0] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        parse_members(bytes(broken))


def test_faceless_clip_is_stored_and_unencodable_metadata_is_a_row(tmp_path):
    faceless = dataclasses.replace(synthetic_clip(1), faces=np.zeros((0, 3), np.int32))
    odd = dataclasses.replace(synthetic_clip(2), animation_name=object())
    clips = sorted([faceless, odd], key=lambda c: c.clip_id)
    rows, errors = write_shards(clips, {}, {}, str(tmp_path), ShardConfig())
    assert [r["key"] for r in rows] == [faceless.clip_id]
    assert [(e["unit_id"], e["status"]) for e in errors] == [(odd.clip_id, "failed")]
    assert read_sample(str(tmp_path), faceless.clip_id)["faces"].shape == (0, 3)


def test_a_clip_without_a_split_is_a_failed_row(tmp_path, dataset):
    clips, captions, assets = dataset
    unsplit = dataclasses.replace(clips[0], split="")
    rows, errors = write_shards([unsplit, *clips[1:3]], captions, assets, str(tmp_path), ShardConfig())
    assert len(rows) == 2 and [(e["unit_id"], e["error_type"]) for e in errors] == [(unsplit.clip_id, "bad-data")]
    assert "split must be one of train, val, test" in errors[0]["message"]
