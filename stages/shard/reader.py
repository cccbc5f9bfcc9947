"""Reading DyMesh WebDataset shards for training: exact-once epochs across ranks x workers, resumable.

How samples are assigned (every sample exactly once per epoch, whatever the shard sizes):
  1. The shard list is put in a per-epoch order (a permutation drawn from (seed, epoch); or as given).
  2. Their samples, concatenated in that order, form one sequence of M samples (counts and byte offsets
     come from the manifest, or from a header-only scan of a tar that has no manifest).
  3. With S = world_size x num_workers slots, slot s = rank x num_workers + worker takes the contiguous
     range [s*M//S, (s+1)*M//S): sizes differ by at most one, and a slot reads only the byte ranges of its
     samples (ranged reads), so no sample is read twice even when S exceeds the number of shards.
  4. Inside a slot a shuffle buffer (seeded by seed, epoch, slot) mixes the order. The output order is
     computed on indices first, so resuming after k samples skips them without reading them.
Every sample is checked against its manifest xxh3-128 before it is handed out (CorruptSampleError names shard
and key; `on_corrupt="skip"` drops it instead, logs it and counts it in `corrupt_skipped`); tars without a
manifest have nothing to check against. Reading is wids-style (webdataset's random-access reader): consecutive samples are fetched with ranged reads
of about `chunk_bytes` at their manifest offsets and their tar members parsed in place (no copy of array data).
`webdataset.WebDataset` itself splits whole shards across nodes and workers, which cannot be exact-once when
there are more slots than shards; the shards stay ordinary WebDataset tars that it (or any tar tool) reads.

Usage (rank and world size from torch.distributed / torchrun, or passed by the launcher):
    dataset = ShardDataset("out/demo", split="train", seed=0, normalize=True)  # a job folder: its current shards
    loader = ShardLoader(dataset, batch_size=8, num_workers=2)  # stages.train.loader
    for batch in loader:                    # batch from collate_padded; the loader records progress
        ...; checkpoint["data"] = loader.state_dict()
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from schemas.normalisation import normalise_frame0
from stages.shard.integrity import CorruptSampleError, check_policy, check_sample
from stages.shard.layout import find_layout
from stages.shard.manifest import decode_members
from stages.shard.sample import npy_array
from stages.shard.tarformat import BLOCK, parse_members
from stages.storage import filesystem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardIndex:
    """One shard: where it is, its samples' byte offsets and sizes (NumPy int64), keys and xxh3-128 digests
    (hex, from the manifest; None for a tar read without one)."""

    url: str
    offsets: np.ndarray
    sizes: np.ndarray
    split: str = ""
    keys: np.ndarray | None = None
    digests: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets)


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) from torch.distributed (torchrun, Ray Train) or torchrun's RANK/WORLD_SIZE; else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return 0, 1


def index_tar(url: str) -> ShardIndex:
    """Sample offsets of a tar without a manifest, from its headers only (member data is seeked over)."""
    import tarfile

    from webdataset.tariterators import base_plus_ext

    fs, path = filesystem(url)
    last_key, offsets, sizes = None, [], []
    with fs.open_input_file(path) as stream, tarfile.open(fileobj=stream, mode="r:") as tar:
        for info in tar:
            key, _ = base_plus_ext(info.name)
            end = info.offset_data + info.size + (-info.size % BLOCK)
            if offsets and key == last_key:
                sizes[-1] = end - offsets[-1]
            else:
                last_key = key
                offsets.append(info.offset)
                sizes.append(end - info.offset)
    return ShardIndex(url, np.array(offsets, dtype=np.int64), np.array(sizes, dtype=np.int64))


def manifest_indexes(folder: str) -> dict[str, ShardIndex] | None:
    """ShardIndex of every shard in the manifest of the shard set at `folder` (stages.shard.layout.find_layout),
    by name ("train/000000.tar"); None when there is none."""
    import pyarrow.parquet as pq

    try:
        layout = find_layout(folder)
        fs, path = filesystem(layout.manifest)
        with fs.open_input_file(path) as stream:
            table = pq.read_table(stream, columns=["shard", "split", "offset", "size", "key", "sample_xxh3_128"],
                                  read_dictionary=["shard", "split"])
    except FileNotFoundError:
        return None
    table = table.unify_dictionaries()
    shards, splits = (table.column(c).combine_chunks() for c in ("shard", "split"))
    codes = shards.indices.to_numpy(zero_copy_only=False)
    offsets, sizes = (table.column(c).to_numpy() for c in ("offset", "size"))
    keys, digests = (table.column(c).to_numpy(zero_copy_only=False) for c in ("key", "sample_xxh3_128"))
    order = np.lexsort((offsets, codes))  # by shard, then offset
    codes, offsets, sizes, keys, digests = codes[order], offsets[order], sizes[order], keys[order], digests[order]
    split_codes = splits.indices.to_numpy(zero_copy_only=False)[order]
    starts = np.flatnonzero(np.diff(codes, prepend=-1))
    ends = np.append(starts[1:], len(codes))
    names, split_names = shards.dictionary.to_pylist(), splits.dictionary.to_pylist()
    indexes = {}
    for start, end in zip(starts.tolist(), ends.tolist()):
        name = names[codes[start]]
        indexes[name] = ShardIndex(layout.shard(name), offsets[start:end], sizes[start:end],
                                   split_names[split_codes[start]], keys[start:end], digests[start:end])
    return dict(sorted(indexes.items()))


def listed_index(url: str, manifests: dict) -> ShardIndex | None:
    """The manifest's ShardIndex of one .tar URL (its set is two or one folders up: <set>/<split>/N.tar)."""
    parts = url.split("/")
    for depth in (2, 1):
        if len(parts) <= depth:
            continue
        folder, name = "/".join(parts[:-depth]) or "/", "/".join(parts[-depth:])
        if folder not in manifests:
            manifests[folder] = manifest_indexes(folder)
        if manifests[folder] and name in manifests[folder]:
            return manifests[folder][name]
    return None


