"""Report benchmark: time `dymesh report` on the demo output and on a ~10k-clip output, beside a plain DuckDB scan
of the same tables (the least any report over them costs) and `dymesh stats`.

    python benchmarks/report.py [--demo OUT] [--clips 10000] [--dir /tmp] [--workers N]

Without --demo the demo job is run first (`dymesh run jobs/demo.yaml`, about a minute). The large output is the
demo's clips, captions, assets and error rows replicated with distinct asset ids, clip ids, content hashes and
source kinds, written in the real layout (Parquet partitions of 64 assets per unit, completion markers, job.json,
a shard manifest); replicated arrays compress better than real ones, but the report reads arrays only for the
sampled clips. Every command runs as a fresh process, as a user runs it. Ratios are seconds / baseline seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

UNIT_ASSETS = 64
KINDS = ("generated", "local", "objaverse")
LICENCES = ("CC0-1.0", "CC-BY-4.0", "CC-BY-NC-4.0")
BASELINE = """
import sys
from pipeline.stats import connect
con = connect(sys.argv[1])
print(con.execute("SELECT count(*), avg(resample_error), avg(max_displacement), avg(num_vertices), avg(frames) FROM clips").fetchone(),
      con.execute("SELECT count(*), avg(length(text)) FROM captions").fetchone(),
      con.execute("SELECT count(*), sum(animations) FROM assets").fetchone(),
      con.execute("SELECT count(*) FROM errors").fetchone(), con.execute("SELECT count(*) FROM shards").fetchone())
"""


def command(*args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of it and its children) of one fresh `python ...` process (fails loudly). CPU time
    is the steadier number on a shared machine."""
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def dymesh(*args: str) -> tuple[float, float]:
    return command("-m", "pipeline.cli", *args)


def new_id(old: str, replica: int) -> str:
    return hashlib.sha256(f"{old}:{replica}".encode()).hexdigest()


