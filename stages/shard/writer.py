"""Clips to deterministic WebDataset tars, one open shard per split, each published atomically."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import queue
import threading
from collections.abc import Iterable

from schemas.sample import Clip
from schemas.tables import error_row
from stages.shard.config import SPLITS, ShardConfig
from stages.shard.manifest import MANIFEST_NAME, write_manifest
from stages.shard.objectstore import filesystem, is_remote, join
from stages.shard.sample import check_clip, sample_key, sample_members
from stages.shard.splits import assign_split
from stages.shard.tarformat import end_of_archive, member_header, padding

log = logging.getLogger(__name__)
STAGE = "shard"
IOV_MAX = 512  # buffers per writev call (Linux allows 1024)


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


def partial_name(name: str) -> str:
    """Where a shard is written before its rename; hidden, and not matching *.tar."""
    return f".{name}.partial"


class LocalFile:
    """An unbuffered local file written with one writev(2) per sample: array memory goes to the kernel uncopied."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def write_pieces(self, pieces: list) -> None:
        views = [memoryview(p).cast("B") for p in pieces]
        while views:
            written = os.writev(self.fd, views[:IOV_MAX])
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if views and written:
                views[0] = views[0][written:]

    def close(self) -> None:
        os.close(self.fd)


class ShardHasher:
    """sha256 of a shard computed on a second thread while the first writes (hashlib releases the GIL)."""

    def __init__(self):
        self.sha = hashlib.sha256()
        self.queue: queue.Queue = queue.Queue(maxsize=256)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (pieces := self.queue.get()) is not None:
            for piece in pieces:
                self.sha.update(piece)

    def update(self, pieces: list) -> None:
        self.queue.put(pieces)

    def hexdigest(self) -> str:
        self.queue.put(None)
        self.thread.join()
        return self.sha.hexdigest()


class ShardFile:
    """One shard being written: tar members streamed out, sha256 and sample offsets kept."""

    def __init__(self, fs, folder: str, name: str, split: str, remote: bool):
        self.fs, self.name, self.split = fs, name, split
        self.final = join(folder, name)
        # An object store publishes an object only when its upload completes, so it is written in place.
        self.path = self.final if remote else join(folder, partial_name(name))
        self.stream = fs.open_output_stream(self.path) if remote else LocalFile(self.path)
        self.hashing = ShardHasher()
        self.offset = 0
        self.samples: list[tuple[str, int, int]] = []  # key, offset, size

    def _write(self, pieces: list) -> None:
        if isinstance(self.stream, LocalFile):
            self.stream.write_pieces(pieces)
        else:
            for piece in pieces:
                self.stream.write(piece)
        self.hashing.update(pieces)
        self.offset += sum(len(p) for p in pieces)

    def add(self, key: str, pieces: list) -> None:
        """Append one sample given as its tar pieces (see `tar_pieces`)."""
        start = self.offset
        self._write(pieces)
        self.samples.append((key, start, self.offset - start))

    def abandon(self) -> None:
        """Remove the unfinished shard (an exception interrupted the writer; on S3 closing completes the upload)."""
        self.hashing.hexdigest()
        self.stream.close()
        self.fs.delete_file(self.path)

    def close(self) -> list[dict]:
        """Finish the archive, publish it under its final name, return its manifest rows."""
        self._write([end_of_archive(self.offset)])
        self.stream.close()
        if self.path != self.final:
            self.fs.move(self.path, self.final)
        digest = self.hashing.hexdigest()
        log.info("shard %s: %d samples, %.1f MB", self.name, len(self.samples), self.offset / 1e6)
        return [
            dict(shard=self.name, key=k, split=self.split, offset=o, size=s, shard_sha256=digest, shard_bytes=self.offset)
            for k, o, s in self.samples
        ]


