"""Shard benchmark, side by side on the same disk: writer vs dd, the verifying loader vs a plain tar read of the same
shards, random access, DuckDB report.

    python benchmarks/shards.py [--clips 300] [--vertices 2048] [--rows 1000000] [--unit-size 64] [--dir /tmp]

Prints one table; ratios are ours / baseline (higher is better for throughput). `--rows 0` leaves out the report.
The loader checks every sample's xxh3-128 against the manifest (stages.shard.integrity) before decoding it; the
"verification off" row is the same loader with the manifest digests dropped, to show what the check costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.sample import Clip  # noqa: E402
from stages.shard import ShardConfig, read_sample, write_shards  # noqa: E402
from stages.shard.layout import INDEX_FILE, TARS  # noqa: E402
from stages.splits import assign_split  # noqa: E402


def make_clips(count: int, vertices: int, frames: int = 16) -> list[Clip]:
    rng = np.random.default_rng(0)
    clips = []
    for i in range(count):
        n = int(vertices * rng.uniform(0.5, 1.0))
        trajectory = np.cumsum(rng.normal(scale=0.01, size=(frames, n, 3)), axis=0).astype(np.float32)
        asset_id = hashlib.sha256(f"bench-{i // 4}".encode()).hexdigest()
        clips.append(Clip(
            clip_id=f"{asset_id}_a{i % 4}_0000-{frames - 1:04d}", asset_id=asset_id, animation=i % 4, animation_name="a",
            fps=10.0, first_frame=0, last_frame=frames - 1, vertices=trajectory,
            faces=rng.integers(0, n, size=(2 * n, 3)).astype(np.int32), center=(0.0, 0.0, 0.0), scale=1.0,
            source_vertices=n, source_faces=2 * n, content_hash=f"{i:064x}", split=assign_split(asset_id),
        ))
    return sorted(clips, key=lambda c: c.clip_id)


def timed(function, repeat: int = 3) -> float:
    """Best wall time of `repeat` runs (page cache warm after the first)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def bench_write_and_read(work: Path, clips: list[Clip], rounds: int = 7) -> list[tuple]:
    from stages.shard.reader import ShardDataset

    config = ShardConfig(max_shard_bytes=64 * 1024 * 1024)
    shards = work / "shards"
    write_shards(clips, {}, {}, str(shards), config)
    tars = sorted((shards / TARS).rglob("*.tar"))
    total = sum(p.stat().st_size for p in tars)
    joined = work / "joined.bin"
    with open(joined, "wb") as out:
        for p in tars:
            out.write(p.read_bytes())

    def write(durable: bool):
        folder = work / "shards-timed"
        start = time.perf_counter()
        write_shards(clips, {}, {}, str(folder), config, durable=durable)
        seconds = time.perf_counter() - start
        shutil.rmtree(folder)  # not timed
        return seconds

    def dd(durable: bool):
        """The same bytes (the shards joined, read from the page cache) into the same folder, same fsync policy."""
        target = work / "dd.bin"
        start = time.perf_counter()
        subprocess.run(["dd", f"if={joined}", f"of={target}", "bs=4M", "status=none", *(["conv=fsync"] if durable else [])], check=True)
        seconds = time.perf_counter() - start
        target.unlink()
        return seconds

    def raw_tar():
        start = time.perf_counter()
        for p in tars:
            with tarfile.open(p, "r|") as tar:
                for info in tar:
                    tar.extractfile(info).read()
        return time.perf_counter() - start

    def loader(shuffle: bool, verify: bool = True):
        dataset = ShardDataset(str(shards), rank=0, world_size=1, shuffle=shuffle)
        if not verify:
            dataset.indexes = [dataclasses.replace(index, digests=None) for index in dataset.indexes]
        start = time.perf_counter()
        assert sum(1 for _ in dataset) == len(clips)
        return time.perf_counter() - start

    # interleaved, best of `rounds` each, so that load from other processes hits both sides alike
    best = {"write": [], "dd": [], "write durable": [], "dd fsync": [], "raw": [], "load": [], "shuffled": [],
            "unverified": []}
    for _ in range(rounds):
        best["write"].append(write(False))
        best["dd"].append(dd(False))
        best["write durable"].append(write(True))
        best["dd fsync"].append(dd(True))
        best["raw"].append(raw_tar())
        best["load"].append(loader(False))
        best["shuffled"].append(loader(True))
        best["unverified"].append(loader(False, verify=False))
    write_s, dd_s, durable_s, fsync_s, raw_s, load_s, shuffled_s, unverified_s = (min(v) for v in best.values())
    n, mb = len(clips), total / 1e6
    keys = [c.clip_id for c in clips]
    random.Random(0).shuffle(keys)
    latencies = []
    read_sample(str(shards), keys[0])  # manifest index cached once
    for key in keys[:200]:
        start = time.perf_counter()
        read_sample(str(shards), key)
        latencies.append((time.perf_counter() - start) * 1000)
    return [
        ("shard write, durable: fsync (MB/s)", f"{mb / durable_s:.0f}", f"dd bs=4M conv=fsync: {mb / fsync_s:.0f}", f"{fsync_s / durable_s:.2f}", ">= 0.80"),
        ("shard write, page cache: no fsync (MB/s)", f"{mb / write_s:.0f}", f"dd bs=4M: {mb / dd_s:.0f}", f"{dd_s / write_s:.2f}", ""),
        ("verifying loader, in order (samples/s)", f"{n / load_s:.0f}", f"tarfile: {n / raw_s:.0f}", f"{raw_s / load_s:.2f}", ">= 0.90"),
        ("verifying loader, in order (MB/s)", f"{mb / load_s:.0f}", f"tarfile: {mb / raw_s:.0f}", f"{raw_s / load_s:.2f}", ">= 0.90"),
        ("verifying loader, shuffled (samples/s)", f"{n / shuffled_s:.0f}", f"tarfile: {n / raw_s:.0f}", f"{raw_s / shuffled_s:.2f}", ""),
        ("verification cost: loader with it on / off (samples/s)", f"{n / load_s:.0f}", f"off: {n / unverified_s:.0f}", f"{unverified_s / load_s:.2f}", ""),
        ("random access p50 / p99 (ms)", f"{np.percentile(latencies, 50):.2f} / {np.percentile(latencies, 99):.2f}", "", "", ""),
        ("data set", f"{n} clips, {mb:.0f} MB, {len(tars)} shards", "", "", ""),
    ]