def synthesise(demo: Path, out: Path, clips_wanted: int) -> int:
    """Write a job output of about `clips_wanted` clips (whole replicas of the demo's); returns the clip count."""
    from pipeline.manifest import Manifest, atomic_write_json, atomic_write_table
    from pipeline.stats import connect
    from schemas.tables import ASSETS, CAPTIONS, CLIPS, ERRORS, SHARDS
    import pyarrow as pa
    from stages.shard.splits import assign_split

    con = connect(str(demo))
    rows = {t: con.sql(f"SELECT * FROM {t} ORDER BY ALL" if t != "clips" else "SELECT * FROM clips ORDER BY clip_id")
            .to_arrow_table().to_pylist() for t in ("assets", "clips", "captions", "errors")}
    shard_sizes = dict(con.execute("SELECT key, size FROM shards").fetchall())
    replicas = -(-clips_wanted // max(1, len(rows["clips"])))
    hashes = {"harvest": [f"bench{k}" for k in range(len(KINDS))], "evaluate": "benchevaluate",
              "resample": "benchresample", "caption": "benchcaption", "shard": "benchshard"}
    manifest = Manifest(out)
    assets, clips, captions, errors, sizes = [], {}, {}, {}, {}
    for r in range(replicas):
        kind = KINDS[r % len(KINDS)]
        ids = {a["asset_id"]: new_id(a["asset_id"], r) for a in rows["assets"]}
        for a in rows["assets"]:
            licence = LICENCES[int(ids[a["asset_id"]][:2], 16) % len(LICENCES)]
            sources = [dict(s, kind=kind, uri=f"{kind}:{r}/{s['uri']}", license=licence) for s in a["sources"]]
            assets.append(dict(a, asset_id=ids[a["asset_id"]], sources=sources, license=licence))
        for c in rows["clips"]:
            clip_id = ids[c["asset_id"]] + c["clip_id"][len(c["asset_id"]):]
            clips.setdefault(ids[c["asset_id"]], []).append(
                dict(c, clip_id=clip_id, asset_id=ids[c["asset_id"]], content_hash=new_id(c["content_hash"], r)))
            sizes[clip_id] = shard_sizes.get(c["clip_id"], 0)
        clip_ids = {c["clip_id"]: ids[c["asset_id"]] + c["clip_id"][len(c["asset_id"]):] for c in rows["clips"]}
        for c in rows["captions"]:
            asset = clip_ids[c["clip_id"]][:64]
            captions.setdefault(asset, []).append(dict(c, clip_id=clip_ids[c["clip_id"]], content_hash=new_id(c["content_hash"], r)))
        for e in rows["errors"]:
            errors.setdefault(ids.get(e["unit_id"], e["unit_id"]), []).append(dict(e, unit_id=ids.get(e["unit_id"], e["unit_id"])))
    asset_ids = sorted(a["asset_id"] for a in assets)
    by_id = {a["asset_id"]: a for a in assets}
    units = {f"{i // UNIT_ASSETS:05d}": asset_ids[i : i + UNIT_ASSETS] for i in range(0, len(asset_ids), UNIT_ASSETS)}
    shard_rows = []
    for unit, members in units.items():
        unit_clips = sorted((c for a in members for c in clips.get(a, [])), key=lambda c: c["clip_id"])
        atomic_write_table(manifest.partition("assets", hashes["evaluate"], unit), pa.Table.from_pylist([by_id[a] for a in members], schema=ASSETS))
        atomic_write_table(manifest.partition("clips", hashes["resample"], unit), pa.Table.from_pylist(unit_clips, schema=CLIPS))
        atomic_write_table(manifest.partition("captions", hashes["caption"], unit),
                           pa.Table.from_pylist(sorted((c for a in members for c in captions.get(a, [])), key=lambda c: c["clip_id"]), schema=CAPTIONS))
        for stage in ("evaluate", "resample", "caption"):
            stage_errors = [e for a in members for e in errors.get(a, []) if e["stage"] == stage]
            atomic_write_table(manifest.errors(stage, hashes[stage], unit), pa.Table.from_pylist(stage_errors, schema=ERRORS))
            manifest.commit(stage, hashes[stage], unit, {"seen": len(members), "ok": len(members)})
        for c in unit_clips:
            split = assign_split(c["asset_id"])
            shard_rows.append(dict(shard=f"{split}/000000.tar", key=c["clip_id"], split=split, offset=0,
                                   size=sizes[c["clip_id"]], shard_bytes=0))
    atomic_write_table(Path(manifest.shard_layout(hashes["shard"]).manifest), pa.Table.from_pylist(shard_rows, schema=SHARDS))
    manifest.commit("shard", hashes["shard"], "all", {"samples": len(shard_rows)})
    for k, kind in enumerate(KINDS):
        seen = sum(1 for a in assets if a["sources"][0]["kind"] == kind)
        manifest.commit("harvest", f"bench{k}", "source", {"kind": kind, "seen": seen, "ok": seen, "source": k})
    atomic_write_json(manifest.job_file(), {"name": f"report-bench-{len(shard_rows)}", "hashes": hashes, "units": len(units)})
    return len(shard_rows)


def time_output(label: str, out: Path, site: Path, workers: int) -> list[tuple]:
    baseline = min(command("-c", BASELINE, str(out)) for _ in range(2))
    stats = dymesh("stats", str(out))
    cold = dymesh("report", str(out), "--out", str(site), "--workers", str(workers))
    cards = len(re.findall(r"data-clip-id=", (site / "index.html").read_text()))
    warm = min(dymesh("report", str(out), "--out", str(site)) for _ in range(2))
    return [(label, "plain DuckDB scan of the tables (baseline)", baseline, baseline),
            (label, "dymesh stats (text report)", stats, baseline),
            (label, f"dymesh report, cold: {cards} previews rendered", cold, baseline),
            (label, "dymesh report, warm: previews cached", warm, baseline)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, help="an existing demo output (default: run jobs/demo.yaml)")
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="preview render processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dymesh-report-bench-") as scratch:
        work = Path(scratch)
        demo = args.demo
        if demo is None:
            demo = work / "demo"
            print(f"running the demo job: {dymesh('run', 'jobs/demo.yaml', '--out', str(demo), '--quiet')[0]:.1f}s", file=sys.stderr)
        start = time.perf_counter()
        clips = synthesise(demo, work / "large", args.clips)
        print(f"synthesised {clips} clips in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        table = time_output("demo", demo, work / "demo-site", args.workers)
        table += time_output(f"{clips} clips", work / "large", work / "large-site", args.workers)
    print(f"{'output':<12} {'what':<46} {'wall s':>8} {'x base':>7} {'CPU s':>8} {'x base':>7}")
    for label, what, (wall, cpu), (base_wall, base_cpu) in table:
        print(f"{label:<12} {what:<46} {wall:>8.2f} {wall / base_wall:>7.2f} {cpu:>8.2f} {cpu / base_cpu:>7.2f}")
    print(f"({os.cpu_count()} CPUs, {args.workers} render processes, load average {os.getloadavg()[0]:.1f}; each row is "
          "a fresh process, best of 2 for the baseline and warm rows)")


if __name__ == "__main__":
    main()
