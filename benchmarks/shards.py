"""Shard benchmark, side by side on the same disk: writer vs dd, loader vs raw tarfile, random access, DuckDB report.

    python benchmarks/shards.py [--clips 300] [--vertices 2048] [--rows 1000000] [--dir /tmp]

Prints one table; ratios are ours / baseline (higher is better for throughput).
"""

from __future__ import annotations

import argparse
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
            source_vertices=n, source_faces=2 * n, content_hash=f"{i:064x}",
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


def bench_write_and_read(work: Path, clips: list[Clip], rounds: int = 5) -> list[tuple]:
    from stages.train.loader import ShardDataset

    config = ShardConfig(max_shard_bytes=64 * 1024 * 1024)
    shards = work / "shards"
    write_shards(clips, {}, {}, str(shards), config)
    tars = sorted(shards.glob("*.tar"))
    total = sum(p.stat().st_size for p in tars)
    joined = work / "joined.bin"
    with open(joined, "wb") as out:
        for p in tars:
            out.write(p.read_bytes())

    def write():
        folder = work / "shards-timed"
        start = time.perf_counter()
        write_shards(clips, {}, {}, str(folder), config)
        seconds = time.perf_counter() - start
        shutil.rmtree(folder)  # not timed
        return seconds

    def dd():
        target = work / "dd.bin"
        start = time.perf_counter()
        subprocess.run(["dd", f"if={joined}", f"of={target}", "bs=4M", "status=none"], check=True)
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

    def loader(shuffle: bool):
        start = time.perf_counter()
        assert sum(1 for _ in ShardDataset(str(shards), rank=0, world_size=1, shuffle=shuffle)) == len(clips)
        return time.perf_counter() - start

    # interleaved, best of `rounds` each, so that load from other processes hits both sides alike
    best = {"write": [], "dd": [], "raw": [], "load": [], "shuffled": []}
    for _ in range(rounds):
        best["write"].append(write())
        best["dd"].append(dd())
        best["raw"].append(raw_tar())
        best["load"].append(loader(False))
        best["shuffled"].append(loader(True))
    write_s, dd_s, raw_s, load_s, shuffled_s = (min(best[k]) for k in ("write", "dd", "raw", "load", "shuffled"))
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
        ("shard write (MB/s)", f"{mb / write_s:.0f}", f"dd bs=4M: {mb / dd_s:.0f}", f"{dd_s / write_s:.2f}", ">= 0.80"),
        ("loader, in order (samples/s)", f"{n / load_s:.0f}", f"tarfile: {n / raw_s:.0f}", f"{raw_s / load_s:.2f}", ">= 0.90"),
        ("loader, in order (MB/s)", f"{mb / load_s:.0f}", f"tarfile: {mb / raw_s:.0f}", f"{raw_s / load_s:.2f}", ">= 0.90"),
        ("loader, shuffled (samples/s)", f"{n / shuffled_s:.0f}", f"tarfile: {n / raw_s:.0f}", f"{raw_s / shuffled_s:.2f}", ""),
        ("random access p50 / p99 (ms)", f"{np.percentile(latencies, 50):.2f} / {np.percentile(latencies, 99):.2f}", "", "", ""),
        ("data set", f"{n} clips, {mb:.0f} MB, {len(tars)} shards", "", "", ""),
    ]


def make_tables(out: Path, rows: int) -> None:
    """1M-clip job tables without the array columns (clips, assets, captions, errors, shards)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas.tables import TABLES

    rng = np.random.default_rng(1)
    assets = rows // 20
    asset_ids = np.array([f"{i:064x}" for i in range(assets)], dtype=object)
    clip_asset = rng.integers(0, assets, rows)
    clip_ids = np.array([f"{a:064x}_a0_{i:07d}" for i, a in enumerate(clip_asset)], dtype=object)

    def write(table, columns, name):
        schema = TABLES[table]
        arrays = [columns[f.name] if f.name in columns else pa.nulls(len(next(iter(columns.values()))), f.type) for f in schema]
        (out / table / "bench").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), out / table / "bench" / name)

    kinds, licenses = ["objaverse", "generated", "local", "url"], ["CC-BY-4.0", "CC0-1.0", "CC-BY-NC-4.0", "MIT"]
    sources = [[{"kind": kinds[i % 4], "uri": f"u{i}", "name": "n", "license": licenses[i % 4], "attribution": "a"}] for i in range(assets)]
    write("assets", {"asset_id": pa.array(asset_ids), "sources": pa.array(sources, TABLES["assets"].field("sources").type),
                     "license": pa.array([licenses[i % 4] for i in range(assets)])}, "part-0.parquet")
    write("clips", {
        "clip_id": pa.array(clip_ids), "asset_id": pa.array(asset_ids[clip_asset]),
        "frames": pa.array(rng.choice([16, 32], rows).astype(np.int32)),
        "num_vertices": pa.array(rng.integers(100, 4097, rows).astype(np.int32)),
        "max_displacement": pa.array(rng.gamma(2, 0.05, rows).astype(np.float32)),
        "resample_error": pa.array(rng.gamma(1, 0.002, rows).astype(np.float32)),
        "split": pa.array(rng.choice(["train", "val", "test"], rows, p=[0.9, 0.05, 0.05])),
    }, "part-0.parquet")
    words = np.array(["the object is flying", "a creature walks forward slowly", "the machine spins its parts", "jumps"], dtype=object)
    write("captions", {"clip_id": pa.array(clip_ids), "caption_index": pa.array(np.zeros(rows, np.int32)),
                       "text": pa.array(words[rng.integers(0, 4, rows)]), "backend": pa.array(["motion"] * rows)}, "part-0.parquet")
    errors = rows // 10
    write("errors", {"stage": pa.array(rng.choice(["harvest", "evaluate", "resample", "caption"], errors)),
                     "status": pa.array(rng.choice(["failed", "skipped"], errors)),
                     "error_type": pa.array(rng.choice(["malformed", "static", "too-large", "timeout", "unsafe", "limit"], errors))}, "part-0.parquet")
    write("shards", {"shard": pa.array([f"train-{i // 5000:06d}.tar" for i in range(rows)]), "key": pa.array(clip_ids),
                     "split": pa.array(rng.choice(["train", "val", "test"], rows, p=[0.9, 0.05, 0.05])),
                     "offset": pa.array(np.arange(rows, dtype=np.int64) * 400_000), "size": pa.array(np.full(rows, 400_000, np.int64))}, "part-0.parquet")


def bench_report(work: Path, rows: int) -> list[tuple]:
    from pipeline.stats import connect, report_queries

    out = work / "job"
    make_tables(out, rows)
    con = connect(str(out))
    lines = []
    for title, sql in report_queries().items():
        con.execute(sql).fetchall()  # first run reads the Parquet footers
        seconds = timed(lambda sql=sql: con.execute(sql).fetchall())
        lines.append((f"report: {title} (ms)", f"{seconds * 1000:.0f}", "", "", "< 200"))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--vertices", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=1_000_000, help="clips in the generated stats tables")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dymesh-bench-") as scratch:
        work = Path(scratch)
        clips = make_clips(args.clips, args.vertices)
        lines = bench_write_and_read(work, clips) + bench_report(work, args.rows)
    header = ("measure", "DyMesh", "baseline", "ratio", "target")
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(5)]
    for row in [header, tuple("-" * w for w in widths), *lines]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