ASSETS_PER_CLIP = 60_000 / 4_000_000  # DyMesh's own ratio: about 60k animated assets gave 4M clips


def make_tables(out: Path, rows: int, unit_size: int = 64) -> None:
    """A job's tables for `rows` clips laid out as the pipeline writes them, without the array columns.

    About 15k assets per 1M clips (random sha256 ids), units of `unit_size` sorted assets, one Parquet part per
    unit and table under OUT/<table>/<hash>/ (clips sorted by clip_id, zstd), errors per stage, the shard manifest
    in OUT/shards/<hash>/part-all.parquet, and job.json naming those hashes.
    """
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas.tables import TABLES

    rng = np.random.default_rng(1)
    assets = max(1, round(rows * ASSETS_PER_CLIP))
    asset_ids = np.array(sorted(rng.bytes(32).hex() for _ in range(assets)), dtype=object)
    clip_asset = np.sort(rng.integers(0, assets, rows))  # sorted assets give clips sorted by clip_id
    clip_ids = np.array([f"{asset_ids[a]}_a0_{i:04d}-{i + 15:04d}" for i, a in enumerate(clip_asset)], dtype=object)
    hashes = {stage: hashlib.sha256(stage.encode()).hexdigest()[:16] for stage in ("harvest", "evaluate", "resample", "caption", "shard")}

    def write(table: str, folder: str, name: str, columns: dict) -> None:
        schema = TABLES[table]
        length = len(next(iter(columns.values())))
        arrays = [pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(length, f.type) for f in schema]
        path = out / table / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path, compression="zstd")

    kinds, licenses = ["objaverse", "generated", "local", "url"], ["CC-BY-4.0", "CC0-1.0", "CC-BY-NC-4.0", "MIT"]
    words = np.array(["the object is flying", "a creature walks forward slowly", "the machine spins its parts", "jumps"], dtype=object)
    first_clip = np.searchsorted(clip_asset, np.arange(0, assets + unit_size, unit_size))
    for u, a0 in enumerate(range(0, assets, unit_size)):
        a1, (c0, c1) = min(a0 + unit_size, assets), first_clip[u : u + 2]
        name, n, errors = f"part-{u:05d}.parquet", c1 - c0, (c1 - c0) // 10
        write("assets", hashes["evaluate"], name, {
            "asset_id": asset_ids[a0:a1], "license": [licenses[i % 4] for i in range(a0, a1)],
            "source_kind": [kinds[i % 4] for i in range(a0, a1)], "animation_count": np.ones(a1 - a0, np.int32),
            "sources": [[{"kind": kinds[i % 4], "uri": f"u{i}", "name": "n", "license": licenses[i % 4], "attribution": "a"}] for i in range(a0, a1)],
        })
        write("clips", hashes["resample"], name, {
            "clip_id": clip_ids[c0:c1], "asset_id": asset_ids[clip_asset[c0:c1]],
            "frames": rng.choice([16, 32], n).astype(np.int32), "num_vertices": rng.integers(100, 4097, n).astype(np.int32),
            "max_displacement": rng.gamma(2, 0.05, n).astype(np.float32), "resample_error": rng.gamma(1, 0.002, n).astype(np.float32),
            "split": rng.choice(["train", "val", "test"], n, p=[0.9, 0.05, 0.05]),
        })
        write("captions", hashes["caption"], name, {"clip_id": clip_ids[c0:c1], "caption_index": np.zeros(n, np.int32),
                                                     "text": words[rng.integers(0, 4, n)], "backend": ["motion"] * n})
        for stage in ("evaluate", "resample", "caption"):
            write("errors", f"{stage}/{hashes[stage]}", name, {
                "stage": [stage] * (errors // 3), "status": rng.choice(["failed", "skipped"], errors // 3),
                "error_type": rng.choice(["malformed", "static", "too-large", "timeout", "unsafe", "limit"], errors // 3)})
    write("shards", hashes["shard"], INDEX_FILE, {
        "shard": [f"train/{i // 5000:06d}.tar" for i in range(rows)], "key": clip_ids, "clip_id": clip_ids,
        "split": rng.choice(["train", "val", "test"], rows, p=[0.9, 0.05, 0.05]),
        "offset": np.arange(rows, dtype=np.int64) * 400_000, "size": np.full(rows, 400_000, np.int64)})
    record = dict(hashes, harvest=[hashes["harvest"]])
    (out / "job.json").write_text(json.dumps({"hashes": record}, sort_keys=True, indent=1) + "\n")


def bench_report(work: Path, rows: int, unit_size: int = 64) -> list[tuple]:
    """Each built-in query on the pipeline's layout (one part per unit of `unit_size` assets) and on one part per table."""
    from pipeline.stats import connect, report_queries

    times: dict[str, list[str]] = {}
    cold = []
    for layout, size in (("units", unit_size), ("one", rows)):
        out = work / f"job-{layout}"
        make_tables(out, rows, size)
        start = time.perf_counter()
        con = connect(str(out))
        for sql in report_queries().values():  # the whole report once, as `dymesh stats OUT` runs it
            con.execute(sql).fetchall()
        cold.append(f"{time.perf_counter() - start:.2f}")
        for title, sql in report_queries().items():
            seconds = timed(lambda sql=sql: con.execute(sql).fetchall())
            times.setdefault(title, []).append(f"{seconds * 1000:.0f}")
        con.close()
        shutil.rmtree(out)
    parts = -(-round(rows * ASSETS_PER_CLIP) // unit_size)
    lines = [(f"report: {title} (ms)", " / ".join(values), "", "", "< 200") for title, values in times.items()]
    lines.append(("report: whole, new connection (s)", " / ".join(cold), "", "", ""))
    lines.append(("report layout", f"{parts} parts per table / 1 part", "", "", ""))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--vertices", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=1_000_000, help="clips in the generated stats tables")
    parser.add_argument("--unit-size", type=int, default=64, help="assets per unit (one Parquet part each) in the stats tables")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dymesh-bench-") as scratch:
        work = Path(scratch)
        clips = make_clips(args.clips, args.vertices)
        lines = bench_write_and_read(work, clips) + (bench_report(work, args.rows, args.unit_size) if args.rows else [])
    header = ("measure", "DyMesh", "baseline", "ratio", "target")
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(5)]
    for row in [header, tuple("-" * w for w in widths), *lines]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
