"""Ray's own output stays off the terminal (it goes to a log file) while DyMesh's lines and real Python errors
still reach it; `dymesh train` shows rank 0's progress lines once, plain, and nothing of Ray's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from paths import REPO
from train_runs import SMALL

PYTHON = sys.executable

ROUTED = r"""
import logging, os, sys
from pipeline.executor.ray_output import RayOutputToLog
output = RayOutputToLog().start()
print(output.path, flush=True)
os.write(2, b"[2026-01-01 00:00:00,000 E 1 2] core_worker.cc:1: a core worker line\n")  # Ray's C++ core
logging.getLogger("ray._private.worker").warning("Started a local Ray instance (banner)")  # Ray's Python loggers
print("progress 1/2", file=sys.stderr, flush=True)  # DyMesh's own line
raise ValueError("a real error")
"""


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")


def test_ray_lines_go_to_the_log_and_python_errors_to_the_terminal():
    done = subprocess.run([PYTHON, "-c", ROUTED], env=env(), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    log = Path(done.stdout.strip())
    try:
        assert "progress 1/2" in done.stderr
        assert "ValueError: a real error" in done.stderr and "Traceback" in done.stderr
        assert "core_worker" not in done.stderr and "banner" not in done.stderr
        text = log.read_text()
        assert "core_worker.cc:1: a core worker line" in text and "Started a local Ray instance (banner)" in text
        assert "progress 1/2" not in text
    finally:
        log.unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.ray
def test_dymesh_train_shows_its_progress_once_and_no_ray_lines(tmp_path):
    spec = dict(model="vae", preset="tiny", name="quiet", storage_path=str(tmp_path), shards="synthetic:8", steps=3,
                batch_size=4, checkpoint_every=3, log_every=1, loader_workers=0, num_workers=1, overrides=SMALL)
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    ray_tmp = Path(tempfile.mkdtemp(prefix="dmr", dir="/tmp"))  # this run's Ray session folder (short: sockets)
    try:
        done = subprocess.run([PYTHON, "-m", "pipeline.cli", "train", str(tmp_path / "job.yaml")],
                              env=dict(env(), RAY_TMPDIR=str(ray_tmp)), cwd=REPO, capture_output=True, text=True,
                              timeout=400)
        log = next(ray_tmp.glob("ray/session_*/logs/dymesh-driver-*.err")).read_text()
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("step ")] == [
        line for line in lines if re.fullmatch(r"step \d/3 loss .*", line)]
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["1/3", "2/3", "3/3"]  # once each
    assert "\x1b[" not in done.stdout + done.stderr and "RayTrainWorker" not in done.stdout + done.stderr
    for noise in ("core_worker", "Token authentication", "Started a local Ray instance", "TrainController"):
        assert noise not in done.stderr, done.stderr
    assert "(RayTrainWorker pid=" in log and "step 3/3" in log  # what was left off the terminal is here