def shard_indexes(urls: str | list[str], split: str | None = None) -> list[ShardIndex]:
    """ShardIndex of each URL, in the given order: a shard set (a job output folder, a standalone shard root or a
    tar folder) means every shard of its manifest; a .tar URL is found in its set's manifest, or scanned."""
    manifests: dict[str, dict[str, ShardIndex] | None] = {}
    indexes = []
    for url in [urls] if isinstance(urls, str) else list(urls):
        url = str(url).rstrip("/")
        if url.endswith(".tar"):
            indexes.append(listed_index(url, manifests) or index_tar(url))
            continue
        find_layout(url)  # raises FileNotFoundError saying what a shard set is
        listed = manifest_indexes(url)
        if listed is None:
            raise FileNotFoundError(f"no shard manifest for {url}; pass shard URLs (.tar) or write the shards first")
        indexes.extend(i for i in listed.values() if split is None or i.split == split)
    return indexes


def slot_segments(indexes: list[ShardIndex], order: list[int], slot: int, slots: int) -> list[tuple[int, int, int]]:
    """(shard position in `indexes`, first sample, end sample) ranges making up one slot's share."""
    counts = [len(indexes[i]) for i in order]
    total = sum(counts)
    begin, end = slot * total // slots, (slot + 1) * total // slots
    segments, start = [], 0
    for shard, count in zip(order, counts):
        lo, hi = max(begin, start), min(end, start + count)
        if lo < hi:
            segments.append((shard, lo - start, hi - start))
        start += count
    return segments


def buffer_shuffle_order(n: int, buffer: int, rng: np.random.Generator) -> list[int]:
    """Output order of a shuffle buffer of `buffer` items over inputs 0..n-1 (computed on indices, no data)."""
    held: list[int] = []
    order: list[int] = []
    for i in range(n):
        held.append(i)
        if len(held) >= buffer:
            j = int(rng.random() * len(held))
            held[j], held[-1] = held[-1], held[j]
            order.append(held.pop())
    while held:
        j = int(rng.random() * len(held))
        held[j], held[-1] = held[-1], held[j]
        order.append(held.pop())
    return order


