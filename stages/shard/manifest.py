"""The shard manifest (`shards/.../part-all.parquet`): random access to any sample, and the integrity check.

Every path argument is what stages.shard.layout.find_layout accepts: a job output folder (its current shards), a
standalone shard root, or either folder of a shard set.
"""

from __future__ import annotations

import json
from functools import lru_cache

from schemas.tables import SHARDS
from stages.shard.integrity import CorruptSampleError, check_sample, strong_digest
from stages.shard.layout import ShardLayout, find_layout
from stages.storage import filesystem, write_table_atomically

VERIFY_CHUNK = 64 * 1024 * 1024  # bytes of padding read at once by verify_shards (samples are read whole)


def write_manifest(rows: list[dict], layout: ShardLayout, durable: bool = False) -> None:
    """Write the manifest atomically (temp name + rename on local disks; fsync before the rename if durable)."""
    import pyarrow as pa

    write_table_atomically(layout.manifest, pa.Table.from_pylist(rows, schema=SHARDS), durable=durable)


def read_manifest(path: str, columns: list[str] | None = None):
    """The manifest of the shard set at `path` as a pyarrow Table (schemas.tables.SHARDS)."""
    import pyarrow.parquet as pq

    layout = find_layout(path)
    fs, manifest = filesystem(layout.manifest)
    try:
        with fs.open_input_file(manifest) as stream:
            return pq.read_table(stream, schema=SHARDS, columns=columns)
    except FileNotFoundError:
        raise FileNotFoundError(f"no shard manifest at {layout.manifest}; run the shard stage first") from None


@lru_cache(maxsize=8)
def _sample_index(path: str, version: tuple) -> tuple[ShardLayout, dict[str, tuple[str, int, int, str]]]:
    table = read_manifest(path, ["key", "shard", "offset", "size", "sample_xxh3_128"])
    columns = [table.column(c).to_pylist() for c in ("key", "shard", "offset", "size", "sample_xxh3_128")]
    return find_layout(path), {k: (s, o, n, d) for k, s, o, n, d in zip(*columns)}


def read_sample(path: str, key: str) -> dict:
    """One sample by key, read with a single ranged read and checked against its manifest digest:
    {"__key__", "vertices", "faces", "json", "txt"}; raises CorruptSampleError naming shard and key."""
    from stages.shard.sample import npy_array
    from stages.shard.tarformat import parse_members

    layout = find_layout(path)
    fs, manifest = filesystem(layout.manifest)
    info = fs.get_file_info(manifest)
    _, index = _sample_index(str(path), (layout, info.size, info.mtime_ns))
    if key not in index:
        raise KeyError(f"sample {key!r} is not in the manifest of {path}")
    shard, offset, size, digest = index[key]
    shard_fs, shard_path = filesystem(layout.shard(shard))
    with shard_fs.open_input_file(shard_path) as stream:
        data = stream.read_at(size, offset)
    check_sample(data, digest, layout.shard(shard), key)
    try:
        return decode_members(key, parse_members(data), npy_array)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptSampleError(layout.shard(shard), key, str(exc)) from None


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


def verify_shards(path: str) -> list[str]:
    """One line per problem found by re-reading every shard of the manifest: each sample whose sha256 differs or
    whose bytes are missing, else each shard whose size differs or whose bytes outside samples are not the zeros
    the writer puts there; [] when all is intact."""
    layout = find_layout(path)
    table = read_manifest(path, ["shard", "key", "offset", "size", "sample_sha256", "shard_bytes"])
    by_shard: dict[str, list[tuple[int, int, str, str]]] = {}
    expected: dict[str, int] = {}
    for shard, key, offset, size, sha, shard_bytes in zip(*(c.to_pylist() for c in table.columns)):
        by_shard.setdefault(shard, []).append((offset, size, key, sha))
        expected[shard] = shard_bytes
    problems = []
    for shard in sorted(by_shard):
        url = layout.shard(shard)
        found = []
        fs, local = filesystem(url)
        try:
            with fs.open_input_file(local) as stream:
                total = stream.size()
                position, padding_ok = 0, True
                for offset, size, key, sha in sorted(by_shard[shard]):
                    padding_ok &= _zeros(stream, position, offset)
                    data = stream.read_at(size, offset) if offset + size <= total else b""
                    if len(data) != size:
                        found.append(f"{url}: {key}: missing ({total} bytes in the shard, the sample ends at "
                                     f"{offset + size})")
                    elif strong_digest(data) != sha:
                        found.append(f"{url}: {key}: sha256 differs from the manifest's")
                    position = max(position, offset + size)
                padding_ok &= _zeros(stream, position, total)
        except FileNotFoundError:
            problems += [f"{url}: {key}: missing (no such shard)" for _, _, key, _ in sorted(by_shard[shard])]
            continue
        if not found and total != expected[shard]:
            found.append(f"{url}: {total} bytes, the manifest says {expected[shard]}")
        elif not found and not padding_ok:
            found.append(f"{url}: bytes outside its samples are not the end-of-archive zeros")
        problems += found
    return problems


def _zeros(stream, start: int, end: int) -> bool:
    """Whether bytes [start, end) of an open shard are all zero (the tar padding between and after samples)."""
    while start < end:
        chunk = stream.read_at(min(VERIFY_CHUNK, end - start), start)
        if not chunk or chunk.count(0) != len(chunk):
            return False
        start += len(chunk)
    return True


__all__ = ["CorruptSampleError", "read_manifest", "read_sample", "verify_shards", "write_manifest"]
