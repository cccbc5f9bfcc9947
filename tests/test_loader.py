"""Streaming loader: exact-once epochs over ranks x workers, shuffling, resumption, padding."""

from __future__ import annotations

import collections
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from shard_clips import synthetic_clip
from stages.shard import ShardConfig, read_manifest, write_shards
from stages.splits import SplitConfig
from stages.shard.reader import ShardDataset, distributed_rank, index_tar, shard_indexes
from stages.train.loader import ShardLoader, collate_padded


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """7 uneven shards (split fractions put most assets in train; sizes vary by count and byte limits)."""
    folder = tmp_path_factory.mktemp("shards")
    fractions = SplitConfig(fractions=(0.8, 0.1, 0.1))
    clips = sorted((synthetic_clip(a, animation=k, seed=k * 3, frames=8, split=fractions) for a in range(25)
                    for k in range(2)), key=lambda c: c.clip_id)
    rows, _ = write_shards(clips, {}, {}, str(folder), ShardConfig(max_shard_samples=9))
    counts = collections.Counter(r["shard"] for r in rows)
    assert len(set(counts.values())) > 1  # uneven
    return folder, [c.clip_id for c in clips]


def _keys_of(dataset, workers: int) -> list[tuple[str, int]]:
    """(key, slot) of every sample one rank yields, through a real DataLoader when workers > 0."""
    if workers == 0:
        return [(s["key"], s["slot"]) for s in dataset]
    loader = DataLoader(dataset, batch_size=4, num_workers=workers, collate_fn=collate_padded)
    return [(k, int(slot)) for batch in loader for k, slot in zip(batch["key"], batch["slot"])]


@pytest.mark.parametrize("world_size, workers, real", [(1, 2, True), (3, 2, True), (3, 3, False), (2, 2, True),
                                                       (8, 2, True), (1, 0, True)])
def test_every_sample_exactly_once_per_epoch(shards, world_size, workers, real):
    """Issue 18: at world sizes 1 and 3 with real DataLoader worker processes, each sample of an epoch is handed
    out exactly once across ranks (`real=False` plans the workers in this process: the same arithmetic)."""
    folder, keys = shards
    seen = []
    for rank in range(world_size):
        dataset = ShardDataset(str(folder), rank=rank, world_size=world_size, seed=5)
        seen += _keys_of(dataset, workers) if real else _simulated_workers(dataset, workers, folder)
    workers = max(workers, 1)
    assert collections.Counter(k for k, _ in seen) == collections.Counter(keys)
    # every slot (rank x worker) gets its share, balanced within one sample, even with 16 slots over 7 shards
    per_slot = collections.Counter(slot for _, slot in seen)
    assert sorted(per_slot) == list(range(world_size * workers))
    assert max(per_slot.values()) - min(per_slot.values()) <= 1


def _keys_by_offset(folder) -> dict[tuple[str, int], str]:
    table = read_manifest(str(folder))
    return {(str(folder / "webdataset" / s), o): k for s, o, k in zip(*(table.column(c).to_pylist() for c in ("shard", "offset", "key")))}


def _simulated_workers(dataset, workers: int, folder) -> list[str]:
    """Plan each worker's slot in this process (as a DataLoader worker would), to keep the test fast."""
    keys, names = [], _keys_by_offset(folder)
    rank, world = dataset.rank, dataset.world_size
    for worker in range(workers):
        slot = rank * workers + worker
        segments, order = dataset.plan(slot, world * workers)
        for shard, first, end in segments:
            index = dataset.indexes[shard]
            keys += [(names[(index.url, int(index.offsets[i]))], slot) for i in range(first, end)]
        assert sorted(order) == list(range(len(order)))
    return keys


def test_slots_are_balanced_and_read_disjoint_ranges(shards):
    folder, keys = shards
    dataset = ShardDataset(str(folder), seed=1)
    sizes = []
    for slot in range(24):
        segments, order = dataset.plan(slot, 24)
        sizes.append(len(order))
        assert sum(end - first for _, first, end in segments) == len(order)
    assert sum(sizes) == len(keys) and max(sizes) - min(sizes) <= 1


def test_shuffle_is_deterministic_per_epoch(shards):
    folder, _ = shards
    first = [s["key"] for s in ShardDataset(str(folder), seed=3, rank=0, world_size=1)]
    again = [s["key"] for s in ShardDataset(str(folder), seed=3, rank=0, world_size=1)]
    other = ShardDataset(str(folder), seed=3, rank=0, world_size=1)
    other.set_epoch(1)
    assert first == again and [s["key"] for s in other] != first and sorted(first) == sorted(s["key"] for s in other)
    plain = [s["key"] for s in ShardDataset(str(folder), shuffle=False, rank=0, world_size=1)]
    names = _keys_by_offset(folder)
    assert plain == [names[(i.url, int(o))] for i in shard_indexes(str(folder)) for o in i.offsets]