def read_range(handle, offset: int, size: int) -> bytearray:
    """Exactly `size` bytes at `offset` of an open file, into a writable buffer (arrays view it, no copy)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    handle.seek(offset)
    done = 0
    while done < size:
        count = handle.readinto(view[done:])
        if not count:
            raise EOFError(f"the shard ends {size - done} bytes before the range its manifest gives")
        done += count
    return buffer


def read_chunks(index: ShardIndex, first: int, last: int, chunk_bytes: int) -> Iterator[tuple[int, memoryview]]:
    """(sample number, its bytes) for samples first..last of a shard, reading about chunk_bytes per request."""
    fs, path = filesystem(index.url)
    ends = index.offsets + index.sizes
    with fs.open_input_file(path) as handle:
        start = first
        while start <= last:
            begin = int(index.offsets[start])
            stop = min(last, max(start, int(np.searchsorted(ends, begin + chunk_bytes, side="right")) - 1))
            try:
                view = memoryview(read_range(handle, begin, int(ends[stop]) - begin))
            except EOFError:  # a truncated shard: always an error, whatever on_corrupt says
                cut = start + int(np.searchsorted(ends[start : stop + 1], handle.size(), side="right"))
                key = str(index.keys[cut]) if index.keys is not None else f"#{cut}"
                raise CorruptSampleError(index.url, key, f"the shard ends at byte {handle.size()}, before this "
                                         f"sample's end ({int(ends[cut])})") from None
            for i in range(start, stop + 1):
                yield i, view[int(index.offsets[i]) - begin : int(ends[i]) - begin]
            start = stop + 1


class ShardDataset(IterableDataset):
    """Decoded samples of DyMesh shards, each exactly once per epoch across ranks x DataLoader workers.

    urls: a shard set (a job output folder, a standalone shard root or a tar folder, stages.shard.layout; `split`
        filters it), or a list of .tar URLs (local or s3://).
    rank / world_size: default from torch.distributed or RANK/WORLD_SIZE (torchrun); launchers pass them.
    shuffle: per-epoch shard order and a per-slot shuffle buffer of `shuffle_buffer` samples, from `seed`.
    normalize: apply frame-0 bbox centre/scale; max_frames: keep the first frames only.
    chunk_bytes: consecutive samples are fetched in reads of about this size (one request each on S3).
    on_corrupt: "raise" (CorruptSampleError naming shard and key) or "skip" (log it, count it in the next
        sample's "corrupt_skipped", which `record` sums into `corrupt_skipped`).
    Samples: {"key", "vertices" float32 [T,N,3], "faces" int64 [F,3], "caption", "meta", "slot", "slots", "index",
        "corrupt_skipped"}.
    """

    def __init__(
        self,
        urls: str | list[str],
        *,
        split: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_buffer: int = 256,
        normalize: bool = False,
        max_frames: int | None = None,
        chunk_bytes: int = 8 * 1024 * 1024,
        on_corrupt: str = "raise",
    ):
        super().__init__()
        self.on_corrupt = check_policy(on_corrupt)
        self.indexes = shard_indexes(urls, split)
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle, self.shuffle_buffer = seed, shuffle, shuffle_buffer
        self.normalize, self.max_frames, self.chunk_bytes = normalize, max_frames, chunk_bytes
        self.epoch = 0
        self.consumed: dict[int, int] = {}
        self.skipped: dict[int, int] = {}  # corrupt samples skipped, per slot, this epoch (as far as consumed)
        self.skipped_errors: list[CorruptSampleError] = []  # each skip, in the process that iterated
        self.slots: int | None = None

    @property
    def total_samples(self) -> int:
        """Samples in one epoch over all ranks."""
        return sum(len(i) for i in self.indexes)

    def __len__(self) -> int:
        """Samples this rank yields in one epoch (over all its DataLoader workers), as DistributedSampler counts."""
        rank, world = self._rank()
        return (rank + 1) * self.total_samples // world - rank * self.total_samples // world

    # progress and resumption
    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.consumed, self.skipped = int(epoch), {}, {}

    @property
    def corrupt_skipped(self) -> int:
        """Corrupt samples skipped this epoch before the samples recorded so far (on_corrupt="skip")."""
        return sum(self.skipped.values())

    def record(self, batch: dict) -> None:
        """Note the samples of a batch (or one sample) as consumed; call it in the training process."""
        slots = torch.as_tensor(batch["slot"]).reshape(-1).tolist()
        positions = torch.as_tensor(batch["index"]).reshape(-1).tolist()
        self.slots = int(torch.as_tensor(batch["slots"]).reshape(-1)[0])
        skipped = torch.as_tensor(batch.get("corrupt_skipped", [0] * len(slots))).reshape(-1).tolist()
        for slot, position, count in zip(slots, positions, skipped):
            self.consumed[slot] = max(self.consumed.get(slot, 0), position + 1)
            self.skipped[slot] = max(self.skipped.get(slot, 0), int(count))

    def state_dict(self) -> dict:
        """{"epoch", "seed", "slots", "consumed": {slot: samples}}: small; merge ranks' dicts by union of "consumed"."""
        return {"epoch": self.epoch, "seed": self.seed, "slots": self.slots, "consumed": dict(self.consumed)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])
        self.slots = state.get("slots")
        self.consumed = {int(k): int(v) for k, v in state.get("consumed", {}).items()}

    # iteration
    def _rank(self) -> tuple[int, int]:
        rank, world = distributed_rank() if self.world_size is None else (int(self.rank or 0), int(self.world_size))
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside world size {world}")
        return rank, world

    def _slot(self) -> tuple[int, int]:
        rank, world = self._rank()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def plan(self, slot: int, slots: int) -> tuple[list[tuple[int, int, int]], list[int]]:
        """This epoch's (segments, output order) of one slot."""
        order = list(range(len(self.indexes)))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(order)).tolist()
        segments = slot_segments(self.indexes, order, slot, slots)
        n = sum(end - first for _, first, end in segments)
        buffer = self.shuffle_buffer if self.shuffle else 1
        return segments, buffer_shuffle_order(n, buffer, np.random.default_rng([self.seed, self.epoch, slot]))

    def __iter__(self) -> Iterator[dict]:
        slot, slots = self._slot()
        done = self.consumed.get(slot, 0)
        if done and self.slots not in (None, slots):
            raise ValueError(
                f"this state was saved with {self.slots} slots (world size x workers) and is resumed with {slots}; "
                "resume with the same world size and num_workers"
            )
        segments, order = self.plan(slot, slots)
        wanted = set(order[done:])
        pending: dict[int, tuple[ShardIndex, int, memoryview]] = {}
        skipped = self.skipped.get(slot, 0)
        next_out = done
        position = 0  # slot-local number of the segment's first sample
        for shard, first, end in segments:
            index = self.indexes[shard]
            local = [p for p in range(position, position + end - first) if p in wanted]
            if local:  # read only from the first to the last sample still wanted
                lo, hi = first + local[0] - position, first + local[-1] - position
                for number, data in read_chunks(index, lo, hi, self.chunk_bytes):
                    if position + number - first in wanted:
                        pending[position + number - first] = (index, number, data)
                    while next_out < len(order) and order[next_out] in pending:
                        try:
                            sample = self._decode(*pending.pop(order[next_out]))
                        except CorruptSampleError as exc:
                            if self.on_corrupt == "raise":
                                raise
                            log.warning("skipped: %s", exc)
                            self.skipped_errors.append(exc)
                            skipped += 1
                        else:
                            yield dict(sample, slot=slot, slots=slots, index=next_out, corrupt_skipped=skipped)
                        next_out += 1
            position += end - first
        if next_out != len(order):
            raise RuntimeError(f"slot {slot} produced {next_out} of {len(order)} samples; the shards differ from their manifest")

    def _decode(self, index: ShardIndex, number: int, data: memoryview) -> dict:
        """Sample `number` of a shard from its bytes, checked against the manifest digest first."""
        from webdataset.tariterators import base_plus_ext

        key = str(index.keys[number]) if index.keys is not None else f"#{number}"
        check_sample(data, None if index.digests is None else index.digests[number], index.url, key)
        try:
            members = parse_members(data)
            if not members:
                raise ValueError("an empty sample range; the shard differs from its manifest")
            sample = decode_members(base_plus_ext(members[0][0])[0], members, npy_array)
            if "vertices" not in sample or "faces" not in sample:
                raise ValueError("the sample has no vertices.npy or faces.npy member")
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptSampleError(index.url, key, str(exc)) from None
        vertices = sample["vertices"][: self.max_frames] if self.max_frames else sample["vertices"]
        vertices = vertices.astype(np.float32, copy=False)  # float16 shards widen; float32 views the read buffer
        if self.normalize:
            vertices = normalise_frame0(vertices)
        if not vertices.flags.writeable:  # a tar read without a manifest: members are read-only bytes
            vertices = vertices.copy()
        return {
            "key": sample["__key__"],
            "vertices": torch.from_numpy(np.ascontiguousarray(vertices)),
            "faces": torch.from_numpy(sample["faces"].astype(np.int64)),
            "caption": sample.get("txt", ""),
            "meta": sample.get("json", {}),
        }
