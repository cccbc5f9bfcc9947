"""Clips to deterministic WebDataset tars, one open shard per split, each published atomically."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from schemas.sample import Clip
from schemas.tables import error_row
from stages.shard.config import ShardConfig
from stages.shard.integrity import SampleHasher
from stages.shard.layout import ShardLayout, layout_of
from stages.shard.manifest import write_manifest
from stages.storage import filesystem, fsync_path, is_remote, join
from stages.shard.sample import check_clip, sample_key, sample_members
from stages.splits import SPLITS
from stages.shard.tarformat import BLOCK, end_of_archive, member_header

log = logging.getLogger(__name__)
STAGE = "shard"
IOV_MAX = 512  # buffers per writev call (Linux allows 1024)
ZEROS = bytes(BLOCK)


def shard_name(split: str, index: int) -> str:
    """A shard's name relative to the tar folder: `<split>/NNNNNN.tar` (a folder per split, as HF datasets and
    Ray read them)."""
    return f"{split}/{index:06d}.tar"


def partial_name(name: str) -> str:
    """Where a shard is written before its rename; hidden, and not matching *.tar."""
    folder, _, base = name.rpartition("/")
    return f"{folder}/.{base}.partial" if folder else f".{base}.partial"


def _sync_file_range():
    """libc's sync_file_range(2) (Linux), or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


SYNC_FILE_RANGE = _sync_file_range()
SYNC_FILE_RANGE_WRITE = 2  # start writeback of the dirty pages of a range; does not wait for it
WRITEBACK_BYTES = 8 * 1024 * 1024


class LocalFile:
    """An unbuffered local file written with one writev(2) per sample: array memory goes to the kernel uncopied.

    With `writeback`, every WRITEBACK_BYTES written are handed to the disk at once (sync_file_range), so that the
    final fsync finds little left to flush and the disk works while the next samples are built.
    """

    def __init__(self, path: str, writeback: bool = False):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.writeback = writeback and SYNC_FILE_RANGE is not None
        self.written = self.flushed = 0

    def write_pieces(self, pieces: list, size: int) -> None:
        """Write `pieces` (buffers of `size` bytes in all); a short write continues where it stopped."""
        written = os.writev(self.fd, pieces) if len(pieces) <= IOV_MAX else 0
        if written != size:
            views = [memoryview(p).cast("B") for p in pieces]
            while views:
                while views and written >= len(views[0]):
                    written -= len(views.pop(0))
                if views and written:
                    views[0], written = views[0][written:], 0
                if views:
                    written = os.writev(self.fd, views[:IOV_MAX])
        self.written += size
        if self.writeback and self.written - self.flushed >= WRITEBACK_BYTES:
            SYNC_FILE_RANGE(self.fd, self.flushed, self.written - self.flushed, SYNC_FILE_RANGE_WRITE)  # a hint: result unused
            self.flushed = self.written

    def close(self, durable: bool) -> None:
        """Close, after fsync(2) if `durable` (the data reaches the disk before the shard gets its final name)."""
        try:
            if durable:
                os.fsync(self.fd)
        finally:
            os.close(self.fd)


class ShardHasher:
    """Both digests of each sample of a shard (stages.shard.integrity), computed on a second thread while the
    first writes (hashlib and xxhash release the GIL). The bytes outside samples are zeros (end of archive), which
    `verify_shards` checks as such, so no whole-shard digest is kept: it would hash every byte a second time."""

    def __init__(self):
        self.samples: list[tuple[str, str]] = []  # (sha256, xxh3-128) of each sample, in order
        self.queue: queue.Queue = queue.Queue(maxsize=256)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (pieces := self.queue.get()) is not None:
            sample = SampleHasher()
            for piece in pieces:
                sample.update(piece)
            self.samples.append(sample.digests())

    def update(self, pieces: list) -> None:
        self.queue.put(pieces)

    def join(self) -> list[tuple[str, str]]:
        """Wait for the queued samples; their (sha256, xxh3-128) in order."""
        self.queue.put(None)
        self.thread.join()
        return self.samples


class ShardFile:
    """One shard being written: tar members streamed out, sample offsets and digests kept."""

    def __init__(self, fs, folder: str, name: str, split: str, remote: bool, durable: bool):
        self.fs, self.name, self.split = fs, name, split
        self.final = join(folder, name)
        # An object store publishes an object only when its upload completes, so it is written in place.
        self.path = self.final if remote else join(folder, partial_name(name))
        self.stream = fs.open_output_stream(self.path) if remote else LocalFile(self.path, writeback=durable)
        self.hashing = ShardHasher()
        self.offset = 0
        self.samples: list[tuple[str, str, int, int]] = []  # clip id, key, offset, size

    def _write(self, pieces: list, size: int, is_sample: bool = False) -> None:
        if isinstance(self.stream, LocalFile):
            self.stream.write_pieces(pieces, size)
        else:
            for piece in pieces:
                self.stream.write(piece)
        if is_sample:
            self.hashing.update(pieces)
        self.offset += size

    def add(self, clip_id: str, key: str, pieces: list, size: int) -> None:
        """Append one sample given as its tar pieces and their total size (see `tar_pieces`)."""
        self.samples.append((clip_id, key, self.offset, size))
        self._write(pieces, size, is_sample=True)

    def abandon(self) -> None:
        """Remove the unfinished shard (an exception interrupted the writer; on S3 closing completes the upload)."""
        self.hashing.join()
        if isinstance(self.stream, LocalFile):
            self.stream.close(durable=False)
        else:
            self.stream.close()
        self.fs.delete_file(self.path)

    def finish(self) -> None:
        """Append the end-of-archive blocks (the rest of closing may run on another thread: see `publish`)."""
        end = end_of_archive(self.offset)
        self._write([end], len(end))

    def publish(self, durable: bool) -> list[dict]:
        """Close the finished archive (fsync first if durable), give it its final name, return its manifest rows."""
        try:
            digests = self.hashing.join()
            if isinstance(self.stream, LocalFile):
                self.stream.close(durable)
            else:
                self.stream.close()
        except BaseException:
            with contextlib.suppress(OSError):  # the error that matters is the one being raised
                self.fs.delete_file(self.path)
            raise
        if self.path != self.final:
            self.fs.move(self.path, self.final)
        log.info("shard %s: %d samples, %.1f MB", self.name, len(self.samples), self.offset / 1e6)
        return [
            dict(shard=self.name, key=k, clip_id=c, split=self.split, offset=o, size=s, sample_sha256=sha,
                 sample_xxh3_128=xxh, shard_bytes=self.offset)
            for (c, k, o, s), (sha, xxh) in zip(self.samples, digests, strict=True)
        ]


