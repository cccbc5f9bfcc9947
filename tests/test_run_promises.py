"""Promises of `dymesh run` the docs make and no other test held: `--out s3://...` is refused in one line with exit
code 2, and a stalled run exits 1 in one line. (A caption actor killed mid-unit: tests/test_pipeline_run.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main

JOB = {"name": "promises", "sources": [{"kind": "generated", "count": 2, "seed": 3}], "caption": {"backend": "motion"}}


def write_job(folder: Path, spec: dict) -> Path:
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_run_to_an_object_store_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    job = write_job(tmp_path, JOB)
    for uri in ("s3://bucket/runs/x", "gs://bucket/x"):
        assert main(["run", str(job), "--out", uri, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"dymesh run: error: --out {uri}: a dataset run writes to a "
                                                       "local folder"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.yaml"]  # nothing written, no `s3:` folder made


@pytest.mark.ray
def test_a_stalled_run_exits_1_in_one_line_and_keeps_nothing_half_done(ray_session, tmp_path, monkeypatch, capsys):
    """An asset that takes minutes (the 41k-vertex blob of test_pipeline_run's timeout test) under a 600 s item limit
    and a 3 s stall limit: nothing finishes, so the run stops as stalled, before the item limit."""
    from pipeline.executor.assets import AssetScheduler
    from stages.generate import generate_asset

    blob = generate_asset("blob", 1, tmp_path / "heavy-blob.glb", detail=64)
    spec = {"name": "stall", "sources": [{"kind": "local", "paths": [str(blob)]}],
            "resample": {"vertices": "native", "frames": [16], "fps": 240.0, "stride": 1,
                         "max_evaluate_bytes": 64 * 1024 * 1024},
            "caption": {"backend": "motion"},
            "run": {"item_timeout_s": 600, "stall_timeout_s": 3, "caption_num_cpus": 0, "max_retries": 0}}
    job = write_job(tmp_path, spec)
    schedulers: list[AssetScheduler] = []
    original = AssetScheduler.run

    def run_and_record(self, *args, **kwargs):  # the test cancels the task a CLI's exit would end with its Ray
        schedulers.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AssetScheduler, "run", run_and_record)
    started = time.monotonic()
    try:
        code = main(["run", str(job), "--out", str(tmp_path / "out"), "--quiet"])
    finally:
        for scheduler in schedulers:
            for ref in scheduler.running:
                ray_session.cancel(ref, force=True)
    assert time.monotonic() - started < 300, "stopped by the stall limit, long before the item limit"
    assert code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dymesh ")]
    assert lines == ["dymesh run: stalled: nothing finished for 3s (run.stall_timeout_s); committed units are kept: "
                     "re-run the same command to resume"], lines
    assert not list((tmp_path / "out" / "markers").glob("evaluate/*/*.json"))  # the asset's unit is not committed
