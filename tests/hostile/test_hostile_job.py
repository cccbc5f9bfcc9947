"""The whole job over a folder of every hostile local file plus one good generated asset, through `dymesh run`
in a subprocess (local Ray, 2 CPUs): exit 0, the driver's peak memory under 2 GB, nothing from outside the folder
in blobs/, clips from the good asset, and every hostile file an error row with its kind."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from paths import REPO
from hostile_files import SECRET, good_asset, hostile_folder  # noqa: F401

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]

GiB = 1024**3


def peak_rss(pid: int) -> int:
    """VmHWM (peak resident set) of a running process in bytes; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def test_hostile_folder_job_finishes_with_clips_and_one_error_row_per_hostile_file(tmp_path, good_asset):
    folder, expected = hostile_folder(tmp_path, good_asset)
    job = {
        "name": "hostile",
        "sources": [{"kind": "local", "paths": [f"{folder}/**"]}],
        "harvest": {"max_asset_bytes": 10_000_000, "timeout_s": 10.0, "retries": 0},
        "resample": {"vertices": 128, "frames": [8], "max_clips_per_animation": 2, "quality_samples": 256},
        "caption": {"backend": "motion"},
        "shard": {"max_shard_samples": 8},
        "run": {"unit_size": 4, "num_cpus": 2, "caption_num_cpus": 0},
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {
        "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    script = Path(sys.executable).with_name("dymesh")  # the installed console script; same entry point as -m
    dymesh = [str(script)] if script.exists() else [sys.executable, "-m", "pipeline.cli"]
    command = [*dymesh, "run", str(tmp_path / "job.yaml"), "--out", str(out)]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, peak_rss(process.pid))
        time.sleep(0.2)
    log = process.stdout.read().decode(errors="replace")
    assert process.returncode == 0, log[-3000:]
    assert 0 < peak < 2 * GiB, peak
    print(f"driver peak RSS {peak / 2**20:.0f} MiB")

    outside = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "outside").iterdir()}
    outside.add(hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest())
    for blob in (out / "blobs").rglob("*.*"):
        data = blob.read_bytes()
        assert SECRET not in data and b"root:x:0" not in data and hashlib.sha256(data).hexdigest() not in outside

    import duckdb

    con = duckdb.connect()
    good_id = hashlib.sha256(good_asset.read_bytes()).hexdigest()
    clips = con.execute(f"select count(*) from '{out}/clips/*/*.parquet' where asset_id = ?", [good_id]).fetchone()[0]
    assert clips > 0
    errors = con.execute(f"select stage, source, error_type, message from '{out}/errors/*/*/*.parquet' "
                         "where status = 'failed'").fetchall()
    by_file: dict[str, list[str]] = {}
    for stage, source, kind, message in errors:
        assert SECRET.decode() not in message and "root:x:0" not in message
        name = os.path.relpath(source.split(" (+")[0], folder)
        by_file.setdefault(name, []).append(kind)
    assert {name: kinds for name, kinds in by_file.items()} == {name: [kind] for name, kind in expected.items()}
    assert "good.glb" not in by_file
