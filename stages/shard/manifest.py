"""The shard manifest (`shards.parquet`): random access to any sample and corruption checks."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from schemas.tables import SHARDS
from stages.storage import filesystem, join, write_table_atomically

MANIFEST_NAME = "shards.parquet"


def write_manifest(rows: list[dict], out_dir: str, durable: bool = False) -> None:
    """Write `shards.parquet` atomically (temp name + rename on local disks; fsync before the rename if durable)."""
    import pyarrow as pa

    write_table_atomically(join(out_dir, MANIFEST_NAME), pa.Table.from_pylist(rows, schema=SHARDS), durable=durable)


def read_manifest(out_dir: str):
    """The manifest as a pyarrow Table (schemas.tables.SHARDS)."""
    import pyarrow.parquet as pq

    fs, folder = filesystem(out_dir)
    path = join(folder, MANIFEST_NAME)
    try:
        with fs.open_input_file(path) as stream:
            return pq.read_table(stream, schema=SHARDS)
    except FileNotFoundError:
        raise FileNotFoundError(f"no shard manifest at {join(str(out_dir), MANIFEST_NAME)}; run the shard stage first") from None


@lru_cache(maxsize=8)
def _sample_index(out_dir: str, version: tuple) -> dict[str, tuple[str, int, int]]:
    table = read_manifest(out_dir)
    columns = [table.column(c).to_pylist() for c in ("key", "shard", "offset", "size")]
    return {k: (s, o, n) for k, s, o, n in zip(*columns)}


def read_sample(out_dir: str, key: str) -> dict:
    """One sample by key, read with a single ranged read: {"__key__", "vertices", "faces", "json", "txt"}."""
    from stages.shard.sample import npy_array
    from stages.shard.tarformat import parse_members

    fs, folder = filesystem(out_dir)
    info = fs.get_file_info(join(folder, MANIFEST_NAME))
    index = _sample_index(str(out_dir), (info.size, info.mtime_ns))
    if key not in index:
        raise KeyError(f"sample {key!r} is not in the manifest of {out_dir}")
    shard, offset, size = index[key]
    with fs.open_input_file(join(folder, shard)) as stream:
        data = stream.read_at(size, offset)
    return decode_members(key, parse_members(data), npy_array)


def decode_members(key: str, members: list[tuple[str, memoryview]], npy_array) -> dict:
    """Sample dict from one sample's (name, data) members; a member of another key means a corrupt range."""
    sample: dict = {"__key__": key}
    for name, data in members:
        if not name.startswith(key + "."):
            raise ValueError(f"member {name} found where sample {key} should be: the shard and its manifest disagree")
        suffix = name[len(key) + 1 :]
        if suffix.endswith(".npy"):
            sample[suffix[: -len(".npy")]] = npy_array(data)
        elif suffix == "json":
            sample["json"] = json.loads(bytes(data))
        elif suffix == "txt":
            sample["txt"] = bytes(data).decode()
    return sample


def verify_shards(out_dir: str) -> list[str]:
    """Problems found by re-reading every shard of the manifest (missing, wrong size, wrong sha256); [] if none."""
    table = read_manifest(out_dir)
    fs, folder = filesystem(out_dir)
    expected = {}
    for shard, sha, size in zip(*(table.column(c).to_pylist() for c in ("shard", "shard_sha256", "shard_bytes"))):
        expected[shard] = (sha, size)
    problems = []
    for shard, (sha, size) in sorted(expected.items()):
        digest, total = hashlib.sha256(), 0
        try:
            with fs.open_input_stream(join(folder, shard)) as stream:
                while chunk := stream.read(8 * 1024 * 1024):
                    digest.update(chunk)
                    total += len(chunk)
        except FileNotFoundError:
            problems.append(f"{shard}: missing")
            continue
        if total != size:
            problems.append(f"{shard}: {total} bytes, manifest says {size}")
        elif digest.hexdigest() != sha:
            problems.append(f"{shard}: sha256 {digest.hexdigest()} differs from the manifest's {sha}")
    return problems