def tar_pieces(members: list[tuple[str, list]]) -> list:
    """A sample's bytes in archive order: each member's header, data buffers and block padding."""
    pieces = []
    for name, parts in members:
        size = sum(len(p) for p in parts)
        pieces += [member_header(name, size), *parts, padding(size)]
    return [p for p in pieces if len(p)]


def write_shards(
    clips: Iterable[Clip],
    captions: dict[str, list[dict]],
    assets: dict[str, dict],
    out_dir: str,
    config: ShardConfig | None = None,
) -> tuple[list[dict], list[dict]]:
    """Write `{split}-{index:06d}.tar` shards and `shards.parquet` into out_dir (a path or s3://...).

    clips must come sorted by clip_id (the output bytes depend only on inputs and config).
    Returns (shard manifest rows, error rows): duplicates by content_hash (the first clip id wins)
    and repeated clip ids are "skipped" rows; malformed clips are "failed" rows.
    """
    config = config or ShardConfig()
    fs, folder = filesystem(out_dir)
    remote = is_remote(str(out_dir))
    fs.create_dir(folder, recursive=True)
    open_shards: dict[str, ShardFile] = {}
    next_index = dict.fromkeys(SPLITS, 0)
    rows: list[dict] = []
    errors: list[dict] = []
    first_by_hash: dict[str, str] = {}
    last_id: str | None = None
    seen_keys: set[str] = set()
    try:
        for clip in clips:
            if last_id is not None and clip.clip_id < last_id:
                raise ValueError(f"write_shards needs clips sorted by clip_id: {clip.clip_id!r} came after {last_id!r}")
            last_id = clip.clip_id
            key = sample_key(clip.clip_id)
            if key in seen_keys:
                errors.append(error_row(STAGE, clip.clip_id, "duplicate-clip-id", f"clip id {clip.clip_id} seen twice; kept the first", status="skipped"))
                continue
            if clip.content_hash and clip.content_hash in first_by_hash:
                first = first_by_hash[clip.content_hash]
                errors.append(error_row(STAGE, clip.clip_id, "duplicate", f"same content_hash as clip {first}; kept {first}", status="skipped"))
                continue
            problem = check_clip(clip, config.dtype)
            if problem:
                errors.append(error_row(STAGE, clip.clip_id, "bad-data", f"clip {clip.clip_id}: {problem}"))
                continue
            seen_keys.add(key)
            if clip.content_hash:
                first_by_hash[clip.content_hash] = clip.clip_id
            split = assign_split(clip.asset_id, config)
            clip = dataclasses.replace(clip, split=split)
            try:
                members = sample_members(clip, captions.get(clip.clip_id, []), assets.get(clip.asset_id), config.dtype, config.caption_backends)
            except (TypeError, ValueError) as exc:  # metadata that cannot be stored as JSON, say
                errors.append(error_row(STAGE, clip.clip_id, type(exc).__name__, f"clip {clip.clip_id}: cannot encode: {exc}"))
                continue
            pieces = tar_pieces(members)
            size = sum(len(p) for p in pieces)
            shard = open_shards.get(split)
            if shard is not None and shard.samples and (
                len(shard.samples) >= config.max_shard_samples
                or shard.offset + size + len(end_of_archive(shard.offset + size)) > config.max_shard_bytes
            ):
                rows.extend(open_shards.pop(split).close())
                shard = None
            if shard is None:
                shard = ShardFile(fs, folder, shard_name(split, next_index[split]), split, remote)
                next_index[split] += 1
                open_shards[split] = shard
            shard.add(key, pieces)
        for split in SPLITS:
            if split in open_shards:
                rows.extend(open_shards.pop(split).close())
    finally:
        for shard in open_shards.values():  # an exception left these unfinished: never publish them
            shard.abandon()
    rows.sort(key=lambda r: (r["shard"], r["offset"]))
    write_manifest(rows, out_dir)
    return rows, errors


__all__ = ["write_shards", "shard_name", "MANIFEST_NAME"]