def tar_pieces(members: list[tuple[str, list]]) -> tuple[list, int]:
    """A sample's bytes in archive order (each member's header, data buffers, block padding) and their total size."""
    pieces, total = [], 0
    for name, parts in members:
        size = sum(map(len, parts))
        header = member_header(name, size)
        pieces.append(header)
        pieces += parts
        if size % BLOCK:
            pieces.append(ZEROS[: -size % BLOCK])
        total += len(header) + size + (-size % BLOCK)
    return [p for p in pieces if len(p)], total


def write_shards(
    clips: Iterable[Clip],
    captions: dict[str, list[dict]],
    assets: dict[str, dict],
    out: str | ShardLayout,
    config: ShardConfig | None = None,
    *,
    durable: bool = True,
) -> tuple[list[dict], list[dict]]:
    """Write `<split>/NNNNNN.tar` shards and their manifest (stages.shard.layout): `out` is a shard root (a path
    or s3://...: ROOT/webdataset/ and ROOT/shards/) or a ShardLayout naming both folders.

    clips must come sorted by clip_id (the output bytes depend only on inputs and config).
    Returns (shard manifest rows, error rows): duplicates by content_hash (the first clip id wins)
    and repeated clip ids are "skipped" rows; malformed clips are "failed" rows.
    durable (local disks): fsync every shard before its rename and the folder at the end, so that a crash of
    the machine never leaves a published shard with missing data; a finished shard's fsync and rename run on
    a second thread while the next shard is written. durable=False leaves flushing to the kernel.
    """
    config = config or ShardConfig()
    layout = out if isinstance(out, ShardLayout) else layout_of(str(out))
    fs, folder = filesystem(layout.tars)
    remote = is_remote(layout.tars)
    fs.create_dir(folder, recursive=True)
    index_fs, index_folder = filesystem(layout.index)
    index_fs.create_dir(index_folder, recursive=True)
    open_shards: dict[str, ShardFile] = {}
    next_index = dict.fromkeys(SPLITS, 0)
    published: list[Future] = []
    errors: list[dict] = []
    first_by_hash: dict[str, str] = {}
    last_id: str | None = None
    seen_keys: set[str] = set()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-publish") as publisher:
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
                split = clip.split
                try:
                    members = sample_members(clip, captions.get(clip.clip_id, []), assets.get(clip.asset_id),
                                             config.dtype, config.caption_backends)
                except Exception as exc:  # noqa: BLE001 - one sample that cannot be encoded is that clip's error row
                    errors.append(error_row(STAGE, clip.clip_id, type(exc).__name__, f"clip {clip.clip_id}: cannot encode: {exc}"))
                    continue
                pieces, size = tar_pieces(members)
                shard = open_shards.get(split)
                if shard is not None and shard.samples and (
                    len(shard.samples) >= config.max_shard_samples
                    or shard.offset + size + len(end_of_archive(shard.offset + size)) > config.max_shard_bytes
                ):
                    published.append(close_shard(open_shards.pop(split), publisher, durable))
                    shard = None
                if shard is None:
                    if next_index[split] == 0:
                        fs.create_dir(join(folder, split), recursive=True)
                    shard = ShardFile(fs, folder, shard_name(split, next_index[split]), split, remote, durable)
                    next_index[split] += 1
                    open_shards[split] = shard
                shard.add(clip.clip_id, key, pieces, size)
            for split in SPLITS:
                if split in open_shards:
                    published.append(close_shard(open_shards.pop(split), publisher, durable))
        finally:
            for shard in open_shards.values():  # an exception left these unfinished: never publish them
                shard.abandon()
    rows = [row for future in published for row in future.result()]
    rows.sort(key=lambda r: (r["shard"], r["offset"]))
    write_manifest(rows, layout, durable=durable and not remote)
    if durable and not remote:
        for split in SPLITS:
            if next_index[split]:
                fsync_path(join(folder, split))
        fsync_path(folder)
        fsync_path(index_folder)
    return rows, errors


def close_shard(shard: ShardFile, publisher: ThreadPoolExecutor, durable: bool) -> Future:
    """End a full shard's archive here; its fsync, close and rename run on the publisher thread."""
    shard.finish()
    return publisher.submit(shard.publish, durable)


__all__ = ["write_shards", "shard_name"]
