"""Per-sample digests: sha256 (what `dymesh verify` checks) and xxh3-128 (what every reader checks, ~10x faster).

A sample's digest covers its whole byte range in the shard (every member's tar header, data and padding), so one
flipped byte anywhere in `vertices.npy`, `faces.npy`, the json or the caption changes it.
"""

from __future__ import annotations

import hashlib
import logging

import xxhash

log = logging.getLogger(__name__)
ON_CORRUPT = ("raise", "skip")  # what a reader does with a sample whose bytes differ from the manifest


class CorruptSampleError(ValueError):
    """A sample's bytes differ from its manifest digest (or cannot be parsed): names the shard and the key."""

    def __init__(self, shard: str, key: str | None = None, reason: str = ""):
        # a single argument is a whole message: how DataLoader workers re-raise an error in the main process
        message = shard if key is None else (f"corrupt sample {key!r} in shard {shard}: {reason}; check the set "
                                             "with `dymesh verify` and rewrite the shards")
        super().__init__(message)
        self.shard, self.key, self.reason = shard, key, reason


def fast_digest(data) -> str:
    """xxh3-128 of a sample's bytes, as hex (the manifest's `sample_xxh3_128`)."""
    return xxhash.xxh3_128_hexdigest(data)


def strong_digest(data) -> str:
    """sha256 of a sample's bytes, as hex (the manifest's `sample_sha256`)."""
    return hashlib.sha256(data).hexdigest()


class SampleHasher:
    """Both digests of a sample given as a list of buffers (the writer's pieces)."""

    def __init__(self):
        self.sha, self.xxh = hashlib.sha256(), xxhash.xxh3_128()

    def update(self, piece) -> None:
        self.sha.update(piece)
        self.xxh.update(piece)

    def digests(self) -> tuple[str, str]:
        """(sha256 hex, xxh3-128 hex)."""
        return self.sha.hexdigest(), self.xxh.hexdigest()


def check_sample(data, expected: str | bytes | None, shard: str, key: str) -> None:
    """Raise CorruptSampleError unless `data` has the xxh3-128 the manifest gives (None: nothing to check)."""
    if expected is None:
        return
    expected = expected.decode() if isinstance(expected, bytes) else expected
    if fast_digest(data) != expected:
        raise CorruptSampleError(shard, key, "its xxh3-128 differs from the manifest's")


def check_policy(on_corrupt: str) -> str:
    """`on_corrupt` checked against ON_CORRUPT."""
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt must be one of {', '.join(ON_CORRUPT)}, not {on_corrupt!r}")
    return on_corrupt