def test_resume_mid_epoch_from_state_dict(shards):
    folder, keys = shards
    full = ShardLoader(ShardDataset(str(folder), seed=9, rank=0, world_size=1), batch_size=4, num_workers=2)
    expected = [k for batch in full for k in batch["key"]]
    loader = ShardLoader(ShardDataset(str(folder), seed=9, rank=0, world_size=1), batch_size=4, num_workers=2)
    consumed = []
    for i, batch in enumerate(loader):
        consumed += batch["key"]
        if i == 3:
            break
    state = loader.state_dict()
    assert state["epoch"] == 0 and state["taken"] == 4
    assert sum(state["dataset"]["consumed"].values()) == 16 and state["dataset"]["slots"] == 2
    resumed = ShardLoader(ShardDataset(str(folder), seed=0, rank=0, world_size=1), batch_size=4, num_workers=2)
    resumed.load_state_dict(state)
    rest = [k for batch in resumed for k in batch["key"]]
    assert collections.Counter(consumed + rest) == collections.Counter(keys)
    assert consumed + rest == expected  # the same order as an uninterrupted epoch
    assert resumed.state_dict()["epoch"] == 1  # next epoch starts clean
    wrong = ShardDataset(str(folder), rank=0, world_size=1)
    wrong.load_state_dict(state["dataset"])
    with pytest.raises(ValueError, match="same world size"):
        next(iter(wrong))  # 1 slot instead of the saved 2


def test_collate_pads_without_nan_and_normalises(shards):
    folder, _ = shards
    samples = list(ShardDataset(str(folder), rank=0, world_size=1, normalize=True, max_frames=5))[:6]
    batch = collate_padded(samples, max_vertices=512, max_faces=1280)
    assert batch["vertices"].shape == (6, 5, 512, 3) and batch["faces"].shape == (6, 1280, 3)
    assert torch.isfinite(batch["vertices"]).all()
    for i, s in enumerate(samples):
        n, f = s["vertices"].shape[1], s["faces"].shape[0]
        assert batch["valid_mask"][i, :n].all() and not batch["valid_mask"][i, n:].any()
        assert (batch["vertices"][i, :, n:] == 0).all() and (batch["faces"][i, f:] == -1).all()
        frame0 = s["vertices"][0]
        assert abs(float(frame0.abs().max()) - 1.0) < 1e-4
        assert torch.allclose((frame0.max(0).values + frame0.min(0).values) / 2, torch.zeros(3), atol=1e-5)
    with pytest.raises(ValueError, match="more than max_vertices"):
        collate_padded(samples, max_vertices=10)


def test_tar_without_manifest_is_indexed_from_headers(shards, tmp_path):
    folder, _ = shards
    listed = shard_indexes(str(folder))[0]
    copy = tmp_path / "copy.tar"
    shutil.copy(listed.url, copy)
    scanned = index_tar(str(copy))
    assert scanned.offsets.tolist() == listed.offsets.tolist() and scanned.sizes.tolist() == listed.sizes.tolist()
    assert len(list(ShardDataset([str(copy)], rank=0, world_size=1))) == len(listed)


def test_rank_detection(monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert distributed_rank() == (2, 4)
    assert ShardDataset([])._rank() == (2, 4)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert distributed_rank() == (0, 1)  # launchers (Ray Train, torchrun) pass rank and world size explicitly


def test_endless_batches_cross_epochs_and_resume_by_redrawing(shards):
    folder, keys = shards
    batches_per_epoch = -(-len(keys) // 8)
    stream = ShardLoader(ShardDataset(str(folder), seed=2, rank=0, world_size=1), batch_size=8)
    drawn = [stream.next()["key"] for _ in range(batches_per_epoch + 2)]
    assert stream.state_dict()["epoch"] == 1 and stream.state_dict()["taken"] == 2
    assert collections.Counter(k for b in drawn[:batches_per_epoch] for k in b) == collections.Counter(keys)
    resumed = ShardLoader(ShardDataset(str(folder), seed=0, rank=0, world_size=1), batch_size=8,
                          position=stream.state_dict())
    plain = ShardLoader(list(range(10)), batch_size=4, collate_fn=lambda items: items, position={"epoch": 0, "taken": 1})
    assert resumed.next()["key"] == stream.next()["key"] and plain.next() == [4, 5, 6, 7]


def test_len_is_this_ranks_share(shards):
    folder, keys = shards
    lengths = [len(ShardDataset(str(folder), rank=r, world_size=3)) for r in range(3)]
    assert sum(lengths) == len(keys) and max(lengths) - min(lengths) <= 1
    assert [len(list(ShardDataset(str(folder), rank=r, world_size=3))) for r in range(3)] == lengths
